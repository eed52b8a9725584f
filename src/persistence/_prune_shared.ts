/**
 * What the retention walks (`_sqlite_prune.ts`, `_postgres_prune.ts`, `_mysql_prune.ts`) share: one budget per
 * call, drawn on by documents first and then index entries, the durable cursors (in `meta`) each walk resumes from,
 * and the chunked, set-wise walk of the server databases. Private to `src/persistence/`.
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

/** A victim row, found for the candidate at position `ord` (1-based) of its chunk. */
export interface Victim {
  ord: number;
  identity: string;
}

/**
 * Picks the victims to delete within `removeRows` and says how many candidates of the chunk are complete (all their
 * victims deleted). Victims come ordered by candidate then ts, fetched with LIMIT removeRows + 1, so one more row
 * than the budget means the candidate it belongs to (and every later one) is not complete.
 */
function planChunk(victims: Victim[], candidateCount: number, removeRows: number) {
  const chosen = new Set<string>();
  let completeCandidates = candidateCount;
  for (let i = 0; i < victims.length; i++) {
    if (i === removeRows) {
      completeCandidates = victims[i].ord - 1;
      break;
    }
    chosen.add(victims[i].identity); // a Set, as two candidates of one document share older victims
  }
  return { chosen, completeCandidates };
}

/** How one walk reads a chunk of candidates past its cursor, finds and deletes their victims, and moves its cursor. */
export interface ChunkWalk<Candidate> {
  candidates(chunkSize: number): Promise<Candidate[]>;
  /** Victims of the chunk, ordered by candidate then ts, at most `limit`. */
  victims(candidates: Candidate[], limit: number): Promise<Victim[]>;
  /** Deletes the victims with these identities; returns how many rows went. */
  remove(identities: string[]): Promise<number>;
  advance(candidate: Candidate): void;
}

/** Walks candidates chunk by chunk within `budget`; true once none is left past the cursor. */
async function walkChunks<Candidate>(budget: PruneBudget, walk: ChunkWalk<Candidate>): Promise<boolean> {
  while (budget.examineRows > 0 && budget.removeRows > 0) {
    const chunkSize = Math.min(PRUNE_CHUNK_CANDIDATES, budget.examineRows);
    const candidates = await walk.candidates(chunkSize);
    if (candidates.length === 0) return true;
    const victims = await walk.victims(candidates, budget.removeRows + 1);
    const { chosen, completeCandidates } = planChunk(victims, candidates.length, budget.removeRows);
    if (chosen.size > 0) budget.removeRows -= await walk.remove([...chosen]);
    budget.examineRows -= completeCandidates;
    if (completeCandidates > 0) walk.advance(candidates[completeCandidates - 1]);
    if (completeCandidates < candidates.length) return false; // out of removal budget mid-chunk
    if (candidates.length < chunkSize) return true;
  }
  return false;
}

/**
 * A server database's chunked prune, on `Context` (its transaction or connection): the `meta` rows holding the
 * walks' cursors, read and written inside the caller's prune transaction, and the two walks. A walk's `advance`
 * moves the cursor object it was built on.
 */
export interface ChunkedPrune<Context, DocumentCandidate, IndexCandidate> {
  readMeta(context: Context, key: string): Promise<string | undefined>;
  writeMeta(context: Context, key: string, value: string): Promise<void>;
  documentsWalk(context: Context, retainTs: bigint, cursor: DocumentsPruneCursor): ChunkWalk<DocumentCandidate>;
  indexesWalk(context: Context, retainTs: bigint, cursor: IndexesPruneCursor): ChunkWalk<IndexCandidate>;
}

/** Runs one chunked walk from its durable cursor and stores where it got to; true once it is done. */
async function walkFromCursor<Context, Cursor, Candidate>(
  budget: PruneBudget,
  codec: PruneCursorCodec<Cursor>,
  prune: ChunkedPrune<Context, unknown, unknown>,
  context: Context,
  walkFrom: (cursor: Cursor) => ChunkWalk<Candidate>,
): Promise<boolean> {
  const cursor = codec.decode(await prune.readMeta(context, codec.metaKey));
  const done = await walkChunks(budget, walkFrom(cursor));
  await prune.writeMeta(context, codec.metaKey, codec.encode(cursor));
  return done;
}

/** One bounded prune pass of a server database inside the caller's transaction: documents, then index entries. */
export function pruneChunked<Context, DocumentCandidate, IndexCandidate>(
  prune: ChunkedPrune<Context, DocumentCandidate, IndexCandidate>,
  context: Context,
  retainTs: bigint,
  maxRows: number,
): Promise<PruneResult> {
  return pruneInOrderAsync(
    maxRows,
    (budget) =>
      walkFromCursor(
        budget,
        DOCUMENTS_CURSOR,
        prune,
        context,
        (cursor) => prune.documentsWalk(context, retainTs, cursor),
      ),
    (budget) =>
      walkFromCursor(budget, INDEXES_CURSOR, prune, context, (cursor) => prune.indexesWalk(context, retainTs, cursor)),
  );
}
