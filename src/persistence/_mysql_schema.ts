/**
 * MySQL / MariaDB connection settings and schema. Private to `src/persistence/`.
 *
 * Every statement goes through mysql2's text protocol (`query`, client-side escaping): bigints are written as integer
 * literals, Uint8Arrays as `X'..'` literals, and no prepared statement can go stale across a server restart.
 */

import mysql from "mysql2/promise";

/** The mysql2 promise pool and one of its connections. */
export type Pool = mysql.Pool;
export type Connection = mysql.PoolConnection;

/** Connections of the writer's pool: commits, globals and prune each take one for a transaction. */
export const WRITER_POOL_SIZE = 4;
/** Connections of a reader's pool: runner processes each open one, so keep it small. */
export const READER_POOL_SIZE = 2;
/** How long to wait for a connection, in ms: short, so an outage fails calls fast instead of queueing them. */
const CONNECT_TIMEOUT_MS = 2_000;
/** The environment variable with the password (the one the `mysql` command-line client reads). */
export const MYSQL_PASSWORD_ENV = "MYSQL_PWD";
/** The port when the URL names none. */
export const MYSQL_DEFAULT_PORT = 3306;

/**
 * Strict mode on every connection, whatever the server's default: without it MySQL silently truncates an
 * over-long key or id instead of failing the statement.
 */
const SESSION_SQL_MODE = "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'";

/** The password: from the URL (env DENVEX_DB_URL may carry one), else env MYSQL_PWD when readable. */
function passwordFor(url: URL): string | undefined {
  if (url.password !== "") return decodeURIComponent(url.password);
  try {
    return Deno.env.get(MYSQL_PASSWORD_ENV);
  } catch {
    return undefined; // no env permission (a runner process): connect without one
  }
}

/** Opens a lazily connecting pool on `mysql://user[:password]@host[:port]/database`. */
export function connectMysql(urlText: string, poolSize: number): Pool {
  const url = new URL(urlText);
  const pool = mysql.createPool({
    host: url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname,
    port: Number(url.port || MYSQL_DEFAULT_PORT),
    user: decodeURIComponent(url.username) || "root",
    ...optionalPassword(passwordFor(url)),
    database: decodeURIComponent(url.pathname.slice(1)),
    connectionLimit: poolSize,
    maxIdle: poolSize,
    connectTimeout: CONNECT_TIMEOUT_MS,
    charset: "utf8mb4",
    supportBigNumbers: true,
    bigNumberStrings: true,
    enableKeepAlive: true,
    multipleStatements: false,
  });
  // Queued on the new connection before any caller's statement, so it always runs first. The event hands over the
  // callback-style connection: the callback keeps a failure (the connection died; its next statement fails too) from
  // becoming an unhandled 'error' event.
  pool.on("connection", (connection) => {
    (connection as unknown as { query(sql: string, callback: () => void): unknown }).query(SESSION_SQL_MODE, () => {});
  });
  return pool;
}

/** Longest index key in bytes: InnoDB caps a key at 3,072 bytes and the primary key adds index_id and ts. */
export const MAX_INDEX_KEY_BYTES = 3_000;

/**
 * VARBINARY for every key and id: it compares bytewise with no trailing-space padding (the `_bin` text collations of
 * MariaDB and MySQL 5.7 are PAD SPACE), which is the order SQLite's BINARY and PostgreSQL's COLLATE "C" give.
 * `index_key` and `result_key` because `key` is reserved. Both `*_by_ts` indexes serve prune's cursor walk and
 * `maxTs` (MySQL has no partial indexes, so documents' covers every row).
 */
export const SCHEMA_STATEMENTS = [
  `CREATE TABLE IF NOT EXISTS documents (
    id VARBINARY(255) NOT NULL,
    ts BIGINT NOT NULL,
    table_number INT NOT NULL,
    json LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    prev_ts BIGINT NULL,
    PRIMARY KEY (id, ts),
    KEY documents_by_ts (ts, id)
  ) ENGINE=InnoDB ROW_FORMAT=DYNAMIC`,
  `CREATE TABLE IF NOT EXISTS indexes (
    index_id INT NOT NULL,
    index_key VARBINARY(${MAX_INDEX_KEY_BYTES}) NOT NULL,
    ts BIGINT NOT NULL,
    deleted TINYINT(1) NOT NULL,
    document_id VARBINARY(255) NOT NULL,
    PRIMARY KEY (index_id, index_key, ts),
    KEY indexes_by_ts (ts, index_id, index_key)
  ) ENGINE=InnoDB ROW_FORMAT=DYNAMIC`,
  `CREATE TABLE IF NOT EXISTS mutation_results (
    ts BIGINT NOT NULL PRIMARY KEY,
    result_key VARBINARY(16) NOT NULL,
    json LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    UNIQUE KEY mutation_results_by_key (result_key)
  ) ENGINE=InnoDB ROW_FORMAT=DYNAMIC`,
  `CREATE TABLE IF NOT EXISTS globals (
    name VARBINARY(${MAX_INDEX_KEY_BYTES}) NOT NULL PRIMARY KEY,
    value LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL
  ) ENGINE=InnoDB ROW_FORMAT=DYNAMIC`,
  `CREATE TABLE IF NOT EXISTS meta (
    name VARBINARY(255) NOT NULL PRIMARY KEY,
    value TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL
  ) ENGINE=InnoDB ROW_FORMAT=DYNAMIC`,
];

/**
 * A server-wide named lock per database (names are global to the server, and at most 64 characters on MySQL, so the
 * database name goes in hashed). Session-level: released explicitly, or when its connection dies.
 */
export function lockNameSql(purpose: string): string {
  return `CONCAT('denvex_${purpose}_', MD5(DATABASE()))`;
}

/** How long a named lock is waited for, in seconds. */
const LOCK_WAIT_S = 30;

/** Runs `work` holding the named lock `purpose` on `connection`. */
export async function withNamedLock<T>(
  connection: Connection,
  purpose: string,
  work: () => Promise<T>,
): Promise<T> {
  const [rows] = await connection.query(`SELECT GET_LOCK(${lockNameSql(purpose)}, ${LOCK_WAIT_S}) AS got`);
  if (String((rows as { got: unknown }[])[0]?.got) !== "1") throw new Error(`could not take the ${purpose} lock`);
  try {
    return await work();
  } finally {
    await connection.query(`DO RELEASE_LOCK(${lockNameSql(purpose)})`).catch(() => {});
  }
}

/** Creates the schema if missing (MySQL commits each DDL statement itself; the lock keeps two openers apart). */
export async function createSchema(pool: Pool): Promise<void> {
  const connection = await pool.getConnection();
  try {
    await withNamedLock(connection, "schema", async () => {
      for (const statement of SCHEMA_STATEMENTS) await connection.query(statement);
    });
    const [rows] = await connection.query("SELECT @@innodb_flush_log_at_trx_commit AS flush");
    const flush = String((rows as { flush: unknown }[])[0]?.flush);
    if (flush !== "1") {
      console.error(
        `denvex: warning: MySQL innodb_flush_log_at_trx_commit is ${flush}, not 1: ` +
          "acknowledged commits can be lost if the database host crashes",
      );
    }
  } finally {
    connection.release();
  }
}

/** The pool option for `password`, left out when there is none (the driver then sends no password). */
function optionalPassword(password: string | undefined): { password?: string } {
  return password === undefined ? {} : { password };
}
