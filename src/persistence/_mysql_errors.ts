/**
 * MySQL / MariaDB connectivity failures, told apart from everything else and turned into the same clear, retryable
 * {@link DatabaseUnavailableError} (`_unavailable.ts`) the PostgreSQL backend uses. mysql2's own messages ("connect
 * ECONNREFUSED 10.0.0.5:3306", "Access denied for user ...") name the database's address or user and say nothing a
 * client can act on, so they stay in the server log (rate-limited). The password is never part of any of them: it is
 * sent only in the handshake. Private to `src/persistence/`.
 */

import { SOCKET_ERROR_CODES, unavailableHandling } from "./_unavailable.ts";

/** mysql2's connection error codes, the socket errnos it passes through, and server errors of a server going away. */
const CONNECTION_CODES = new Set([
  "PROTOCOL_CONNECTION_LOST",
  "PROTOCOL_SEQUENCE_TIMEOUT",
  "PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR",
  "PROTOCOL_ENQUEUE_AFTER_QUIT",
  ...SOCKET_ERROR_CODES,
  "ER_SERVER_SHUTDOWN", // 1053: the server is shutting down
  "ER_CON_COUNT_ERROR", // 1040: too many connections
  "ER_CONNECTION_KILLED", // 1927 (MariaDB): the connection was killed
  "ER_CLIENT_INTERACTION_TIMEOUT", // 4031 (MySQL 8): idle connection closed by the server
]);

/** Server error numbers for the same conditions, for servers whose code names differ between MySQL and MariaDB. */
const CONNECTION_ERRNOS = new Set([1040, 1053, 1927, 2006, 2013, 4031]);

/** Failures that happen before a connection exists: nothing was sent, so nothing can have been committed. */
const NEVER_CONNECTED_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ER_CON_COUNT_ERROR"]);

/** MySQL's connectivity handling: `withDeadline`'s `onTimeout` destroys the connection. */
export const { isConnectionError, neverConnected, toPersistenceError, withDeadline } = unavailableHandling({
  databaseName: "MySQL",
  isDriverConnectionError(error) {
    const { code, errno, fatal } = (error ?? {}) as { code?: unknown; errno?: unknown; fatal?: unknown };
    if (typeof code === "string" && CONNECTION_CODES.has(code)) return true;
    if (typeof errno === "number" && CONNECTION_ERRNOS.has(errno)) return true;
    // A fatal error without a server error number is a broken socket or protocol state.
    return fatal === true && typeof errno !== "number";
  },
  neverConnectedCodes: NEVER_CONNECTED_CODES,
});
