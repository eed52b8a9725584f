/**
 * What the server backends' connectivity handling shares (`_postgres_errors.ts`, `_mysql_errors.ts`): the one clear,
 * retryable {@link DatabaseUnavailableError} clients get instead of a driver's message (which names the database's
 * address and says nothing a client can act on, so it stays in the server log, rate-limited), and the deadline that
 * keeps a call from hanging on a broken socket. Each backend supplies only how its driver reports a lost
 * connection. Private to `src/persistence/` except the error class, exported by mod.ts.
 */

import { DenvexError } from "../errors/mod.ts";

/** The message of {@link DatabaseUnavailableError}, which also reaches user code through a failed read. */
export const DATABASE_UNAVAILABLE_MESSAGE = "The database is temporarily unavailable; retry shortly";

/** The database cannot be reached right now (restarting, failing over, network down); the call may be retried. */
export class DatabaseUnavailableError extends DenvexError {
  /** `cause` is the driver's error, for the server log only. Retrying later may succeed. */
  constructor(options?: { cause?: unknown }) {
    super("DatabaseUnavailable", DATABASE_UNAVAILABLE_MESSAGE, { ...options, httpStatus: 503, retryable: true });
    this.name = "DatabaseUnavailableError";
  }
}

/** Socket errnos of a lost or refused connection, which both drivers pass through as `code`. */
export const SOCKET_ERROR_CODES = [
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "ENETDOWN",
  "ENOTFOUND",
  "EAI_AGAIN",
] as const;

/** The log line for connectivity failures is written at most this often (an outage fails every call). */
const UNAVAILABLE_LOG_INTERVAL_MS = 5_000;

/** How one driver's errors are classified; `databaseName` names the server in log lines and timeout messages. */
export interface DriverFailures {
  databaseName: string;
  /** True for the driver's own error (never a {@link DatabaseUnavailableError}) of a lost or refused connection. */
  isDriverConnectionError(error: unknown): boolean;
  /** Error codes of failures before a connection exists: nothing was sent, so nothing can have been committed. */
  neverConnectedCodes: ReadonlySet<string>;
}

/** A backend's connectivity handling, built by {@link unavailableHandling}. */
export interface UnavailableHandling {
  /** True when `error` says the database could not be reached or dropped the connection. */
  isConnectionError(error: unknown): boolean;
  /** True when `error` shows the statement never reached the server (no connection was made). */
  neverConnected(error: unknown): boolean;
  /** `error` as callers should see it: connectivity failures become {@link DatabaseUnavailableError}. */
  toPersistenceError(error: unknown): unknown;
  /**
   * Awaits `operation` for at most `deadlineMs`, rethrowing its failure through `toPersistenceError`. Past the
   * deadline it fails with {@link DatabaseUnavailableError} and calls `onTimeout` (the caller replaces the broken
   * connection or pool: a driver can leave a call pending forever on a socket broken by a server restart, and a
   * commit stuck there would stall every commit behind it).
   */
  withDeadline<T>(operation: PromiseLike<T>, deadlineMs: number, onTimeout: () => void): Promise<T>;
}

/** The connectivity handling of one backend; its log line is rate-limited on its own. */
export function unavailableHandling(driver: DriverFailures): UnavailableHandling {
  let lastLoggedAtMs = -Infinity;
  const isConnectionError = (error: unknown) =>
    error instanceof DatabaseUnavailableError || driver.isDriverConnectionError(error);
  const toPersistenceError = (error: unknown): unknown => {
    if (!isConnectionError(error) || error instanceof DatabaseUnavailableError) return error;
    const nowMs = Date.now();
    if (nowMs - lastLoggedAtMs >= UNAVAILABLE_LOG_INTERVAL_MS) {
      lastLoggedAtMs = nowMs;
      const message = error instanceof Error ? error.message : error;
      console.error(`denvex: ${driver.databaseName} unavailable (retrying): ${message}`);
    }
    return new DatabaseUnavailableError({ cause: error });
  };
  return {
    isConnectionError,
    toPersistenceError,
    neverConnected(error) {
      const original = error instanceof DatabaseUnavailableError ? error.cause : error;
      const code = (original as { code?: unknown } | null)?.code;
      return typeof code === "string" && driver.neverConnectedCodes.has(code);
    },
    async withDeadline(operation, deadlineMs, onTimeout) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      let timedOut = false;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          timedOut = true;
          const message = `no answer from ${driver.databaseName} within ${deadlineMs} ms`;
          reject(Object.assign(new Error(message), { code: "ETIMEDOUT" }));
        }, deadlineMs);
      });
      try {
        return await Promise.race([operation, timeout]);
      } catch (error) {
        if (timedOut) onTimeout();
        throw toPersistenceError(error);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
