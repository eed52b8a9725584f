/** What the HTTP layer needs from the rest of the server. */
import { DEFAULT_HTTP_LIMITS, type HttpLimits } from "./limits.ts";
import type { Backend } from "../server/backend.ts";
import type { SyncHub } from "../sync/mod.ts";

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
  backend?: Backend;
  /** The WebSocket sync hub serving `/api/<version>/sync`; absent in HTTP-only tests. */
  sync?: SyncHub;
  /** Request body limits; unset fields take {@link DEFAULT_HTTP_LIMITS}. */
  limits?: Partial<HttpLimits>;
}

/** The limits in force for `deps`. */
export function resolveLimits(deps: HttpDeps): HttpLimits {
  return { ...DEFAULT_HTTP_LIMITS, ...deps.limits };
}
