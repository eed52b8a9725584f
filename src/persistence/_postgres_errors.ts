/**
 * PostgreSQL connectivity failures, told apart from everything else and turned into one clear, retryable
 * {@link DatabaseUnavailableError} (`_unavailable.ts`). The driver's own messages ("connect ECONNREFUSED
 * 10.0.0.5:5432", "write CONNECTION_CLOSED db:5432") name the database's address and say nothing a client can act on,
 * so they stay in the server log (rate-limited). Private to `src/persistence/`.
 */

import { SOCKET_ERROR_CODES, unavailableHandling } from "./_unavailable.ts";

/** postgres.js's own connection error codes and the socket errnos it passes through. */
const CONNECTION_CODES = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
  ...SOCKET_ERROR_CODES,
]);

/**
 * SQLSTATEs of a server going away or not taking connections: class 08 (connection exception), 57P01-57P03
 * (admin shutdown, crash shutdown, cannot connect now), 53300 (too many connections).
 */
function isUnavailableSqlState(code: string): boolean {
  return code.startsWith("08") || code === "57P01" || code === "57P02" || code === "57P03" || code === "53300";
}

/** Failures that happen before a connection exists: nothing was sent, so nothing can have been committed. */
const NEVER_CONNECTED_CODES = new Set(["ECONNREFUSED", "CONNECT_TIMEOUT", "ENOTFOUND", "EAI_AGAIN", "57P03", "53300"]);

/** PostgreSQL's connectivity handling: `withDeadline`'s `onTimeout` replaces the pool. */
export const { isConnectionError, neverConnected, toPersistenceError, withDeadline } = unavailableHandling({
  databaseName: "PostgreSQL",
  isDriverConnectionError(error) {
    const code = (error as { code?: unknown } | null)?.code;
    return typeof code === "string" && (CONNECTION_CODES.has(code) || isUnavailableSqlState(code));
  },
  neverConnectedCodes: NEVER_CONNECTED_CODES,
});
