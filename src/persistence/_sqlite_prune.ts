/**
 * SQLite retention. Walks documents and index entries in ts order from durable cursors (in `meta`); each row at or
 * before `retainTs` removes the older revisions of its document / key, which no snapshot at or after `retainTs` can
 * read, and a tombstone removes itself too: a snapshot at or after `retainTs` sees either a newer row or the
 * tombstone, and "no row" reads the same as a tombstone. Deleting oldest first means a call that stops part-way
 * never exposes an older revision. A document revision with a null `prevTs` is taken at its word: it has no older
 * revision to remove (a document re-created after a delete is still covered: the tombstone removed its history).
 * Private to `src/persistence/`.
 */

import type { DatabaseSync, StatementSync } from "node:sqlite";
import {
  decodeDocumentsCursor,
  decodeIndexesCursor,
  encodeDocumentsCursor,
  encodeIndexesCursor,
  META_PRUNE_DOCUMENTS,
  META_PRUNE_INDEXES,
  PRUNE_CHUNK_CANDIDATES,
} from "./_shared.ts";
import { type ArrayStatement, prepareArrays } from "./_sqlite_reader.ts";

/** What one prune call may still do; both counts only go down. */
interface Budget {
  examineRows: number;
  removeRows: number;
}

/** The prepared statements of retention, created once per writer. */
export class SqlitePruner {
  readonly #getMeta: ArrayStatement;
  readonly #setMeta: StatementSync;
  readonly #documentCandidates: ArrayStatement;
  readonly #deleteDocuments: StatementSync;
  readonly #entryCandidates: ArrayStatement;
  readonly #deleteEntries: StatementSync;

  constructor(db: DatabaseSync) {
    this.#getMeta = prepareArrays(db, "SELECT value FROM meta WHERE key = ?");
    this.#setMeta = db.prepare(
      "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    );
    this.#documentCandidates = prepareArrays(
      db,
      `SELECT id, ts, json IS NULL FROM documents
       WHERE (prev_ts IS NOT NULL OR json IS NULL) AND ts <= ?1 AND (ts, id) > (?2, ?3) ORDER BY ts, id LIMIT +?4`,
    );
    // ?3 is 1 when the candidate itself goes too (a tombstone): ts are integers, so `ts < ?2 + 1` is `ts <= ?2`.
    this.#deleteDocuments = db.prepare(
      `DELETE FROM documents WHERE rowid IN (
         SELECT rowid FROM documents WHERE id = ?1 AND ts < ?2 + ?3 ORDER BY ts LIMIT +?4)`,
    );
    this.#entryCandidates = prepareArrays(
      db,
      `SELECT index_id, key, ts, deleted FROM indexes
       WHERE ts <= ?1 AND (ts, index_id, key) > (?2, ?3, ?4) ORDER BY ts, index_id, key LIMIT +?5`,
    );
    this.#deleteEntries = db.prepare(
      `DELETE FROM indexes WHERE index_id = ?1 AND key = ?2 AND ts IN (
         SELECT ts FROM indexes WHERE index_id = ?1 AND key = ?2 AND ts < ?3 + ?4 ORDER BY ts LIMIT +?5)`,
    );
  }

  /** One bounded prune pass; the caller wraps it in a transaction. */
  prune(retainTs: bigint, maxRows: number): { removedRows: number; done: boolean } {
    const budget: Budget = { examineRows: maxRows, removeRows: maxRows };
    const documentsDone = this.#pruneDocuments(retainTs, budget);
    const done = documentsDone && this.#pruneIndexEntries(retainTs, budget);
    return { removedRows: maxRows - budget.removeRows, done };
  }

  /** Returns true once no document row at or before `retainTs` is left past the cursor. */
  #pruneDocuments(retainTs: bigint, budget: Budget): boolean {
    const cursor = decodeDocumentsCursor(this.#readMeta(META_PRUNE_DOCUMENTS));
    let finished = false;
    let stopped = false;
    while (!finished && !stopped) {
      if (budget.examineRows === 0 || budget.removeRows === 0) break;
      const chunkSize = Math.min(PRUNE_CHUNK_CANDIDATES, budget.examineRows);
      const rows = this.#documentCandidates.all(retainTs, cursor.ts, cursor.id, chunkSize);
      finished = rows.length < chunkSize;
      for (const [id, ts, isTombstone] of rows as [string, bigint, bigint][]) {
        if (budget.removeRows === 0) {
          stopped = true;
          break;
        }
        budget.examineRows--;
        const limit = budget.removeRows;
        const removed = Number(this.#deleteDocuments.run(id, ts, isTombstone, limit).changes);
        budget.removeRows -= removed;
        // Hitting the limit may have left older revisions: keep the cursor before this row to revisit it.
        if (removed === limit) {
          stopped = true;
          break;
        }
        cursor.ts = ts;
        cursor.id = id;
      }
    }
    this.#setMeta.run(META_PRUNE_DOCUMENTS, encodeDocumentsCursor(cursor));
    return finished && !stopped;
  }

  /** Returns true once no index entry at or before `retainTs` is left past the cursor. */
  #pruneIndexEntries(retainTs: bigint, budget: Budget): boolean {
    const cursor = decodeIndexesCursor(this.#readMeta(META_PRUNE_INDEXES));
    let finished = false;
    let stopped = false;
    while (!finished && !stopped) {
      if (budget.examineRows === 0 || budget.removeRows === 0) break;
      const chunkSize = Math.min(PRUNE_CHUNK_CANDIDATES, budget.examineRows);
      const rows = this.#entryCandidates.all(
        retainTs,
        cursor.ts,
        cursor.indexId,
        cursor.key,
        chunkSize,
      );
      finished = rows.length < chunkSize;
      for (const [indexIdBig, key, ts, deleted] of rows as [bigint, Uint8Array, bigint, bigint][]) {
        if (budget.removeRows === 0) {
          stopped = true;
          break;
        }
        budget.examineRows--;
        const indexId = Number(indexIdBig);
        const limit = budget.removeRows;
        const removed = Number(this.#deleteEntries.run(indexId, key, ts, deleted, limit).changes);
        budget.removeRows -= removed;
        if (removed === limit) {
          stopped = true;
          break;
        }
        cursor.ts = ts;
        cursor.indexId = indexId;
        cursor.key = key;
      }
    }
    this.#setMeta.run(META_PRUNE_INDEXES, encodeIndexesCursor(cursor));
    return finished && !stopped;
  }

  #readMeta(key: string): string | undefined {
    const row = this.#getMeta.get(key);
    return row === undefined ? undefined : row[0] as string;
  }
}
