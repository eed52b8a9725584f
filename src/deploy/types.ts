/**
 * What deploying needs from the running backend. The server's `Backend` satisfies {@link DeployBackend} structurally
 * and passes itself in, so `deploy` never imports the server above it.
 */
import type { Database } from "../database/mod.ts";
import type { DeploymentStore } from "./store.ts";

/** The origins clients reach this deployment at. */
export interface DeploymentUrls {
  /** The API origin, e.g. `http://127.0.0.1:3210` (CONVEX_CLOUD_URL). */
  cloudUrl: string;
  /** The HTTP actions origin, e.g. `http://127.0.0.1:3211` (CONVEX_SITE_URL). */
  siteUrl: string;
}

/** The parts of the backend a push (and the `_system` functions) read. */
export interface DeployBackend {
  database: Database;
  deployments: DeploymentStore;
  urls: DeploymentUrls;
}
