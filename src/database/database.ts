/**
 * The database: the catalog, the snapshot handed to new transactions, and the one committer. Commits queue up and
 * are written in groups (one persistence transaction, one fsync) after optimistic-concurrency checks; a commit is
 * acknowledged only once its group is durable. A transaction that keeps losing conflicts can take an exclusive commit
 * turn (commit_queue.ts). Retention prunes old revisions behind a durable watermark; snapshots below it are refused
 * (retention.ts).
 */
import { parseConvexJsonText } from "../values/mod.ts";
import type {
  CommitBatch,
  DocumentRevision,
  IndexEntry,
  Persistence,
  StoredMutationResult,
} from "../persistence/mod.ts";
import {
  builtinIndexes,
  CatalogView,
  componentPathOf,
  emptyCatalog,
  FIRST_USER_TABLE_NUMBER,
  MAX_TABLES,
  withComponentSystemTables,
  withSystemTables,
} from "./catalog.ts";
import { TimestampClock, wallClockNs } from "./clock.ts";
import { MUTATION_RESULTS_INDEX_ID, mutationResultKeyOf, visibleAt } from "./mutation_results.ts";
import { type CommitKeys, ConflictHistory } from "./conflicts.ts";
import { documentIndexKey, keyAfter, TABLE_EXISTENCE_INDEX_ID, tableExistenceKey } from "./index_range.ts";
import { CommitQueue, type QueuedCommit, type TurnCommit } from "./commit_queue.ts";
import { RetentionWatermark, type SnapshotHold, type SnapshotHoldOptions, SnapshotHolds } from "./retention.ts";
import { DatabaseSyscalls } from "./syscalls.ts";
import type { TransactionSyscalls } from "./syscall_extension.ts";
import { SnapshotReader, SystemTransaction } from "./system_transaction.ts";
import { type Catalog, type DocumentWrite, SyscallError, type TableInfo, type TransactionOutcome } from "./types.ts";
import { keysEqual } from "./keys.ts";
import { addSearchTermKeys } from "./search.ts";
import { observeCommit, occConflicts } from "../metrics/mod.ts";

const CATALOG_GLOBAL = "catalog";
/** Attempts of a system transaction before a conflict is reported (its writes are small; conflicts are rare). */
const DEFAULT_SYSTEM_TRANSACTION_ATTEMPTS = 16;
/** How often old revisions are pruned, and how many rows per pass. */
const RETENTION_INTERVAL_MS = 10_000;
/** Rows one prune call may examine: small, because a SQLite call blocks the event loop (~110 rows/ms). */
const RETENTION_ROWS_PER_CALL = 2_000;
/** Prune calls per retention pass, so one pass is bounded even when far behind. */
const RETENTION_CALLS_PER_PASS = 200;
/** How long superseded revisions stay readable by default. */
const DEFAULT_RETENTION_MS = 60_000;

/** What every commit listener (reactivity) learns. */
export interface CommitEvent {
  ts: bigint;
  /** Index keys written (old and new values of every changed entry), per index ID. */
  keysByIndex: Map<number, Uint8Array[]>;
  /** The commit's document writes (the in-memory search indexes apply them). */
  writes?: readonly DocumentWrite[];
}

/** Options of `Database.runSystemTransaction`. */
export interface SystemTransactionRunOptions {
  /** Attempts before an optimistic-concurrency conflict is reported (default 16). */
  maxAttempts?: number;
  /** What the transaction does, for the error when it gives up (e.g. "scheduler: claim job"). */
  label?: string;
  /** The component namespace its table names resolve in (default `""`, the app). */
  componentPath?: string;
}

/** What `runSystemTransaction` resolves with. */
export interface SystemCommit<T> {
  /** What the transaction's function returned. */
  value: T;
  /** The commit ts (the latest ts when it wrote nothing). */
  ts: bigint;
}

/** Options of `openDatabase`. */
export interface DatabaseOptions {
  /** How long superseded revisions stay readable (for snapshots and `query_at_ts`). Default 60 s. */
  retentionMs?: number;
  /** How often retention runs (default 10 s; tests shorten it together with `retentionMs`). */
  retentionIntervalMs?: number;
  /** Syscalls of other layers (the scheduler's, storage's) that transactions from `begin` answer too. */
  syscalls?: TransactionSyscalls;
}

/** Opens the database on a persistence. */
export async function openDatabase(persistence: Persistence, options: DatabaseOptions = {}): Promise<Database> {
  const catalogJson = await persistence.getGlobal(CATALOG_GLOBAL);
  const catalog: Catalog = catalogJson ? withSystemTables(JSON.parse(catalogJson)) : emptyCatalog();
  const maxTs = await persistence.maxTs();
  const watermark = await RetentionWatermark.load(persistence, maxTs, options.retentionMs ?? DEFAULT_RETENTION_MS);
  return new Database(persistence, catalog, maxTs, watermark, options);
}

/** The database; see the module comment. */
export class Database {
  /**
   * The persistence underneath, for the database layer and tests. Code above the database layer reads and writes
   * through transactions (`begin`, `runSystemTransaction`), snapshots (`readSnapshot`) and the globals methods.
   */
  readonly persistence: Persistence;
  #catalog: CatalogView;
  #latestTs: bigint;
  readonly #clock: TimestampClock;
  readonly #history: ConflictHistory;
  #closed = false;
  readonly #listeners = new Set<(event: CommitEvent) => void>();
  readonly #retentionMs: number;
  readonly #syscalls: TransactionSyscalls;
  readonly #retentionTimer: ReturnType<typeof setInterval>;
  #closing: Promise<void> | undefined;
  #pruning = false;
  readonly #watermark: RetentionWatermark;
  readonly #holds = new SnapshotHolds();
  readonly #queue: CommitQueue;

  constructor(
    persistence: Persistence,
    catalog: Catalog,
    maxTs: bigint,
    watermark: RetentionWatermark,
    options: DatabaseOptions,
  ) {
    this.persistence = persistence;
    this.#watermark = watermark;
    this.#queue = new CommitQueue({
      commitGroup: (group) => this.#commitGroup(group),
      latestTs: () => this.#latestTs,
    });
    this.#catalog = new CatalogView(catalog);
    this.#clock = new TimestampClock(maxTs);
    this.#latestTs = maxTs;
    this.#history = new ConflictHistory(maxTs);
    this.#retentionMs = options.retentionMs ?? DEFAULT_RETENTION_MS;
    this.#syscalls = options.syscalls ?? {};
    this.#retentionTimer = setInterval(() => this.#prune(), options.retentionIntervalMs ?? RETENTION_INTERVAL_MS);
    Deno.unrefTimer(this.#retentionTimer);
  }

  /** The current catalog (tables, indexes, schema). */
  get catalog(): Catalog {
    return this.#catalog.catalog;
  }

  get catalogView(): CatalogView {
    return this.#catalog;
  }

  /** The newest durable commit ts: the snapshot new transactions read at. */
  get latestTs(): bigint {
    return this.#latestTs;
  }

  /**
   * The retention watermark: snapshots below it have lost history to pruning and are refused. A reader at an older
   * snapshot checks `assertRetained` before and after its reads (the watermark rises before pruning starts).
   */
  get retainedSinceTs(): bigint {
    return this.#watermark.ts;
  }

  /** Throws a `SnapshotTooOld` SyscallError when reads at `snapshotTs` may have lost history to retention. */
  assertRetained(snapshotTs: bigint): void {
    this.#watermark.assertReadable(snapshotTs);
  }

  /**
   * Holds the snapshot at `ts` for a reader that may outlive the retention window (exports, backups): retention
   * prunes nothing a read at `ts` needs until the hold is released or lapses after `maxHoldMs` (at most 6 h). Throws
   * `SnapshotTooOld` when `ts` is already pruned, `BadTimestamp` when it is in the future, and
   * `TooManySnapshotHolds` at the hold limit. Release it on finish, error and client disconnect.
   */
  holdSnapshot(ts: bigint, options: SnapshotHoldOptions): SnapshotHold {
    if (ts > this.#latestTs) throw new SyscallError("BadTimestamp", "snapshot is in the future");
    // Synchronous with the check: a retention pass raises the watermark before it deletes, never in between.
    this.assertRetained(ts);
    return this.#holds.add(ts, options);
  }

  /** Live snapshot holds (for metrics and the dashboard). */
  get snapshotHolds(): SnapshotHolds {
    return this.#holds;
  }

  /** The newest ts retention may prune up to now: the retention window, but never past the oldest live hold. */
  #retainTsLimit(retainTs: bigint): bigint {
    const oldestHeldTs = this.#holds.oldestTs();
    return oldestHeldTs !== null && oldestHeldTs < retainTs ? oldestHeldTs : retainTs;
  }

  /** Starts a transaction at the latest snapshot (or an older retained one). */
  begin(udfType: "query" | "mutation", identityJson: string | null = null, snapshotTs = this.#latestTs) {
    if (snapshotTs > this.#latestTs) throw new SyscallError("BadTimestamp", "snapshot is in the future");
    this.assertRetained(snapshotTs);
    return new DatabaseSyscalls({
      reader: this.persistence,
      catalog: this.#catalog,
      snapshotTs,
      udfType,
      identityJson,
      createTable: (name, componentPath) => this.createTable(name, componentPath),
      syscalls: this.#syscalls,
    });
  }

  /**
   * Runs `run` in a system transaction at the latest snapshot and commits its writes like a mutation: its reads are
   * its read set, a conflict re-runs `run` at a newer snapshot, up to `maxAttempts` times, then rejects with an
   * `OptimisticConcurrencyControlFailure` SyscallError naming `label`. `run` must be safe to re-run (it reads what it
   * needs through `tx`). Resolves with `run`'s value and the commit ts.
   */
  async runSystemTransaction<T>(
    run: (tx: SystemTransaction) => Promise<T>,
    options: SystemTransactionRunOptions = {},
  ): Promise<SystemCommit<T>> {
    const maxAttempts = options.maxAttempts ?? DEFAULT_SYSTEM_TRANSACTION_ATTEMPTS;
    for (let attempt = 1;; attempt++) {
      const tx = this.beginSystemTransaction(undefined, { componentPath: options.componentPath });
      const value = await run(tx);
      try {
        return { value, ts: await this.commit(tx.outcome()) };
      } catch (error) {
        const conflict = error instanceof SyscallError && error.code === "OptimisticConcurrencyControlFailure";
        if (!conflict) throw error;
        if (attempt >= maxAttempts) {
          throw new SyscallError(
            "OptimisticConcurrencyControlFailure",
            `${
              options.label ?? "A system transaction"
            } gave up after ${attempt} conflicting attempts: ${error.message}`,
          );
        }
      }
    }
  }

  /**
   * A system transaction at `snapshotTs` (default: the latest) that the caller commits itself, or whose outcome rides
   * in another transaction's commit (a scheduled job's state change commits with the mutation that ran it).
   */
  beginSystemTransaction(
    snapshotTs = this.#latestTs,
    options: { componentPath?: string | undefined } = {},
  ): SystemTransaction {
    this.assertRetained(snapshotTs);
    const componentPath = options.componentPath ?? "";
    return new SystemTransaction({
      reader: this.persistence,
      catalog: this.#catalog.forComponent(componentPath),
      snapshotTs,
      createTable: (name) => this.createTable(name, componentPath),
    });
  }

  /**
   * A read-only view at `snapshotTs` (default: the latest), for reads that commit nothing; table and index names
   * resolve in the namespace `componentPath` (default `""`, the app).
   */
  readSnapshot(snapshotTs = this.#latestTs, options: { componentPath?: string } = {}): SnapshotReader {
    if (snapshotTs > this.#latestTs) throw new SyscallError("BadTimestamp", "snapshot is in the future");
    this.assertRetained(snapshotTs);
    const catalog = this.#catalog.forComponent(options.componentPath ?? "");
    return new SnapshotReader({ reader: this.persistence, catalog, snapshotTs });
  }

  /**
   * The result a mutation sent with idempotency key `key` (its hash, src/functions/idempotency.ts) committed at or
   * before `snapshotTs` (default: the latest durable commit), or null.
   */
  async mutationResult(key: Uint8Array, snapshotTs = this.#latestTs): Promise<StoredMutationResult | null> {
    return visibleAt(await this.persistence.getMutationResult(key), snapshotTs);
  }

  /** Deletes at most `maxRows` mutation results committed more than `retentionMs` ago; returns how many. */
  sweepMutationResults(retentionMs: number, maxRows: number): Promise<number> {
    const beforeTs = wallClockNs() - BigInt(Math.round(retentionMs)) * 1_000_000n;
    return this.persistence.sweepMutationResults(beforeTs > 0n ? beforeTs : 0n, maxRows);
  }

  // ---- deployment globals: durable key-value metadata that is not documents (modules, environment variables) ----

  /** The global `key`, or null. */
  getGlobal(key: string): Promise<string | null> {
    return this.persistence.getGlobal(key);
  }

  /** Sets globals (null deletes one) in one persistence transaction. The catalog's own global is not writable here. */
  setGlobals(entries: Record<string, string | null>): Promise<void> {
    if (Object.hasOwn(entries, CATALOG_GLOBAL)) {
      throw new Error("invariant: the catalog changes only via updateCatalog");
    }
    return this.persistence.setGlobals(entries);
  }

  /** The keys of globals starting with `prefix`. */
  listGlobals(prefix: string): Promise<string[]> {
    return this.persistence.listGlobals(prefix);
  }

  /** Subscribes to commits; returns the unsubscribe function. */
  onCommit(listener: (event: CommitEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Commits a transaction's outcome. Resolves with its commit ts once durable; rejects with an
   * `OptimisticConcurrencyControlFailure` SyscallError when something it read changed since its snapshot.
   */
  commit(outcome: TransactionOutcome): Promise<bigint> {
    return this.#queue.commit(outcome);
  }

  /**
   * Runs `run` in an exclusive commit turn, for a transaction that keeps losing optimistic conflicts. The turn is
   * queued behind the commits already waiting; once it starts, no other transaction commits until `run` settles, so a
   * transaction that takes its snapshot (`latestTs`) inside `run` and commits with the given `commit` cannot conflict
   * with another transaction's commit. Catalog tasks (`exclusive`) still run during a turn: the turn's own code may
   * create a table. Other commits wait in the queue and are written after the turn, in order.
   */
  withCommitTurn<T>(run: (commit: TurnCommit) => Promise<T>): Promise<T> {
    return this.#queue.withCommitTurn(run);
  }

  /**
   * Resolves once no commit turn is queued or running. Optimistic attempts wait here first: during a turn nothing
   * else commits, and an attempt run then would only keep a runner from the turn and likely conflict afterwards.
   */
  turnsSettled(): Promise<void> {
    return this.#queue.turnsSettled();
  }

  /** Whether a commit turn is queued or running. */
  get hasPendingTurns(): boolean {
    return this.#queue.hasPendingTurns;
  }

  /** Runs `run` with no commit in progress (catalog changes, backfills). */
  exclusive(run: () => Promise<void>): Promise<void> {
    return this.#queue.exclusive(run);
  }

  async #commitGroup(group: QueuedCommit[]): Promise<void> {
    const batches: CommitBatch[] = [];
    const accepted: { item: (typeof group)[number]; keys: CommitKeys }[] = [];
    for (const item of group) {
      try {
        const snapshotTs = BigInt(item.outcome.snapshotTs);
        const conflict = this.#history.findConflict(snapshotTs, item.outcome.readSet);
        if (conflict) {
          occConflicts.inc();
          item.reject(this.#conflictError(conflict));
          continue;
        }
        const ts = this.#clock.next();
        const { batch, keys } = this.#buildBatch(ts, item.outcome);
        this.#history.record(keys);
        batches.push(batch);
        accepted.push({ item, keys });
      } catch (error) {
        item.reject(error);
      }
    }
    if (batches.length === 0) return;
    try {
      await observeCommit(batches.length, this.persistence.commit(batches));
    } catch (error) {
      for (let i = accepted.length - 1; i >= 0; i--) this.#history.forget(accepted[i].keys.ts);
      for (const { item } of accepted) item.reject(error);
      return;
    }
    this.#latestTs = batches[batches.length - 1].ts;
    for (const { item, keys } of accepted) {
      item.resolve(keys.ts);
      this.#notify({ ts: keys.ts, keysByIndex: keys.keysByIndex, writes: item.outcome.writes });
    }
  }

  #notify(event: CommitEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (error) {
        console.error("commit listener failed:", error);
      }
    }
  }

  #conflictError(conflict: { indexId: number } | { tooOld: true }): SyscallError {
    if ("tooOld" in conflict) {
      return new SyscallError(
        "OptimisticConcurrencyControlFailure",
        "The transaction's snapshot is too old to commit; it must be retried",
      );
    }
    if (conflict.indexId === MUTATION_RESULTS_INDEX_ID) {
      return new SyscallError(
        "OptimisticConcurrencyControlFailure",
        "Another execution of this mutation (the same idempotency key) committed while it was being run",
      );
    }
    const tableName = this.#catalog.indexById(conflict.indexId)?.table.name ?? "a";
    return new SyscallError(
      "OptimisticConcurrencyControlFailure",
      `Documents read from or written to the "${tableName}" table changed while this mutation was being run`,
    );
  }

  /** The document revisions and index entries of one commit, and the keys it touched. */
  #buildBatch(ts: bigint, outcome: TransactionOutcome): { batch: CommitBatch; keys: CommitKeys } {
    const documents: DocumentRevision[] = [];
    const indexEntries: IndexEntry[] = [];
    const keysByIndex = new Map<number, Uint8Array[]>();
    const resultKey = mutationResultKeyOf(outcome);
    if (resultKey !== null) keysByIndex.set(MUTATION_RESULTS_INDEX_ID, [resultKey]);
    for (const write of outcome.writes) {
      const table = this.#catalog.tableByNumberInAnyComponent(write.tableNumber);
      if (!table) throw new SyscallError("TableMissing", `Table number ${write.tableNumber} no longer exists`);
      documents.push({
        id: write.id,
        tableNumber: write.tableNumber,
        ts,
        json: write.json,
        prevTs: write.previousTs === null ? null : BigInt(write.previousTs),
      });
      const before = write.previousJson === null ? null : parseConvexJsonText(write.previousJson);
      const after = write.json === null ? null : parseConvexJsonText(write.json);
      for (const index of table.indexes) {
        const oldKey = before === null ? null : documentIndexKey(index, before);
        const newKey = after === null ? null : documentIndexKey(index, after);
        let keys = keysByIndex.get(index.indexId);
        if (!keys) keysByIndex.set(index.indexId, keys = []);
        if (oldKey && !(newKey && keysEqual(oldKey, newKey))) {
          indexEntries.push({ indexId: index.indexId, key: oldKey, documentId: write.id, deleted: true });
          keys.push(oldKey);
        }
        if (newKey) {
          indexEntries.push({ indexId: index.indexId, key: newKey, documentId: write.id, deleted: false });
          keys.push(newKey);
        }
      }
      addSearchTermKeys(table, before, after, keysByIndex);
    }
    const mutationResult = resultKey === null
      ? undefined
      : { key: resultKey, valueJson: outcome.mutationResult!.valueJson };
    return { batch: { ts, documents, indexEntries, mutationResult }, keys: { ts, keysByIndex } };
  }

  // ---- catalog ----

  /** Creates a user table in the namespace `componentPath` (idempotent); resolves with the new catalog. */
  async createTable(tableName: string, componentPath = ""): Promise<Catalog> {
    await this.exclusive(async () => {
      if (this.#catalog.forComponent(componentPath).tableByName(tableName)) return;
      await this.#saveCatalog(addTable(this.catalog, tableName, componentPath));
    });
    return this.catalog;
  }

  /** Registers the system tables of the component instance at `componentPath` (idempotent; its first mount). */
  mountComponent(componentPath: string): Promise<void> {
    return this.exclusive(async () => {
      const next = withComponentSystemTables(this.catalog, componentPath);
      if (next !== this.catalog) await this.#saveCatalog(next);
    });
  }

  /** Persists and installs a new catalog version. Call only inside `exclusive`. */
  async #saveCatalog(next: Catalog): Promise<void> {
    const versioned = { ...next, version: this.catalog.version + 1 };
    const created = versioned.tables
      .filter((table) => !this.#catalog.forComponent(componentPathOf(table)).tableByName(table.name))
      .map((table) => tableExistenceKey(table.name, componentPathOf(table)));
    await this.persistence.setGlobals({ [CATALOG_GLOBAL]: JSON.stringify(versioned) });
    this.#catalog = new CatalogView(versioned);
    if (created.length > 0) await this.#commitTableCreation(created);
  }

  /**
   * Reads of a table that does not exist yet record its name in the table-existence pseudo-index; creating the
   * table is a commit writing those keys, so cached and subscribed queries that saw "no table" re-run and
   * transactions that read it conflict. The commit has no documents; it only takes a timestamp.
   */
  async #commitTableCreation(existenceKeys: Uint8Array[]): Promise<void> {
    const ts = this.#clock.next();
    await this.persistence.commit([{ ts, documents: [], indexEntries: [] }]);
    this.#latestTs = ts;
    const keysByIndex = new Map([[TABLE_EXISTENCE_INDEX_ID, existenceKeys]]);
    this.#history.record({ ts, keysByIndex });
    this.#notify({ ts, keysByIndex });
  }

  /**
   * Replaces the catalog with `build(current)` inside `exclusive`, e.g. to add or drop indexes or change the schema.
   * New indexes must be added with `ready: false` and filled with `backfillIndex`.
   */
  updateCatalog(build: (current: Catalog) => Catalog): Promise<void> {
    return this.exclusive(() => this.#saveCatalog(build(this.catalog)));
  }

  /** The next unused index ID. */
  nextIndexId(): number {
    let max = 0;
    for (const table of this.catalog.tables) for (const index of table.indexes) max = Math.max(max, index.indexId);
    return max + 1;
  }

  /**
   * Writes entries of a newly added (not ready) index for every existing document, page by page, each page an
   * exclusive step at the latest snapshot so concurrent commits (which maintain the index already) stay consistent;
   * then marks the index ready.
   */
  async backfillIndex(indexId: number, onProgress?: (documents: number) => void): Promise<void> {
    const PAGE_ROWS = 2_000;
    let afterKey: Uint8Array | null = null;
    let backfilled = 0;
    for (;;) {
      let pageDone = false;
      await this.exclusive(async () => {
        const found = this.#catalog.indexById(indexId);
        if (!found) throw new SyscallError("IndexMissing", `Index ${indexId} was dropped during its backfill`);
        const byId = found.table.indexes[0];
        const rows = await this.persistence.scanIndex({
          indexId: byId.indexId,
          lowKey: afterKey ? keyAfter(afterKey) : new Uint8Array(),
          highKey: null,
          order: "asc",
          snapshotTs: this.#latestTs,
          limit: PAGE_ROWS,
        });
        if (rows.length > 0) {
          const ts = this.#clock.next();
          const indexEntries: IndexEntry[] = [];
          for (const row of rows) {
            if (row.document.json === null) continue;
            const key = documentIndexKey(found.index, parseConvexJsonText(row.document.json));
            indexEntries.push({ indexId, key, documentId: row.document.id, deleted: false });
          }
          await this.persistence.commit([{ ts, documents: [], indexEntries }]);
          this.#latestTs = ts;
          afterKey = rows[rows.length - 1].key;
          backfilled += rows.length;
        }
        pageDone = rows.length < PAGE_ROWS;
      });
      onProgress?.(backfilled);
      if (pageDone) break;
    }
    await this.updateCatalog((current) => ({
      ...current,
      tables: current.tables.map((table) => ({
        ...table,
        indexes: table.indexes.map((index) => index.indexId === indexId ? { ...index, ready: true } : index),
      })),
    }));
  }

  // ---- lifecycle ----

  async #prune(): Promise<void> {
    if (this.#closed || this.#pruning) return;
    this.#pruning = true;
    try {
      await this.#prunePass();
    } finally {
      this.#pruning = false;
    }
  }

  async #prunePass(): Promise<void> {
    const retainTs = this.#retainTsLimit(this.#latestTs - BigInt(this.#retentionMs) * 1_000_000n);
    if (retainTs <= 0n) return;
    try {
      await this.#watermark.raise(retainTs);
      for (let call = 0; call < RETENTION_CALLS_PER_PASS && !this.#closed; call++) {
        const { done } = await this.persistence.prune(retainTs, RETENTION_ROWS_PER_CALL);
        if (done) break;
        // Let requests run between calls.
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    } catch (error) {
      console.error("retention pass failed:", error);
    }
  }

  /**
   * Runs one bounded retention call now (tests, benchmarks), raising the watermark to `retainTs` first; like the
   * timer's passes it stops at the oldest live snapshot hold.
   */
  async pruneNow(retainTs: bigint): Promise<{ removedRows: number; done?: boolean }> {
    if (retainTs > this.#latestTs) throw new Error("invariant: retention cannot reach past the latest commit");
    const limitTs = this.#retainTsLimit(retainTs);
    await this.#watermark.raise(limitTs);
    return await this.persistence.prune(limitTs, RETENTION_ROWS_PER_CALL);
  }

  /** Finishes queued commits, then closes persistence. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#retentionTimer);
    await this.#queue.close();
    while (this.#pruning) await new Promise((resolve) => setTimeout(resolve, 5));
    await this.persistence.close();
  }
}

/** A catalog with one more user table, in the namespace `componentPath`. */
function addTable(catalog: Catalog, tableName: string, componentPath: string): Catalog {
  let maxNumber = FIRST_USER_TABLE_NUMBER - 1;
  let maxIndexId = 0;
  for (const table of catalog.tables) {
    maxNumber = Math.max(maxNumber, table.tableNumber);
    for (const index of table.indexes) maxIndexId = Math.max(maxIndexId, index.indexId);
  }
  if (catalog.tables.length >= MAX_TABLES) {
    throw new SyscallError("TooManyTables", `A deployment can have at most ${MAX_TABLES} tables`);
  }
  const table: TableInfo = {
    name: tableName,
    ...(componentPath === "" ? {} : { componentPath }),
    tableNumber: maxNumber + 1,
    indexes: builtinIndexes(tableName, maxIndexId + 1),
    documentType: null,
  };
  return { ...catalog, tables: [...catalog.tables, table] };
}
