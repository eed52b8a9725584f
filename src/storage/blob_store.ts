/**
 * File storage blobs on local disk, one file per storage ID in `<data dir>/storage/`. A blob is streamed to a temp
 * file while an incremental SHA-256 runs over it (WebCrypto has no streaming digest, node:crypto's does), fsynced,
 * then renamed into place, so a reader never sees a partial file and a crash leaves at most a temp file behind.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";

/** The folder under the data directory that holds blobs. */
export const STORAGE_DIR_NAME = "storage";
const TEMP_DIR_NAME = ".tmp";
/** Storage IDs are document IDs: lowercase base32, which is also a safe file name. */
const SAFE_KEY = /^[0-9a-z]{16,64}$/;
/** Uploads are written to disk in pieces of this size. */
const WRITE_BUFFER_BYTES = 1024 * 1024;

/** Raised when a blob is larger than the caller's limit (the HTTP layer answers 413). */
export class BlobTooLargeError extends Error {
  readonly limitBytes: number;
  constructor(limitBytes: number) {
    super(`The file is larger than the limit of ${limitBytes} bytes`);
    this.name = "BlobTooLargeError";
    this.limitBytes = limitBytes;
  }
}

/** What writing a blob measured. */
export interface WrittenBlob {
  sizeBytes: number;
  /** SHA-256 of the bytes, base64 (as `_storage.sha256` holds it). */
  sha256Base64: string;
}

/** See the module comment. */
export class BlobStore {
  readonly dir: string;
  readonly #tempDir: string;

  private constructor(dir: string) {
    this.dir = dir;
    this.#tempDir = join(dir, TEMP_DIR_NAME);
  }

  /** Opens (creating) the blob folder of `dataDir`. */
  static async open(dataDir: string): Promise<BlobStore> {
    const store = new BlobStore(join(dataDir, STORAGE_DIR_NAME));
    await Deno.mkdir(store.#tempDir, { recursive: true });
    // Temp files are uploads a previous process did not finish: never complete, never referenced.
    for await (const entry of Deno.readDir(store.#tempDir)) {
      await Deno.remove(join(store.#tempDir, entry.name)).catch(() => {});
    }
    return store;
  }

  /** Streams `body` into the blob `key`; throws `BlobTooLargeError` past `maxBytes` (nothing is kept then). */
  async write(key: string, body: ReadableStream<Uint8Array> | Uint8Array, maxBytes: number): Promise<WrittenBlob> {
    const finalPath = this.#path(key);
    const tempPath = join(this.#tempDir, `${key}.${crypto.randomUUID()}`);
    const hash = createHash("sha256");
    let sizeBytes = 0;
    const file = await Deno.open(tempPath, { write: true, createNew: true });
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
      throw error;
    }
    return { sizeBytes, sha256Base64: hash.digest("base64") };
  }

  /** Opens blob `key` for reading, or null if it does not exist. */
  async open(key: string): Promise<{ file: Deno.FsFile; sizeBytes: number } | null> {
    try {
      const file = await Deno.open(this.#path(key), { read: true });
      const { size } = await file.stat();
      return { file, sizeBytes: size };
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    }
  }

  /** Reads a whole blob (for the base64 syscalls, which are size-limited). */
  async read(key: string): Promise<Uint8Array | null> {
    try {
      return await Deno.readFile(this.#path(key));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    }
  }

  /** Deletes blob `key` (no error if it is gone already). */
  async remove(key: string): Promise<void> {
    await Deno.remove(this.#path(key)).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
  }

  /** Keys of stored blobs last modified before `beforeMs`, at most `limit` of them (for the orphan sweep). */
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
