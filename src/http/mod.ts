/**
 * The HTTP layer: the Hono apps of the two origins (the function API, the admin and push API the CLI talks to, file
 * storage, HTTP actions, the sync endpoint), their error shapes and request limits. `src/server` serves them with
 * `Deno.serve` and hands in the backend, which the routes see as {@link HttpBackend}.
 *
 * @module
 */
export { createApiApp } from "./api_app.ts";
export { createSiteApp } from "./site_app.ts";
export { deployRoutes } from "./deploy_routes.ts";
export { MAX_PUSH_JSON_BYTES } from "./admin_request.ts";
export { type ErrorBody, errorResponseFor, fallbackErrorResponse, HttpError } from "./errors.ts";
export { DEFAULT_HTTP_LIMITS, type HttpLimits, limitRequestBody, limitStreamedRequestBody } from "./limits.ts";
export { remoteIpOf } from "./request_metadata.ts";
export { pathnameOf } from "./request_path.ts";
export type { HttpBackend, HttpDeps } from "./types.ts";
