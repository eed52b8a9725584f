/**
 * PostgreSQL connectivity failures, told apart from everything else and turned into one clear, retryable error.
 * The driver's own messages ("connect ECONNREFUSED 10.0.0.5:5432", "write CONNECTION_CLOSED db:5432") name the
 * database's address and say nothing a client can act on, so they stay in the server log (rate-limited) and clients
 * get {@link DatabaseUnavailableError}. Private to `src/persistence/` except the error class, exported by mod.ts.
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

/** postgres.js's own connection error codes and the socket errnos it passes through. */
const CONNECTION_CODES = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
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
]);

/**
 * SQLSTATEs of a server going away or not taking connections: class 08 (connection exception), 57P01-57P03
 * (admin shutdown, crash shutdown, cannot connect now), 53300 (too many connections).
 */
function isUnavailableSqlState(code: string): boolean {
  return code.startsWith("08") || code === "57P01" || code === "57P02" || code === "57P03" || code === "53300";
}

/** True when `error` says the database could not be reached or dropped the connection. */
export function isConnectionError(error: unknown): boolean {
  if (error instanceof DatabaseUnavailableError) return true;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && (CONNECTION_CODES.has(code) || isUnavailableSqlState(code));
}

/** Failures that happen before a connection exists: nothing was sent, so nothing can have been committed. */
const NEVER_CONNECTED_CODES = new Set(["ECONNREFUSED", "CONNECT_TIMEOUT", "ENOTFOUND", "EAI_AGAIN", "57P03", "53300"]);

/** True when `error` shows the statement never reached the server (no connection was made). */
export function neverConnected(error: unknown): boolean {
  const original = error instanceof DatabaseUnavailableError ? error.cause : error;
  const code = (original as { code?: unknown } | null)?.code;
  return typeof code === "string" && NEVER_CONNECTED_CODES.has(code);
}

/** The log line for connectivity failures is written at most this often (an outage fails every call). */
const UNAVAILABLE_LOG_INTERVAL_MS = 5_000;
let lastLoggedAtMs = -Infinity;

/** `error` as callers should see it: connectivity failures become {@link DatabaseUnavailableError}. */
export function toPersistenceError(error: unknown): unknown {
  if (!isConnectionError(error) || error instanceof DatabaseUnavailableError) return error;
  const nowMs = Date.now();
  if (nowMs - lastLoggedAtMs >= UNAVAILABLE_LOG_INTERVAL_MS) {
    lastLoggedAtMs = nowMs;
    console.error(`denvex: PostgreSQL unavailable (retrying): ${error instanceof Error ? error.message : error}`);
  }
  return new DatabaseUnavailableError({ cause: error });
}

/**
 * Awaits `operation` for at most `deadlineMs`, rethrowing its failure through {@link toPersistenceError}. Past the
 * deadline it fails with {@link DatabaseUnavailableError} and calls `onTimeout` (the caller replaces the pool: the
 * driver can leave a call pending forever on a connection broken by a server restart, and a commit stuck there
 * would stall every commit behind it).
 */
export async function withDeadline<T>(
  operation: PromiseLike<T>,
  deadlineMs: number,
  onTimeout: () => void,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut = false;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      reject(new Error(`no answer from PostgreSQL within ${deadlineMs} ms`));
    }, deadlineMs);
  });
  try {
    return await Promise.race([operation, timeout]);
  } catch (error) {
    if (timedOut) {
      onTimeout();
      throw toPersistenceError(Object.assign(error as Error, { code: "ETIMEDOUT" }));
    }
    throw toPersistenceError(error);
  } finally {
    clearTimeout(timer);
  }
}
