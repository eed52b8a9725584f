/**
 * PostgreSQL retention: the same walk as `_sqlite_prune.ts` (rows in ts order from durable cursors in `meta`; each
 * row at or before `retainTs` removes the older revisions of its document / key, and a tombstone removes itself
 * after its history), done set-wise per chunk to save round trips: one query reads the chunk, one finds the victims
 * of the whole chunk oldest first, one deletes them.
 * Private to `src/persistence/`.
 */

import type postgres from "postgres";
import { bytesToHex } from "./_shared.ts";
import {
  DOCUMENTS_CURSOR,
  INDEXES_CURSOR,
  PRUNE_CHUNK_CANDIDATES,
  type PruneBudget,
  pruneInOrderAsync,
  type PruneResult,
} from "./_prune_shared.ts";

/** A transaction handle of the writer's pool. */
type Tx = postgres.TransactionSql<{ bigint: bigint; bytea: Uint8Array }>;

/** One bounded prune pass inside the caller's transaction. */
export function prunePostgres(tx: Tx, retainTs: bigint, maxRows: number): Promise<PruneResult> {
  return pruneInOrderAsync(
    maxRows,
    (budget) => pruneDocuments(tx, retainTs, budget),
    (budget) => pruneIndexEntries(tx, retainTs, budget),
  );
}

/** A victim row, found for the candidate at position `ord` (1-based) of its chunk. */
interface Victim {
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

async function readMeta(tx: Tx, key: string): Promise<string | undefined> {
  const rows = await tx<{ value: string }[]>`SELECT value FROM meta WHERE key = ${key}`;
  return rows[0]?.value;
}

async function writeMeta(tx: Tx, key: string, value: string): Promise<void> {
  await tx`INSERT INTO meta (key, value) VALUES (${key}, ${value})
           ON CONFLICT (key) DO UPDATE SET value = excluded.value`;
}

/** How one walk reads a chunk of candidates past its cursor, finds and deletes their victims, and moves its cursor. */
interface ChunkWalk<Candidate> {
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

async function pruneDocuments(tx: Tx, retainTs: bigint, budget: PruneBudget): Promise<boolean> {
  const cursor = DOCUMENTS_CURSOR.decode(await readMeta(tx, DOCUMENTS_CURSOR.metaKey));
  const done = await walkChunks(budget, {
    candidates: (chunkSize) =>
      tx<{ id: string; ts: bigint; tombstone: boolean }[]>`
        SELECT id, ts, json IS NULL AS tombstone FROM documents
        WHERE (prev_ts IS NOT NULL OR json IS NULL) AND ts <= ${retainTs} AND (ts, id) > (${cursor.ts}, ${cursor.id})
        ORDER BY ts, id LIMIT ${chunkSize}`,
    victims: async (candidates, limit) => {
      const rows = await tx<{ ord: number; id: string; ts: bigint }[]>`
        SELECT c.ord::int AS ord, d.id, d.ts
        FROM unnest(${tx.array(candidates.map((c) => c.id), 25)}::text[],
                    ${tx.array(candidates.map((c) => c.ts.toString()), 25)}::bigint[],
                    ${tx.array(candidates.map((c) => c.tombstone), 16)}::bool[])
             WITH ORDINALITY AS c(id, ts, tombstone, ord)
        JOIN documents AS d ON d.id = c.id AND (d.ts < c.ts OR (d.ts = c.ts AND c.tombstone))
        ORDER BY c.ord, d.ts
        LIMIT ${limit}`;
      return rows.map((v) => ({ ord: v.ord, identity: JSON.stringify([v.id, v.ts.toString()]) }));
    },
    remove: async (identities) => {
      const pairs = identities.map((identity) => JSON.parse(identity) as [string, string]);
      const result = await tx`
        DELETE FROM documents WHERE (id, ts) IN (
          SELECT * FROM unnest(${tx.array(pairs.map((p) => p[0]), 25)}::text[],
                               ${tx.array(pairs.map((p) => p[1]), 25)}::bigint[]))`;
      return result.count;
    },
    advance: (last) => {
      cursor.ts = last.ts;
      cursor.id = last.id;
    },
  });
  await writeMeta(tx, DOCUMENTS_CURSOR.metaKey, DOCUMENTS_CURSOR.encode(cursor));
  return done;
}

async function pruneIndexEntries(tx: Tx, retainTs: bigint, budget: PruneBudget): Promise<boolean> {
  const cursor = INDEXES_CURSOR.decode(await readMeta(tx, INDEXES_CURSOR.metaKey));
  const done = await walkChunks(budget, {
    candidates: (chunkSize) =>
      tx<{ index_id: number; key: Uint8Array; ts: bigint; deleted: boolean }[]>`
        SELECT index_id, key, ts, deleted FROM indexes
        WHERE ts <= ${retainTs} AND (ts, index_id, key) > (${cursor.ts}, ${cursor.indexId}, ${cursor.key})
        ORDER BY ts, index_id, key LIMIT ${chunkSize}`,
    victims: async (candidates, limit) => {
      const rows = await tx<{ ord: number; index_id: number; key_hex: string; ts: bigint }[]>`
        SELECT c.ord::int AS ord, e.index_id, encode(e.key, 'hex') AS key_hex, e.ts
        FROM unnest(${tx.array(candidates.map((c) => c.index_id), 23)}::int[],
                    ${tx.array(candidates.map((c) => bytesToHex(c.key)), 25)}::text[],
                    ${tx.array(candidates.map((c) => c.ts.toString()), 25)}::bigint[],
                    ${tx.array(candidates.map((c) => c.deleted), 16)}::bool[])
             WITH ORDINALITY AS c(index_id, key_hex, ts, deleted, ord)
        JOIN indexes AS e ON e.index_id = c.index_id AND e.key = decode(c.key_hex, 'hex')
          AND (e.ts < c.ts OR (e.ts = c.ts AND c.deleted))
        ORDER BY c.ord, e.ts
        LIMIT ${limit}`;
      return rows.map((v) => ({ ord: v.ord, identity: JSON.stringify([v.index_id, v.key_hex, v.ts.toString()]) }));
    },
    remove: async (identities) => {
      const triples = identities.map((identity) => JSON.parse(identity) as [number, string, string]);
      const result = await tx`
        DELETE FROM indexes WHERE (index_id, key, ts) IN (
          SELECT index_id, decode(key_hex, 'hex'), ts
          FROM unnest(${tx.array(triples.map((t) => t[0]), 23)}::int[],
                      ${tx.array(triples.map((t) => t[1]), 25)}::text[],
                      ${tx.array(triples.map((t) => t[2]), 25)}::bigint[]) AS v(index_id, key_hex, ts))`;
      return result.count;
    },
    advance: (last) => {
      cursor.ts = last.ts;
      cursor.indexId = last.index_id;
      cursor.key = last.key;
    },
  });
  await writeMeta(tx, INDEXES_CURSOR.metaKey, INDEXES_CURSOR.encode(cursor));
  return done;
}
