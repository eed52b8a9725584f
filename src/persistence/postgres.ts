/**
 * PostgreSQL persistence on `npm:postgres`: the writer owns a small pool (a commit is one transaction, durable once
 * PostgreSQL acknowledges COMMIT with the default `synchronous_commit=on`); readers open pools of their own.
 */

import { PostgresReader } from "./_postgres_reader.ts";
import { prunePostgres } from "./_postgres_prune.ts";
import { connectPostgres, createSchema, READER_POOL_SIZE, type Sql, WRITER_POOL_SIZE } from "./_postgres_schema.ts";
import { isConnectionError, neverConnected, toPersistenceError } from "./_postgres_errors.ts";
import {
  chunkDocuments,
  chunkResults,
  type CommitRows,
  GroupCommitter,
  newestStoredTs,
  splitGlobals,
} from "./_group_commit.ts";
import { assert, assertValidPrune, bytesToHex, MAX_LISTED_GLOBALS, META_MAX_TS, prefixUpperBound } from "./_shared.ts";
import type {
  CommitBatch,
  Persistence,
  PersistenceLocation,
  PersistenceReader,
  StoredMutationResult,
} from "./types.ts";

/** A transaction-level advisory lock id that serializes prune calls. */
const PRUNE_LOCK_ID = 0x64656e77;
/** Rows per INSERT statement: bounds the arrays one statement sends. */
const INSERT_CHUNK_ROWS = 5_000;
/**
 * Document (or mutation result) JSON characters per INSERT statement (documents are up to 1 MiB each), bounding one
 * message's size.
 */
const INSERT_CHUNK_JSON_CHARS = 16 * 1024 * 1024;

/** How long a commit may wait for PostgreSQL before its pool counts as broken and is replaced. */
const COMMIT_DEADLINE_MS = 5_000;
/** Prune and schema work may scan more; their deadline is longer. */
const MAINTENANCE_DEADLINE_MS = 30_000;

/** Opens (creating the schema if missing) the PostgreSQL database at `url` as its one writer. */
export async function openPostgresPersistence(url: string): Promise<Persistence> {
  const sql = connectPostgres(url, WRITER_POOL_SIZE);
  try {
    await createSchema(sql);
    return new PostgresPersistence(sql, url, await readMaxTs(sql), () => connectPostgres(url, WRITER_POOL_SIZE));
  } catch (error) {
    await sql.end({ timeout: 1 });
    throw error;
  }
}

/** Opens a reader on a PostgreSQL database that a writer has created; fails at once if the server is unreachable. */
export async function openPostgresReader(url: string): Promise<PersistenceReader> {
  const sql = connectPostgres(url, READER_POOL_SIZE);
  try {
    await sql`SELECT 1 FROM documents LIMIT 0`;
    return new PostgresReader(sql, () => connectPostgres(url, READER_POOL_SIZE));
  } catch (error) {
    await sql.end({ timeout: 1 });
    // A runner started while the server is down must say "unavailable", not the driver's text with its address.
    throw toPersistenceError(error);
  }
}

/**
 * The largest ts on disk: the `max_ts` meta row, which every commit updates in its own transaction, or an index entry
 * newer than it (an index lookup through `indexes_by_ts`; documents have no full ts index to ask).
 */
async function readMaxTs(sql: Sql): Promise<bigint> {
  const [row] = await sql<{ meta: string | null; indexes: bigint | null }[]>`
    SELECT (SELECT value FROM meta WHERE key = ${META_MAX_TS}) AS meta, (SELECT max(ts) FROM indexes) AS indexes`;
  return newestStoredTs(row.meta, row.indexes);
}

class PostgresPersistence extends PostgresReader implements Persistence {
  readonly location: PersistenceLocation;
  readonly #url: string;
  readonly #commits: GroupCommitter;

  constructor(sql: Sql, url: string, maxTs: bigint, reconnect: () => Sql) {
    super(sql, reconnect);
    this.location = { kind: "postgres", url };
    this.#url = url;
    this.#commits = new GroupCommitter(maxTs, {
      assertOpen: () => this.assertOpen(),
      write: (rows, newMaxTs) => this.#writeCommit(rows, newMaxTs),
      readCommittedMaxTs: async (deadlineMs) => {
        const rows = await this.guarded(
          this.sql<{ value: string }[]>`SELECT value FROM meta WHERE key = ${META_MAX_TS}`,
          deadlineMs,
        );
        return rows.length > 0 ? BigInt(rows[0].value) : null;
      },
      failures: { isConnectionError, neverConnected, toPersistenceError },
    });
  }

  commit(batches: CommitBatch[]): Promise<void> {
    return this.#commits.commit(batches);
  }

  async #writeCommit({ documents, entries, results }: CommitRows, newMaxTs: bigint): Promise<void> {
    await this.guarded(
      this.sql.begin(async (tx) => {
        for (const chunk of chunkDocuments(documents, INSERT_CHUNK_ROWS, INSERT_CHUNK_JSON_CHARS)) {
          await tx`
          INSERT INTO documents (id, ts, table_number, json, prev_ts)
          SELECT * FROM unnest(${tx.array(chunk.map((d) => d.id), 25)}::text[],
                               ${tx.array(chunk.map((d) => d.ts.toString()), 25)}::bigint[],
                               ${tx.array(chunk.map((d) => d.tableNumber), 23)}::int[],
                               ${tx.array(chunk.map((d) => d.json), 25)}::text[],
                               ${tx.array(chunk.map((d) => d.prevTs?.toString() ?? null), 25)}::bigint[])`;
        }
        for (let start = 0; start < entries.length; start += INSERT_CHUNK_ROWS) {
          const chunk = entries.slice(start, start + INSERT_CHUNK_ROWS);
          await tx`
          INSERT INTO indexes (index_id, key, ts, deleted, document_id)
          SELECT index_id, decode(key_hex, 'hex'), ts, deleted, document_id
          FROM unnest(${tx.array(chunk.map((e) => e.entry.indexId), 23)}::int[],
                      ${tx.array(chunk.map((e) => bytesToHex(e.entry.key)), 25)}::text[],
                      ${tx.array(chunk.map((e) => e.ts.toString()), 25)}::bigint[],
                      ${tx.array(chunk.map((e) => e.entry.deleted), 16)}::bool[],
                      ${tx.array(chunk.map((e) => e.entry.documentId), 25)}::text[])
               AS v(index_id, key_hex, ts, deleted, document_id)`;
        }
        for (const chunk of chunkResults(results, INSERT_CHUNK_ROWS, INSERT_CHUNK_JSON_CHARS)) {
          await tx`
          INSERT INTO mutation_results (ts, key, json)
          SELECT ts, decode(key_hex, 'hex'), json
          FROM unnest(${tx.array(chunk.map((r) => r.ts.toString()), 25)}::bigint[],
                      ${tx.array(chunk.map((r) => bytesToHex(r.result.key)), 25)}::text[],
                      ${tx.array(chunk.map((r) => r.result.valueJson), 25)}::text[])
               AS v(ts, key_hex, json)`;
        }
        await tx`INSERT INTO meta (key, value) VALUES (${META_MAX_TS}, ${newMaxTs.toString()})
               ON CONFLICT (key) DO UPDATE SET value = excluded.value`;
      }),
      COMMIT_DEADLINE_MS,
    );
  }

  maxTs(): Promise<bigint> {
    return this.#commits.maxTs();
  }

  async getGlobal(key: string): Promise<string | null> {
    this.assertOpen();
    const rows = await this.guarded(this.sql<{ value: string }[]>`SELECT value FROM globals WHERE key = ${key}`);
    return rows.length === 0 ? null : rows[0].value;
  }

  async setGlobals(entries: Record<string, string | null>): Promise<void> {
    this.assertOpen();
    const { upserts, deletes } = splitGlobals(entries);
    if (upserts.length === 0 && deletes.length === 0) return;
    await this.guarded(this.sql.begin(async (tx) => {
      if (upserts.length > 0) {
        await tx`
          INSERT INTO globals (key, value)
          SELECT * FROM unnest(${tx.array(upserts.map((p) => p[0]), 25)}::text[],
                               ${tx.array(upserts.map((p) => p[1]), 25)}::text[])
          ON CONFLICT (key) DO UPDATE SET value = excluded.value`;
      }
      if (deletes.length > 0) {
        await tx`DELETE FROM globals WHERE key = ANY(${tx.array(deletes, 25)}::text[])`;
      }
    }));
  }

  async listGlobals(prefix: string): Promise<string[]> {
    this.assertOpen();
    const upperBound = prefixUpperBound(prefix);
    const limit = MAX_LISTED_GLOBALS + 1;
    const rows = upperBound === null
      ? await this.guarded(this.sql<{ key: string }[]>`
          SELECT key FROM globals WHERE key >= ${prefix} ORDER BY key LIMIT ${limit}`)
      : await this.guarded(this.sql<{ key: string }[]>`
          SELECT key FROM globals WHERE key >= ${prefix} AND key < ${upperBound} ORDER BY key LIMIT ${limit}`);
    assert(rows.length <= MAX_LISTED_GLOBALS, `more than ${MAX_LISTED_GLOBALS} globals start with "${prefix}"`);
    return rows.map((row) => row.key);
  }

  async getMutationResult(key: Uint8Array): Promise<StoredMutationResult | null> {
    this.assertOpen();
    const rows = await this.guarded(this.sql<{ ts: bigint; json: string }[]>`
      SELECT ts, json FROM mutation_results WHERE key = decode(${bytesToHex(key)}, 'hex')`);
    return rows.length === 0 ? null : { ts: BigInt(rows[0].ts), valueJson: rows[0].json };
  }

  async sweepMutationResults(beforeTs: bigint, maxRows: number): Promise<number> {
    this.assertOpen();
    assertValidPrune(beforeTs, maxRows);
    const deleted = await this.guarded(
      this.sql`
        DELETE FROM mutation_results WHERE ts IN (
          SELECT ts FROM mutation_results WHERE ts < ${beforeTs.toString()} ORDER BY ts LIMIT ${maxRows}
        )`,
      MAINTENANCE_DEADLINE_MS,
    );
    return deleted.count;
  }

  async prune(retainTs: bigint, maxRows: number): Promise<{ removedRows: number; done: boolean }> {
    this.assertOpen();
    assertValidPrune(retainTs, maxRows);
    // One transaction per call; commits proceed on other pool connections (prune only deletes rows below retainTs).
    // The advisory lock keeps two concurrent calls from walking from the same cursor.
    return await this.guarded(
      this.sql.begin(async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(${PRUNE_LOCK_ID})`;
        return await prunePostgres(tx, retainTs, maxRows);
      }),
      MAINTENANCE_DEADLINE_MS,
    );
  }

  openReader(): Promise<PersistenceReader> {
    return openPostgresReader(this.#url);
  }
}
