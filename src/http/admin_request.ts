/**
 * Admin requests: the admin key check (constant time) and bounded JSON bodies, brotli-compressed or not
 * (convex-compat.md §5.2: the CLI compresses push bodies with `Content-Encoding: br`).
 *
 * The key is checked before any expensive work: a request with an `Authorization` header is refused before its body
 * is read; one without may carry the key in a small uncompressed body only (read within {@link ADMIN_LIMITS}).
 * Brotli bodies are decompressed as they stream in, with caps on both the wire and the decompressed bytes.
 */
import type { Context } from "hono";
import { createBrotliDecompress } from "node:zlib";
import { badAdminKeyError, constantTimeEqual, missingAdminKeyError } from "../auth/mod.ts";
import { concatBytes } from "../runtime/mod.ts";
import { HttpError } from "./errors.ts";
import { clientBody } from "./request_body.ts";

const MIB = 1024 * 1024;
/** Largest body on the wire of a push (brotli compresses the bundles ~5×; the API app caps all bodies at 64 MiB). */
export const MAX_PUSH_WIRE_BYTES = 48 * MIB;
/** Largest decompressed push: every bundle embeds the convex runtime, so a 100-module app is tens of MB. */
export const MAX_PUSH_JSON_BYTES = 160 * MIB;
/** Largest body of the other admin endpoints (env var changes, polls). */
export const MAX_ADMIN_JSON_BYTES = 2 * MIB;
/**
 * Output chunk of the brotli decompressor. zlib's default (16 KiB) makes a 160 MiB push ten thousand small
 * allocations that fragment the heap: measured, ten such pushes left the server at 389 MiB RSS 25 s later (start
 * 71 MiB); with 1 MiB chunks (large allocations, returned to the OS when freed) it was back at 67 MiB.
 */
const BROTLI_CHUNK_BYTES = 1 * MIB;

/** Bytes a limit allows, for one kind of endpoint. */
export interface BodyLimits {
  wireBytes: number;
  jsonBytes: number;
}

export const PUSH_LIMITS: BodyLimits = { wireBytes: MAX_PUSH_WIRE_BYTES, jsonBytes: MAX_PUSH_JSON_BYTES };
export const ADMIN_LIMITS: BodyLimits = { wireBytes: MAX_ADMIN_JSON_BYTES, jsonBytes: MAX_ADMIN_JSON_BYTES };

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
 * Reads the JSON body of an admin request, checking the admin key first. With an `Authorization` header the key is
 * checked (constant time) before a byte of the body is read, then the body is read within `limits`. Without one,
 * the key can only be the body's `adminKey`: the body is then read within {@link ADMIN_LIMITS} and must not be
 * compressed, so an unauthenticated caller never makes the server decompress or buffer a large body.
 */
export async function readAdminJsonBody(
  c: Context,
  expectedKey: string,
  limits: BodyLimits,
): Promise<Record<string, unknown>> {
  const fromHeader = adminKeyFromHeader(c.req.header("Authorization"));
  if (fromHeader !== null) {
    if (!constantTimeEqual(fromHeader, expectedKey)) throw badAdminKeyError();
    return await readJsonBody(c, limits);
  }
  if (contentEncoding(c) !== "") throw missingAdminKeyError();
  const body = await readJsonBody(c, ADMIN_LIMITS);
  requireAdmin(c, expectedKey, body);
  return body;
}

/**
 * Throws `MissingAdminKey` when no admin key came (header or body `adminKey`) and `BadAdminKey` when a wrong one did,
 * both 403 (src/auth/errors.ts says why). A request passes when either the header or the body carries the right key.
 */
export function requireAdmin(c: Context, expectedKey: string, body?: unknown): void {
  const candidates: string[] = [];
  const fromHeader = adminKeyFromHeader(c.req.header("Authorization"));
  if (fromHeader !== null) candidates.push(fromHeader);
  const fromBody = body !== null && typeof body === "object" ? (body as Record<string, unknown>).adminKey : undefined;
  if (typeof fromBody === "string") candidates.push(fromBody);
  if (candidates.length === 0) throw missingAdminKeyError();
  for (const candidate of candidates) {
    if (constantTimeEqual(candidate, expectedKey)) return;
  }
  throw badAdminKeyError();
}

/** Reads the body as bytes, refusing more than `maxBytes` with 413 (the Content-Length is checked first). */
async function readBytes(c: Context, maxBytes: number): Promise<Uint8Array> {
  checkDeclaredLength(c, maxBytes);
  const body = c.req.raw.body;
  if (!body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of clientBody(body)) {
    total += chunk.length;
    if (total > maxBytes) throw tooLarge(maxBytes);
    chunks.push(chunk);
  }
  return concatBytes(chunks, total);
}

function checkDeclaredLength(c: Context, maxBytes: number): void {
  const declared = Number(c.req.header("Content-Length") ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(maxBytes);
}

function tooLarge(maxBytes: number): HttpError {
  return new HttpError(413, "PayloadTooLarge", `Request body is larger than the limit of ${maxBytes / MIB} MiB`);
}

function badBrotli(error: unknown): HttpError {
  const message = error instanceof Error ? error.message : String(error);
  return new HttpError(400, "BadBrotliBody", `The request body is not valid brotli data: ${message}`);
}

/**
 * Decompresses a brotli body as it streams in: at most `limits.wireBytes` are read and at most `limits.jsonBytes`
 * produced; past either the decompressor is destroyed at once (413), so a small bomb costs at most the cap.
 */
async function readBrotliBytes(c: Context, limits: BodyLimits): Promise<Uint8Array> {
  checkDeclaredLength(c, limits.wireBytes);
  const decompressor = createBrotliDecompress({ chunkSize: BROTLI_CHUNK_BYTES });
  const output: Uint8Array[] = [];
  let outputBytes = 0;
  const finished = new Promise<void>((resolve, reject) => {
    decompressor.on("data", (chunk: Uint8Array) => {
      outputBytes += chunk.length;
      if (outputBytes > limits.jsonBytes) decompressor.destroy(tooLarge(limits.jsonBytes));
      else output.push(chunk);
    });
    decompressor.on("end", resolve);
    decompressor.on("error", reject);
  });
  // Awaited below; until then a failure must not count as unhandled.
  finished.catch(() => {});
  try {
    let wireBytes = 0;
    for await (const chunk of c.req.raw.body ?? []) {
      wireBytes += chunk.length;
      if (wireBytes > limits.wireBytes) throw tooLarge(limits.wireBytes);
      if (!decompressor.write(chunk)) {
        await Promise.race([new Promise((resolve) => decompressor.once("drain", resolve)), finished]);
      }
      if (decompressor.destroyed) break;
    }
    decompressor.end();
    await finished;
  } catch (error) {
    decompressor.destroy();
    throw error instanceof HttpError ? error : badBrotli(error);
  }
  return concatBytes(output, outputBytes);
}

/** The request's `Content-Encoding`, lowercased; "" for none or `identity`. */
function contentEncoding(c: Context): string {
  const encoding = (c.req.header("Content-Encoding") ?? "").trim().toLowerCase();
  return encoding === "identity" ? "" : encoding;
}

/** Reads a JSON object body (brotli when `Content-Encoding: br`), within `limits`. An empty body reads as `{}`. */
export async function readJsonBody(c: Context, limits: BodyLimits): Promise<Record<string, unknown>> {
  const encoding = contentEncoding(c);
  let bytes: Uint8Array;
  if (encoding === "br") bytes = await readBrotliBytes(c, limits);
  else if (encoding === "") bytes = await readBytes(c, limits.wireBytes);
  else throw new HttpError(415, "UnsupportedContentEncoding", `Content-Encoding ${encoding} is not supported`);
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
