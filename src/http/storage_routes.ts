/**
 * File storage over HTTP (convex-compat.md §3.3): `POST /api/storage/upload?token=…` takes the raw bytes with their
 * `Content-Type` and answers `{"storageId"}`; `GET /api/storage/<storageId>` serves them (with ranges), a component's
 * files too (as Convex serves them). Uploads are streamed to disk and limited by `MAX_UPLOAD_BYTES` here, not by the
 * API origin's smaller global body limit, so these routes are mounted before that middleware.
 *
 * Private to `src/http`: other folders use its `mod.ts`.
 */
import { Hono } from "hono";
import { type ErrorBody, HttpError } from "./errors.ts";
import { clientBody } from "./request_body.ts";
import {
  BadDigestHeaderError,
  BlobTooLargeError,
  digestHeaderSha256,
  MAX_UPLOAD_BYTES,
  serveFile,
  Sha256MismatchError,
  StorageFullError,
  type StorageService,
  uploadTokenRefusal,
} from "../storage/mod.ts";

const CORS_HEADERS = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Methods": "GET, HEAD, POST, OPTIONS",
  "Access-Control-Allow-Headers": "Content-Type, Content-Length, Range, Digest",
  "Access-Control-Max-Age": "86400",
};

function error(code: string, message: string, status: number): Response {
  const body: ErrorBody = { code, message };
  return Response.json(body, { status, headers: { "Access-Control-Allow-Origin": "*" } });
}

/** The storage routes, relative to `/api`. `maxUploadBytes` defaults to `MAX_UPLOAD_BYTES`. */
export function storageRoutes(storage: StorageService, maxUploadBytes = MAX_UPLOAD_BYTES): Hono {
  const app = new Hono();
  app.options("/storage/*", () => new Response(null, { status: 204, headers: CORS_HEADERS }));
  app.post("/storage/upload", async (c) => {
    const grant = await storage.checkUploadToken(c.req.query("token"));
    if (!grant.ok) {
      const refusal = uploadTokenRefusal(grant);
      return error(refusal.code, refusal.message, 401);
    }
    const declared = Number(c.req.header("Content-Length") ?? "NaN");
    if (declared > maxUploadBytes) {
      return error("PayloadTooLarge", `The file is larger than the upload limit of ${maxUploadBytes} bytes`, 413);
    }
    const contentType = c.req.header("Content-Type") || null;
    try {
      const body = c.req.raw.body === null ? new Uint8Array() : clientBody(c.req.raw.body);
      // The file goes to the namespace whose function generated the upload URL (signed into the token).
      // A `Digest: sha-256=<base64>` header makes the upload checked against it (Convex's `Sha256Mismatch`).
      const expected = digestHeaderSha256(c.req.header("Digest"));
      const storageId = await storage.store(body, contentType, maxUploadBytes, grant.componentPath, expected);
      return Response.json({ storageId }, { headers: { "Access-Control-Allow-Origin": "*" } });
    } catch (caught) {
      if (caught instanceof BlobTooLargeError) {
        return error("PayloadTooLarge", `The file is larger than the upload limit of ${maxUploadBytes} bytes`, 413);
      }
      // 507 Insufficient Storage: the disk is full; nothing was kept, and the same upload works once space is freed.
      if (caught instanceof StorageFullError) return error("StorageFull", caught.message, 507);
      // The upload stopped short of its declared length: the client's fault, and nothing was kept.
      if (caught instanceof HttpError) return error(caught.code, caught.message, caught.status);
      if (caught instanceof Sha256MismatchError || caught instanceof BadDigestHeaderError) {
        return error(caught.code, caught.message, 400);
      }
      throw caught;
    }
  });
  app.on(["GET", "HEAD"], "/storage/:storageId", (c) => serveFile(storage, c.req.param("storageId"), c.req.raw));
  return app;
}
