/**
 * The database layer: transactions at a snapshot, the query engine, optimistic concurrency and the one committer.
 */
export * from "./types.ts";
export {
  type CommitEvent,
  Database,
  type DatabaseOptions,
  openDatabase,
  type SystemCommit,
  type SystemTransactionRunOptions,
} from "./database.ts";
export {
  type DocumentReader,
  type IndexScanOptions,
  type ScannedDocument,
  SnapshotReader,
  type StoredDocument,
  SystemTransaction,
} from "./system_transaction.ts";
export type { TurnCommit } from "./commit_queue.ts";
export {
  MAX_SNAPSHOT_HOLD_MS,
  MAX_SNAPSHOT_HOLDS,
  SNAPSHOT_TOO_OLD,
  type SnapshotHold,
  type SnapshotHoldInfo,
  type SnapshotHoldOptions,
  type SnapshotHolds,
  TOO_MANY_SNAPSHOT_HOLDS,
} from "./retention.ts";
export {
  CatalogView,
  componentPathOf,
  componentPathsWithTable,
  FIRST_USER_TABLE_NUMBER,
  indexKeyFields,
  MAX_INDEXES_PER_TABLE,
  SCHEDULED_FUNCTIONS_TABLE,
  schemaValidationOf,
  SYSTEM_TABLE_NUMBERS,
} from "./catalog.ts";
export { DatabaseSyscalls, type DatabaseSyscallsOptions, int64ToBase64, openTransaction } from "./syscalls.ts";
export { decodeLiteral, keyAfter, stagedIndexMessage } from "./index_range.ts";
export { MUTATION_RESULTS_INDEX_ID, withMutationResult } from "./mutation_results.ts";
export {
  BM25_B,
  BM25_K1,
  filterValueKey,
  MAX_SEARCH_RESULTS,
  registerTextSearchProvider,
  searchedFields,
  type SearchTerm,
  searchTerms,
  TEXT_SEARCH_OP,
  type TextSearchProvider,
  type TextSearchRequest,
  type TextSearchResponse,
  tokenize,
} from "./search.ts";
export { MAX_FUNCTIONS_SCHEDULED, MAX_SCHEDULED_ARGS_BYTES, TRANSACTION_LIMITS } from "./limits.ts";
export {
  parseSyscallArgs,
  type SyscallArgs,
  type SyscallServices,
  type TransactionSyscallContext,
  type TransactionSyscallHandler,
  type TransactionSyscalls,
} from "./syscall_extension.ts";
export type { ReadDocument, Transaction } from "./transaction.ts";
