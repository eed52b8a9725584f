/** What the HTTP layer needs from the rest of the server. */
import type { DeployBackend } from "../deploy/mod.ts";
import type { ExecutionLog, FunctionExecutor } from "../functions/mod.ts";
import type { RunnerPool } from "../runtime/mod.ts";
import type { StorageService } from "../storage/mod.ts";
import type { FunctionServices, SyncHub } from "../sync/mod.ts";
import type { SnapshotService } from "../snapshot/mod.ts";
import { DEFAULT_HTTP_LIMITS, type HttpLimits } from "./limits.ts";

/**
 * The parts of the running backend the routes use. The server's `Backend` satisfies it structurally and is passed
 * in, so `http` never imports the server above it.
 */
export interface HttpBackend extends DeployBackend {
  executor: FunctionExecutor;
  /** HTTP actions run on the pool directly (their requests and responses stream). */
  pool: Pick<RunnerPool, "execute">;
  executionLog: ExecutionLog;
  /** File storage behind the upload and download routes. */
  storage: StorageService;
  /** Snapshot export and import behind `/api/export/*` and `/api/import/*`. */
  snapshots: SnapshotService;
  /** The authenticator and the query cache, shared with the sync hub. */
  services: FunctionServices;
  adminKey: string;
}

/**
 * The dependencies of the HTTP apps, handed in by `src/server`. Subsystems that add routes add the fields they need
 * (the function runner, the sync hub, ...) here, so the apps never reach for globals.
 */
export interface HttpDeps {
  /** What `GET /version` answers, e.g. `denvex 0.1.0`. */
  version: string;
  /** The deployment's name, the part of the admin key before `|`. */
  instanceName: string;
  /** The deployment's admin key; admin routes compare it with the `Authorization: Convex <key>` header. */
  adminKey: string;
  /** The running deployment (database, executor, deployments); absent in HTTP-only tests. */
  backend?: HttpBackend;
  /** The WebSocket sync hub serving `/api/<version>/sync`; absent in HTTP-only tests. */
  sync?: Pick<SyncHub, "handle">;
  /** Request body limits; unset fields take {@link DEFAULT_HTTP_LIMITS}. */
  limits?: Partial<HttpLimits>;
}

/** The limits in force for `deps`. */
export function resolveLimits(deps: HttpDeps): HttpLimits {
  return { ...DEFAULT_HTTP_LIMITS, ...deps.limits };
}
