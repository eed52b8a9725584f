/**
 * `ctx.meta.getRequestMetadata()` of a call an HTTP request starts: the client's address (the peer of the connection;
 * denvex reads no forwarding header, which any client could forge), its `User-Agent`, and the user's raw token.
 */
import type { Context } from "hono";
import type { RequestMetadata } from "../runtime/mod.ts";

/**
 * The metadata of `request`, received from `remoteIp`. `asUser`: its `Authorization` header authenticated a user (not
 * an admin, whose key is never handed to user code, and not a token that failed to verify).
 */
export function requestMetadataOf(request: Request, remoteIp: string | null, asUser: boolean): RequestMetadata {
  return {
    ip: remoteIp,
    userAgent: request.headers.get("User-Agent"),
    scheduledFunctionId: null,
    authToken: asUser ? bearerTokenOf(request.headers.get("Authorization")) : null,
  };
}

/** The peer address of the request `c` serves (`Deno.serve` passes it as the handler's second argument). */
export function remoteIpOf(c: Context): string | null {
  return remoteIpOfInfo(c.env);
}

/** The peer address in what `Deno.serve` passes a handler beside the request (its `ServeHandlerInfo`), if any. */
export function remoteIpOfInfo(info: unknown): string | null {
  const hostname = (info as { remoteAddr?: { hostname?: unknown } } | undefined)?.remoteAddr?.hostname;
  return typeof hostname === "string" ? hostname : null;
}

function bearerTokenOf(header: string | null): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return match === null ? null : match[1];
}
