/**
 * Serving a stored file as Convex serves it: streamed from the blob store, whole (200, with a `Digest: sha-256=…`
 * header) or one byte range (206 with `Content-Range`; 416 for a range outside the file), `Cache-Control: private,
 * max-age=2592000` (a file never changes under its ID) and its content type when it has one. A range of an empty file
 * is a 206 with no bytes and no `Content-Range` (no range of it can be named). Multi-range requests get the whole file,
 * which RFC 9110 allows.
 */
import type { StorageService } from "./storage_service.ts";

/** A single range `start..end` (inclusive), "whole" for no/ignored Range, or "unsatisfiable". */
export type ByteRange = { start: number; end: number } | "whole" | "unsatisfiable";

/** How long a browser may keep a download (Convex's 30 days). */
const MAX_CACHE_AGE_S = 30 * 24 * 60 * 60;

/** Parses a `Range` header against a file of `sizeBytes`. */
export function parseRange(header: string | null, sizeBytes: number): ByteRange {
  if (header === null) return "whole";
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === "" && match[2] === "")) return "whole";
  if (match[1] === "") {
    // Suffix range: the last N bytes.
    const suffix = Number(match[2]);
    if (suffix === 0) return "unsatisfiable";
    return sizeBytes === 0 ? "unsatisfiable" : { start: Math.max(0, sizeBytes - suffix), end: sizeBytes - 1 };
  }
  const start = Number(match[1]);
  const end = match[2] === "" ? sizeBytes - 1 : Math.min(Number(match[2]), sizeBytes - 1);
  if (start >= sizeBytes || end < start) return "unsatisfiable";
  return { start, end };
}

/** The response for `GET`/`HEAD /api/storage/<storageId>`. */
export async function serveFile(storage: StorageService, storageId: string, request: Request): Promise<Response> {
  const entry = await storage.entry(storageId);
  const notFound = () =>
    Response.json({ code: "FileNotFound", message: `File ${storageId} not found` }, { status: 404 });
  if (entry === null) return notFound();
  // The document's size is the blob's (the blob is written before its document commits), so a remote blob store
  // needs one request per download, not a size lookup first.
  const sizeBytes = entry.sizeBytes;
  const headers = new Headers({
    "Accept-Ranges": "bytes",
    "Cache-Control": `private, max-age=${MAX_CACHE_AGE_S}`,
    "Access-Control-Allow-Origin": "*",
  });
  if (entry.contentType !== null) headers.set("Content-Type", entry.contentType);
  const rangeHeader = request.headers.get("Range");
  if (sizeBytes === 0 && rangeHeader !== null && /^bytes=/.test(rangeHeader.trim())) {
    headers.set("Content-Length", "0");
    if (await storage.blobs.size(storageId) === null) return notFound();
    return new Response(null, { status: 206, headers });
  }
  const range = parseRange(rangeHeader, sizeBytes);
  if (range === "unsatisfiable") {
    // An error like every other: JSON `{code, message}`, with the size in Content-Range as RFC 9110 asks.
    headers.set("Content-Range", `bytes */${sizeBytes}`);
    headers.set("Content-Type", "application/json");
    const body = JSON.stringify({ code: "RangeNotSatisfiable", message: `The file has ${sizeBytes} bytes` });
    return new Response(request.method === "HEAD" ? null : body, { status: 416, headers });
  }
  const { start, end } = range === "whole" ? { start: 0, end: sizeBytes - 1 } : range;
  const lengthBytes = Math.max(0, end - start + 1);
  headers.set("Content-Length", String(lengthBytes));
  if (range !== "whole") headers.set("Content-Range", `bytes ${start}-${end}/${sizeBytes}`);
  else headers.set("Digest", `sha-256=${entry.sha256Base64}`);
  const status = range === "whole" ? 200 : 206;
  if (request.method === "HEAD" || lengthBytes === 0) {
    if (await storage.blobs.size(storageId) === null) return notFound();
    return new Response(null, { status, headers });
  }
  const body = await storage.blobs.stream(storageId, start, lengthBytes);
  if (body === null) return notFound();
  return new Response(body, { status, headers });
}
