/**
 * The database layer: transactions at a snapshot, the query engine, optimistic concurrency and the one committer.
 */
export * from "./types.ts";
export { type CommitEvent, Database, type DatabaseOptions, openDatabase } from "./database.ts";
export type { TurnCommit } from "./commit_queue.ts";
export { CatalogView, indexKeyFields, SYSTEM_TABLE_NUMBERS } from "./catalog.ts";
export { DatabaseSyscalls, int64ToBase64 } from "./syscalls.ts";
export { documentReadRange, keyAfter } from "./index_range.ts";
export { TRANSACTION_LIMITS } from "./limits.ts";
export {
  type JobStateKind,
  MAX_FUNCTIONS_SCHEDULED,
  MAX_SCHEDULED_ARGS_BYTES,
  SCHEDULED_FUNCTIONS_TABLE,
} from "./scheduler_syscalls.ts";
import type { PersistenceReader } from "../persistence/types.ts";
import { DatabaseSyscalls } from "./syscalls.ts";
import type { Catalog, TransactionHost } from "./types.ts";

/** Opens a transaction on a reader (in a runner process, or in the server for direct engine use). */
export function openTransaction(options: {
  reader: PersistenceReader;
  catalog: Catalog;
  snapshotTs: bigint;
  udfType: "query" | "mutation";
  identityJson: string | null;
  journal?: string | null;
  createTable?: (tableName: string) => Promise<Catalog>;
}): TransactionHost {
  return new DatabaseSyscalls(options);
}
