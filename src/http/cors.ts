/**
 * CORS for the function API: browsers call `/api/query` etc. from any origin with `Authorization`, `Content-Type`
 * and `Convex-Client` headers (convex-compat.md §2.1). Credentials travel in headers, never cookies, so a wildcard
 * origin is safe.
 *
 * Private to `src/http`: other folders use its `mod.ts`.
 */
import type { MiddlewareHandler } from "hono";

const ALLOWED_HEADERS = "Authorization, Content-Type, Convex-Client";
/** How long browsers may cache a preflight answer. */
const PREFLIGHT_MAX_AGE_SECONDS = 86_400;

/** Answers preflights and adds `Access-Control-Allow-Origin: *` to every response. */
export function functionCors(): MiddlewareHandler {
  return async (c, next) => {
    if (c.req.method === "OPTIONS") {
      const requested = c.req.header("Access-Control-Request-Headers");
      return new Response(null, {
        status: 204,
        headers: {
          "Access-Control-Allow-Origin": "*",
          "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
          // Echo what the browser asks for (bounded) so custom client headers keep working.
          "Access-Control-Allow-Headers": requested && requested.length <= 1024 ? requested : ALLOWED_HEADERS,
          "Access-Control-Max-Age": String(PREFLIGHT_MAX_AGE_SECONDS),
          "Vary": "Access-Control-Request-Headers",
        },
      });
    }
    await next();
    c.res.headers.set("Access-Control-Allow-Origin", "*");
    return undefined;
  };
}
