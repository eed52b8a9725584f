/**
 * File storage on the server: blobs on disk (blob_store.ts) or in an S3 bucket (s3_blob_store.ts) described by documents of the `_storage` system table
 * (`{sha256, size, contentType?}`, sha256 in base64 as Convex keeps it). Every component instance has its own
 * `_storage` table: a storage ID is an ID of one namespace's table, and since IDs are unique across tables the blob key
 * is the storage ID whatever its namespace. Calls made on behalf of a function take its `componentPath` (`""` the app)
 * and see only that namespace's files; serving by URL and the orphan sweep resolve the namespace from the ID. A blob is written (and synced) before its
 * document commits, and a document is deleted before its blob, so a committed document always has its bytes. Blobs
 * whose document never committed (a rolled-back mutation) or was deleted in a mutation are removed by a periodic
 * sweep once they are older than any transaction could be.
 */
import { decodeDocumentId, encodeDocumentId } from "../values/mod.ts";
import { componentPathOf, type Database } from "../database/mod.ts";
import { type BlobStore, LocalBlobStore, type WrittenBlob } from "./blob_store.ts";
import { S3BlobStore, type S3Options } from "./s3_blob_store.ts";
import { type UploadTokenCheck, UploadTokens } from "./upload_token.ts";
import { Sha256MismatchError } from "./errors.ts";

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
    s3?: S3Options | null | undefined;
    adminKey: string;
    cloudUrl: () => string;
  }): Promise<StorageService> {
    const blobs = options.s3 ? await S3BlobStore.open(options.s3) : await LocalBlobStore.open(options.dataDir);
    return new StorageService(options.database, blobs, options.adminKey, options.cloudUrl);
  }

  /** A fresh upload URL (`POST` the bytes to it); the upload's file goes to the namespace `componentPath`. */
  async generateUploadUrl(componentPath = ""): Promise<string> {
    this.#storageTableNumber(componentPath);
    return `${this.#cloudUrl()}/api/storage/upload?token=${await this.#tokens.issue(componentPath)}`;
  }

  /** The namespace an upload token stores into, or why the token is not valid. */
  checkUploadToken(token: string | undefined): Promise<UploadTokenCheck> {
    return this.#tokens.check(token);
  }

  /** The URL serving a stored file. */
  fileUrl(storageId: string): string {
    return `${this.#cloudUrl()}/api/storage/${storageId}`;
  }

  /** A new storage ID of the namespace `componentPath` (the `_storage` document ID, also the blob's key). */
  newStorageId(componentPath = ""): string {
    return encodeDocumentId(this.#storageTableNumber(componentPath), crypto.getRandomValues(new Uint8Array(16)));
  }

  /** The table number of the `_storage` of `componentPath`; a component that was never mounted has none. */
  #storageTableNumber(componentPath: string): number {
    const table = this.#database.catalogView.forComponent(componentPath).tableByName(STORAGE_TABLE);
    if (table === undefined) throw new Error(`No file storage for component "${componentPath}": it is not mounted`);
    return table.tableNumber;
  }

  /**
   * The namespace whose `_storage` holds `storageId`, or null when it is no well-formed ID of a `_storage` table
   * (legacy UUID storage IDs never existed here: anything else is simply not found).
   */
  namespaceOf(storageId: unknown): string | null {
    if (typeof storageId !== "string") return null;
    const tableNumber = decodeDocumentId(storageId)?.tableNumber;
    if (tableNumber === undefined) return null;
    const table = this.#database.catalogView.tableByNumberInAnyComponent(tableNumber);
    return table?.name === STORAGE_TABLE ? componentPathOf(table) : null;
  }

  /** True for a well-formed ID of the `_storage` table of any namespace. */
  isStorageId(value: unknown): value is string {
    return this.namespaceOf(value) !== null;
  }

  /**
   * Writes a blob under a new storage ID of `componentPath`, without a document (a mutation's `store` commits it).
   * With `expectedSha256Base64`, bytes that hash otherwise are removed again and refused (`Sha256MismatchError`).
   */
  async writeBlob(
    body: ReadableStream<Uint8Array> | Uint8Array,
    maxBytes: number,
    componentPath = "",
    expectedSha256Base64: string | null = null,
  ): Promise<WrittenBlob & { storageId: string }> {
    const storageId = this.newStorageId(componentPath);
    const written = await this.blobs.write(storageId, body, maxBytes);
    if (expectedSha256Base64 !== null && written.sha256Base64 !== expectedSha256Base64) {
      await this.blobs.remove(storageId).catch(() => {/* the orphan sweep removes it */});
      throw new Sha256MismatchError(expectedSha256Base64, written.sha256Base64);
    }
    return { storageId, ...written };
  }

  /** Stores a file in the namespace `componentPath`: blob first, then its `_storage` document. Returns the ID. */
  async store(
    body: ReadableStream<Uint8Array> | Uint8Array,
    contentType: string | null,
    maxBytes: number,
    componentPath = "",
    expectedSha256Base64: string | null = null,
  ) {
    const written = await this.writeBlob(body, maxBytes, componentPath, expectedSha256Base64);
    try {
      const document = storageDocument(written.storageId, written, contentType, Date.now());
      // User writes to system tables are refused; this is the internal path.
      await this.#database.runSystemTransaction((tx) => tx.insert(STORAGE_TABLE, document), {
        label: "storage: storing a file",
        componentPath,
      });
    } catch (error) {
      await this.blobs.remove(written.storageId).catch(() => {});
      throw error;
    }
    return written.storageId;
  }

  /**
   * The `_storage` document of `storageId` at the latest snapshot, or null. With `componentPath` the file must be
   * that namespace's (a function sees only its own files); without, any namespace's (serving by URL, the sweep).
   */
  async entry(storageId: string, componentPath?: string): Promise<StorageEntry | null> {
    const namespace = this.namespaceOf(storageId);
    if (namespace === null || (componentPath !== undefined && namespace !== componentPath)) return null;
    const document = await this.#database.readSnapshot(undefined, { componentPath: namespace }).get(storageId);
    return document === null ? null : parseStorageDocument(document.json);
  }

  /**
   * Deletes a file of the namespace `componentPath`: its document first (so it is never listed without bytes), then
   * the blob. False if missing (or another namespace's): the callers that face user code throw
   * `StorageIdNotFoundError` for it, as Convex does.
   */
  async delete(storageId: string, componentPath = ""): Promise<boolean> {
    if (this.namespaceOf(storageId) !== componentPath) return false;
    // The delete reads the document, so a concurrent delete of the same file conflicts instead of both winning.
    const { value: deleted } = await this.#database.runSystemTransaction((tx) => tx.delete(storageId), {
      label: "storage: deleting a file",
      componentPath,
    });
    if (!deleted) return false;
    await this.blobs.remove(storageId);
    return true;
  }

  /** Removes blobs old enough to be orphans whose document does not exist, in any namespace. Returns how many. */
  async sweepOrphans(nowMs = Date.now()): Promise<number> {
    let removed = 0;
    for (const key of await this.blobs.listOlderThan(nowMs - ORPHAN_MIN_AGE_MS, SWEEP_BATCH)) {
      // Only IDs of a `_storage` table (of any namespace): anything else in the folder or bucket is not ours to delete.
      if (this.namespaceOf(key) !== null && await this.entry(key) === null) {
        await this.blobs.remove(key);
        removed++;
      }
    }
    return removed;
  }
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
