/**
 * Storage syscalls in the worker: which storage ops go where, and the `jsSyscall`s of actions
 * (`storage/storeBlob`, `storage/getBlob`), whose Blobs cross to the server as base64 (bounded by the server's
 * `MAX_SYSCALL_BLOB_BYTES`; larger files go through upload URLs and `getUrl`).
 */
/** How the worker calls the server (the syscall router's `ServerCall`; declared here so the two do not import each other). */
type ServerCall = (op: string, argsJson: string) => Promise<string>;

/** Storage ops of queries and mutations, answered by the transaction's runner (storage_syscalls.ts). */
export const STORAGE_TRANSACTION_OPS: readonly string[] = [
  "1.0/storageGetUrl",
  "1.0/storageGetMetadata",
  "1.0/storageGenerateUploadUrl",
  "1.0/storageDelete",
  "1.0/storageStore",
  "1.0/storageGet",
];

/** Storage ops of actions and HTTP actions, answered by the server. */
export const STORAGE_ACTION_OPS: readonly string[] = [
  "1.0/storageGetUrl",
  "1.0/storageGetMetadata",
  "1.0/storageGenerateUploadUrl",
  "1.0/storageDelete",
];

/** True for the storage `jsSyscall`s. */
export function isStorageJsOp(op: string): boolean {
  return op === "storage/storeBlob" || op === "storage/getBlob";
}

/** Runs `storage/storeBlob` (→ storage ID) or `storage/getBlob` (→ Blob or null) through the server. */
export async function storageJsSyscall(op: string, args: Record<string, unknown>, serverCall: ServerCall) {
  if (op === "storage/storeBlob") {
    const blob = args.blob;
    if (!(blob instanceof Blob)) throw new Error("store() expects a Blob");
    const blobBase64 = new Uint8Array(await blob.arrayBuffer()).toBase64();
    const sha256 = (args.options as { sha256?: unknown } | undefined)?.sha256;
    const argsJson = JSON.stringify({ blob: blobBase64, contentType: blob.type, sha256 });
    return JSON.parse(await serverCall(op, argsJson)) as string;
  }
  const result = JSON.parse(await serverCall(op, JSON.stringify({ storageId: args.storageId }))) as
    | { blob: string; contentType: string | null }
    | null;
  return result === null ? null : new Blob([Uint8Array.fromBase64(result.blob)], { type: result.contentType ?? "" });
}
