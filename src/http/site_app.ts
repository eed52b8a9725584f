/** The HTTP-actions origin (port 3211, and `/http/*` on the API origin). */
import { Hono } from "hono";
import { handleError, handleNotFound } from "./errors.ts";
import { handleHttpAction } from "./http_action_handler.ts";
import { remoteIpOf } from "./request_metadata.ts";
import { limitRequestBody } from "./limits.ts";
import type { HttpDeps } from "./types.ts";
import { resolveLimits } from "./types.ts";

/**
 * Builds the site app. Every path belongs to the deployed app's `convex/http.ts` router, so this app defines no
 * routes of its own (not even `/version`, which a user's router may claim). `mountPrefix` is the path the app is
 * mounted under (`/http` on the API origin), removed before routing so both origins route alike.
 */
export function createSiteApp(deps: HttpDeps, mountPrefix = ""): Hono {
  const app = new Hono();
  app.onError(handleError);
  app.notFound(handleNotFound);
  app.use("*", limitRequestBody(resolveLimits(deps).siteMaxRequestBodyBytes));
  const backend = deps.backend;
  if (backend) {
    app.all("*", (c) => {
      const pathname = new URL(c.req.url).pathname;
      const path = mountPrefix !== "" && pathname.startsWith(mountPrefix)
        ? pathname.slice(mountPrefix.length)
        : pathname;
      return handleHttpAction(backend, c.req.raw, path === "" ? "/" : path, remoteIpOf(c));
    });
  }
  return app;
}
