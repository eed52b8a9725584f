/**
 * SQLite read side: snapshot point reads and index range scans on one `node:sqlite` connection, with every
 * statement prepared once per connection. Private to `src/persistence/`; the public entry points are in `sqlite.ts`.
 */

import type { DatabaseSync, SQLInputValue, SQLOutputValue } from "node:sqlite";
import { assert, assertTs, assertValidScan, PersistenceError } from "./_shared.ts";
import type { DocumentRevision, IndexScan, IndexScanRow, PersistenceReader } from "./types.ts";

/** A prepared statement that returns rows as arrays, in column order. */
export interface ArrayStatement {
  get(...params: SQLInputValue[]): SQLOutputValue[] | undefined;
  all(...params: SQLInputValue[]): SQLOutputValue[][];
}

/**
 * Prepares `sql` to return rows as arrays (cheaper than objects: no property names per row) with every integer as
 * bigint (ts needs all 64 bits). Deno's bundled node types lack `setReturnArrays`, which Deno 2.9.6 implements.
 */
export function prepareArrays(db: DatabaseSync, sql: string): ArrayStatement {
  const statement = db.prepare(sql);
  statement.setReadBigInts(true);
  (statement as unknown as { setReturnArrays(enabled: boolean): void }).setReturnArrays(true);
  return statement as unknown as ArrayStatement;
}

/**
 * One index range at a snapshot as a single statement: per key the newest entry at or before the snapshot
 * (`max(ts)` makes SQLite take the bare columns from that row), live ones only, each joined with its document's
 * revision at the same snapshot. The inner ORDER BY lets SQLite stream the range in index order and stop at the
 * LIMIT instead of sorting the whole range. Parameters: ?1 index id, ?2 low key, ?3 high key, ?4 snapshot ts, ?5 limit.
 *
 * The key comes as hex text (see `SqliteScanRow`).
 *
 * `LIMIT +?5`, not `LIMIT ?5`: SQLite 3.53 treats a bare bound LIMIT as a planner input and re-prepares the statement
 * whenever it is rebound (measured: ~3 µs per call); the unary plus makes it a plain expression. Same elsewhere.
 *
 * Where a 10-row scan's time goes (a throwaway microbenchmark, 10,000 documents, issue 14): ~24 µs in all, of which
 * the same statement under `count(*)` takes 11 and node:sqlite's making of the 60 column values the rest; without the
 * GROUP BY it is ~5 µs less, without the document look-up 7–13. A plain `SELECT json … WHERE k = ? LIMIT 10` on a
 * table of its own takes 11–15 µs. Joining documents on the entry's ts instead of the newest revision at the snapshot
 * is not an option: a backfilled entry is written at the backfill's ts, where its document has no revision.
 */
function scanSql(order: "asc" | "desc", bounded: boolean): string {
  const direction = order === "asc" ? "ASC" : "DESC";
  return `SELECT hex(i.key), d.id, d.ts, d.table_number, d.json, d.prev_ts
    FROM (
      SELECT key, max(ts) AS entry_ts, deleted, document_id FROM indexes
      WHERE index_id = ?1 AND key >= ?2 ${bounded ? "AND key < ?3" : ""} AND ts <= ?4
      GROUP BY key ORDER BY key ${direction}
    ) AS i
    LEFT JOIN documents AS d ON d.rowid = (
      SELECT rowid FROM documents WHERE id = i.document_id AND ts <= ?4 ORDER BY ts DESC LIMIT 1
    )
    WHERE i.deleted = 0
    ORDER BY i.key ${direction}
    LIMIT +?5`;
}

/** Runs synchronous `work` and reports its result or error through a promise, as an async function would. */
export function settle<T>(work: () => T): Promise<T> {
  try {
    return Promise.resolve(work());
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * A scanned row whose key stays the hex text SQLite returned until it is read. node:sqlite gives each BLOB value an
 * ArrayBuffer of its own, ~1.3 µs per row (a 10-row scan: 40 µs with BLOB keys, 30 with hex text), and most rows' keys
 * are never read: a query stream reads the key of the document it stops at (issue 14).
 */
class SqliteScanRow implements IndexScanRow {
  readonly document: DocumentRevision;
  readonly #keyHex: string;
  #key: Uint8Array | null = null;

  constructor(keyHex: string, document: DocumentRevision) {
    this.#keyHex = keyHex;
    this.document = document;
  }

  get key(): Uint8Array {
    return this.#key ??= Uint8Array.fromHex(this.#keyHex);
  }
}

const NO_HOLD = () => {};

/** Reads on one SQLite connection. The writer extends it so its own reads share the connection and statements. */
export class SqliteReader implements PersistenceReader {
  readonly #getDocument: ArrayStatement;
  readonly #scans: Record<"asc" | "desc", { bounded: ArrayStatement; unbounded: ArrayStatement }>;
  #closed = false;

  constructor(protected readonly db: DatabaseSync) {
    this.#getDocument = prepareArrays(
      db,
      "SELECT ts, table_number, json, prev_ts FROM documents WHERE id = ? AND ts <= ? ORDER BY ts DESC LIMIT 1",
    );
    this.#scans = {
      asc: { bounded: prepareArrays(db, scanSql("asc", true)), unbounded: prepareArrays(db, scanSql("asc", false)) },
      desc: { bounded: prepareArrays(db, scanSql("desc", true)), unbounded: prepareArrays(db, scanSql("desc", false)) },
    };
  }

  getDocument(id: string, snapshotTs: bigint): Promise<DocumentRevision | null> {
    return settle(() => this.getDocumentNow(id, snapshotTs));
  }

  scanIndex(scan: IndexScan): Promise<IndexScanRow[]> {
    return settle(() => this.scanIndexNow(scan));
  }

  /** `getDocument`, synchronously. */
  getDocumentNow(id: string, snapshotTs: bigint): DocumentRevision | null {
    this.assertOpen();
    assertTs(snapshotTs, "snapshotTs");
    const row = this.#getDocument.get(id, snapshotTs);
    if (row === undefined) return null;
    return {
      id,
      ts: row[0] as bigint,
      tableNumber: Number(row[1]),
      json: row[2] as string | null,
      prevTs: row[3] as bigint | null,
    };
  }

  /** `scanIndex`, synchronously. */
  scanIndexNow(scan: IndexScan): IndexScanRow[] {
    this.assertOpen();
    assertValidScan(scan);
    if (scan.limit === 0) return [];
    const statements = this.#scans[scan.order];
    const statement = scan.highKey === null ? statements.unbounded : statements.bounded;
    const rows = statement.all(scan.indexId, scan.lowKey, scan.highKey, scan.snapshotTs, scan.limit);
    const result: IndexScanRow[] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i];
      if (row[1] === null) {
        throw new PersistenceError(`index ${scan.indexId} has a live entry without a document at ${scan.snapshotTs}`);
      }
      result[i] = new SqliteScanRow(row[0] as string, {
        id: row[1] as string,
        ts: row[2] as bigint,
        tableNumber: Number(row[3]),
        json: row[4] as string | null,
        prevTs: row[5] as bigint | null,
      });
    }
    return result;
  }

  /**
   * See `PersistenceReader.holdReads`. For a reader's own (read-only) connection: a hold while a transaction is open
   * (the writer's, or another hold) is none.
   */
  holdReads(): () => void {
    this.assertOpen();
    if (this.db.isTransaction) return NO_HOLD;
    this.db.exec("BEGIN");
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      if (!this.#closed && this.db.isTransaction) this.db.exec("COMMIT");
    };
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.db.close();
    }
    return Promise.resolve();
  }

  /** Whether the connection is still open. */
  protected get isOpen(): boolean {
    return !this.#closed;
  }

  /** Fails fast on use after close, with a clearer message than node:sqlite's. */
  protected assertOpen(): void {
    assert(!this.#closed, "persistence is closed");
  }
}
