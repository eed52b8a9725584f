/** Request size limits of the HTTP layer. Every body is bounded before a route reads it. */
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { ErrorBody } from "./errors.ts";

const MIB = 1024 * 1024;

/** Request body limits in bytes, per origin. Routes may narrow them further, never widen them. */
export interface HttpLimits {
  /** The API origin carries code pushes (`npx convex deploy`) and snapshot imports, the largest bodies we accept. */
  apiMaxRequestBodyBytes: number;
  /** HTTP actions: Convex's own limit on an HTTP action request is 20 MiB. */
  siteMaxRequestBodyBytes: number;
}

/** The defaults behind {@link HttpLimits}. */
export const DEFAULT_HTTP_LIMITS: Readonly<HttpLimits> = Object.freeze({
  apiMaxRequestBodyBytes: 64 * MIB,
  siteMaxRequestBodyBytes: 20 * MIB,
});

/**
 * Rejects a request whose body is larger than `maxBytes` with 413 and a JSON error. A declared `Content-Length` is
 * checked up front; a streamed body is counted as it arrives and cut off at the limit.
 */
export function limitRequestBody(maxBytes: number): MiddlewareHandler {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new RangeError(`invalid body limit ${maxBytes}`);
  return bodyLimit({
    maxSize: maxBytes,
    onError: (c) => {
      const body: ErrorBody = {
        code: "PayloadTooLarge",
        message: `Request body is larger than the limit of ${formatBytes(maxBytes)}`,
      };
      return c.json(body, 413);
    },
  });
}

function formatBytes(bytes: number): string {
  if (bytes >= MIB && bytes % MIB === 0) return `${bytes / MIB} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} bytes`;
}
