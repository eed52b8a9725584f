/**
 * The persistence interface: an append-only revision log of documents and index entries, read at a snapshot
 * timestamp. Implemented by SQLite (`sqlite.ts`), PostgreSQL (`postgres.ts`) and MySQL/MariaDB (`mysql.ts`); one
 * conformance suite runs against all three (`tests/persistence_conformance_test.ts`).
 *
 * Timestamps are u64 nanoseconds as `bigint`. Index keys are order-preserving byte strings (values/index_key.ts): the
 * database compares them with a plain BLOB / bytea comparison. Every index key of a document ends with that document's
 * `_creationTime` and `_id`, so a key is unique per document within an index.
 */

/** One revision of one document. `json === null` marks a delete (tombstone). */
export interface DocumentRevision {
  /** The document ID string (values/ids.ts). */
  id: string;
  tableNumber: number;
  ts: bigint;
  /** The whole document as convex-JSON text (including `_id` and `_creationTime`), or null for a tombstone. */
  json: string | null;
  /** The ts of the previous revision of this document, or null for an insert. */
  prevTs: bigint | null;
}

/** One index entry revision. A `deleted` entry hides the key from snapshots at or after its ts. */
export interface IndexEntry {
  indexId: number;
  key: Uint8Array;
  documentId: string;
  deleted: boolean;
}

/**
 * A mutation's result, written in its commit so that a repeat of its idempotency key is answered without running it
 * again (src/functions/idempotency.ts). A plain keyed row, not a document: one small insert per mutation instead of a
 * document revision and its index entries (issue 14).
 */
export interface MutationResultRecord {
  /** The key's hash: MUTATION_RESULT_KEY_BYTES bytes. */
  key: Uint8Array;
  /** The result as convex-JSON text. */
  valueJson: string;
}

/** A stored mutation result and the ts of the commit that wrote it. */
export interface StoredMutationResult {
  ts: bigint;
  valueJson: string;
}

/** The length of a mutation result's key. */
export const MUTATION_RESULT_KEY_BYTES = 16;

/** Everything one committed transaction writes, at one timestamp. */
export interface CommitBatch {
  ts: bigint;
  documents: DocumentRevision[];
  indexEntries: IndexEntry[];
  /** The result of the mutation this commit is, when it was sent with an idempotency key. */
  mutationResult?: MutationResultRecord | undefined;
}

/** A half-open range of one index read at a snapshot. */
export interface IndexScan {
  indexId: number;
  /** Inclusive lower bound. */
  lowKey: Uint8Array;
  /** Exclusive upper bound; null means unbounded. */
  highKey: Uint8Array | null;
  order: "asc" | "desc";
  snapshotTs: bigint;
  /** The most rows to return (live entries only). */
  limit: number;
}

/** A live index entry at the snapshot, joined with the document revision visible at the same snapshot. */
export interface IndexScanRow {
  key: Uint8Array;
  document: DocumentRevision;
}

/** Read access at a snapshot. Runner processes open readers of their own on the same database. */
export interface PersistenceReader {
  /** The newest revision of `id` with `ts <= snapshotTs` (a tombstone included), or null if none. */
  getDocument(id: string, snapshotTs: bigint): Promise<DocumentRevision | null>;
  /** Live entries of an index range at a snapshot, in key order (`desc` reverses), at most `limit`. */
  scanIndex(scan: IndexScan): Promise<IndexScanRow[]>;
  /**
   * Optional: makes the reads until the returned function is called share one database read transaction, where each
   * would otherwise begin and end its own (SQLite: the WAL's read lock taken once, ~1.6 µs per point read instead of
   * ~7). For a short group of reads only (a syscall batch): a read transaction held long keeps checkpoints from
   * starting the WAL over. Calling the returned function again does nothing.
   */
  holdReads?(): () => void;
  close(): Promise<void>;
}

/** Where a reader in another process finds the same database. */
export type PersistenceLocation =
  | { kind: "sqlite"; path: string }
  | { kind: "postgres"; url: string }
  | { kind: "mysql"; url: string };

/** The writer side. Exactly one per database, owned by the committer. */
export interface Persistence extends PersistenceReader {
  readonly location: PersistenceLocation;
  /**
   * Appends the batches in one database transaction and resolves only once it is durable (fsync on SQLite,
   * commit on PostgreSQL). Batches must have strictly increasing ts, all above every ts committed before.
   * Many batches in one call is group commit.
   */
  commit(batches: CommitBatch[]): Promise<void>;
  /** The largest ts ever committed (documents, index entries or globals), or 0n for an empty database. */
  maxTs(): Promise<bigint>;
  /** Durable key-value metadata (table registry, schema, modules, env vars, the ts high-water mark). */
  getGlobal(key: string): Promise<string | null>;
  /** Sets (or with null, deletes) globals atomically and durably. */
  setGlobals(entries: Record<string, string | null>): Promise<void>;
  /** Keys of globals starting with `prefix`, sorted. */
  listGlobals(prefix: string): Promise<string[]>;
  /**
   * Retention: deletes every document revision and index entry that no snapshot at or after `retainTs` can see
   * (a revision superseded by a newer one with ts <= retainTs, and tombstones older than retainTs whose history is
   * gone). Bounded work per call; returns how many rows it removed.
   *
   * `maxRows` bounds both the rows removed and the rows examined, so a call can end with `removedRows < maxRows`
   * while work remains: call again until `done` (both implementations here always set it).
   */
  prune(retainTs: bigint, maxRows: number): Promise<{ removedRows: number; done?: boolean }>;
  /** Opens another reader on the same database (used by tests and benchmarks; runners use `location`). */
  openReader(): Promise<PersistenceReader>;
  /** The mutation result stored under `key` by any commit so far, or null. */
  getMutationResult(key: Uint8Array): Promise<StoredMutationResult | null>;
  /** Deletes at most `maxRows` mutation results committed before `beforeTs`, oldest first; returns how many. */
  sweepMutationResults(beforeTs: bigint, maxRows: number): Promise<number>;
}
