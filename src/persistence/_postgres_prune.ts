/**
 * PostgreSQL retention: the same walk as `_sqlite_prune.ts` (rows in ts order from durable cursors in `meta`; each
 * row at or before `retainTs` removes the older revisions of its document / key, and a tombstone removes itself
 * after its history), done set-wise per chunk to save round trips: one query reads the chunk, one finds the victims
 * of the whole chunk oldest first, one deletes them.
 * Private to `src/persistence/`.
 */

import type postgres from "postgres";
import { bytesToHex } from "./_shared.ts";
import { type ChunkedPrune, pruneChunked, type PruneResult } from "./_prune_shared.ts";

/** A transaction handle of the writer's pool. */
type Tx = postgres.TransactionSql<{ bigint: bigint; bytea: Uint8Array }>;

/** One bounded prune pass inside the caller's transaction. */
export function prunePostgres(tx: Tx, retainTs: bigint, maxRows: number): Promise<PruneResult> {
  return pruneChunked(POSTGRES_PRUNE, tx, retainTs, maxRows);
}

/** This database's walks and cursor rows, for `pruneChunked`. */
type PostgresPrune = ChunkedPrune<Tx, DocumentCandidate, IndexCandidate>;

async function readMeta(tx: Tx, key: string): Promise<string | undefined> {
  const rows = await tx<{ value: string }[]>`SELECT value FROM meta WHERE key = ${key}`;
  return rows[0]?.value;
}

async function writeMeta(tx: Tx, key: string, value: string): Promise<void> {
  await tx`INSERT INTO meta (key, value) VALUES (${key}, ${value})
           ON CONFLICT (key) DO UPDATE SET value = excluded.value`;
}

/** A candidate row of the documents walk. */
type DocumentCandidate = { id: string; ts: bigint; tombstone: boolean };

const documentsWalk: PostgresPrune["documentsWalk"] = (tx, retainTs, cursor) => ({
  candidates: (chunkSize) =>
    tx<DocumentCandidate[]>`
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

/** A candidate row of the index entries walk. */
type IndexCandidate = { index_id: number; key: Uint8Array; ts: bigint; deleted: boolean };

const indexesWalk: PostgresPrune["indexesWalk"] = (tx, retainTs, cursor) => ({
  candidates: (chunkSize) =>
    tx<IndexCandidate[]>`
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

const POSTGRES_PRUNE: PostgresPrune = { readMeta, writeMeta, documentsWalk, indexesWalk };
