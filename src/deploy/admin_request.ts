/**
 * Admin requests: the admin key check (constant time) and bounded JSON bodies, brotli-compressed or not
 * (convex-compat.md §5.2: the CLI compresses push bodies with `Content-Encoding: br`).
 */
import type { Context } from "hono";
import { brotliDecompress } from "node:zlib";
import { HttpError } from "../http/errors.ts";

const MIB = 1024 * 1024;
/** Largest body on the wire of a push (brotli compresses the bundles ~5×; the API app caps all bodies at 64 MiB). */
export const MAX_PUSH_WIRE_BYTES = 48 * MIB;
/** Largest decompressed push: every bundle embeds the convex runtime, so a 100-module app is tens of MB. */
export const MAX_PUSH_JSON_BYTES = 160 * MIB;
/** Largest body of the other admin endpoints (env var changes, polls). */
export const MAX_ADMIN_JSON_BYTES = 2 * MIB;

/** Bytes a limit allows, for one kind of endpoint. */
export interface BodyLimits {
  wireBytes: number;
  jsonBytes: number;
}

export const PUSH_LIMITS: BodyLimits = { wireBytes: MAX_PUSH_WIRE_BYTES, jsonBytes: MAX_PUSH_JSON_BYTES };
export const ADMIN_LIMITS: BodyLimits = { wireBytes: MAX_ADMIN_JSON_BYTES, jsonBytes: MAX_ADMIN_JSON_BYTES };

/** Compares two secrets in time independent of where they differ (both are hashed first, so length leaks nothing). */
export async function secretsEqual(given: string, expected: string): Promise<boolean> {
  const encoder = new TextEncoder();
  const [a, b] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(given)),
    crypto.subtle.digest("SHA-256", encoder.encode(expected)),
  ]);
  const left = new Uint8Array(a);
  const right = new Uint8Array(b);
  let difference = 0;
  for (let i = 0; i < left.length; i++) difference |= left[i] ^ right[i];
  return difference === 0;
}

/** The key of an `Authorization: Convex <key>[:<identity>]` header, or null. */
export function adminKeyFromHeader(header: string | undefined): string | null {
  if (!header) return null;
  const match = /^Convex\s+(.+)$/.exec(header.trim());
  if (!match) return null;
  // `npx convex run --identity` appends `:<base64 identity>`; admin keys themselves never contain `:`.
  const colon = match[1].indexOf(":");
  return colon === -1 ? match[1] : match[1].slice(0, colon);
}

/**
 * Throws 401 when no admin key came (header or body `adminKey`) and 403 when a wrong one did. A request passes when
 * either the header or the body carries the right key.
 */
export async function requireAdmin(c: Context, expectedKey: string, body?: unknown): Promise<void> {
  const candidates: string[] = [];
  const fromHeader = adminKeyFromHeader(c.req.header("Authorization"));
  if (fromHeader !== null) candidates.push(fromHeader);
  const fromBody = body !== null && typeof body === "object" ? (body as Record<string, unknown>).adminKey : undefined;
  if (typeof fromBody === "string") candidates.push(fromBody);
  if (candidates.length === 0) {
    throw new HttpError(
      401,
      "MissingAdminKey",
      "This endpoint needs the deployment's admin key (header `Authorization: Convex <admin key>`)",
    );
  }
  for (const candidate of candidates) {
    if (await secretsEqual(candidate, expectedKey)) return;
  }
  throw new HttpError(403, "BadAdminKey", "The provided admin key is not valid for this deployment");
}

/** Reads the body as bytes, refusing more than `maxBytes` with 413 (the Content-Length is checked first). */
async function readBytes(c: Context, maxBytes: number): Promise<Uint8Array> {
  const declared = Number(c.req.header("Content-Length") ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(maxBytes);
  const body = c.req.raw.body;
  if (!body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += chunk.length;
    if (total > maxBytes) throw tooLarge(maxBytes);
    chunks.push(chunk);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

function tooLarge(maxBytes: number): HttpError {
  return new HttpError(413, "PayloadTooLarge", `Request body is larger than the limit of ${maxBytes / MIB} MiB`);
}

function decompressBrotli(bytes: Uint8Array, maxBytes: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    brotliDecompress(bytes, { maxOutputLength: maxBytes }, (error, output) => {
      if (!error) return resolve(new Uint8Array(output.buffer, output.byteOffset, output.byteLength));
      if ((error as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") return reject(tooLarge(maxBytes));
      reject(new HttpError(400, "BadBrotliBody", `The request body is not valid brotli data: ${error.message}`));
    });
  });
}

/** Reads a JSON object body (brotli when `Content-Encoding: br`), within `limits`. An empty body reads as `{}`. */
export async function readJsonBody(c: Context, limits: BodyLimits): Promise<Record<string, unknown>> {
  let bytes = await readBytes(c, limits.wireBytes);
  const encoding = (c.req.header("Content-Encoding") ?? "").trim().toLowerCase();
  if (encoding === "br") bytes = await decompressBrotli(bytes, limits.jsonBytes);
  else if (encoding !== "" && encoding !== "identity") {
    throw new HttpError(415, "UnsupportedContentEncoding", `Content-Encoding ${encoding} is not supported`);
  }
  if (bytes.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new HttpError(400, "BadJsonBody", `The request body is not valid JSON: ${(error as Error).message}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new HttpError(400, "BadJsonBody", "The request body must be a JSON object");
  }
  return parsed as Record<string, unknown>;
}
