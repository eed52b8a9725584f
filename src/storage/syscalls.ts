/**
 * Storage ops the server answers: every storage syscall of actions and HTTP actions, and the blob reads/writes and
 * upload URLs that a query's or mutation's storage syscalls ask for (its `_storage` document is written in the
 * mutation's own transaction). Blobs cross the runner bridge as base64, bounded by `MAX_SYSCALL_BLOB_BYTES`.
 *
 * Each op works in one namespace: an action's ops in the calling action's component (`componentPath` of the call);
 * the runner's own ops name the namespace of the transaction's current frame in their args, since a mutation may have
 * called into another component's mutation.
 */
import { MAX_SYSCALL_BLOB_BYTES, metadataOf, type StorageService } from "./storage_service.ts";
import { BlobTooLargeError } from "./blob_store.ts";
import { expectedSha256Base64, StorageIdNotFoundError } from "./errors.ts";
import { READ_BLOB_OP, UPLOAD_URL_OP, WRITE_BLOB_OP } from "./transaction_syscalls.ts";

export { READ_BLOB_OP, UPLOAD_URL_OP, WRITE_BLOB_OP };

const STORAGE_OPS: ReadonlySet<string> = new Set([
  "1.0/storageGenerateUploadUrl",
  "1.0/storageGetUrl",
  "1.0/storageGetMetadata",
  "1.0/storageDelete",
  "storage/storeBlob",
  "storage/getBlob",
  WRITE_BLOB_OP,
  READ_BLOB_OP,
  UPLOAD_URL_OP,
]);

/** True for the ops `serveStorageCall` answers. */
export function isStorageCall(op: string): boolean {
  return STORAGE_OPS.has(op);
}

/**
 * Answers one storage op with its result JSON. `componentPath` is the calling function's component (`""` the app):
 * its files are the only ones the op sees.
 */
export async function serveStorageCall(
  storage: StorageService,
  op: string,
  argsJson: string,
  componentPath = "",
): Promise<string> {
  const args = JSON.parse(argsJson) as Record<string, unknown>;
  switch (op) {
    case "1.0/storageGenerateUploadUrl":
      return JSON.stringify(await storage.generateUploadUrl(componentPath));
    case UPLOAD_URL_OP:
      return JSON.stringify(await storage.generateUploadUrl(namespaceArg(args)));
    case "1.0/storageGetUrl": {
      const entry = await storage.entry(storageIdArg(args), componentPath);
      return JSON.stringify(entry === null ? null : storage.fileUrl(entry.storageId));
    }
    case "1.0/storageGetMetadata": {
      const entry = await storage.entry(storageIdArg(args), componentPath);
      return JSON.stringify(entry === null ? null : metadataOf(entry));
    }
    case "1.0/storageDelete": {
      // A file that is not there (deleted already, never stored) is an error, as on Convex.
      const storageId = storageIdArg(args);
      if (!await storage.delete(storageId, componentPath)) throw new StorageIdNotFoundError(storageId);
      return "null";
    }
    case "storage/storeBlob": {
      const bytes = blobArg(args);
      const contentType = typeof args.contentType === "string" && args.contentType !== "" ? args.contentType : null;
      const expected = expectedSha256Base64(args.sha256);
      return JSON.stringify(await storage.store(bytes, contentType, MAX_SYSCALL_BLOB_BYTES, componentPath, expected));
    }
    case WRITE_BLOB_OP: {
      const expected = expectedSha256Base64(args.sha256);
      const written = await storage.writeBlob(blobArg(args), MAX_SYSCALL_BLOB_BYTES, namespaceArg(args), expected);
      return JSON.stringify({ storageId: written.storageId, sha256: written.sha256Base64, size: written.sizeBytes });
    }
    case "storage/getBlob": {
      const entry = await storage.entry(storageIdArg(args), componentPath);
      if (entry === null) return "null";
      const bytes = await readLimited(storage, entry.storageId, entry.sizeBytes);
      return JSON.stringify(bytes === null ? null : { blob: bytes.toBase64(), contentType: entry.contentType });
    }
    case READ_BLOB_OP: {
      // The transaction read the file's document in its own namespace before asking for the bytes.
      const storageId = storageIdArg(args);
      const bytes = await readLimited(storage, storage.namespaceOf(storageId) === null ? "" : storageId, null);
      return JSON.stringify(bytes === null ? null : { blob: bytes.toBase64() });
    }
    default:
      throw new Error(`Unknown async operation ${op}`);
  }
}

function storageIdArg(args: Record<string, unknown>): string {
  const storageId = args.storageId;
  if (typeof storageId !== "string") throw new Error("storageId must be a string");
  return storageId;
}

/** The namespace a runner's own op names (absent: the app). */
function namespaceArg(args: Record<string, unknown>): string {
  const componentPath = args.componentPath ?? "";
  if (typeof componentPath !== "string") throw new Error("componentPath must be a string");
  return componentPath;
}

function blobArg(args: Record<string, unknown>): Uint8Array {
  if (typeof args.blob !== "string") throw new Error("blob must be a base64 string");
  // base64 is 4/3 of the bytes: reject an oversized blob before decoding it.
  if (args.blob.length > Math.ceil(MAX_SYSCALL_BLOB_BYTES / 3) * 4) throw new BlobTooLargeError(MAX_SYSCALL_BLOB_BYTES);
  return Uint8Array.fromBase64(args.blob);
}

async function readLimited(storage: StorageService, storageId: string, sizeBytes: number | null) {
  if (storageId === "") return null;
  if (sizeBytes !== null && sizeBytes > MAX_SYSCALL_BLOB_BYTES) {
    throw new Error(
      `File ${storageId} is ${sizeBytes} bytes; ctx.storage.get() reads at most ${MAX_SYSCALL_BLOB_BYTES} bytes ` +
        "(serve larger files with ctx.storage.getUrl())",
    );
  }
  const bytes = await storage.blobs.read(storageId);
  if (bytes !== null && bytes.length > MAX_SYSCALL_BLOB_BYTES) throw new BlobTooLargeError(MAX_SYSCALL_BLOB_BYTES);
  return bytes;
}
