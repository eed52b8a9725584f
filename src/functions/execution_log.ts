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

/** See the module comment. */
export class ExecutionLog {
  readonly #entries: LoggedExecution[] = [];
  #nextCursor = 1;
  #waiters = new Set<() => void>();

  /** Appends an execution and wakes long polls. */
  append(record: ExecutionRecord): void {
    this.#entries.push({ ...record, cursor: this.#nextCursor++ });
    if (this.#entries.length > MAX_LOGGED_EXECUTIONS) {
      this.#entries.splice(0, this.#entries.length - MAX_LOGGED_EXECUTIONS);
    }
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
    return this.#entries.filter((entry) => entry.cursor > cursor);
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
