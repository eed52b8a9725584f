/**
 * File storage blobs: the {@link BlobStore} interface, and its default implementation on local disk, one file per
 * storage ID in `<data dir>/storage/`. A blob is streamed to a temp file while an incremental SHA-256 runs over it
 * (WebCrypto has no streaming digest, node:crypto's does), fsynced, then renamed into place, so a reader never sees a
 * partial file and a crash leaves at most a temp file behind. (s3_blob_store.ts keeps blobs in an S3 bucket instead.)
 */
import { DenvexError } from "../errors/mod.ts";
import { createHash } from "node:crypto";
import { join } from "node:path";

/** The folder under the data directory that holds blobs. */
export const STORAGE_DIR_NAME = "storage";
const TEMP_DIR_NAME = ".tmp";
/** Storage IDs are document IDs: lowercase base32, which is also a safe file name. */
const SAFE_KEY = /^[0-9a-z]{16,64}$/;

/** True for a well-formed blob key (a storage ID: lowercase base32, safe as a file name and as an object key). */
export function isBlobKey(key: string): boolean {
  return SAFE_KEY.test(key);
}
/** Uploads are written to disk in pieces of this size. */
const WRITE_BUFFER_BYTES = 1024 * 1024;
/** Bytes read from disk per chunk when streaming a blob. */
const READ_CHUNK_BYTES = 256 * 1024;

/** Raised when a blob is larger than the caller's limit (the HTTP layer answers 413). */
export class BlobTooLargeError extends DenvexError {
  readonly limitBytes: number;
  constructor(limitBytes: number) {
    super("PayloadTooLarge", `The file is larger than the limit of ${limitBytes} bytes`, { httpStatus: 413 });
    this.name = "BlobTooLargeError";
    this.limitBytes = limitBytes;
  }
}

/** errno codes of a full disk or an exhausted quota. */
const STORAGE_FULL_CODES = new Set(["ENOSPC", "EDQUOT"]);

/**
 * Raised when the disk holding blobs is full: nothing of the upload is kept, and the caller may retry once space is
 * freed (the HTTP layer answers 507 Insufficient Storage).
 */
export class StorageFullError extends DenvexError {
  constructor() {
    // 507 Insufficient Storage: nothing was kept, and the same upload works once space is freed.
    super("StorageFull", "The server's file storage is full; the file was not stored. Try again later", {
      httpStatus: 507,
      retryable: true,
    });
    this.name = "StorageFullError";
  }
}

/** True when `error` is the operating system saying the disk (or the quota) is full. */
export function isStorageFull(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && STORAGE_FULL_CODES.has(code);
}

/** What writing a blob measured. */
export interface WrittenBlob {
  sizeBytes: number;
  /** SHA-256 of the bytes, base64 (as `_storage.sha256` holds it). */
  sha256Base64: string;
}

/**
 * Where blob bytes live, keyed by storage ID. A blob becomes visible to `size`/`stream`/`read` only once `write` has
 * finished: never partially.
 */
export interface BlobStore {
  /** Where the blobs are, for the startup banner. */
  readonly description: string;
  /** Streams `body` into the blob `key`; throws `BlobTooLargeError` past `maxBytes` (nothing is kept then). */
  write(key: string, body: ReadableStream<Uint8Array> | Uint8Array, maxBytes: number): Promise<WrittenBlob>;
  /** The size of blob `key` in bytes, or null if it does not exist. */
  size(key: string): Promise<number | null>;
  /**
   * `lengthBytes` (at least 1) of blob `key` from byte `start`, read on demand; null if the blob does not exist. The
   * stream errors if the blob turns out shorter.
   */
  stream(key: string, start: number, lengthBytes: number): Promise<ReadableStream<Uint8Array> | null>;
  /** Reads a whole blob (for the base64 syscalls, which are size-limited). */
  read(key: string): Promise<Uint8Array | null>;
  /** Deletes blob `key` (no error if it is gone already). */
  remove(key: string): Promise<void>;
  /** Keys of stored blobs last modified before `beforeMs`, at most `limit` of them (for the orphan sweep). */
  listOlderThan(beforeMs: number, limit: number): Promise<string[]>;
}

/** See the module comment. */
export class LocalBlobStore implements BlobStore {
  readonly dir: string;
  readonly #tempDir: string;

  private constructor(dir: string) {
    this.dir = dir;
    this.#tempDir = join(dir, TEMP_DIR_NAME);
  }

  /** Opens (creating) the blob folder of `dataDir`. */
  static async open(dataDir: string): Promise<LocalBlobStore> {
    const store = new LocalBlobStore(join(dataDir, STORAGE_DIR_NAME));
    await Deno.mkdir(store.#tempDir, { recursive: true });
    // Temp files are uploads a previous process did not finish: never complete, never referenced.
    for await (const entry of Deno.readDir(store.#tempDir)) {
      await Deno.remove(join(store.#tempDir, entry.name)).catch(() => {});
    }
    return store;
  }

  get description(): string {
    return this.dir;
  }

  async write(key: string, body: ReadableStream<Uint8Array> | Uint8Array, maxBytes: number): Promise<WrittenBlob> {
    const finalPath = this.#path(key);
    const tempPath = join(this.#tempDir, `${key}.${crypto.randomUUID()}`);
    const hash = createHash("sha256");
    let sizeBytes = 0;
    const file = await Deno.open(tempPath, { write: true, createNew: true }).catch((error) => {
      throw isStorageFull(error) ? new StorageFullError() : error;
    });
    try {
      const chunks = body instanceof Uint8Array ? [body] : body;
      // Request bodies arrive in small chunks; one write per chunk would cost a syscall per few KiB.
      const buffer = new Uint8Array(WRITE_BUFFER_BYTES);
      let buffered = 0;
      const flush = async () => {
        for (let written = 0; written < buffered;) written += await file.write(buffer.subarray(written, buffered));
        buffered = 0;
      };
      for await (const chunk of chunks) {
        sizeBytes += chunk.length;
        if (sizeBytes > maxBytes) throw new BlobTooLargeError(maxBytes);
        hash.update(chunk);
        if (buffered + chunk.length > buffer.length) await flush();
        if (chunk.length >= buffer.length) {
          for (let written = 0; written < chunk.length;) written += await file.write(chunk.subarray(written));
        } else {
          buffer.set(chunk, buffered);
          buffered += chunk.length;
        }
      }
      await flush();
      await file.sync();
      file.close();
      await Deno.rename(tempPath, finalPath);
    } catch (error) {
      try {
        file.close();
      } catch { /* already closed */ }
      await Deno.remove(tempPath).catch(() => {});
      if (body instanceof ReadableStream) await body.cancel().catch(() => {});
      if (isStorageFull(error)) throw new StorageFullError();
      throw error;
    }
    return { sizeBytes, sha256Base64: hash.digest("base64") };
  }

  async size(key: string): Promise<number | null> {
    try {
      return (await Deno.stat(this.#path(key))).size;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    }
  }

  async stream(key: string, start: number, lengthBytes: number): Promise<ReadableStream<Uint8Array> | null> {
    try {
      return fileSlice(await Deno.open(this.#path(key), { read: true }), start, lengthBytes);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    }
  }

  async read(key: string): Promise<Uint8Array | null> {
    try {
      return await Deno.readFile(this.#path(key));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    }
  }

  async remove(key: string): Promise<void> {
    await Deno.remove(this.#path(key)).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
  }

  async listOlderThan(beforeMs: number, limit: number): Promise<string[]> {
    const keys: string[] = [];
    for await (const entry of Deno.readDir(this.dir)) {
      if (!entry.isFile || !SAFE_KEY.test(entry.name)) continue;
      const info = await Deno.stat(join(this.dir, entry.name)).catch(() => null);
      if (info?.mtime && info.mtime.getTime() < beforeMs) keys.push(entry.name);
      if (keys.length >= limit) break;
    }
    return keys;
  }

  #path(key: string): string {
    if (!SAFE_KEY.test(key)) throw new Error(`Invalid storage key "${key}"`);
    return join(this.dir, key);
  }
}

/** `lengthBytes` of `file` from `start`, read on demand and closed at the end or on cancel. */
function fileSlice(file: Deno.FsFile, start: number, lengthBytes: number): ReadableStream<Uint8Array> {
  let remaining = lengthBytes;
  let positioned = false;
  const close = () => {
    try {
      file.close();
    } catch { /* closed already */ }
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        if (!positioned) {
          await file.seek(start, Deno.SeekMode.Start);
          positioned = true;
        }
        const buffer = new Uint8Array(Math.min(READ_CHUNK_BYTES, remaining));
        const read = await file.read(buffer);
        if (read === null || read === 0) {
          close();
          controller.error(new Error("The stored file is shorter than its metadata says"));
          return;
        }
        remaining -= read;
        controller.enqueue(read === buffer.length ? buffer : buffer.subarray(0, read));
        if (remaining === 0) {
          close();
          controller.close();
        }
      } catch (error) {
        close();
        controller.error(error);
      }
    },
    cancel: close,
  });
}
