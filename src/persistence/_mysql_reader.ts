/**
 * MySQL / MariaDB read side: snapshot point reads and index range scans, each one statement on one pooled
 * connection. Private to `src/persistence/`; the public entry points are in `mysql.ts`.
 */

import { assert, assertTs, assertValidScan, PersistenceError } from "./_shared.ts";
import type { Connection, Pool } from "./_mysql_schema.ts";
import { withDeadline } from "./_mysql_errors.ts";
import type { DocumentRevision, IndexScan, IndexScanRow, PersistenceReader } from "./types.ts";

/** How long a read may wait for MySQL before its connection counts as broken and is destroyed. */
export const READ_DEADLINE_MS = 5_000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Text as the bytes a VARBINARY column stores (UTF-8). */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** A VARBINARY value (a Node Buffer from mysql2) as text. */
export function fromUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** A VARBINARY value as a plain Uint8Array of its own (a Buffer may share a pooled ArrayBuffer). */
export function ownBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

/** A BIGINT column (a decimal string with `bigNumberStrings`) as a bigint. */
export function toBigint(value: string | number | null): bigint | null {
  return value === null ? null : BigInt(value);
}

interface DocumentRow {
  ts: string;
  table_number: number;
  json: string | null;
  prev_ts: string | null;
}

interface ScanRow extends Omit<DocumentRow, "ts"> {
  index_key: Uint8Array;
  id: Uint8Array | null;
  ts: string | null;
}

/**
 * The live entries of a range at a snapshot, in index order: a row is the newest entry of its key at or before the
 * snapshot (a correlated MAX over the primary key) and not a delete, joined with its document's newest revision at
 * the snapshot. Read in primary-key order, so LIMIT stops the scan early. MariaDB has no LATERAL join, hence the
 * correlated subqueries. The parameters are bound by `scanIndex`.
 */
function scanSql(order: "asc" | "desc", bounded: boolean): string {
  return `SELECT i.index_key, d.id, d.ts, d.table_number, d.json, d.prev_ts
    FROM indexes AS i
    LEFT JOIN documents AS d ON d.id = i.document_id
      AND d.ts = (SELECT MAX(d2.ts) FROM documents AS d2 WHERE d2.id = i.document_id AND d2.ts <= ?)
    WHERE i.index_id = ? AND i.index_key >= ? ${bounded ? "AND i.index_key < ?" : ""} AND i.ts <= ?
      AND i.ts = (SELECT MAX(j.ts) FROM indexes AS j
                  WHERE j.index_id = i.index_id AND j.index_key = i.index_key AND j.ts <= ?)
      AND i.deleted = 0
    ORDER BY i.index_key ${order === "asc" ? "ASC" : "DESC"}
    LIMIT ?`;
}

const SCAN_SQL = {
  asc: { bounded: scanSql("asc", true), unbounded: scanSql("asc", false) },
  desc: { bounded: scanSql("desc", true), unbounded: scanSql("desc", false) },
};

/** Reads through one mysql2 pool. The writer extends it to share its pool. */
export class MysqlReader implements PersistenceReader {
  #closed = false;
  protected readonly pool: Pool;

  constructor(pool: Pool) {
    this.pool = pool;
  }

  /**
   * Runs `work` on one pooled connection for at most `deadlineMs`, with driver errors made clean
   * (_mysql_errors.ts). A connection that misses the deadline is destroyed, so a transaction left open on it can
   * never commit late; a connection that failed is destroyed rather than handed to the next caller.
   */
  protected async withConnection<T>(
    work: (connection: Connection) => Promise<T>,
    deadlineMs = READ_DEADLINE_MS,
  ): Promise<T> {
    let connection: Connection | null = null;
    let abandoned = false;
    const run = (async () => {
      connection = await this.pool.getConnection();
      if (abandoned) {
        connection.destroy();
        throw new Error("abandoned");
      }
      try {
        const result = await work(connection);
        connection.release();
        return result;
      } catch (error) {
        connection.destroy();
        throw error;
      }
    })();
    return await withDeadline(run, deadlineMs, () => {
      abandoned = true;
      run.catch(() => {});
      (connection as Connection | null)?.destroy();
    });
  }

  /** One statement on a pooled connection; rows come back as objects. */
  protected async queryRows<Row>(sql: string, values: unknown[], deadlineMs = READ_DEADLINE_MS): Promise<Row[]> {
    return await this.withConnection(async (connection) => {
      const [rows] = await connection.query(sql, values);
      return rows as Row[];
    }, deadlineMs);
  }

  async getDocument(id: string, snapshotTs: bigint): Promise<DocumentRevision | null> {
    this.assertOpen();
    assertTs(snapshotTs, "snapshotTs");
    const rows = await this.queryRows<DocumentRow>(
      "SELECT ts, table_number, json, prev_ts FROM documents WHERE id = ? AND ts <= ? ORDER BY ts DESC LIMIT 1",
      [utf8(id), snapshotTs],
    );
    if (rows.length === 0) return null;
    const row = rows[0];
    return { id, ts: BigInt(row.ts), tableNumber: row.table_number, json: row.json, prevTs: toBigint(row.prev_ts) };
  }

  async scanIndex(scan: IndexScan): Promise<IndexScanRow[]> {
    this.assertOpen();
    assertValidScan(scan);
    if (scan.limit === 0) return [];
    const ts = scan.snapshotTs;
    const values = scan.highKey === null
      ? [ts, scan.indexId, scan.lowKey, ts, ts, scan.limit]
      : [ts, scan.indexId, scan.lowKey, scan.highKey, ts, ts, scan.limit];
    const sqlText = scan.highKey === null ? SCAN_SQL[scan.order].unbounded : SCAN_SQL[scan.order].bounded;
    const rows = await this.queryRows<ScanRow>(sqlText, values);
    return rows.map((row) => {
      if (row.id === null || row.ts === null) {
        throw new PersistenceError(`index ${scan.indexId} has a live entry without a document at ${scan.snapshotTs}`);
      }
      return {
        key: ownBytes(row.index_key),
        document: {
          id: fromUtf8(row.id),
          ts: BigInt(row.ts),
          tableNumber: row.table_number,
          json: row.json,
          prevTs: toBigint(row.prev_ts),
        },
      };
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.pool.end().catch(() => {});
  }

  /** Fails fast on use after close, with a clearer message than mysql2's. */
  protected assertOpen(): void {
    assert(!this.#closed, "persistence is closed");
  }
}
