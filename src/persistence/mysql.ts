/**
 * MySQL / MariaDB persistence on `npm:mysql2`: the writer owns a small pool (a commit is one InnoDB transaction,
 * durable once COMMIT returns with InnoDB's default `innodb_flush_log_at_trx_commit=1`; a different setting is
 * warned about at open); readers open pools of their own. Group commit, retention and the ts high-water mark work as
 * in `postgres.ts`.
 *
 * Differences between the databases, and how they are handled (checked on MariaDB 10.11, kept within MySQL 8):
 * - No LATERAL join in MariaDB: a scan joins each index entry to its document's newest revision through correlated
 *   `MAX(ts)` subqueries (`_mysql_reader.ts`).
 * - No `unnest`, and the table value constructors differ (MariaDB `VALUES (..)`, MySQL `VALUES ROW(..)`): bulk
 *   inserts use `INSERT .. VALUES (..), (..)`, prune's chunks a `SELECT .. UNION ALL` derived table.
 * - Upserts use `ON DUPLICATE KEY UPDATE value = VALUES(value)`: MySQL 8.0.20+ deprecates `VALUES()` (a warning,
 *   still accepted), and MariaDB lacks the `AS new` alias that replaces it.
 * - The `_bin` text collations pad trailing spaces on MariaDB and MySQL 5.7, so keys and ids are VARBINARY (bytewise,
 *   no padding); `key` is a reserved word, hence `index_key`; no partial indexes, so `documents_by_ts` is full.
 * - DDL commits implicitly on both: schema creation is serialized by a named lock (`GET_LOCK`), not a transaction.
 *   Named locks are server-wide, so the name includes a hash of the database name (64-character limit on MySQL).
 * - Every session runs in strict mode, so an over-long key fails instead of being truncated.
 * - BIGINT comes back as decimal strings (`bigNumberStrings`), so u63 timestamps never pass through a double.
 */

import { MysqlReader } from "./_mysql_reader.ts";
import { toBigint, utf8 } from "./_mysql_reader.ts";
import { pruneMysql } from "./_mysql_prune.ts";
import {
  type Connection,
  connectMysql,
  createSchema,
  type Pool,
  READER_POOL_SIZE,
  withNamedLock,
  WRITER_POOL_SIZE,
} from "./_mysql_schema.ts";
import { isConnectionError, neverConnected, toPersistenceError } from "./_mysql_errors.ts";
import {
  chunkDocuments,
  chunkResults,
  type CommitRows,
  GroupCommitter,
  newestStoredTs,
  splitGlobals,
} from "./_group_commit.ts";
import { assert, assertValidPrune, MAX_LISTED_GLOBALS, META_MAX_TS, prefixUpperBound } from "./_shared.ts";
import type {
  CommitBatch,
  Persistence,
  PersistenceLocation,
  PersistenceReader,
  StoredMutationResult,
} from "./types.ts";

/** Rows per INSERT statement. */
const INSERT_CHUNK_ROWS = 2_000;
/**
 * Document (or mutation result) JSON characters per INSERT statement: escaping can double them, and MariaDB's default
 * `max_allowed_packet` is 16 MiB (MySQL 8's 64 MiB).
 */
const INSERT_CHUNK_JSON_CHARS = 4 * 1024 * 1024;
/** How long a commit may wait for MySQL before its connection counts as broken and is destroyed. */
const COMMIT_DEADLINE_MS = 5_000;
/** Prune and schema work may scan more; their deadline is longer. */
const MAINTENANCE_DEADLINE_MS = 30_000;
/**
 * How often a commit is tried when InnoDB rolls it back for a deadlock (1213) or a lock wait timeout (1205): prune
 * deletes old rows while commits insert new ones, and InnoDB's gap locks can make the two wait on each other. The
 * transaction is rolled back whole, so trying it again is safe.
 */
const COMMIT_ATTEMPTS = 3;
const LOCK_CONFLICT_ERRNOS = new Set([1205, 1213]);

function isLockConflict(error: unknown): boolean {
  const errno = (error as { errno?: unknown } | null)?.errno;
  return typeof errno === "number" && LOCK_CONFLICT_ERRNOS.has(errno);
}

/** Opens (creating the schema if missing) the MySQL database at `url` as its one writer. */
export async function openMysqlPersistence(url: string): Promise<Persistence> {
  const pool = connectMysql(url, WRITER_POOL_SIZE);
  try {
    await createSchema(pool);
    return new MysqlPersistence(pool, url, await readMaxTs(pool));
  } catch (error) {
    await pool.end().catch(() => {});
    throw toPersistenceError(error);
  }
}

/** Opens a reader on a MySQL database that a writer has created; fails at once if the server is unreachable. */
export async function openMysqlReader(url: string): Promise<PersistenceReader> {
  const pool = connectMysql(url, READER_POOL_SIZE);
  try {
    await pool.query("SELECT 1 FROM documents LIMIT 0");
    return new MysqlReader(pool);
  } catch (error) {
    await pool.end().catch(() => {});
    throw toPersistenceError(error);
  }
}

/** The largest ts on disk: the `max_ts` meta row, which every commit updates, or a newer index entry. */
async function readMaxTs(pool: Pool): Promise<bigint> {
  const [rows] = await pool.query(
    "SELECT (SELECT value FROM meta WHERE name = ?) AS meta, (SELECT MAX(ts) FROM indexes) AS indexes",
    [utf8(META_MAX_TS)],
  );
  const row = (rows as { meta: string | null; indexes: string | null }[])[0];
  return newestStoredTs(row.meta, toBigint(row.indexes));
}

/** Runs `work` inside START TRANSACTION … COMMIT on `connection`, rolling back on failure. */
async function inTransaction<T>(connection: Connection, work: () => Promise<T>): Promise<T> {
  await connection.query("START TRANSACTION");
  try {
    const result = await work();
    await connection.query("COMMIT");
    return result;
  } catch (error) {
    await connection.query("ROLLBACK").catch(() => {});
    throw error;
  }
}

class MysqlPersistence extends MysqlReader implements Persistence {
  readonly location: PersistenceLocation;
  readonly #url: string;
  readonly #commits: GroupCommitter;

  constructor(pool: Pool, url: string, maxTs: bigint) {
    super(pool);
    this.location = { kind: "mysql", url };
    this.#url = url;
    this.#commits = new GroupCommitter(maxTs, {
      assertOpen: () => this.assertOpen(),
      write: (rows, newMaxTs) => this.#writeCommitRetrying(rows, newMaxTs),
      readCommittedMaxTs: async (deadlineMs) => {
        const rows = await this.queryRows<{ value: string }>(
          "SELECT value FROM meta WHERE name = ?",
          [utf8(META_MAX_TS)],
          deadlineMs,
        );
        return rows.length > 0 ? BigInt(rows[0].value) : null;
      },
      failures: { isConnectionError, neverConnected, toPersistenceError },
    });
  }

  commit(batches: CommitBatch[]): Promise<void> {
    return this.#commits.commit(batches);
  }

  /** Writes one commit in its own transaction, tried again when InnoDB rolls it back for a lock conflict. */
  async #writeCommitRetrying(rows: CommitRows, newMaxTs: bigint) {
    for (let attempt = 1;; attempt++) {
      try {
        await this.withConnection(
          (connection) => inTransaction(connection, () => this.#writeCommit(connection, rows, newMaxTs)),
          COMMIT_DEADLINE_MS,
        );
        return;
      } catch (error) {
        if (!isLockConflict(error) || attempt >= COMMIT_ATTEMPTS) throw error;
      }
    }
  }

  async #writeCommit(connection: Connection, { documents, entries, results }: CommitRows, newMaxTs: bigint) {
    for (const chunk of chunkDocuments(documents, INSERT_CHUNK_ROWS, INSERT_CHUNK_JSON_CHARS)) {
      await connection.query("INSERT INTO documents (id, ts, table_number, json, prev_ts) VALUES ?", [
        chunk.map((d) => [utf8(d.id), d.ts, d.tableNumber, d.json, d.prevTs]),
      ]);
    }
    for (let start = 0; start < entries.length; start += INSERT_CHUNK_ROWS) {
      const chunk = entries.slice(start, start + INSERT_CHUNK_ROWS);
      await connection.query("INSERT INTO indexes (index_id, index_key, ts, deleted, document_id) VALUES ?", [
        chunk.map(({ ts, entry }) => [entry.indexId, entry.key, ts, entry.deleted ? 1 : 0, utf8(entry.documentId)]),
      ]);
    }
    for (const chunk of chunkResults(results, INSERT_CHUNK_ROWS, INSERT_CHUNK_JSON_CHARS)) {
      await connection.query("INSERT INTO mutation_results (ts, result_key, json) VALUES ?", [
        chunk.map(({ ts, result }) => [ts, result.key, result.valueJson]),
      ]);
    }
    await connection.query(
      "INSERT INTO meta (name, value) VALUES (?, ?) ON DUPLICATE KEY UPDATE value = VALUES(value)",
      [utf8(META_MAX_TS), newMaxTs.toString()],
    );
  }

  maxTs(): Promise<bigint> {
    return this.#commits.maxTs();
  }

  async getGlobal(key: string): Promise<string | null> {
    this.assertOpen();
    const rows = await this.queryRows<{ value: string }>("SELECT value FROM globals WHERE name = ?", [utf8(key)]);
    return rows.length === 0 ? null : rows[0].value;
  }

  async setGlobals(entries: Record<string, string | null>): Promise<void> {
    this.assertOpen();
    const { upserts, deletes: deletedKeys } = splitGlobals(entries);
    if (upserts.length === 0 && deletedKeys.length === 0) return;
    const deletes = deletedKeys.map(utf8);
    await this.withConnection((connection) =>
      inTransaction(connection, async () => {
        if (upserts.length > 0) {
          await connection.query(
            "INSERT INTO globals (name, value) VALUES ? ON DUPLICATE KEY UPDATE value = VALUES(value)",
            [upserts.map(([key, value]) => [utf8(key), value])],
          );
        }
        if (deletes.length > 0) await connection.query("DELETE FROM globals WHERE name IN (?)", [deletes]);
      })
    );
  }

  async listGlobals(prefix: string): Promise<string[]> {
    this.assertOpen();
    const upperBound = prefixUpperBound(prefix);
    const limit = MAX_LISTED_GLOBALS + 1;
    const rows = upperBound === null
      ? await this.queryRows<{ name: Uint8Array }>(
        "SELECT name FROM globals WHERE name >= ? ORDER BY name LIMIT ?",
        [utf8(prefix), limit],
      )
      : await this.queryRows<{ name: Uint8Array }>(
        "SELECT name FROM globals WHERE name >= ? AND name < ? ORDER BY name LIMIT ?",
        [utf8(prefix), utf8(upperBound), limit],
      );
    assert(rows.length <= MAX_LISTED_GLOBALS, `more than ${MAX_LISTED_GLOBALS} globals start with "${prefix}"`);
    const decoder = new TextDecoder();
    return rows.map((row) => decoder.decode(row.name));
  }

  async getMutationResult(key: Uint8Array): Promise<StoredMutationResult | null> {
    this.assertOpen();
    const rows = await this.queryRows<{ ts: string | number; json: string }>(
      "SELECT ts, json FROM mutation_results WHERE result_key = ?",
      [key],
    );
    return rows.length === 0 ? null : { ts: BigInt(rows[0].ts), valueJson: rows[0].json };
  }

  async sweepMutationResults(beforeTs: bigint, maxRows: number): Promise<number> {
    this.assertOpen();
    assertValidPrune(beforeTs, maxRows);
    return await this.withConnection(async (connection) => {
      const [result] = await connection.query("DELETE FROM mutation_results WHERE ts < ? ORDER BY ts LIMIT ?", [
        beforeTs,
        maxRows,
      ]);
      return (result as { affectedRows: number }).affectedRows;
    }, MAINTENANCE_DEADLINE_MS);
  }

  async prune(retainTs: bigint, maxRows: number): Promise<{ removedRows: number; done: boolean }> {
    this.assertOpen();
    assertValidPrune(retainTs, maxRows);
    // One transaction per call; commits proceed on other pool connections (prune only deletes rows below retainTs).
    // The named lock keeps two concurrent calls from walking from the same cursor.
    return await this.withConnection(
      (connection) =>
        withNamedLock(
          connection,
          "prune",
          () => inTransaction(connection, () => pruneMysql(connection, retainTs, maxRows)),
        ),
      MAINTENANCE_DEADLINE_MS,
    );
  }

  openReader(): Promise<PersistenceReader> {
    return openMysqlReader(this.#url);
  }
}
