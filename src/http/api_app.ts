/** The API origin (port 3210): Convex's HTTP API, admin API and sync, plus HTTP actions under `/http/`. */
import { Hono } from "hono";
import { handleError, handleNotFound } from "./errors.ts";
import { limitStreamedRequestBody } from "./limits.ts";
import { createSiteApp } from "./site_app.ts";
import type { HttpDeps } from "./types.ts";
import { resolveLimits } from "./types.ts";
import { deployRoutes } from "./deploy_routes.ts";
import { functionRoutes } from "./function_routes.ts";
import { remoteIpOf, remoteIpOfInfo } from "./request_metadata.ts";
import { MAX_FUNCTION_REQUEST_BYTES, newBodyBudget } from "./function_body.ts";
import { FunctionCalls } from "./function_calls.ts";
import { functionFastPath } from "./function_fast_path.ts";
import { storageRoutes } from "./storage_routes.ts";

/** The body of `GET /` after the version line. */
const ROOT_PAGE_TEXT = "This is a denvex deployment: a Convex-compatible backend. Point a Convex client or " +
  "`npx convex deploy` (CONVEX_SELF_HOSTED_URL) at this URL.\n";

/**
 * Builds the API app. It answers `GET /version` (the health check), `GET /` (a note on what this is) and mounts the site app under `/http` so one
 * origin can serve both. Routes for `/api/*` (queries, mutations, actions, deploy, admin) are added here by the
 * subsystems that own them, each as a sub-app mounted with `app.route()`.
 */
export function createApiApp(deps: HttpDeps): Hono {
  const app = new Hono();
  app.onError(handleError);
  app.notFound(handleNotFound);
  // Uploads have their own, larger limit: registered before the global body limit, which then never runs for them.
  if (deps.backend) app.route("/api", storageRoutes(deps.backend.storage));
  // Not buffered: a chunked body is counted as a route reads it (the function routes hold it in a byte budget).
  app.use("*", limitStreamedRequestBody(resolveLimits(deps).apiMaxRequestBodyBytes));
  app.get("/version", (c) => c.text(deps.version));
  // Someone opening the URL in a browser learns what answers here, rather than meeting a JSON 404.
  app.get("/", (c) =>
    // A browser goes to the dashboard (mounted by the server); curl and scripts still get the plain answer.
    (c.req.header("Accept") ?? "").includes("text/html")
      ? c.redirect("/dashboard", 302)
      : c.text(`${deps.version}\n${ROOT_PAGE_TEXT}`));
  if (deps.sync) {
    const sync = deps.sync;
    app.get("/api/sync", (c) => sync.handle(c.req.raw, remoteIpOf(c)));
    app.get("/api/:version/sync", (c) => sync.handle(c.req.raw, remoteIpOf(c)));
  }
  if (deps.backend) {
    const budget = newBodyBudget();
    const calls = new FunctionCalls(deps.backend);
    app.route("/api", deployRoutes(deps.backend));
    app.route("/api", functionRoutes(deps.backend, budget, calls));
    // The common calls skip the app (function_fast_path.ts); it answers whatever the lean path does not take.
    const maxBodyBytes = Math.min(resolveLimits(deps).apiMaxRequestBodyBytes, MAX_FUNCTION_REQUEST_BYTES);
    const fastPath = functionFastPath(calls, budget, maxBodyBytes);
    const appFetch = app.fetch;
    app.fetch = (request, env, executionCtx) =>
      fastPath(request, remoteIpOfInfo(env)) ?? appFetch(request, env, executionCtx);
  }
  app.route("/http", createSiteApp(deps, "/http"));
  return app;
}
