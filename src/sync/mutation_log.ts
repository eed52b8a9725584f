/**
 * Idempotent mutations (convex-compat.md §2.6): a client re-sends in-flight mutations after a reconnect with the same
 * `(sessionId, requestId)`; the first execution's response is replayed instead of running it twice.
 *
 * This in-memory map only joins a repeat that arrives while the first execution is still running or shortly after;
 * the durable guarantee comes from the executor, which records each result in the mutation's own commit
 * (src/functions/idempotency.ts), so a repeat after a restart or after eviction is answered from the database.
 */

/** A mutation's reply on the socket, and its commit ts when it succeeded. */
export interface MutationReply {
  text: string;
  commitTs: bigint | null;
}

/** Responses remembered; a session re-sends only its few in-flight requests, so this covers many sessions. */
export const MAX_REMEMBERED_MUTATIONS = 100_000;
/** Bytes of remembered responses (a mutation may return up to 16 MiB); the oldest are forgotten beyond it. */
export const MAX_REMEMBERED_MUTATION_BYTES = 64 * 1024 * 1024;

/** The remembered responses, or the execution still under way. */
export class MutationLog<T> {
  readonly #entries = new Map<string, Promise<T>>();
  /** Sizes of the finished responses still remembered. */
  readonly #sizes = new Map<string, number>();
  #bytes = 0;
  readonly #max: number;
  readonly #maxBytes: number;
  readonly #sizeOf: (value: T) => number;

  constructor(
    max = MAX_REMEMBERED_MUTATIONS,
    maxBytes = MAX_REMEMBERED_MUTATION_BYTES,
    sizeOf: (value: T) => number = (value) => (value as { text?: string }).text?.length ?? 0,
  ) {
    this.#max = max;
    this.#maxBytes = maxBytes;
    this.#sizeOf = sizeOf;
  }

  /** Bytes of the remembered responses. */
  get retainedBytes(): number {
    return this.#bytes;
  }

  /** The response of `(sessionId, requestId)`: the remembered one, or `execute()`'s (then remembered). */
  run(sessionId: string, requestId: number, execute: () => Promise<T>): Promise<T> {
    const key = `${sessionId}\u0000${requestId}`;
    const existing = this.#entries.get(key);
    if (existing) return existing;
    const pending = execute();
    this.#entries.set(key, pending);
    pending.then((value) => {
      if (this.#entries.get(key) !== pending) return;
      const size = this.#sizeOf(value);
      this.#sizes.set(key, size);
      this.#bytes += size;
      this.#trim();
      // A failure of our own (not of the mutation) is not remembered, so a retry runs again.
    }, () => this.#delete(key));
    this.#trim();
    return pending;
  }

  /** Forgets a response (a mutation that failed before running, e.g. a full queue). */
  forget(sessionId: string, requestId: number): void {
    this.#delete(`${sessionId}\u0000${requestId}`);
  }

  #trim(): void {
    while (this.#entries.size > this.#max || this.#bytes > this.#maxBytes) {
      this.#delete(this.#entries.keys().next().value!);
    }
  }

  #delete(key: string): void {
    this.#entries.delete(key);
    this.#bytes -= this.#sizes.get(key) ?? 0;
    this.#sizes.delete(key);
  }
}
