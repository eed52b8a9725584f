/**
 * Storage syscalls of queries and mutations, answered in the runner with the execution's transaction: `_storage`
 * documents are read (and, in mutations, written) inside the transaction, so reads are reactive and a store or delete
 * commits or rolls back with the mutation. Blob bytes live on the server: the runner's `services.call` asks it to write
 * or read them.
 *
 * A blob stored by a mutation that then fails stays on disk without a document; the server's orphan sweep removes it.
 *
 * Every op works in the namespace of the transaction's current frame (`transaction.componentPath`): its `_storage`
 * table, and for the server's part the namespace named in the op's args, so a component's files get IDs of its own
 * `_storage` and its upload URLs store into it.
 */
import { decodeDocumentId, type Value } from "../values/mod.ts";
import {
  type SyscallArgs,
  SyscallError,
  type SyscallServices,
  type TableInfo,
  type Transaction,
  type TransactionSyscallContext,
  type TransactionSyscallHandler,
  type TransactionSyscalls,
} from "../database/mod.ts";

/**
 * Runner → server: write a blob without a document. Args `{blob: base64, sha256?, componentPath?}`; result
 * `{storageId, sha256, size}` with an ID of that namespace's `_storage`.
 */
export const WRITE_BLOB_OP = "denvex/storage/writeBlob";
/** Runner → server: an upload URL storing into a namespace. Args `{componentPath?}`; result the URL. */
export const UPLOAD_URL_OP = "denvex/storage/uploadUrl";
/** Runner → server: read a blob. Args `{storageId}`; result `{blob: base64}` or null. */
export const READ_BLOB_OP = "denvex/storage/readBlob";

const QUERY_OPS = ["1.0/storageGetUrl", "1.0/storageGetMetadata"];
const MUTATION_OPS = ["1.0/storageGenerateUploadUrl", "1.0/storageDelete", "1.0/storageStore", "1.0/storageGet"];

/** The runner's link to the server; storage syscalls of a transaction the server runs itself have none. */
function servicesOf(context: TransactionSyscallContext, op: string): SyscallServices {
  if (context.services === null) throw new SyscallError("BadStorageCall", `${op.slice(4)} needs a function runner`);
  return context.services;
}

/** Answers one storage syscall of a query or mutation with its result JSON. */
async function storageSyscall(context: TransactionSyscallContext, op: string, args: SyscallArgs): Promise<string> {
  const transaction = context.transaction;
  if (MUTATION_OPS.includes(op) && transaction.udfType !== "mutation") {
    throw new SyscallError("BadStorageCall", `${op.slice(4)} can only be called from a mutation or an action`);
  }
  const services = servicesOf(context, op);
  const table = transaction.catalog.tableByName("_storage")!;
  const namespace = transaction.componentPath === "" ? {} : { componentPath: transaction.componentPath };
  switch (op) {
    case "1.0/storageGenerateUploadUrl":
      return await services.call(UPLOAD_URL_OP, JSON.stringify(namespace));
    case "1.0/storageStore": {
      if (typeof args.blob !== "string") throw new SyscallError("BadArgument", "store: blob must be base64");
      // A declared `sha256` is checked by the server as the bytes are written (a mismatch keeps nothing).
      const sha256 = typeof args.sha256 === "string" ? { sha256: args.sha256 } : {};
      const written = JSON.parse(
        await services.call(WRITE_BLOB_OP, JSON.stringify({ blob: args.blob, ...sha256, ...namespace })),
      ) as {
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
  const document = await readStorageDocument(transaction, table, storageId);
  switch (op) {
    case "1.0/storageGetUrl":
      return JSON.stringify(document === null ? null : `${services.cloudUrl}/api/storage/${storageId}`);
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
      // Convex's error for a file that is not there (never stored, deleted already, another component's).
      if (document === null) throw new SyscallError("StorageIdNotFound", `storage id ${String(storageId)} not found`);
      transaction.write(table, storageId as string, document.read, null);
      return "null";
    case "1.0/storageGet": {
      if (document === null) return "null";
      const blob = JSON.parse(await services.call(READ_BLOB_OP, JSON.stringify({ storageId }))) as
        | { blob: string }
        | null;
      return JSON.stringify(
        blob === null ? null : { blob: blob.blob, contentType: document.parsed.contentType ?? null },
      );
    }
    default:
      throw new SyscallError("UnknownAsyncOperation", `Unknown async operation ${op}`);
  }
}

/** The `_storage` document of `storageId` as the transaction sees it (the read joins the read set), or null. */
async function readStorageDocument(transaction: Transaction, table: TableInfo, storageId: unknown) {
  if (typeof storageId !== "string") throw new SyscallError("BadArgument", "storageId must be a string");
  // The `_storage` of the calling function's namespace: a file ID of another namespace is unknown here.
  if (decodeDocumentId(storageId)?.tableNumber !== table.tableNumber) return null;
  const read = await transaction.readDocument(table, storageId);
  if (read === null) return null;
  return { read, parsed: JSON.parse(read.json) as { sha256: string; size: number; contentType?: string } };
}

/** Storage's transaction syscalls, by op name. */
export const STORAGE_TRANSACTION_SYSCALLS: TransactionSyscalls = Object.fromEntries(
  [...QUERY_OPS, ...MUTATION_OPS].map((op): [string, TransactionSyscallHandler] => [
    op,
    (context, args) => storageSyscall(context, op, args),
  ]),
);
