/**
 * SQLite persistence on `node:sqlite`: one writer connection (WAL, group commit in one `BEGIN IMMEDIATE … COMMIT`)
 * and read-only reader connections, which other processes open on the same file. Every write is acknowledged only
 * once its WAL frames are fsynced, by an async fsync that leaves the event loop free (`_sqlite_wal_sync.ts`).
 *
 * node:sqlite is synchronous: every method does its work before returning, so calls on one connection never
 * interleave and a transaction never spans an `await`.
 */

import type { DatabaseSync, StatementSync } from "node:sqlite";
import {
  assert,
  assertValidPrune,
  MAX_LISTED_GLOBALS,
  META_MAX_TS,
  prefixUpperBound,
  validateCommit,
} from "./_shared.ts";
import { SqliteCheckpointer } from "./_sqlite_checkpointer.ts";
import { SqlitePruner } from "./_sqlite_prune.ts";
import { WalSync } from "./_sqlite_wal_sync.ts";
import { type ArrayStatement, prepareArrays, settle, SqliteReader } from "./_sqlite_reader.ts";
import { openSqliteReaderConnection, openSqliteWriterConnection } from "./_sqlite_schema.ts";
import type {
  CommitBatch,
  Persistence,
  PersistenceLocation,
  PersistenceReader,
  StoredMutationResult,
} from "./types.ts";

/** How the writer's WAL is checkpointed. */
export interface SqliteWriterOptions {
  /**
   * "background" (the default): by a worker thread, never inside a commit (`_sqlite_checkpointer.ts`). "inline":
   * SQLite's automatic checkpoint inside the commit that takes the WAL past 1,000 pages, on the event loop (the
   * baseline of scripts/bench/checkpoint_bench.ts).
   */
  checkpoints?: "background" | "inline";
  /** Least time between background checkpoints while commits keep coming. */
  checkpointGapMs?: number;
}

/** Opens (creating if missing) the SQLite database at `path` as its one writer. */
export function openSqlitePersistence(path: string, options: SqliteWriterOptions = {}): Promise<Persistence> {
  return settle(() => {
    const db = openSqliteWriterConnection(path);
    try {
      return new SqlitePersistence(db, path, options);
    } catch (error) {
      db.close();
      throw error;
    }
  });
}

/** Opens a read-only connection on a SQLite database that a writer has created (possibly in another process). */
export function openSqliteReader(path: string): Promise<PersistenceReader> {
  return settle(() => {
    const db = openSqliteReaderConnection(path);
    try {
      return new SqliteReader(db);
    } catch (error) {
      db.close();
      throw error;
    }
  });
}

/** SQLite's `wal_autocheckpoint` default, in pages. */
const SQLITE_DEFAULT_AUTOCHECKPOINT_PAGES = 1_000;

/** The statements of the write path, prepared once. */
interface WriterStatements {
  begin: StatementSync;
  commit: StatementSync;
  rollback: StatementSync;
  insertDocument: StatementSync;
  insertIndexEntry: StatementSync;
  insertMutationResult: StatementSync;
  getMutationResult: ArrayStatement;
  sweepMutationResults: StatementSync;
  setMeta: StatementSync;
  getGlobal: ArrayStatement;
  setGlobal: StatementSync;
  deleteGlobal: StatementSync;
  listGlobalsBounded: ArrayStatement;
  listGlobalsUnbounded: ArrayStatement;
}

function prepareWriterStatements(db: DatabaseSync): WriterStatements {
  return {
    begin: db.prepare("BEGIN IMMEDIATE"),
    commit: db.prepare("COMMIT"),
    rollback: db.prepare("ROLLBACK"),
    insertDocument: db.prepare(
      "INSERT INTO documents (id, ts, table_number, json, prev_ts) VALUES (?, ?, ?, ?, ?)",
    ),
    insertIndexEntry: db.prepare(
      "INSERT INTO indexes (index_id, key, ts, deleted, document_id) VALUES (?, ?, ?, ?, ?)",
    ),
    insertMutationResult: db.prepare("INSERT INTO mutation_results (ts, key, json) VALUES (?, ?, ?)"),
    getMutationResult: prepareArrays(db, "SELECT ts, json FROM mutation_results WHERE key = ?"),
    sweepMutationResults: db.prepare(
      "DELETE FROM mutation_results WHERE ts IN (SELECT ts FROM mutation_results WHERE ts < ? ORDER BY ts LIMIT +?)",
    ),
    setMeta: db.prepare(
      "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    ),
    getGlobal: prepareArrays(db, "SELECT value FROM globals WHERE key = ?"),
    setGlobal: db.prepare(
      "INSERT INTO globals (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    ),
    deleteGlobal: db.prepare("DELETE FROM globals WHERE key = ?"),
    listGlobalsBounded: prepareArrays(db, "SELECT key FROM globals WHERE key >= ? AND key < ? ORDER BY key LIMIT +?"),
    listGlobalsUnbounded: prepareArrays(db, "SELECT key FROM globals WHERE key >= ? ORDER BY key LIMIT +?"),
  };
}

/**
 * The largest ts on disk: the `max_ts` meta row, which every commit updates in its own transaction, or an index entry
 * newer than it (an index lookup through `indexes_by_ts`; documents have no full ts index to ask).
 */
function readMaxTs(db: DatabaseSync): bigint {
  const row = prepareArrays(db, `SELECT (SELECT value FROM meta WHERE key = ?), (SELECT max(ts) FROM indexes)`)
    .get(META_MAX_TS)!;
  const metaTs = row[0] === null ? 0n : BigInt(row[0] as string);
  const indexTs = row[1] === null ? 0n : row[1] as bigint;
  return metaTs > indexTs ? metaTs : indexTs;
}

class SqlitePersistence extends SqliteReader implements Persistence {
  readonly location: PersistenceLocation;
  readonly #path: string;
  readonly #statements: WriterStatements;
  readonly #pruner: SqlitePruner;
  readonly #walSync: WalSync;
  /** Null with `checkpoints: "inline"` (SQLite's automatic checkpoint stays on). */
  readonly #checkpointer: SqliteCheckpointer | null;
  /** Cached: this is the database's only writer, so nothing else moves it. */
  #maxTs: bigint;

  constructor(db: DatabaseSync, path: string, options: SqliteWriterOptions) {
    super(db);
    this.location = { kind: "sqlite", path };
    this.#path = path;
    this.#statements = prepareWriterStatements(db);
    this.#pruner = new SqlitePruner(db);
    this.#maxTs = readMaxTs(db);
    this.#walSync = new WalSync(path);
    this.#checkpointer = (options.checkpoints ?? "background") === "inline" ? null : new SqliteCheckpointer(path, {
      gapMs: options.checkpointGapMs,
      // The writer's own automatic checkpoint comes back (SQLite's default, 1,000 pages) rather than a WAL that grows.
      onUnavailable: () => {
        if (this.isOpen) db.exec(`PRAGMA wal_autocheckpoint = ${SQLITE_DEFAULT_AUTOCHECKPOINT_PAGES}`);
      },
    });
    if (this.#checkpointer !== null) db.exec("PRAGMA wal_autocheckpoint = 0");
  }

  /**
   * Checkpoints the background checkpointer has completed, and its quiet ones with the time writes waited for them;
   * null when checkpoints are inline.
   */
  get backgroundCheckpoints(): { completed: number; quiet: number; quietTotalMs: number; quietMaxMs: number } | null {
    const checkpointer = this.#checkpointer;
    if (checkpointer === null) return null;
    const { completed, totalMs, maxMs } = checkpointer.quiet;
    return { completed: checkpointer.completed, quiet: completed, quietTotalMs: totalMs, quietMaxMs: maxMs };
  }

  /** Writes synchronously (no await inside the transaction), then resolves once the WAL is fsynced. */
  async commit(batches: CommitBatch[]): Promise<void> {
    const paused = this.#checkpointer?.writesPaused ?? null;
    if (paused !== null) await paused; // else the write happens inside this call, as without background checkpoints
    const written = this.#commitNow(batches);
    if (written) await this.#synced();
  }

  /** Resolves once the writes so far are durable; a background checkpoint follows them. */
  #synced(): Promise<void> {
    this.#checkpointer?.noteCommit();
    return this.#walSync.sync();
  }

  /** Writes the batches in one transaction; false when there was nothing to write. */
  #commitNow(batches: CommitBatch[]): boolean {
    this.#assertWritable();
    if (batches.length === 0) return false;
    const newMaxTs = validateCommit(batches, this.#maxTs);
    const { insertDocument, insertIndexEntry, insertMutationResult, setMeta } = this.#statements;
    this.#inTransaction(() => {
      for (const batch of batches) {
        for (const document of batch.documents) {
          insertDocument.run(document.id, batch.ts, document.tableNumber, document.json, document.prevTs);
        }
        for (const entry of batch.indexEntries) {
          insertIndexEntry.run(entry.indexId, entry.key, batch.ts, entry.deleted ? 1 : 0, entry.documentId);
        }
        const result = batch.mutationResult;
        if (result !== undefined) insertMutationResult.run(batch.ts, result.key, result.valueJson);
      }
      setMeta.run(META_MAX_TS, newMaxTs.toString());
    });
    this.#maxTs = newMaxTs;
    return true;
  }

  maxTs(): Promise<bigint> {
    return settle(() => {
      this.assertOpen();
      return this.#maxTs;
    });
  }

  getGlobal(key: string): Promise<string | null> {
    return settle(() => {
      this.assertOpen();
      const row = this.#statements.getGlobal.get(key);
      return row === undefined ? null : row[0] as string;
    });
  }

  async setGlobals(entries: Record<string, string | null>): Promise<void> {
    const paused = this.#checkpointer?.writesPaused ?? null;
    if (paused !== null) await paused; // else the write happens inside this call, as without background checkpoints
    this.#assertWritable();
    const { setGlobal, deleteGlobal } = this.#statements;
    this.#inTransaction(() => {
      for (const [key, value] of Object.entries(entries)) {
        if (value === null) deleteGlobal.run(key);
        else setGlobal.run(key, value);
      }
    });
    await this.#synced();
  }

  listGlobals(prefix: string): Promise<string[]> {
    return settle(() => {
      this.assertOpen();
      const upperBound = prefixUpperBound(prefix);
      const rows = upperBound === null
        ? this.#statements.listGlobalsUnbounded.all(prefix, MAX_LISTED_GLOBALS + 1)
        : this.#statements.listGlobalsBounded.all(prefix, upperBound, MAX_LISTED_GLOBALS + 1);
      assert(rows.length <= MAX_LISTED_GLOBALS, `more than ${MAX_LISTED_GLOBALS} globals start with "${prefix}"`);
      return rows.map((row) => row[0] as string);
    });
  }

  getMutationResult(key: Uint8Array): Promise<StoredMutationResult | null> {
    return settle(() => {
      this.assertOpen();
      const row = this.#statements.getMutationResult.get(key);
      return row === undefined ? null : { ts: row[0] as bigint, valueJson: row[1] as string };
    });
  }

  async sweepMutationResults(beforeTs: bigint, maxRows: number): Promise<number> {
    const paused = this.#checkpointer?.writesPaused ?? null;
    if (paused !== null) await paused; // else the write happens inside this call, as without background checkpoints
    this.#assertWritable();
    assertValidPrune(beforeTs, maxRows);
    const removed = this.#inTransaction(() => this.#statements.sweepMutationResults.run(beforeTs, maxRows).changes);
    await this.#synced();
    return Number(removed);
  }

  async prune(retainTs: bigint, maxRows: number): Promise<{ removedRows: number; done: boolean }> {
    const paused = this.#checkpointer?.writesPaused ?? null;
    if (paused !== null) await paused; // else the write happens inside this call, as without background checkpoints
    this.#assertWritable();
    assertValidPrune(retainTs, maxRows);
    // One transaction per call: one fsync, and the work inside is bounded by maxRows.
    const result = this.#inTransaction(() => this.#pruner.prune(retainTs, maxRows));
    await this.#synced();
    return result;
  }

  /** Waits for the fsyncs in flight (their commits are acknowledged), then closes the connection. */
  override async close(): Promise<void> {
    await this.#walSync.close();
    // Before the writer closes: its close checkpoints the rest and removes the WAL, which a running checkpoint of
    // the worker's would make it skip.
    await this.#checkpointer?.close();
    await super.close();
  }

  /** Open, and no earlier fsync failed. */
  #assertWritable(): void {
    this.assertOpen();
    this.#walSync.assertHealthy();
  }

  openReader(): Promise<PersistenceReader> {
    return openSqliteReader(this.#path);
  }

  /** Runs `work` inside BEGIN IMMEDIATE … COMMIT, rolling back on any error. */
  #inTransaction<T>(work: () => T): T {
    const { begin, commit, rollback } = this.#statements;
    begin.run();
    try {
      const result = work();
      commit.run();
      return result;
    } catch (error) {
      // SQLite rolls back by itself on some errors (e.g. a full disk); only roll back what is still open.
      if (this.db.isTransaction) rollback.run();
      throw error;
    }
  }
}
