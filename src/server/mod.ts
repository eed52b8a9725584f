/**
 * The server: wires configuration, data directory, admin key, storage and the HTTP origins together, and shuts them
 * down in order on SIGINT/SIGTERM. `main.ts` calls {@link runServer} and {@link printStoredAdminKey}.
 *
 * @module
 */
export { parseCommandLine, USAGE, UsageError } from "./config.ts";
export type { Command, ServeConfig } from "./config.ts";
export { DENVEX_VERSION, VERSION_TEXT } from "./version.ts";
export { DATABASE_CLOSE_TIMEOUT_MS, printStoredAdminKey, runServer, SHUTDOWN_GRACE_MS } from "./run.ts";
export { SERVER_ENV_NAMES } from "./launcher.ts";
