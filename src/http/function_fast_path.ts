/**
 * The lean path of the function API (issue 14): `POST /api/query`, `/api/mutation` and `/api/action` with a small
 * declared body, what `ConvexHttpClient` sends for nearly every call, answered without the Hono app: no routing, no
 * middleware chain, no Context (~25 µs of the server's CPU per call went there). Every other request (another method
 * or path, a chunked, large or undeclared body, a preflight) is not taken, and the app answers it as before.
 *
 * The answers are the app's own: the same body reading and in-flight budget (function_body.ts), the same caller and
 * call core (function_calls.ts), the same error shapes (errors.ts), and `Access-Control-Allow-Origin: *` as the CORS
 * middleware adds. tests/function_fast_path_test.ts compares the two paths request by request.
 *
 * Private to `src/http`: other folders use its `mod.ts`.
 */
import type { ByteBudget } from "../sync/mod.ts";
import { errorResponse } from "./errors.ts";
import { BodyHold, wholeBodyBytes } from "./function_body.ts";
import type { FunctionCalls, ReceivedCall, UdfType } from "./function_calls.ts";
import { pathnameOf } from "./request_path.ts";

/**
 * The paths taken, by the type of function they call, compared with the URL parser's path (`pathnameOf`): one that
 * keeps an escape (`/api/%71uery`) matches none and goes to the app, as does a trailing slash.
 */
const FAST_PATHS: ReadonlyMap<string, UdfType> = new Map([
  ["/api/query", "query"],
  ["/api/mutation", "mutation"],
  ["/api/action", "action"],
]);

/** Answers `request` (from `remoteIp`), or returns null when the request is not one the lean path takes. */
export type FastPath = (request: Request, remoteIp: string | null) => Promise<Response> | null;

/**
 * The lean path over `calls`, holding bodies in `budget` (the function routes' own). `maxBodyBytes` is the smallest
 * body limit the app would apply on the way (the API origin's and the function routes'): a body declared larger goes
 * to the app, which refuses it with its 413.
 */
export function functionFastPath(calls: FunctionCalls, budget: ByteBudget, maxBodyBytes: number): FastPath {
  return (request, remoteIp) => {
    if (request.method !== "POST") return null;
    const udfType = FAST_PATHS.get(pathnameOf(request.url));
    if (udfType === undefined) return null;
    const declaredBytes = wholeBodyBytes(request);
    if (declaredBytes === null || declaredBytes > maxBodyBytes) return null;
    return answer(calls, new BodyHold(budget), { request, remoteIp }, udfType);
  };
}

async function answer(
  calls: FunctionCalls,
  hold: BodyHold,
  received: ReceivedCall,
  udfType: UdfType,
): Promise<Response> {
  let response: Response;
  try {
    response = await calls.typedCall(received, hold, udfType);
  } catch (error) {
    response = errorResponse(error, received.request);
  } finally {
    hold.release();
  }
  response.headers.set("Access-Control-Allow-Origin", "*");
  return response;
}
