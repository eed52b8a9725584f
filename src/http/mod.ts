/**
 * The HTTP layer: the Hono apps of the two origins, their error shapes and request limits. `src/server` serves them
 * with `Deno.serve`; subsystems add their routes to `createApiApp` and `createSiteApp`.
 */
export { createApiApp } from "./api_app.ts";
export { createSiteApp } from "./site_app.ts";
export { type ErrorBody, errorResponseFor, fallbackErrorResponse, HttpError } from "./errors.ts";
export { DEFAULT_HTTP_LIMITS, type HttpLimits, limitRequestBody, limitStreamedRequestBody } from "./limits.ts";
export type { HttpDeps } from "./types.ts";
