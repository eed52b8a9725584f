/**
 * Storage syscalls of queries and mutations, answered in the runner with the execution's transaction: `_storage`
 * documents are read (and, in mutations, written) inside the transaction, so reads are reactive and a store or delete
 * commits or rolls back with the mutation. Blob bytes live on the server: `call` asks it to write or read them.
 *
 * A blob stored by a mutation that then fails stays on disk without a document; the server's orphan sweep removes it.
 */
import { decodeDocumentId } from "../values/mod.ts";
import type { Value } from "../values/types.ts";
import { SYSTEM_TABLE_NUMBERS } from "./catalog.ts";
import type { DatabaseSyscalls } from "./syscalls.ts";
import { SyscallError, type TableInfo } from "./types.ts";

/** Runner → server: write a blob without a document. Args `{blob: base64}`; result `{storageId, sha256, size}`. */
export const WRITE_BLOB_OP = "denvex/storage/writeBlob";
/** Runner → server: read a blob. Args `{storageId}`; result `{blob: base64}` or null. */
export const READ_BLOB_OP = "denvex/storage/readBlob";

const QUERY_OPS = new Set(["1.0/storageGetUrl", "1.0/storageGetMetadata"]);
const MUTATION_OPS = new Set([
  "1.0/storageGenerateUploadUrl",
  "1.0/storageDelete",
  "1.0/storageStore",
  "1.0/storageGet",
]);

/** What the storage syscalls need besides the transaction. */
export interface StorageSyscallDeps {
  /** Sends an op to the server (blob writes and reads, upload URLs); resolves with its result JSON. */
  call(op: string, argsJson: string): Promise<string>;
  /** The API origin file URLs start with (CONVEX_CLOUD_URL). */
  cloudUrl: string;
}

/** True for the ops `storageSyscall` answers. */
export function isStorageSyscall(op: string): boolean {
  return QUERY_OPS.has(op) || MUTATION_OPS.has(op);
}

/** Answers one storage syscall of a query or mutation with its result JSON. */
export async function storageSyscall(
  host: DatabaseSyscalls,
  op: string,
  argsJson: string,
  deps: StorageSyscallDeps,
): Promise<string> {
  const transaction = host.transaction;
  if (MUTATION_OPS.has(op) && transaction.udfType !== "mutation") {
    throw new SyscallError("BadStorageCall", `${op.slice(4)} can only be called from a mutation or an action`);
  }
  const args = JSON.parse(argsJson) as Record<string, unknown>;
  const table = transaction.catalog.tableByName("_storage")!;
  switch (op) {
    case "1.0/storageGenerateUploadUrl":
      return await deps.call(op, "{}");
    case "1.0/storageStore": {
      if (typeof args.blob !== "string") throw new SyscallError("BadArgument", "store: blob must be base64");
      const written = JSON.parse(await deps.call(WRITE_BLOB_OP, JSON.stringify({ blob: args.blob }))) as {
        storageId: string;
        sha256: string;
        size: number;
      };
      const contentType = typeof args.contentType === "string" && args.contentType !== "" ? args.contentType : null;
      const document: Record<string, Value> = {
        _id: written.storageId,
        _creationTime: Date.now(),
        sha256: written.sha256,
        size: written.size,
        ...(contentType === null ? {} : { contentType }),
      };
      transaction.write(table, written.storageId, null, document);
      return JSON.stringify(written.storageId);
    }
  }
  const storageId = args.storageId;
  const document = await readStorageDocument(host, table, storageId);
  switch (op) {
    case "1.0/storageGetUrl":
      return JSON.stringify(document === null ? null : `${deps.cloudUrl}/api/storage/${storageId}`);
    case "1.0/storageGetMetadata":
      return JSON.stringify(
        document === null ? null : {
          storageId,
          // The deprecated getMetadata() reports hex, the `_storage` table keeps base64 (as Convex does).
          sha256: Uint8Array.fromBase64(String(document.parsed.sha256)).toHex(),
          size: document.parsed.size,
          contentType: document.parsed.contentType ?? null,
        },
      );
    case "1.0/storageDelete":
      if (document !== null) transaction.write(table, storageId as string, document.read, null);
      return "null";
    case "1.0/storageGet": {
      if (document === null) return "null";
      const blob = JSON.parse(await deps.call(READ_BLOB_OP, JSON.stringify({ storageId }))) as { blob: string } | null;
      return JSON.stringify(
        blob === null ? null : { blob: blob.blob, contentType: document.parsed.contentType ?? null },
      );
    }
    default:
      throw new SyscallError("UnknownAsyncOperation", `Unknown async operation ${op}`);
  }
}

/** The `_storage` document of `storageId` as the transaction sees it (the read joins the read set), or null. */
async function readStorageDocument(host: DatabaseSyscalls, table: TableInfo, storageId: unknown) {
  if (typeof storageId !== "string") throw new SyscallError("BadArgument", "storageId must be a string");
  if (decodeDocumentId(storageId)?.tableNumber !== SYSTEM_TABLE_NUMBERS._storage) return null;
  const read = await host.transaction.readDocument(table, storageId);
  if (read === null) return null;
  return { read, parsed: JSON.parse(read.json) as { sha256: string; size: number; contentType?: string } };
}
