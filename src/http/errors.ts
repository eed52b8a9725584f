/**
 * Error shapes of the HTTP layer. Every failure leaves the server as JSON `{code, message}`, the shape the official
 * Convex clients parse, and no thrown error ever takes the process down.
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { DenvexError } from "../errors/mod.ts";

/**
 * An error a route throws on purpose: its status, code (e.g. `BadJsonBody`) and message reach the client unchanged,
 * whatever the status. 503 and 429 (overload) are retryable.
 */
export class HttpError extends DenvexError {
  declare readonly httpStatus: ContentfulStatusCode;
  constructor(status: ContentfulStatusCode, code: string, message: string) {
    super(code, message, { httpStatus: status, retryable: status === 503 || status === 429 });
    this.name = "HttpError";
  }

  /** The HTTP status, 4xx for the caller's mistakes, 5xx for ours (the same as `httpStatus`). */
  get status(): ContentfulStatusCode {
    return this.httpStatus;
  }
}

/** The body of every error response. */
export interface ErrorBody {
  code: string;
  message: string;
}

/** The message of a 500: internals (paths, SQL, stack traces) stay in the server log. */
const INTERNAL_MESSAGE = "Your request couldn't be completed. Try again later.";

/**
 * The HTTP edge of the error model: maps a thrown value to a status and body. A {@link DenvexError} answers with its
 * own status and code; its message too, unless it is a non-retryable 5xx that a route did not throw on purpose (a
 * fault of ours: internals such as paths and SQL stay in the server log). Unknown errors are 500s; bad input the
 * runtime detected is a 400.
 */
export function errorResponseFor(error: unknown): { status: ContentfulStatusCode; body: ErrorBody } {
  if (error instanceof DenvexError && isExposed(error)) {
    return { status: error.httpStatus as ContentfulStatusCode, body: { code: error.code, message: error.message } };
  }
  if (error instanceof HTTPException) {
    const status = error.status as ContentfulStatusCode;
    return { status, body: { code: codeForStatus(status), message: error.message || statusText(status) } };
  }
  // `c.req.json()` on a malformed body throws a SyntaxError: the caller's mistake, not ours.
  if (error instanceof SyntaxError) return { status: 400, body: { code: "BadJsonBody", message: error.message } };
  return { status: 500, body: { code: "InternalServerError", message: INTERNAL_MESSAGE } };
}

/** True when a client may see the error's status, code and message; see {@link errorResponseFor}. */
function isExposed(error: DenvexError): boolean {
  return error.httpStatus < 500 || error.retryable || error instanceof HttpError;
}

/** Hono `onError` handler: logs server faults, answers with the JSON shape. */
export function handleError(error: Error, c: Context): Response {
  return errorResponse(error, c.req.raw);
}

/** The JSON error response to `request` for `error` (see `errorResponseFor`); logs server faults. */
export function errorResponse(error: unknown, request: Request): Response {
  const { status, body } = errorResponseFor(error);
  // A deliberate or retryable 5xx (503 overload, database unavailable) says all there is to say; log the others.
  if (status >= 500 && !(error instanceof DenvexError && isExposed(error))) {
    console.error(`denvex: ${request.method} ${new URL(request.url).pathname} failed:`, error);
  }
  return Response.json(body, { status });
}

/** Hono `notFound` handler. */
export function handleNotFound(c: Context): Response {
  return c.json({ code: "NotFound", message: `No route for ${c.req.method} ${new URL(c.req.url).pathname}` }, 404);
}

/** The last line of defence, for `Deno.serve`'s `onError`: a plain 500 without touching the app. */
export function fallbackErrorResponse(error: unknown): Response {
  console.error("denvex: request failed outside the app:", error);
  const body: ErrorBody = { code: "InternalServerError", message: INTERNAL_MESSAGE };
  return Response.json(body, { status: 500 });
}

function codeForStatus(status: number): string {
  switch (status) {
    case 400:
      return "BadRequest";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "NotFound";
    case 405:
      return "MethodNotAllowed";
    case 413:
      return "PayloadTooLarge";
    default:
      return status >= 500 ? "InternalServerError" : "BadRequest";
  }
}

function statusText(status: number): string {
  return status >= 500 ? INTERNAL_MESSAGE : `Request failed with status ${status}`;
}
