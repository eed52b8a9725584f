/**
 * PostgreSQL read side: snapshot point reads and index range scans, each one statement (postgres.js prepares and
 * caches them per connection). Private to `src/persistence/`; the public entry points are in `postgres.ts`.
 */

import { assert, assertTs, assertValidScan, PersistenceError } from "./_shared.ts";
import type { Sql } from "./_postgres_schema.ts";
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

  constructor(protected readonly sql: Sql) {}

  async getDocument(id: string, snapshotTs: bigint): Promise<DocumentRevision | null> {
    this.assertOpen();
    assertTs(snapshotTs, "snapshotTs");
    const rows = await this.sql<DocumentRow[]>`
      SELECT ts, table_number, json, prev_ts FROM documents
      WHERE id = ${id} AND ts <= ${snapshotTs} ORDER BY ts DESC LIMIT 1`;
    if (rows.length === 0) return null;
    const row = rows[0];
    return { id, ts: row.ts, tableNumber: row.table_number, json: row.json, prevTs: row.prev_ts };
  }

  async scanIndex(scan: IndexScan): Promise<IndexScanRow[]> {
    this.assertOpen();
    assertValidScan(scan);
    if (scan.limit === 0) return [];
    const sqlText = scan.highKey === null ? SCAN_SQL[scan.order].unbounded : SCAN_SQL[scan.order].bounded;
    const rows = await this.sql.unsafe<ScanRow[]>(
      sqlText,
      [scan.indexId, scan.lowKey, scan.highKey, scan.snapshotTs, scan.limit],
      { prepare: true },
    );
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
    await this.sql.end({ timeout: 5 });
  }

  /** Fails fast on use after close, with a clearer message than postgres.js's. */
  protected assertOpen(): void {
    assert(!this.#closed, "persistence is closed");
  }
}
