/** The HTTP-actions origin (port 3211, and `/http/*` on the API origin). */
import { Hono } from "hono";
import { handleError, handleNotFound } from "./errors.ts";
import { limitRequestBody } from "./limits.ts";
import type { HttpDeps } from "./types.ts";
import { resolveLimits } from "./types.ts";

/**
 * Builds the site app. Every path belongs to the deployed app's `convex/http.ts` router, so this app defines no
 * routes of its own (not even `/version`, which a user's router may claim); until HTTP actions are wired in, every
 * request is a JSON 404.
 */
export function createSiteApp(deps: HttpDeps): Hono {
  const app = new Hono();
  app.onError(handleError);
  app.notFound(handleNotFound);
  app.use("*", limitRequestBody(resolveLimits(deps).siteMaxRequestBodyBytes));
  return app;
}
