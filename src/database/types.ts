/**
 * The face of the database layer that the function runtime uses. A transaction executes syscalls whose arguments and
 * results are JSON text in the exact shapes of convex-compat.md §4.4 (convex-JSON values inside), so the runtime
 * never converts values itself.
 */
import { DenvexError } from "../errors/mod.ts";
import type { ValidatorJson } from "../values/mod.ts";

/** An error a syscall throws; reaches user code as a rejected promise / thrown error with `message` (and `data`). */
export class SyscallError extends DenvexError {
  /** Codes whose call may succeed when run again: an optimistic conflict, a full commit queue. */
  static readonly RETRYABLE_CODES: ReadonlySet<string> = new Set([
    "OptimisticConcurrencyControlFailure",
    "CommitterFullError",
  ]);
  /** convex-JSON data of a ConvexError, when the failure carries one. */
  readonly data: unknown;
  /** `code` is short and machine-readable, e.g. `InvalidCursor`, `OptimisticConcurrencyControlFailure`. */
  constructor(code: string, message: string, data?: unknown) {
    const retryable = SyscallError.RETRYABLE_CODES.has(code);
    // The caller's mistake (bad argument, missing table) unless it is contention or load.
    super(code, message, { httpStatus: retryable ? 503 : 400, retryable });
    this.name = "SyscallError";
    this.data = data;
  }
}

/** One index as the catalog knows it. `fields` excludes the implicit `_creationTime`, `_id` suffix. */
export interface IndexInfo {
  indexId: number;
  /** `<table>.<index>`, e.g. `messages.by_channel`, `messages.by_id`, `messages.by_creation_time`. */
  name: string;
  fields: string[];
  /** false while a backfill is running: readable by nobody, maintained by every commit. */
  ready: boolean;
  /** `staged: true` in the schema: maintained, but queries fail until the schema enables it. */
  staged?: boolean;
}

/** A full-text search index of the schema (convex-compat.md §4.2, §4.5). Served by a scan, so no index data. */
export interface SearchIndexInfo {
  /** `<table>.<index>`, e.g. `messages.search_body`. */
  name: string;
  /** The string field searched. */
  searchField: string;
  /** Fields a search may filter on with `eq`. */
  filterFields: string[];
  /** Negative ID of its term keys in read sets and commits (src/database/search.ts); absent in older catalogs. */
  indexId?: number;
  /** `staged: true` in the schema: built, but queries fail until the schema enables it. */
  staged?: boolean;
}

/** A vector index of the schema (`vectorIndex`), served from memory by src/search. */
export interface VectorIndexInfo {
  /** `<table>.<index>`. */
  name: string;
  vectorField: string;
  dimensions: number;
  filterFields: string[];
  staged?: boolean;
}

/** One table of the catalog. */
export interface TableInfo {
  name: string;
  /** The component instance whose namespace holds the table (components/types.ts ComponentPath); absent = the app. */
  componentPath?: string;
  tableNumber: number;
  indexes: IndexInfo[];
  /** The schema's search indexes (absent in catalogs from before search). */
  searchIndexes?: SearchIndexInfo[] | undefined;
  /** The schema's vector indexes (absent in catalogs from before vector search). */
  vectorIndexes?: VectorIndexInfo[] | undefined;
  /** The schema's document validator when schema validation is active for this table. */
  documentType: ValidatorJson | null;
}

/** A snapshot of the table registry, indexes and schema. Serializable (sent to runner processes). */
export interface Catalog {
  /** Bumped on every change; runners cache by it. */
  version: number;
  tables: TableInfo[];
  /** The app's schema validation flag. */
  schemaValidation: boolean;
  /** Each component instance's schema validation flag, by path (absent: off). */
  componentSchemaValidation?: Record<string, boolean>;
}

/** A read range of one index, recorded for optimistic concurrency and reactivity (keys base64). */
export interface ReadRange {
  indexId: number;
  lowKey: string;
  /** Exclusive; null = unbounded. */
  highKey: string | null;
}

/** A document write of a transaction: the new document (convex-JSON text) or null for a delete. */
export interface DocumentWrite {
  id: string;
  tableNumber: number;
  /** The document as it was at the snapshot (convex-JSON text) or null for an insert. */
  previousJson: string | null;
  /** The ts of that revision (decimal), or null for an insert. */
  previousTs: string | null;
  json: string | null;
}

/** What a finished mutation hands to the committer. JSON-serializable so it crosses process boundaries. */
export interface TransactionOutcome {
  snapshotTs: string;
  readSet: ReadRange[];
  writes: DocumentWrite[];
  /** Counters for limits and `getTransactionMetrics`. */
  metrics: { bytesRead: number; bytesWritten: number; documentsRead: number; documentsWritten: number };
  /**
   * A query's journal: the end cursor of its `paginate()` call, so the next run keeps the same page boundary
   * (convex-compat.md §2.9). Absent when the function did not paginate.
   */
  journal?: string | null;
  /**
   * The result of a mutation sent with an idempotency key (key base64), committed with its writes
   * (src/database/mutation_results.ts). Set by the server only.
   */
  mutationResult?: { key: string; valueJson: string } | undefined;
}

/** Documents of a query stream (`TransactionHost.nextDocuments`), and whether the stream has ended. */
export interface StreamBatch {
  documentsJson: string[];
  done: boolean;
}

/** A transaction as the runtime drives it. Queries and mutations each get one; actions get none. */
export interface TransactionHost {
  readonly snapshotTs: bigint;
  /**
   * Runs one database/auth/meta syscall (`1.0/get`, `1.0/queryStreamNext`, ...) in the namespace of `componentPath`
   * (absent: `""`, the app). Sync syscalls may return a string.
   */
  syscall(op: string, argsJson: string, componentPath?: string): Promise<string>;
  /**
   * `1.0/queryStreamNext` for up to `maxDocuments` documents at once (at most MAX_STREAM_BATCH are returned), each as
   * its Convex JSON text, so a caller can pass them on without parsing them.
   */
  nextDocuments(queryId: number, maxDocuments: number, componentPath?: string): Promise<StreamBatch>;
  /** Nested `ctx.runQuery`/`ctx.runMutation`: a savepoint the nested call can commit into or roll back. */
  beginNested(): void;
  endNested(commit: boolean): void;
  /** The read set and write set so far. */
  outcome(): TransactionOutcome;
}
