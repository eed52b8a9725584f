/**
 * What the SQLite and PostgreSQL retention walks (`_sqlite_prune.ts`, `_postgres_prune.ts`) share: one budget per
 * call, drawn on by documents first and then index entries, and the durable cursors (in `meta`) each walk resumes
 * from. Private to `src/persistence/`.
 */
import { bytesToHex, hexToBytes } from "./_shared.ts";

/** Prune candidates read per database transaction; keeps each prune transaction short. */
export const PRUNE_CHUNK_CANDIDATES = 512;

/** What one prune call may still do; both counts only go down. */
export interface PruneBudget {
  examineRows: number;
  removeRows: number;
}

/** The outcome of one prune call. */
export interface PruneResult {
  removedRows: number;
  /** True once nothing at or before the retained ts is left to examine. */
  done: boolean;
}

/** Prunes documents, then (once they are done) index entries, within one budget of `maxRows`. */
export function pruneInOrder(
  maxRows: number,
  pruneDocuments: (budget: PruneBudget) => boolean,
  pruneIndexEntries: (budget: PruneBudget) => boolean,
): PruneResult {
  const budget: PruneBudget = { examineRows: maxRows, removeRows: maxRows };
  const done = pruneDocuments(budget) && pruneIndexEntries(budget);
  return { removedRows: maxRows - budget.removeRows, done };
}

/** `pruneInOrder` for walks that wait on the database. */
export async function pruneInOrderAsync(
  maxRows: number,
  pruneDocuments: (budget: PruneBudget) => Promise<boolean>,
  pruneIndexEntries: (budget: PruneBudget) => Promise<boolean>,
): Promise<PruneResult> {
  const budget: PruneBudget = { examineRows: maxRows, removeRows: maxRows };
  const done = await pruneDocuments(budget) && await pruneIndexEntries(budget);
  return { removedRows: maxRows - budget.removeRows, done };
}

/** Durable progress of `prune` over documents: every candidate at or before (ts, id) has been processed. */
export interface DocumentsPruneCursor {
  ts: bigint;
  id: string;
}

/** Durable progress of `prune` over index entries: every candidate at or before (ts, indexId, key) is processed. */
export interface IndexesPruneCursor {
  ts: bigint;
  indexId: number;
  key: Uint8Array;
}

/** A cursor's meta-table key and text form; a missing cursor decodes to one that sorts before every row. */
export interface PruneCursorCodec<Cursor> {
  metaKey: string;
  encode(cursor: Cursor): string;
  decode(text: string | null | undefined): Cursor;
}

/** The documents walk's cursor. */
export const DOCUMENTS_CURSOR: PruneCursorCodec<DocumentsPruneCursor> = {
  metaKey: "prune_documents",
  encode: (cursor) => JSON.stringify({ ts: cursor.ts.toString(), id: cursor.id }),
  decode(text) {
    if (text === null || text === undefined) return { ts: -1n, id: "" };
    const parsed = JSON.parse(text) as { ts: string; id: string };
    return { ts: BigInt(parsed.ts), id: parsed.id };
  },
};

/** The index entries walk's cursor. */
export const INDEXES_CURSOR: PruneCursorCodec<IndexesPruneCursor> = {
  metaKey: "prune_indexes",
  encode: (cursor) =>
    JSON.stringify({ ts: cursor.ts.toString(), indexId: cursor.indexId, key: bytesToHex(cursor.key) }),
  decode(text) {
    if (text === null || text === undefined) return { ts: -1n, indexId: 0, key: new Uint8Array(0) };
    const parsed = JSON.parse(text) as { ts: string; indexId: number; key: string };
    return { ts: BigInt(parsed.ts), indexId: parsed.indexId, key: hexToBytes(parsed.key) };
  },
};
