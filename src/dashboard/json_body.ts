/** The dashboard API's request bodies: JSON objects only, bounded. */
import type { Context } from "hono";
import { badRequest, DashboardError } from "./types.ts";

/** Largest JSON body of a dashboard call (a document is at most 1 MiB; its text a little more). */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

/** Reads a JSON object body of at most {@link MAX_BODY_BYTES}; refuses anything not sent as JSON. */
export async function jsonBody(c: Context): Promise<Record<string, unknown>> {
  if (!(c.req.header("Content-Type") ?? "").startsWith("application/json")) {
    throw new DashboardError(400, "JsonRequired", "Dashboard requests must be sent as application/json");
  }
  const declared = Number(c.req.header("Content-Length") ?? "0");
  if (declared > MAX_BODY_BYTES) throw new DashboardError(413, "PayloadTooLarge", "The request is too large");
  const bytes = new Uint8Array(await c.req.arrayBuffer());
  if (bytes.length > MAX_BODY_BYTES) throw new DashboardError(413, "PayloadTooLarge", "The request is too large");
  let body: unknown;
  try {
    body = bytes.length === 0 ? {} : JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw badRequest("The request body is not valid JSON");
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) throw badRequest("The body must be an object");
  return body as Record<string, unknown>;
}
