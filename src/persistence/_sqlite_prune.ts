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
import { type ArrayStatement, prepareArrays } from "./_sqlite_reader.ts";
import {
  DOCUMENTS_CURSOR,
  INDEXES_CURSOR,
  PRUNE_CHUNK_CANDIDATES,
  type PruneBudget,
  pruneInOrder,
  type PruneResult,
} from "./_prune_shared.ts";

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
  prune(retainTs: bigint, maxRows: number): PruneResult {
    return pruneInOrder(
      maxRows,
      (budget) => this.#pruneDocuments(retainTs, budget),
      (budget) => this.#pruneIndexEntries(retainTs, budget),
    );
  }

  /** Returns true once no document row at or before `retainTs` is left past the cursor. */
  #pruneDocuments(retainTs: bigint, budget: PruneBudget): boolean {
    const cursor = DOCUMENTS_CURSOR.decode(this.#readMeta(DOCUMENTS_CURSOR.metaKey));
    const finished = walkCandidates(budget, {
      chunk: (chunkSize) =>
        this.#documentCandidates.all(retainTs, cursor.ts, cursor.id, chunkSize) as [string, bigint, bigint][],
      removeOlder: ([id, ts, isTombstone], limit) =>
        Number(this.#deleteDocuments.run(id, ts, isTombstone, limit).changes),
      advance: ([id, ts]) => {
        cursor.ts = ts;
        cursor.id = id;
      },
    });
    this.#setMeta.run(DOCUMENTS_CURSOR.metaKey, DOCUMENTS_CURSOR.encode(cursor));
    return finished;
  }

  /** Returns true once no index entry at or before `retainTs` is left past the cursor. */
  #pruneIndexEntries(retainTs: bigint, budget: PruneBudget): boolean {
    const cursor = INDEXES_CURSOR.decode(this.#readMeta(INDEXES_CURSOR.metaKey));
    const finished = walkCandidates(budget, {
      chunk: (chunkSize) =>
        this.#entryCandidates.all(retainTs, cursor.ts, cursor.indexId, cursor.key, chunkSize) as [
          bigint,
          Uint8Array,
          bigint,
          bigint,
        ][],
      removeOlder: ([indexId, key, ts, deleted], limit) =>
        Number(this.#deleteEntries.run(Number(indexId), key, ts, deleted, limit).changes),
      advance: ([indexId, key, ts]) => {
        cursor.ts = ts;
        cursor.indexId = Number(indexId);
        cursor.key = key;
      },
    });
    this.#setMeta.run(INDEXES_CURSOR.metaKey, INDEXES_CURSOR.encode(cursor));
    return finished;
  }

  #readMeta(key: string): string | undefined {
    const row = this.#getMeta.get(key);
    return row === undefined ? undefined : row[0] as string;
  }
}

/** How one walk reads candidates past its cursor, removes a candidate's older revisions, and moves its cursor. */
interface CandidateWalk<Row> {
  chunk(chunkSize: number): Row[];
  /** Removes up to `limit` rows the candidate supersedes; returns how many. */
  removeOlder(row: Row, limit: number): number;
  advance(row: Row): void;
}

/** Walks candidates in chunks within `budget`; true once none is left past the cursor. */
function walkCandidates<Row>(budget: PruneBudget, walk: CandidateWalk<Row>): boolean {
  for (;;) {
    if (budget.examineRows === 0 || budget.removeRows === 0) return false;
    const chunkSize = Math.min(PRUNE_CHUNK_CANDIDATES, budget.examineRows);
    const rows = walk.chunk(chunkSize);
    for (const row of rows) {
      if (budget.removeRows === 0) return false;
      budget.examineRows--;
      const limit = budget.removeRows;
      const removed = walk.removeOlder(row, limit);
      budget.removeRows -= removed;
      // Hitting the limit may have left older revisions: keep the cursor before this row to revisit it.
      if (removed === limit) return false;
      walk.advance(row);
    }
    if (rows.length < chunkSize) return true;
  }
}
