/**
 * Test helpers: fresh SQLite, PostgreSQL and MySQL/MariaDB databases for suites that run against all of them.
 * PostgreSQL comes from DENVEX_TEST_PG_URL, MySQL from DENVEX_TEST_MYSQL_URL (defaults: the local servers); each call
 * gets its own schema (PostgreSQL) or database (MySQL) so tests stay independent. A missing server fails the tests
 * that need it: it never skips them.
 */
import postgres from "postgres";
import mysql from "mysql2/promise";
import type { PersistenceLocation } from "../../src/persistence/types.ts";

export const PG_URL = Deno.env.get("DENVEX_TEST_PG_URL") ?? "postgres://postgres@127.0.0.1:5432/test";
export const MYSQL_URL = Deno.env.get("DENVEX_TEST_MYSQL_URL") ?? "mysql://root@127.0.0.1:3306/test";

/** A fresh, empty SQLite location in a temp dir. */
export async function freshSqlite(): Promise<PersistenceLocation & { cleanup: () => Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "denvex-test-" });
  return { kind: "sqlite", path: `${dir}/denvex.sqlite3`, cleanup: () => Deno.remove(dir, { recursive: true }) };
}

/** A fresh, empty PostgreSQL schema; the URL selects it through `search_path`. */
export async function freshPostgres(): Promise<PersistenceLocation & { cleanup: () => Promise<void> }> {
  const schema = `t_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const admin = postgres(PG_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE SCHEMA ${schema}`);
  await admin.end();
  const url = new URL(PG_URL);
  url.searchParams.set("search_path", schema);
  return {
    kind: "postgres",
    url: url.toString(),
    cleanup: async () => {
      const sql = postgres(PG_URL, { max: 1, onnotice: () => {} });
      await sql.unsafe(`DROP SCHEMA ${schema} CASCADE`);
      await sql.end();
    },
  };
}

/** A one-connection admin session on the server of DENVEX_TEST_MYSQL_URL (its password as in the URL). */
export async function mysqlAdmin(): Promise<mysql.Connection> {
  const url = new URL(MYSQL_URL);
  try {
    return await mysql.createConnection({
      host: url.hostname,
      port: Number(url.port || 3306),
      user: decodeURIComponent(url.username) || "root",
      password: decodeURIComponent(url.password),
      connectTimeout: 10_000,
    });
  } catch (error) {
    const shown = new URL(MYSQL_URL);
    shown.password = "";
    throw new Error(`MySQL/MariaDB at ${shown.href} is required for these tests: ${error}`);
  }
}

/** A fresh, empty MySQL database on the server of DENVEX_TEST_MYSQL_URL; `url` names it. */
export async function freshMysql(): Promise<
  { kind: "mysql"; url: string; cleanup: () => Promise<void>; database: string }
> {
  const database = `denvex_t_${crypto.randomUUID().replaceAll("-", "").slice(0, 20)}`;
  const admin = await mysqlAdmin();
  try {
    await admin.query(`CREATE DATABASE ${database} CHARACTER SET utf8mb4`);
  } finally {
    await admin.end();
  }
  const url = new URL(MYSQL_URL);
  url.pathname = `/${database}`;
  return {
    kind: "mysql",
    url: url.toString(),
    database,
    cleanup: async () => {
      const session = await mysqlAdmin();
      try {
        await session.query(`DROP DATABASE IF EXISTS ${database}`);
      } finally {
        await session.end();
      }
    },
  };
}

/** Every backend, for `for (const backend of BACKENDS)` suites. */
export const BACKENDS = [
  { name: "sqlite", fresh: freshSqlite },
  { name: "postgres", fresh: freshPostgres },
  { name: "mysql", fresh: freshMysql },
] as const;
