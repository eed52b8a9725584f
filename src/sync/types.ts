/**
 * What the sync layer needs from the running backend. The server's `Backend` satisfies it structurally and passes
 * itself in, so `sync` never imports the server above it.
 */
import type { Database } from "../database/mod.ts";
import type { FunctionExecutor } from "../functions/mod.ts";
import type { FunctionServices } from "./services.ts";

/** What the hub and its sessions use: the database's latest timestamp, the executor and the shared services. */
export interface SyncBackend {
  database: Pick<Database, "latestTs">;
  executor: Pick<FunctionExecutor, "call">;
  /** The authenticator and the query cache, shared with the HTTP routes. */
  services: FunctionServices;
}
