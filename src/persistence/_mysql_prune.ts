/**
 * MySQL / MariaDB retention: the same walk as `_postgres_prune.ts` (rows in ts order from durable cursors in `meta`;
 * each row at or before `retainTs` removes the older revisions of its document / key, and a tombstone removes itself
 * after its history), set-wise per chunk: one query reads the chunk, one finds the victims of the whole chunk oldest
 * first, one deletes them. The chunk travels as a `SELECT .. UNION ALL` derived table: MariaDB's `VALUES (..)` and
 * MySQL 8's `VALUES ROW(..)` table constructors differ, and neither has `unnest`.
 * Private to `src/persistence/`.
 */

import type { Connection } from "./_mysql_schema.ts";
import { fromUtf8, ownBytes, utf8 } from "./_mysql_reader.ts";
import { type ChunkedPrune, pruneChunked, type PruneResult } from "./_prune_shared.ts";
import { bytesToHex, hexToBytes } from "./_shared.ts";

/** One bounded prune pass inside the caller's transaction. */
export function pruneMysql(connection: Connection, retainTs: bigint, maxRows: number): Promise<PruneResult> {
  return pruneChunked(MYSQL_PRUNE, connection, retainTs, maxRows);
}

/** This database's walks and cursor rows, for `pruneChunked`. */
type MysqlPrune = ChunkedPrune<Connection, DocumentCandidate, IndexCandidate>;

async function rowsOf<Row>(connection: Connection, sql: string, values: unknown[]): Promise<Row[]> {
  const [rows] = await connection.query(sql, values);
  return rows as Row[];
}

/** `rows` as a derived table `(SELECT ? AS a, ? AS b UNION ALL SELECT ?, ?)` and its values. */
function derivedTable(columns: string[], rows: unknown[][]): { sql: string; values: unknown[] } {
  const first = `SELECT ${columns.map((column) => `? AS ${column}`).join(", ")}`;
  const rest = `SELECT ${columns.map(() => "?").join(", ")}`;
  const sql = rows.map((_, i) => (i === 0 ? first : rest)).join(" UNION ALL ");
  return { sql: `(${sql})`, values: rows.flat() };
}

async function readMeta(connection: Connection, name: string): Promise<string | undefined> {
  const rows = await rowsOf<{ value: string }>(connection, "SELECT value FROM meta WHERE name = ?", [utf8(name)]);
  return rows[0]?.value;
}

async function writeMeta(connection: Connection, name: string, value: string): Promise<void> {
  await connection.query(
    "INSERT INTO meta (name, value) VALUES (?, ?) ON DUPLICATE KEY UPDATE value = VALUES(value)",
    [utf8(name), value],
  );
}

/** A candidate row of the documents walk. */
type DocumentCandidate = { id: Uint8Array; ts: string; tombstone: number };

const documentsWalk: MysqlPrune["documentsWalk"] = (connection, retainTs, cursor) => ({
  candidates: (chunkSize) =>
    rowsOf(
      connection,
      `SELECT id, ts, json IS NULL AS tombstone FROM documents
         WHERE (prev_ts IS NOT NULL OR json IS NULL) AND ts <= ? AND (ts > ? OR (ts = ? AND id > ?))
         ORDER BY ts, id LIMIT ?`,
      [retainTs, cursor.ts, cursor.ts, utf8(cursor.id), chunkSize],
    ),
  victims: async (candidates, limit) => {
    const chunk = derivedTable(
      ["ord", "id", "ts", "tombstone"],
      candidates.map((c, i) => [i + 1, c.id, BigInt(c.ts), Number(c.tombstone)]),
    );
    const rows = await rowsOf<{ ord: number | string; id: Uint8Array; ts: string }>(
      connection,
      `SELECT c.ord, d.id, d.ts FROM ${chunk.sql} AS c
         JOIN documents AS d ON d.id = c.id AND (d.ts < c.ts OR (d.ts = c.ts AND c.tombstone = 1))
         ORDER BY c.ord, d.ts LIMIT ?`,
      [...chunk.values, limit],
    );
    return rows.map((v) => ({ ord: Number(v.ord), identity: JSON.stringify([bytesToHex(v.id), v.ts]) }));
  },
  remove: async (identities) => {
    const pairs = identities.map((identity) => JSON.parse(identity) as [string, string]);
    const [result] = await connection.query(
      `DELETE FROM documents WHERE (id, ts) IN (${pairs.map(() => "(?, ?)").join(", ")})`,
      pairs.flatMap(([idHex, ts]) => [hexToBytes(idHex), BigInt(ts)]),
    );
    return (result as { affectedRows: number }).affectedRows;
  },
  advance: (last) => {
    cursor.ts = BigInt(last.ts);
    cursor.id = fromUtf8(last.id);
  },
});

/** A candidate row of the index entries walk. */
type IndexCandidate = { index_id: number; index_key: Uint8Array; ts: string; deleted: number };

const indexesWalk: MysqlPrune["indexesWalk"] = (connection, retainTs, cursor) => ({
  candidates: (chunkSize) =>
    rowsOf(
      connection,
      `SELECT index_id, index_key, ts, deleted FROM indexes
         WHERE ts <= ? AND (ts > ? OR (ts = ? AND (index_id > ? OR (index_id = ? AND index_key > ?))))
         ORDER BY ts, index_id, index_key LIMIT ?`,
      [retainTs, cursor.ts, cursor.ts, cursor.indexId, cursor.indexId, cursor.key, chunkSize],
    ),
  victims: async (candidates, limit) => {
    const chunk = derivedTable(
      ["ord", "index_id", "index_key", "ts", "deleted"],
      candidates.map((c, i) => [i + 1, c.index_id, c.index_key, BigInt(c.ts), Number(c.deleted)]),
    );
    const rows = await rowsOf<{ ord: number | string; index_id: number; index_key: Uint8Array; ts: string }>(
      connection,
      `SELECT c.ord, e.index_id, e.index_key, e.ts FROM ${chunk.sql} AS c
         JOIN indexes AS e ON e.index_id = c.index_id AND e.index_key = c.index_key
           AND (e.ts < c.ts OR (e.ts = c.ts AND c.deleted = 1))
         ORDER BY c.ord, e.ts LIMIT ?`,
      [...chunk.values, limit],
    );
    return rows.map((v) => ({
      ord: Number(v.ord),
      identity: JSON.stringify([v.index_id, bytesToHex(v.index_key), v.ts]),
    }));
  },
  remove: async (identities) => {
    const triples = identities.map((identity) => JSON.parse(identity) as [number, string, string]);
    const [result] = await connection.query(
      `DELETE FROM indexes WHERE (index_id, index_key, ts) IN (${triples.map(() => "(?, ?, ?)").join(", ")})`,
      triples.flatMap(([indexId, keyHex, ts]) => [indexId, hexToBytes(keyHex), BigInt(ts)]),
    );
    return (result as { affectedRows: number }).affectedRows;
  },
  advance: (last) => {
    cursor.ts = BigInt(last.ts);
    cursor.indexId = last.index_id;
    cursor.key = ownBytes(last.index_key);
  },
});

const MYSQL_PRUNE: MysqlPrune = { readMeta, writeMeta, documentsWalk, indexesWalk };
