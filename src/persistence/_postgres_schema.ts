/**
 * PostgreSQL connection settings and schema. Private to `src/persistence/`.
 */

import postgres from "postgres";
import { bytesToHex, hexToBytes } from "./_shared.ts";

/** The postgres.js client with this module's type parsers (int8 as bigint, bytea as Uint8Array). */
export type Sql = postgres.Sql<{ bigint: bigint; bytea: Uint8Array }>;

/** Connections of the writer's pool: commits, globals and prune each take one for a transaction. */
export const WRITER_POOL_SIZE = 4;
/** Connections of a reader's pool: runner processes each open one, so keep it small. */
export const READER_POOL_SIZE = 2;
/**
 * How long to wait for a connection before failing, in seconds (postgres.js's unit), unless env PGCONNECT_TIMEOUT
 * says otherwise (a database far away may need more). Short: right after a server restart some connection attempts
 * are accepted and never answered, and every call queued behind such a connection waits this long.
 */
const CONNECT_TIMEOUT_S = 1;
/**
 * Reconnect backoff after a failed connection, in seconds: doubling from the first, capped. postgres.js's default
 * (3^n / 100 s up to 20 s, n counting every failed connection of the whole pool) grows to its cap within a second or
 * two of an outage under load, which kept writes stalled 20-27 s after the database was back.
 */
const RECONNECT_BACKOFF_FIRST_S = 0.05;
const RECONNECT_BACKOFF_MAX_S = 0.5;

/** The delay before reconnect attempt `retries` (postgres.js counts failed connections since the last success). */
export function reconnectBackoffS(retries: number): number {
  return Math.min(RECONNECT_BACKOFF_FIRST_S * 2 ** Math.min(retries, 30), RECONNECT_BACKOFF_MAX_S);
}

/**
 * bytea as a plain Uint8Array both ways: postgres.js would return a Node Buffer, whose `slice` shares memory and
 * whose `buffer` may be a shared pool, which surprises code that expects the Uint8Array the other backend returns.
 */
const BYTEA: postgres.PostgresType<Uint8Array> = {
  to: 17,
  from: [17],
  serialize: (bytes: Uint8Array) => "\\x" + bytesToHex(bytes),
  parse: (text: string) => hexToBytes(text.slice(2)),
};

/** PGCONNECT_TIMEOUT in seconds when set (and readable), else null. */
function connectTimeoutFromEnv(): number | null {
  let text: string | undefined;
  try {
    text = Deno.env.get("PGCONNECT_TIMEOUT");
  } catch {
    return null; // no env permission: the default applies
  }
  const seconds = Number(text);
  return text !== undefined && text !== "" && seconds > 0 ? seconds : null;
}

/** Opens a lazily connecting pool; the first query fails if the server is unreachable. */
export function connectPostgres(url: string, poolSize: number): Sql {
  return postgres(url, {
    max: poolSize,
    connect_timeout: connectTimeoutFromEnv() ?? CONNECT_TIMEOUT_S,
    backoff: reconnectBackoffS,
    onnotice: () => {},
    types: { bigint: postgres.BigInt, bytea: BYTEA },
  }) as unknown as Sql;
}

/**
 * Text keys use COLLATE "C" so they compare bytewise, as SQLite's BINARY does (listGlobals' ranges and prune's
 * cursors depend on one order); bytea always compares bytewise. The `*_by_ts` indexes serve prune's cursor walk
 * (partial on documents, as in `_sqlite_schema.ts`) and `maxTs`. `mutation_results`: as in `_sqlite_schema.ts`.
 */
export const SCHEMA_STATEMENTS = [
  `CREATE TABLE IF NOT EXISTS documents (
    id TEXT COLLATE "C" NOT NULL,
    ts BIGINT NOT NULL,
    table_number INTEGER NOT NULL,
    json TEXT,
    prev_ts BIGINT,
    PRIMARY KEY (id, ts)
  )`,
  `CREATE INDEX IF NOT EXISTS documents_superseding_by_ts ON documents (ts, id)
     WHERE prev_ts IS NOT NULL OR json IS NULL`,
  `CREATE TABLE IF NOT EXISTS indexes (
    index_id INTEGER NOT NULL,
    key BYTEA NOT NULL,
    ts BIGINT NOT NULL,
    deleted BOOLEAN NOT NULL,
    document_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (index_id, key, ts)
  )`,
  `CREATE INDEX IF NOT EXISTS indexes_by_ts ON indexes (ts, index_id, key)`,
  `CREATE TABLE IF NOT EXISTS mutation_results (ts BIGINT PRIMARY KEY, key BYTEA NOT NULL UNIQUE, json TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS globals (key TEXT COLLATE "C" PRIMARY KEY, value TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS meta (key TEXT COLLATE "C" PRIMARY KEY, value TEXT NOT NULL)`,
];

/** A session-level advisory lock id that serializes schema creation between processes opening at once. */
const SCHEMA_LOCK_ID = 0x64656e76; // "denv"

/** Creates the schema if missing, in one transaction. */
export async function createSchema(sql: Sql): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK_ID})`;
    for (const statement of SCHEMA_STATEMENTS) await tx.unsafe(statement);
  });
}
