/**
 * Test helpers: fresh SQLite and PostgreSQL databases for suites that run against both. PostgreSQL comes from
 * DENVEX_TEST_PG_URL (default: the local server); each call gets its own schema so tests stay independent. A missing
 * PostgreSQL server fails the tests that need it: it never skips them.
 */
import postgres from "postgres";
import type { PersistenceLocation } from "../../src/persistence/types.ts";

export const PG_URL = Deno.env.get("DENVEX_TEST_PG_URL") ?? "postgres://postgres@127.0.0.1:5432/test";

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

/** Both backends, for `for (const backend of BACKENDS)` suites. */
export const BACKENDS = [
  { name: "sqlite", fresh: freshSqlite },
  { name: "postgres", fresh: freshPostgres },
] as const;
