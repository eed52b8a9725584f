/**
 * PostgreSQL read side: snapshot point reads and index range scans, each one statement (postgres.js prepares and
 * caches them per connection). Private to `src/persistence/`; the public entry points are in `postgres.ts`.
 */

import { assert, assertTs, assertValidScan, PersistenceError } from "./_shared.ts";
import type { Sql } from "./_postgres_schema.ts";
import { withDeadline } from "./_postgres_errors.ts";

/** How long `close` lets in-flight statements finish before it destroys the connections, in seconds. */
const CLOSE_TIMEOUT_S = 1;
/** How long a read may wait for PostgreSQL before its pool counts as broken and is replaced. */
export const READ_DEADLINE_MS = 5_000;
import type { DocumentRevision, IndexScan, IndexScanRow, PersistenceReader } from "./types.ts";

interface DocumentRow {
  ts: bigint;
  table_number: number;
  json: string | null;
  prev_ts: bigint | null;
}

interface ScanRow {
  key: Uint8Array;
  id: string | null;
  ts: bigint;
  table_number: number;
  json: string | null;
  prev_ts: bigint | null;
}

/**
 * Per key the newest entry at or before the snapshot, streamed in index order so the LIMIT stops the scan early:
 * ascending, `lead` marks the last (newest) row of each key while the primary key is read forwards; descending,
 * `DISTINCT ON` keeps the first row of each key while the primary key is read backwards (ascending DISTINCT ON
 * would need `key ASC, ts DESC`, which the index cannot give, and PostgreSQL would sort the whole range).
 * Parameters: $1 index id, $2 low key, $3 high key (unused when unbounded), $4 snapshot ts, $5 limit.
 */
function scanSql(order: "asc" | "desc", bounded: boolean): string {
  const range = `index_id = $1 AND key >= $2 ${bounded ? "AND key < $3" : "AND $3::bytea IS NULL"} AND ts <= $4`;
  const newest = order === "asc"
    ? `SELECT key, deleted, document_id FROM (
         SELECT key, deleted, document_id, lead(key) OVER (ORDER BY key, ts) AS next_key FROM indexes WHERE ${range}
       ) AS entries WHERE next_key IS DISTINCT FROM key`
    : `SELECT DISTINCT ON (key) key, deleted, document_id FROM indexes WHERE ${range} ORDER BY key DESC, ts DESC`;
  const direction = order === "asc" ? "ASC" : "DESC";
  return `SELECT i.key, d.id, d.ts, d.table_number, d.json, d.prev_ts
    FROM (${newest}) AS i
    LEFT JOIN LATERAL (
      SELECT id, ts, table_number, json, prev_ts FROM documents
      WHERE id = i.document_id AND ts <= $4 ORDER BY ts DESC LIMIT 1
    ) AS d ON true
    WHERE NOT i.deleted
    ORDER BY i.key ${direction}
    LIMIT $5`;
}

const SCAN_SQL = {
  asc: { bounded: scanSql("asc", true), unbounded: scanSql("asc", false) },
  desc: { bounded: scanSql("desc", true), unbounded: scanSql("desc", false) },
};

/** Reads through one postgres.js pool. The writer extends it to share its pool. */
export class PostgresReader implements PersistenceReader {
  #closed = false;
  #sql: Sql;
  readonly #reconnect: (() => Sql) | null;

  /** `reconnect` opens a fresh pool to replace one that stopped answering (null: keep the one pool). */
  constructor(sql: Sql, reconnect: (() => Sql) | null = null) {
    this.#sql = sql;
    this.#reconnect = reconnect;
  }

  /** The current pool (replaced after it stops answering). */
  protected get sql(): Sql {
    return this.#sql;
  }

  /**
   * Awaits a statement started on `this.sql` for at most `deadlineMs`, with driver errors made clean
   * (_postgres_errors.ts); a pool that misses the deadline is replaced.
   */
  protected guarded<T>(operation: PromiseLike<T>, deadlineMs = READ_DEADLINE_MS): Promise<T> {
    const pool = this.#sql;
    return withDeadline(operation, deadlineMs, () => this.#replacePool(pool));
  }

  #replacePool(stale: Sql): void {
    if (this.#reconnect === null || this.#closed || this.#sql !== stale) return;
    this.#sql = this.#reconnect();
    // Destroys its connections: a transaction left open on one can no longer commit late.
    stale.end({ timeout: 0 }).catch(() => {});
  }

  async getDocument(id: string, snapshotTs: bigint): Promise<DocumentRevision | null> {
    this.assertOpen();
    assertTs(snapshotTs, "snapshotTs");
    const rows = await this.guarded(this.sql<DocumentRow[]>`
      SELECT ts, table_number, json, prev_ts FROM documents
      WHERE id = ${id} AND ts <= ${snapshotTs} ORDER BY ts DESC LIMIT 1`);
    if (rows.length === 0) return null;
    const row = rows[0];
    return { id, ts: row.ts, tableNumber: row.table_number, json: row.json, prevTs: row.prev_ts };
  }

  async scanIndex(scan: IndexScan): Promise<IndexScanRow[]> {
    this.assertOpen();
    assertValidScan(scan);
    if (scan.limit === 0) return [];
    const sqlText = scan.highKey === null ? SCAN_SQL[scan.order].unbounded : SCAN_SQL[scan.order].bounded;
    const rows = await this.guarded(this.sql.unsafe<ScanRow[]>(
      sqlText,
      [scan.indexId, scan.lowKey, scan.highKey, scan.snapshotTs, scan.limit],
      { prepare: true },
    ));
    return rows.map((row) => {
      if (row.id === null) {
        throw new PersistenceError(`index ${scan.indexId} has a live entry without a document at ${scan.snapshotTs}`);
      }
      return {
        key: row.key,
        document: { id: row.id, ts: row.ts, tableNumber: row.table_number, json: row.json, prevTs: row.prev_ts },
      };
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // In-flight statements get a moment; a connection stuck connecting must not hold the shutdown.
    await this.sql.end({ timeout: CLOSE_TIMEOUT_S });
  }

  /** Fails fast on use after close, with a clearer message than postgres.js's. */
  protected assertOpen(): void {
    assert(!this.#closed, "persistence is closed");
  }
}
