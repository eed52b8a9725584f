/**
 * A bounded in-memory log of recent function executions, read with a cursor and a long poll
 * (`GET /api/stream_function_logs`, used by `npx convex dev` and `npx convex logs`).
 */
import type { ExecutionRecord } from "./executor.ts";

/** How many executions are kept; older ones fall off. */
export const MAX_LOGGED_EXECUTIONS = 10_000;

/** One logged execution with its cursor position. */
export interface LoggedExecution extends ExecutionRecord {
  cursor: number;
}

/**
 * See the module comment. The entries are a ring: appending to a full log overwrites the oldest entry in O(1) (a
 * shifted array cost ~16 µs per call once full, issue 14). The entry with cursor `c` sits at `(c - 1) % capacity`.
 */
export class ExecutionLog {
  readonly #capacity: number;
  readonly #ring: LoggedExecution[] = [];
  #nextCursor = 1;
  #waiters = new Set<() => void>();

  constructor(capacity = MAX_LOGGED_EXECUTIONS) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError(`invalid capacity ${capacity}`);
    this.#capacity = capacity;
  }

  /** Appends an execution and wakes long polls. */
  append(record: ExecutionRecord): void {
    const cursor = this.#nextCursor++;
    const entry = { ...record, cursor };
    if (this.#ring.length < this.#capacity) this.#ring.push(entry);
    else this.#ring[(cursor - 1) % this.#capacity] = entry;
    if (this.#waiters.size === 0) return;
    const waiters = this.#waiters;
    this.#waiters = new Set();
    for (const wake of waiters) wake();
  }

  /** The cursor after the newest entry. */
  get headCursor(): number {
    return this.#nextCursor - 1;
  }

  /** Entries with a cursor above `cursor`, oldest first. */
  after(cursor: number): LoggedExecution[] {
    const head = this.#nextCursor - 1;
    const first = Math.max(Math.floor(cursor) + 1, head - this.#ring.length + 1, 1);
    const out: LoggedExecution[] = [];
    for (let at = first; at <= head; at++) out.push(this.#ring[(at - 1) % this.#capacity]);
    return out;
  }

  /** Waits until there are entries after `cursor`, or `timeoutMs`, or `signal` aborts. */
  async waitAfter(cursor: number, timeoutMs: number, signal?: AbortSignal): Promise<LoggedExecution[]> {
    const ready = this.after(cursor);
    if (ready.length > 0) return ready;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.#waiters.add(done);
      signal?.addEventListener("abort", done);
    });
    return this.after(cursor);
  }
}
