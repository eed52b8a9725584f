/**
 * File storage on the server: blobs on disk (blob_store.ts) or in an S3 bucket (s3_blob_store.ts) described by documents of the `_storage` system table
 * (`{sha256, size, contentType?}`, sha256 in base64 as Convex keeps it). A blob is written (and synced) before its
 * document commits, and a document is deleted before its blob, so a committed document always has its bytes. Blobs
 * whose document never committed (a rolled-back mutation) or was deleted in a mutation are removed by a periodic
 * sweep once they are older than any transaction could be.
 */
import { decodeDocumentId, encodeDocumentId } from "../values/mod.ts";
import { type Database, SYSTEM_TABLE_NUMBERS } from "../database/mod.ts";
import { type BlobStore, LocalBlobStore, type WrittenBlob } from "./blob_store.ts";
import { S3BlobStore, type S3Options } from "./s3_blob_store.ts";
import { UploadTokens } from "./upload_token.ts";

const STORAGE_TABLE = "_storage";
/** Largest upload through an upload URL (the API origin's 64 MiB body limit does not apply to it). */
export const MAX_UPLOAD_BYTES = 1024 * 1024 * 1024;
/**
 * Largest blob passed inline through a syscall (`ctx.storage.store/get` in mutations and actions): these cross the
 * runner bridge as base64 in one message, so they are bounded well below the bridge's frame and channel limits.
 */
export const MAX_SYSCALL_BLOB_BYTES = 32 * 1024 * 1024;
/** Blobs without a document are swept only once older than this (longer than any upload or transaction). */
const ORPHAN_MIN_AGE_MS = 2 * 60 * 60 * 1000;
/** Blobs examined per sweep. */
const SWEEP_BATCH = 1_000;

/** A `_storage` document. */
export interface StorageEntry {
  storageId: string;
  sha256Base64: string;
  sizeBytes: number;
  contentType: string | null;
  creationTimeMs: number;
}

/** See the module comment. */
export class StorageService {
  readonly blobs: BlobStore;
  readonly #database: Database;
  readonly #tokens: UploadTokens;
  readonly #cloudUrl: () => string;

  private constructor(database: Database, blobs: BlobStore, adminKey: string, cloudUrl: () => string) {
    this.#database = database;
    this.blobs = blobs;
    this.#tokens = new UploadTokens(adminKey);
    this.#cloudUrl = cloudUrl;
  }

  /**
   * Opens the blob store: the S3 bucket of `s3` if given, else the blob folder of `dataDir`. `cloudUrl` is read per
   * call (tests learn their port late).
   */
  static async open(options: {
    database: Database;
    dataDir: string;
    s3?: S3Options | null;
    adminKey: string;
    cloudUrl: () => string;
  }): Promise<StorageService> {
    const blobs = options.s3 ? await S3BlobStore.open(options.s3) : await LocalBlobStore.open(options.dataDir);
    return new StorageService(options.database, blobs, options.adminKey, options.cloudUrl);
  }

  /** A fresh upload URL (`POST` the bytes to it). */
  async generateUploadUrl(): Promise<string> {
    return `${this.#cloudUrl()}/api/storage/upload?token=${await this.#tokens.issue()}`;
  }

  /** null if the upload token is valid, else why not. */
  checkUploadToken(token: string | undefined): Promise<string | null> {
    return this.#tokens.check(token);
  }

  /** The URL serving a stored file. */
  fileUrl(storageId: string): string {
    return `${this.#cloudUrl()}/api/storage/${storageId}`;
  }

  /** A new storage ID (the `_storage` document ID, also the blob's file name). */
  newStorageId(): string {
    return encodeDocumentId(SYSTEM_TABLE_NUMBERS[STORAGE_TABLE], crypto.getRandomValues(new Uint8Array(16)));
  }

  /** Writes a blob under a new storage ID without a document (a mutation's `store` commits the document). */
  async writeBlob(
    body: ReadableStream<Uint8Array> | Uint8Array,
    maxBytes: number,
  ): Promise<WrittenBlob & { storageId: string }> {
    const storageId = this.newStorageId();
    return { storageId, ...(await this.blobs.write(storageId, body, maxBytes)) };
  }

  /** Stores a file: blob first, then its `_storage` document. Returns the storage ID. */
  async store(body: ReadableStream<Uint8Array> | Uint8Array, contentType: string | null, maxBytes: number) {
    const written = await this.writeBlob(body, maxBytes);
    try {
      const document = storageDocument(written.storageId, written, contentType, Date.now());
      // User writes to system tables are refused; this is the internal path.
      await this.#database.runSystemTransaction((tx) => tx.insert(STORAGE_TABLE, document), {
        label: "storage: storing a file",
      });
    } catch (error) {
      await this.blobs.remove(written.storageId).catch(() => {});
      throw error;
    }
    return written.storageId;
  }

  /** The `_storage` document of `storageId` at the latest snapshot, or null. */
  async entry(storageId: string): Promise<StorageEntry | null> {
    if (!isStorageId(storageId)) return null;
    const document = await this.#database.readSnapshot().get(storageId);
    return document === null ? null : parseStorageDocument(document.json);
  }

  /** Deletes a file: its document first (so it is never listed without bytes), then the blob. False if missing. */
  async delete(storageId: string): Promise<boolean> {
    if (!isStorageId(storageId)) return false;
    // The delete reads the document, so a concurrent delete of the same file conflicts instead of both winning.
    const { value: deleted } = await this.#database.runSystemTransaction((tx) => tx.delete(storageId), {
      label: "storage: deleting a file",
    });
    if (!deleted) return false;
    await this.blobs.remove(storageId);
    return true;
  }

  /** Removes blobs old enough to be orphans whose document does not exist. Returns how many. */
  async sweepOrphans(nowMs = Date.now()): Promise<number> {
    let removed = 0;
    for (const key of await this.blobs.listOlderThan(nowMs - ORPHAN_MIN_AGE_MS, SWEEP_BATCH)) {
      // Only storage IDs: anything else in the folder or bucket is not ours to delete.
      if (isStorageId(key) && await this.entry(key) === null) {
        await this.blobs.remove(key);
        removed++;
      }
    }
    return removed;
  }
}

/** True for a well-formed ID of the `_storage` table. */
export function isStorageId(value: unknown): value is string {
  return typeof value === "string" && decodeDocumentId(value)?.tableNumber === SYSTEM_TABLE_NUMBERS[STORAGE_TABLE];
}

/** The `_storage` document for a written blob. */
export function storageDocument(
  storageId: string,
  blob: WrittenBlob,
  contentType: string | null,
  creationTimeMs: number,
): Record<string, string | number> {
  return {
    _id: storageId,
    _creationTime: creationTimeMs,
    sha256: blob.sha256Base64,
    size: blob.sizeBytes,
    ...(contentType ? { contentType } : {}),
  };
}

/** Reads a `_storage` document's JSON. */
export function parseStorageDocument(json: string): StorageEntry {
  const document = JSON.parse(json) as {
    _id: string;
    _creationTime: number;
    sha256: string;
    size: number;
    contentType?: string;
  };
  return {
    storageId: document._id,
    sha256Base64: document.sha256,
    sizeBytes: document.size,
    contentType: document.contentType ?? null,
    creationTimeMs: document._creationTime,
  };
}

/** `getMetadata()`'s answer: sha256 in hex, as the official (deprecated) API reports it. */
export function metadataOf(entry: StorageEntry): Record<string, string | number | null> {
  return {
    storageId: entry.storageId,
    sha256: Uint8Array.fromBase64(entry.sha256Base64).toHex(),
    size: entry.sizeBytes,
    contentType: entry.contentType,
  };
}
