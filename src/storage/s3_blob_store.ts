/**
 * File storage blobs in an S3-compatible bucket, one object per storage ID at the bucket's root, addressed path-style
 * (`<endpoint>/<bucket>/<key>`) so local S3-compatible servers work as well as AWS. Requests are signed with SigV4
 * (sigv4.ts); every body is hashed into the signature.
 *
 * Atomicity comes from S3 itself: an object is visible only once its PUT or CompleteMultipartUpload has succeeded.
 * An upload is never held whole in memory: a body that fits in one part is sent with a single PUT, a larger one as a
 * multipart upload of fixed-size parts (one part in flight while the next fills), aborted on any failure, with the
 * blob's SHA-256 computed incrementally over the stream. Downloads pass the byte range through to S3 and stream the
 * body. The orphan sweep lists the bucket a few pages per pass, resuming where the last pass stopped, so a large
 * bucket costs a bounded number of requests per sweep; the bucket should be dedicated to one deployment, since any
 * object named like a storage ID that this deployment has no document for is an orphan to it.
 *
 * Scheduled backups live in the same bucket under the reserved prefix `_backups/` (`S3_BACKUP_PREFIX`). No blob key
 * can start with it (storage IDs are lowercase base32, no `_` or `/`), so the orphan sweep, which only ever considers
 * keys that are storage IDs, never touches a backup, and the blob calls refuse such keys; backups have their own
 * calls (`writeBackup`, `listBackups`, `streamBackup`, `removeBackup`) that accept only keys under the prefix.
 */
import { DenvexError } from "../errors/mod.ts";
import { createHash } from "node:crypto";
import { type BlobStore, BlobTooLargeError, isBlobKey, type WrittenBlob } from "./blob_store.ts";
import { EMPTY_PAYLOAD_SHA256_HEX, signRequest, type SigV4Credentials, uriEncode } from "./sigv4.ts";

/** Where the bucket is and how to sign for it. */
export interface S3Options {
  /** `http(s)://host[:port][/path]`, without the bucket. */
  endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/** Smallest part of a multipart upload (S3 requires at least 5 MiB for every part but the last). */
export const S3_PART_BYTES = 8 * 1024 * 1024;
/** S3's limit on parts per multipart upload; parts grow beyond `S3_PART_BYTES` if a blob could need more. */
const MAX_PARTS = 10_000;
/** How long a request without a large body may take, response body included. */
const REQUEST_TIMEOUT_MS = 30_000;
/** How long a request carrying or returning up to a part (or a syscall-sized blob) may take. */
const TRANSFER_TIMEOUT_MS = 120_000;
/** Attempts per request: transient failures (network errors, 500/502/503/504) are retried with backoff. */
const MAX_ATTEMPTS = 3;
const RETRY_BACKOFF_MS = 250;
const RETRIED_STATUSES: ReadonlySet<number> = new Set([500, 502, 503, 504]);
/** The prefix `open` lists to check the bucket and credentials (no object is ever written under it). */
const OPEN_PROBE_PREFIX = "_denvex-open-check/";
/** ListObjectsV2 pages read per orphan sweep, and keys per page. */
const LIST_PAGES_PER_SWEEP = 10;
const LIST_PAGE_KEYS = 1_000;

/** The reserved prefix of backup objects (see the module comment). */
export const S3_BACKUP_PREFIX = "_backups/";
/** A backup object's key: the prefix, then a plain file name. */
const BACKUP_KEY = /^_backups\/[0-9A-Za-z][0-9A-Za-z._-]{0,199}$/;
/**
 * Largest backup object: S3's 10,000 parts of `S3_PART_BYTES` (about 78 GiB). A fixed part size keeps an upload's
 * memory at two parts (16 MiB) whatever the backup's size; a larger database needs `--backup-dir`.
 */
export const MAX_S3_BACKUP_BYTES = S3_PART_BYTES * MAX_PARTS;
/** Most backup objects one listing returns (ListObjectsV2 pages of LIST_PAGE_KEYS; `--backup-keep` is at most 10,000). */
const MAX_BACKUP_LIST_PAGES = 20;

/** An object under the backup prefix. */
export interface S3BackupObject {
  key: string;
  sizeBytes: number;
}

/** An S3 error response. */
export class S3RequestError extends DenvexError {
  /** The HTTP status S3 answered. */
  readonly s3Status: number;
  /** S3's own error code (`NoSuchBucket`, `SignatureDoesNotMatch`, ...), or "". */
  readonly s3Code: string;
  constructor(what: string, status: number, code: string, detail: string) {
    // Already retried (see RETRIED_STATUSES); the message names the bucket setup, so the HTTP edge hides it (500).
    super("StorageRequestFailed", `S3 ${what}: ${status}${code ? ` ${code}` : ""}${detail ? `: ${detail}` : ""}`);
    this.name = "S3RequestError";
    this.s3Status = status;
    this.s3Code = code;
  }
}

interface RequestSpec {
  method: string;
  key?: string;
  query?: [string, string][];
  headers?: Record<string, string>;
  body?: Uint8Array<ArrayBuffer>;
  timeoutMs?: number;
}

/** See the module comment. */
export class S3BlobStore implements BlobStore {
  readonly #options: S3Options;
  readonly #credentials: SigV4Credentials;
  /** The endpoint's origin and path, without a trailing slash. */
  readonly #endpoint: string;
  /** Where the next orphan sweep resumes listing (null: from the start). */
  #listCursor: string | null = null;

  private constructor(options: S3Options) {
    this.#options = options;
    this.#credentials = { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey };
    this.#endpoint = options.endpoint.replace(/\/+$/, "");
  }

  /** Connects to the bucket and checks that it exists and the credentials may list it. */
  static async open(options: S3Options): Promise<S3BlobStore> {
    const store = new S3BlobStore(options);
    const what = `bucket ${options.bucket} at ${store.#endpoint}`;
    let response: { status: number; text: string };
    try {
      // A listing of a prefix nothing uses: the same permission check, and never a truncated page (whose
      // continuation token some S3-compatible servers fail to make) however full the bucket is.
      const query: [string, string][] = [["list-type", "2"], ["max-keys", "1"], ["prefix", OPEN_PROBE_PREFIX]];
      response = await store.#call({ method: "GET", query });
    } catch (error) {
      throw new Error(`cannot reach S3 ${what}: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (response.status !== 200) throw s3Error(what, response.status, response.text);
    return store;
  }

  get description(): string {
    return `S3 bucket ${this.#options.bucket} at ${this.#endpoint}`;
  }

  write(key: string, body: ReadableStream<Uint8Array> | Uint8Array, maxBytes: number): Promise<WrittenBlob> {
    assertKey(key);
    return this.#upload(key, body, maxBytes);
  }

  /**
   * Streams a backup ZIP to `key` (under `S3_BACKUP_PREFIX`) with bounded memory: visible only once complete
   * (a failed or abandoned upload is aborted), at most `MAX_S3_BACKUP_BYTES`.
   */
  writeBackup(key: string, body: ReadableStream<Uint8Array>): Promise<WrittenBlob> {
    assertBackupKey(key);
    return this.#upload(key, body, MAX_S3_BACKUP_BYTES);
  }

  /** The objects under `S3_BACKUP_PREFIX`, in key order (at most MAX_BACKUP_LIST_PAGES pages of them). */
  async listBackups(): Promise<S3BackupObject[]> {
    const found: S3BackupObject[] = [];
    let token: string | null = null;
    for (let page = 0; page < MAX_BACKUP_LIST_PAGES; page++) {
      const query: [string, string][] = [
        ["list-type", "2"],
        ["max-keys", String(LIST_PAGE_KEYS)],
        ["prefix", S3_BACKUP_PREFIX],
      ];
      if (token !== null) query.push(["continuation-token", token]);
      const response = await this.#call({ method: "GET", query });
      checkOk(`ListObjectsV2 ${S3_BACKUP_PREFIX}`, response);
      for (const contents of response.text.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
        const key = xmlText(contents[1], "Key");
        const sizeBytes = Number(xmlText(contents[1], "Size") ?? NaN);
        if (key !== null && BACKUP_KEY.test(key) && Number.isSafeInteger(sizeBytes)) found.push({ key, sizeBytes });
      }
      token = xmlText(response.text, "NextContinuationToken");
      if (xmlText(response.text, "IsTruncated") !== "true" || token === null) break;
    }
    return found.sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  }

  /** The whole backup object `key`, streamed as it downloads; null if there is none. */
  async streamBackup(key: string): Promise<ReadableStream<Uint8Array> | null> {
    assertBackupKey(key);
    const response = await this.#send({ method: "GET", key }, true, (r) => Promise.resolve(r));
    if (response.status === 404) {
      await response.body?.cancel();
      return null;
    }
    if (response.status !== 200 || response.body === null) {
      throw s3Error(`GET ${key}`, response.status, await response.text());
    }
    return response.body;
  }

  /** Deletes the backup object `key` (no error if it is gone already). */
  async removeBackup(key: string): Promise<void> {
    assertBackupKey(key);
    const response = await this.#call({ method: "DELETE", key });
    if (response.status === 404) return;
    checkOk(`DELETE ${key}`, response);
  }

  async #upload(
    key: string,
    body: ReadableStream<Uint8Array> | Uint8Array,
    maxBytes: number,
  ): Promise<WrittenBlob> {
    const partBytes = Math.max(S3_PART_BYTES, Math.ceil(maxBytes / MAX_PARTS));
    const hash = createHash("sha256");
    let sizeBytes = 0;
    let part = new Uint8Array(partBytes);
    let filled = 0;
    let upload: MultipartUpload | null = null;
    let inFlight: Promise<void> | null = null;
    try {
      const chunks = body instanceof Uint8Array ? [body] : body;
      for await (const chunk of chunks) {
        sizeBytes += chunk.length;
        if (sizeBytes > maxBytes) throw new BlobTooLargeError(maxBytes);
        hash.update(chunk);
        for (let offset = 0; offset < chunk.length;) {
          const taken = Math.min(partBytes - filled, chunk.length - offset);
          part.set(chunk.subarray(offset, offset + taken), filled);
          filled += taken;
          offset += taken;
          if (filled < partBytes) continue;
          // A full part, and (maybe) more to come: upload it while the next one fills, one part in flight at most.
          upload ??= await this.#createMultipartUpload(key);
          if (inFlight) await inFlight;
          inFlight = upload.uploadPart(part);
          // Failures surface where inFlight is awaited; this only keeps an early one from counting as unhandled.
          inFlight.catch(() => {});
          part = new Uint8Array(partBytes);
          filled = 0;
        }
      }
      if (upload === null) {
        checkOk(`PUT ${key}`, await this.#call({ method: "PUT", key, body: part.subarray(0, filled) }));
      } else {
        if (inFlight) await inFlight;
        if (filled > 0) await upload.uploadPart(part.subarray(0, filled));
        await upload.complete();
      }
    } catch (error) {
      if (inFlight) await inFlight.catch(() => {});
      if (upload) await upload.abort().catch(() => {});
      if (body instanceof ReadableStream) await body.cancel().catch(() => {});
      throw error;
    }
    return { sizeBytes, sha256Base64: hash.digest("base64") };
  }

  async size(key: string): Promise<number | null> {
    assertKey(key);
    const response = await this.#call({ method: "HEAD", key });
    if (response.status === 404) return null;
    checkOk(`HEAD ${key}`, response);
    return Number(response.headers.get("content-length") ?? "0");
  }

  async stream(key: string, start: number, lengthBytes: number): Promise<ReadableStream<Uint8Array> | null> {
    assertKey(key);
    const range = `bytes=${start}-${start + lengthBytes - 1}`;
    const response = await this.#send({ method: "GET", key, headers: { range } }, true, (r) => Promise.resolve(r));
    if (response.status === 404) {
      await response.body?.cancel();
      return null;
    }
    if ((response.status !== 200 && response.status !== 206) || response.body === null) {
      throw s3Error(`GET ${key} (${range})`, response.status, await response.text());
    }
    // A server that ignores Range answers 200 with the whole object: skip to the start then.
    const skip = response.status === 200 ? start : 0;
    return response.body.pipeThrough(exactSlice(skip, lengthBytes));
  }

  async read(key: string): Promise<Uint8Array | null> {
    assertKey(key);
    const result = await this.#send({ method: "GET", key, timeoutMs: TRANSFER_TIMEOUT_MS }, false, async (response) => {
      if (response.status === 200) {
        return { status: 200, bytes: new Uint8Array(await response.arrayBuffer()), text: "" };
      }
      return { status: response.status, bytes: null, text: await response.text() };
    });
    if (result.status === 404) return null;
    if (result.bytes === null) throw s3Error(`GET ${key}`, result.status, result.text);
    return result.bytes;
  }

  async remove(key: string): Promise<void> {
    assertKey(key);
    const response = await this.#call({ method: "DELETE", key });
    if (response.status === 404) return;
    checkOk(`DELETE ${key}`, response);
  }

  async listOlderThan(beforeMs: number, limit: number): Promise<string[]> {
    const keys: string[] = [];
    for (let page = 0; page < LIST_PAGES_PER_SWEEP; page++) {
      const token = this.#listCursor;
      const query: [string, string][] = [["list-type", "2"], ["max-keys", String(LIST_PAGE_KEYS)]];
      if (token !== null) query.push(["continuation-token", token]);
      const response = await this.#call({ method: "GET", query });
      checkOk("ListObjectsV2", response);
      for (const contents of response.text.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
        const key = xmlText(contents[1], "Key");
        const modifiedMs = Date.parse(xmlText(contents[1], "LastModified") ?? "");
        // Only storage IDs: backups (`_backups/…`) and anything else in the bucket are never orphans.
        if (key !== null && isBlobKey(key) && modifiedMs < beforeMs) keys.push(key);
      }
      const next = xmlText(response.text, "NextContinuationToken");
      this.#listCursor = xmlText(response.text, "IsTruncated") === "true" && next !== null ? next : null;
      if (keys.length >= limit) {
        // The rest of this page waits for the next sweep, which re-reads it.
        this.#listCursor = token;
        return keys.slice(0, limit);
      }
      if (this.#listCursor === null) break;
    }
    return keys;
  }

  async #createMultipartUpload(key: string): Promise<MultipartUpload> {
    const response = await this.#call({ method: "POST", key, query: [["uploads", ""]] });
    checkOk(`CreateMultipartUpload ${key}`, response);
    const uploadId = xmlText(response.text, "UploadId");
    if (!uploadId) throw new Error(`S3 CreateMultipartUpload ${key}: no UploadId in the response`);
    const etags: string[] = [];
    return {
      uploadPart: async (bytes) => {
        const partNumber = etags.length + 1;
        etags.push("");
        const response = await this.#call({
          method: "PUT",
          key,
          query: [["partNumber", String(partNumber)], ["uploadId", uploadId]],
          body: bytes,
          timeoutMs: TRANSFER_TIMEOUT_MS,
        });
        checkOk(`UploadPart ${key} #${partNumber}`, response);
        const etag = response.headers.get("etag");
        if (!etag) throw new Error(`S3 UploadPart ${key} #${partNumber}: no ETag in the response`);
        etags[partNumber - 1] = etag;
      },
      complete: async () => {
        const parts = etags.map((etag, index) =>
          `<Part><PartNumber>${index + 1}</PartNumber><ETag>${escapeXml(etag)}</ETag></Part>`
        );
        const body = new TextEncoder().encode(`<CompleteMultipartUpload>${parts.join("")}</CompleteMultipartUpload>`);
        const response = await this.#call({
          method: "POST",
          key,
          query: [["uploadId", uploadId]],
          headers: { "content-type": "application/xml" },
          body,
          // S3 may take a while to assemble a large object (it sends whitespace meanwhile).
          timeoutMs: TRANSFER_TIMEOUT_MS,
        });
        // CompleteMultipartUpload can fail with 200 and an <Error> body.
        if (response.status === 200 && response.text.includes("<Error>")) {
          throw s3Error(`CompleteMultipartUpload ${key}`, 500, response.text);
        }
        checkOk(`CompleteMultipartUpload ${key}`, response);
      },
      abort: async () => {
        const response = await this.#call({ method: "DELETE", key, query: [["uploadId", uploadId]] });
        if (response.status !== 404) checkOk(`AbortMultipartUpload ${key}`, response);
      },
    };
  }

  /** A request whose response body is read whole (error documents, XML results), within the timeout. */
  #call(spec: RequestSpec): Promise<{ status: number; headers: Headers; text: string }> {
    return this.#send(spec, false, async (response) => ({
      status: response.status,
      headers: response.headers,
      text: spec.method === "HEAD" ? "" : await response.text(),
    }));
  }

  /**
   * Sends a signed request and hands the response to `consume`, retrying network errors and 500/502/503/504. The
   * timeout covers `consume` too, unless `headersOnly` (a streamed download must not be cut off by a slow reader).
   */
  async #send<T>(spec: RequestSpec, headersOnly: boolean, consume: (response: Response) => Promise<T>): Promise<T> {
    const url = this.#url(spec.key, spec.query ?? []);
    const payloadSha256Hex = spec.body && spec.body.length > 0
      ? createHash("sha256").update(spec.body).digest("hex")
      : EMPTY_PAYLOAD_SHA256_HEX;
    const timeoutMs = spec.timeoutMs ?? REQUEST_TIMEOUT_MS;
    for (let attempt = 1;; attempt++) {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      try {
        const headers = await signRequest(
          { method: spec.method, url, headers: spec.headers, payloadSha256Hex, region: this.#options.region },
          this.#credentials,
        );
        // fetch would otherwise ask for gzip and decompress transparently, which breaks byte ranges and sizes.
        headers["accept-encoding"] = "identity";
        const init: RequestInit = { method: spec.method, headers, signal: controller.signal };
        if (spec.body !== undefined) init.body = spec.body;
        const response = await fetch(url, init);
        if (attempt < MAX_ATTEMPTS && RETRIED_STATUSES.has(response.status)) {
          await response.body?.cancel();
        } else {
          if (headersOnly) clearTimeout(timer);
          return await consume(response);
        }
      } catch (error) {
        if (attempt >= MAX_ATTEMPTS) {
          const message = error instanceof Error ? error.message : String(error);
          throw new Error(`S3 ${spec.method} ${spec.key ?? this.#options.bucket}: ${message}`, { cause: error });
        }
      } finally {
        clearTimeout(timer);
      }
      await new Promise((resolve) => setTimeout(resolve, RETRY_BACKOFF_MS * 4 ** (attempt - 1)));
    }
  }

  #url(key: string | undefined, query: [string, string][]): URL {
    const path = `${this.#endpoint}/${uriEncode(this.#options.bucket)}${key === undefined ? "" : `/${uriEncode(key)}`}`;
    // A parameter without a value is sent bare (`?uploads`), as S3 documents it.
    const pairs = query.map(([name, value]) => uriEncode(name) + (value === "" ? "" : `=${uriEncode(value)}`));
    return new URL(pairs.length === 0 ? path : `${path}?${pairs.join("&")}`);
  }
}

/** The steps of one multipart upload. */
interface MultipartUpload {
  /** Uploads the next part (parts are numbered in call order; one call at a time). */
  uploadPart(bytes: Uint8Array<ArrayBuffer>): Promise<void>;
  complete(): Promise<void>;
  abort(): Promise<void>;
}

/** Throws unless `response` is a 2xx. */
function checkOk(what: string, response: { status: number; text: string }): void {
  if (response.status < 200 || response.status >= 300) throw s3Error(what, response.status, response.text);
}

function assertKey(key: string): void {
  if (!isBlobKey(key)) throw new Error(`Invalid storage key "${key}"`);
}

function assertBackupKey(key: string): void {
  if (!BACKUP_KEY.test(key)) throw new Error(`Invalid backup object key "${key}"`);
}

/** An error for a failed S3 response, with the code and message of its XML error document when there is one. */
function s3Error(what: string, status: number, body: string): S3RequestError {
  return new S3RequestError(what, status, xmlText(body, "Code") ?? "", xmlText(body, "Message") ?? "");
}

/** The text of the first `<tag>` in `xml`, unescaped; null if there is none. */
function xmlText(xml: string, tag: string): string | null {
  const match = new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml);
  if (!match) return null;
  return match[1].replace(/&(lt|gt|quot|apos|amp|#\d+|#x[0-9a-fA-F]+);/g, (entity, name: string) => {
    switch (name) {
      case "lt":
        return "<";
      case "gt":
        return ">";
      case "quot":
        return '"';
      case "apos":
        return "'";
      case "amp":
        return "&";
    }
    const code = name.startsWith("#x") ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
    return Number.isFinite(code) ? String.fromCodePoint(code) : entity;
  });
}

/** Escapes text content (quotes may stay: S3 clients send ETags as `<ETag>"…"</ETag>`). */
function escapeXml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

/** Drops the first `skip` bytes, passes `lengthBytes`, and errors if the source ends before that. */
function exactSlice(skip: number, lengthBytes: number): TransformStream<Uint8Array, Uint8Array> {
  let toSkip = skip;
  let remaining = lengthBytes;
  return new TransformStream({
    transform(chunk, controller) {
      if (toSkip > 0) {
        const skipped = Math.min(toSkip, chunk.length);
        toSkip -= skipped;
        chunk = chunk.subarray(skipped);
      }
      if (remaining === 0 || chunk.length === 0) return;
      const passed = chunk.length <= remaining ? chunk : chunk.subarray(0, remaining);
      remaining -= passed.length;
      controller.enqueue(passed);
    },
    flush(controller) {
      if (remaining > 0) controller.error(new Error("The stored file is shorter than its metadata says"));
    },
  });
}
