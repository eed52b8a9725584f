/**
 * One persistence conformance suite, run against SQLite (a temp dir), PostgreSQL (a fresh schema per test on
 * `DENVEX_TEST_PG_URL`, default `postgres://postgres@127.0.0.1:5432/test`) and MySQL/MariaDB (a fresh database per
 * test on `DENVEX_TEST_MYSQL_URL`, default `mysql://root@127.0.0.1:3306/test`). An unreachable server fails its tests;
 * it never skips them.
 */

import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { DatabaseSync } from "node:sqlite";
import postgres from "postgres";
import { freshMysql, mysqlAdmin } from "./helpers/databases.ts";
import {
  type CommitBatch,
  type DocumentRevision,
  type IndexEntry,
  type IndexScanRow,
  openMysqlPersistence,
  openMysqlReader,
  openPersistenceReader,
  openPostgresPersistence,
  openPostgresReader,
  openSqlitePersistence,
  openSqliteReader,
  type Persistence,
  type PersistenceReader,
} from "../src/persistence/mod.ts";

/** A fresh, empty database that tests can open (and reopen) writers and readers on. */
interface Fixture {
  open(): Promise<Persistence>;
  openReader(): Promise<PersistenceReader>;
  /** Rows stored, read behind the interface's back, to check that prune leaves nothing it could remove. */
  countRows(): Promise<{ documents: number; indexEntries: number }>;
  cleanup(): Promise<void>;
}

interface Backend {
  name: string;
  createFixture(): Promise<Fixture>;
}

const sqliteBackend: Backend = {
  name: "sqlite",
  async createFixture() {
    const dir = await Deno.makeTempDir({ prefix: "denvex-persistence-" });
    const path = `${dir}/db.sqlite3`;
    return {
      open: () => openSqlitePersistence(path),
      openReader: () => openSqliteReader(path),
      countRows: () => {
        const db = new DatabaseSync(path, { readOnly: true });
        try {
          const row = db.prepare(
            "SELECT (SELECT count(*) FROM documents) AS documents, (SELECT count(*) FROM indexes) AS indexEntries",
          ).get() as { documents: number; indexEntries: number };
          return Promise.resolve({ documents: row.documents, indexEntries: row.indexEntries });
        } finally {
          db.close();
        }
      },
      cleanup: () => Deno.remove(dir, { recursive: true }),
    };
  },
};

const PG_URL = Deno.env.get("DENVEX_TEST_PG_URL") ?? "postgres://postgres@127.0.0.1:5432/test";

const postgresBackend: Backend = {
  name: "postgres",
  async createFixture() {
    const schema = `denvex_test_${crypto.randomUUID().replaceAll("-", "")}`;
    const admin = postgres(PG_URL, { max: 1, onnotice: () => {}, connect_timeout: 10 });
    try {
      await admin.unsafe(`CREATE SCHEMA ${schema}`);
    } catch (error) {
      await admin.end({ timeout: 1 });
      throw new Error(`PostgreSQL at ${PG_URL} is required for these tests: ${error}`);
    }
    const url = new URL(PG_URL);
    url.searchParams.set("search_path", schema);
    return {
      open: () => openPostgresPersistence(url.toString()),
      openReader: () => openPostgresReader(url.toString()),
      countRows: async () => {
        const [row] = await admin.unsafe(
          `SELECT (SELECT count(*) FROM ${schema}.documents)::int AS documents,
                  (SELECT count(*) FROM ${schema}.indexes)::int AS "indexEntries"`,
        );
        return { documents: row.documents, indexEntries: row.indexEntries };
      },
      cleanup: async () => {
        try {
          await admin.unsafe(`DROP SCHEMA ${schema} CASCADE`);
        } finally {
          await admin.end({ timeout: 1 });
        }
      },
    };
  },
};

/** MySQL / MariaDB: a fresh database per test on `DENVEX_TEST_MYSQL_URL` (tests/helpers/databases.ts). */
const mysqlBackend: Backend = {
  name: "mysql",
  async createFixture() {
    const fresh = await freshMysql();
    return {
      open: () => openMysqlPersistence(fresh.url),
      openReader: () => openMysqlReader(fresh.url),
      countRows: async () => {
        const admin = await mysqlAdmin();
        try {
          const [rows] = await admin.query(
            `SELECT (SELECT count(*) FROM ${fresh.database}.documents) AS documents,
                    (SELECT count(*) FROM ${fresh.database}.indexes) AS indexEntries`,
          );
          const row = (rows as { documents: number; indexEntries: number }[])[0];
          return { documents: Number(row.documents), indexEntries: Number(row.indexEntries) };
        } finally {
          await admin.end();
        }
      },
      cleanup: fresh.cleanup,
    };
  },
};

// ---- helpers --------------------------------------------------------------------------------------------------

const encoder = new TextEncoder();

/** A key from text, for readable tests (UTF-8 bytes compare like the text). */
function key(text: string): Uint8Array {
  return encoder.encode(text);
}

function revision(id: string, ts: bigint, value: unknown, prevTs: bigint | null = null): DocumentRevision {
  const json = value === null ? null : JSON.stringify({ _id: id, value });
  return { id, tableNumber: 1, ts, json, prevTs };
}

function entry(indexId: number, keyBytes: Uint8Array, documentId: string, deleted = false): IndexEntry {
  return { indexId, key: keyBytes, documentId, deleted };
}

function batch(ts: bigint, documents: DocumentRevision[], indexEntries: IndexEntry[] = []): CommitBatch {
  return { ts, documents, indexEntries };
}

/** The value stored by `revision`, or null for a tombstone or a missing document. */
function valueOf(document: DocumentRevision | null): unknown {
  return document?.json ? JSON.parse(document.json).value : null;
}

/** Rows as plain objects: a reader may hand a row's key over as a getter (SQLite decodes it on first read). */
function plainRows(rows: IndexScanRow[]): IndexScanRow[] {
  return rows.map((row) => ({ key: row.key, document: row.document }));
}

async function scanKeys(
  reader: PersistenceReader,
  indexId: number,
  snapshotTs: bigint,
  options: { low?: string; high?: string | null; order?: "asc" | "desc"; limit?: number } = {},
): Promise<string[]> {
  const rows = await reader.scanIndex({
    indexId,
    lowKey: key(options.low ?? ""),
    highKey: options.high === undefined || options.high === null ? null : key(options.high),
    order: options.order ?? "asc",
    snapshotTs,
    limit: options.limit ?? 1000,
  });
  return rows.map((row) => new TextDecoder().decode(row.key));
}

/** Runs `body` on a fresh database with an open writer, closing and cleaning up whatever happens. */
async function withPersistence(
  backend: Backend,
  body: (persistence: Persistence, fixture: Fixture) => Promise<void>,
): Promise<void> {
  const fixture = await backend.createFixture();
  try {
    const persistence = await fixture.open();
    try {
      await body(persistence, fixture);
    } finally {
      await persistence.close();
    }
  } finally {
    await fixture.cleanup();
  }
}

// ---- the suite ------------------------------------------------------------------------------------------------

/** Registers every conformance test for `backend`. */
function defineConformanceTests(backend: Backend): void {
  const test = (name: string, body: (persistence: Persistence, fixture: Fixture) => Promise<void>) =>
    Deno.test(`${backend.name}: ${name}`, () => withPersistence(backend, body));

  test("an empty database has maxTs 0 and no documents", async (p) => {
    assertEquals(await p.maxTs(), 0n);
    assertEquals(await p.getDocument("missing", 100n), null);
    assertEquals(await scanKeys(p, 1, 100n), []);
  });

  test("mutation results: stored with their commit, found by key, swept oldest first", async (p) => {
    const resultKey = (n: number) => new Uint8Array(16).fill(n);
    const withResult = (ts: bigint, n: number, valueJson: string): CommitBatch => ({
      ...batch(ts, [revision(`doc${n}`, ts, n)]),
      mutationResult: { key: resultKey(n), valueJson },
    });
    assertEquals(await p.getMutationResult(resultKey(1)), null);
    // A group commit: results of several batches, one without a result, and a result that is large JSON text.
    const large = JSON.stringify("é".repeat(100_000));
    await p.commit([withResult(10n, 1, '"one"'), batch(11n, [revision("plain", 11n, 0)]), withResult(12n, 2, large)]);
    await p.commit([withResult(20n, 3, '{"three":3}')]);
    assertEquals(await p.getMutationResult(resultKey(1)), { ts: 10n, valueJson: '"one"' });
    assertEquals(await p.getMutationResult(resultKey(2)), { ts: 12n, valueJson: large });
    assertEquals(await p.getMutationResult(resultKey(3)), { ts: 20n, valueJson: '{"three":3}' });
    assertEquals(await p.getMutationResult(resultKey(4)), null);
    assertEquals(await p.maxTs(), 20n);
    // A second result under a stored key is refused with the whole commit: nothing of it lands.
    await assertRejects(() => p.commit([withResult(30n, 1, '"again"')]));
    assertEquals(await p.getMutationResult(resultKey(1)), { ts: 10n, valueJson: '"one"' });
    assertEquals(await p.getDocument("doc1", 30n), revision("doc1", 10n, 1));
    // Sweeps: only results committed before the cutoff, at most maxRows per call, oldest first.
    assertEquals(await p.sweepMutationResults(20n, 1), 1);
    assertEquals(await p.getMutationResult(resultKey(1)), null);
    assertEquals(await p.getMutationResult(resultKey(2)), { ts: 12n, valueJson: large });
    assertEquals(await p.sweepMutationResults(20n, 10), 1);
    assertEquals(await p.sweepMutationResults(20n, 10), 0);
    assertEquals(await p.getMutationResult(resultKey(3)), { ts: 20n, valueJson: '{"three":3}' });
    assertEquals(await p.getDocument("doc2", 20n), revision("doc2", 12n, 2), "sweeping results leaves documents");
  });

  test("mutation results as large as a return value, several in one group commit", async (p) => {
    // Three results of 6 MiB: together over one statement's size on MariaDB (max_allowed_packet 16 MiB).
    const resultJson = (n: number) => JSON.stringify(String(n).repeat(6 * 1024 * 1024));
    await p.commit([1, 2, 3].map((n) => ({
      ...batch(BigInt(n), [revision(`big${n}`, BigInt(n), n)]),
      mutationResult: { key: new Uint8Array(16).fill(n), valueJson: resultJson(n) },
    })));
    for (const n of [1, 2, 3]) {
      assertEquals(await p.getMutationResult(new Uint8Array(16).fill(n)), { ts: BigInt(n), valueJson: resultJson(n) });
    }
  });

  test("snapshot reads see insert, update and delete only from their ts", async (p) => {
    await p.commit([batch(10n, [revision("a", 10n, 1)])]);
    await p.commit([batch(20n, [revision("a", 20n, 2, 10n)])]);
    await p.commit([batch(30n, [revision("a", 30n, null, 20n)])]);
    assertEquals(await p.getDocument("a", 9n), null);
    assertEquals(await p.getDocument("a", 10n), revision("a", 10n, 1));
    assertEquals(valueOf(await p.getDocument("a", 19n)), 1);
    assertEquals(await p.getDocument("a", 20n), revision("a", 20n, 2, 10n));
    assertEquals(valueOf(await p.getDocument("a", 29n)), 2);
    assertEquals(await p.getDocument("a", 30n), revision("a", 30n, null, 20n));
    assertEquals(await p.getDocument("a", 1n << 62n), revision("a", 30n, null, 20n));
    assertEquals(await p.getDocument("b", 30n), null);
    assertEquals(await p.maxTs(), 30n);
  });

  test("documents keep table number, large ts and large json", async (p) => {
    const ts = (1n << 62n) + 12345n;
    const big = "x".repeat(300_000);
    const document: DocumentRevision = {
      id: "big",
      tableNumber: 70000,
      ts,
      json: JSON.stringify({ big }),
      prevTs: null,
    };
    const tricky = 'quote " backslash \\ comma, braces {} NULL tab\t newline\n emoji 🎉 é \u2028';
    const odd: DocumentRevision = {
      id: 'odd "id", {x}',
      tableNumber: 2,
      ts,
      json: JSON.stringify({ tricky }),
      prevTs: null,
    };
    await p.commit([batch(ts, [document, odd])]);
    assertEquals(await p.getDocument("big", ts), document);
    assertEquals(await p.getDocument(odd.id, ts), odd);
    assertEquals(JSON.parse((await p.getDocument(odd.id, ts))!.json!).tricky, tricky);
    assertEquals(await p.maxTs(), ts);
    await p.setGlobals({ [tricky]: tricky, "NULL": "NULL" });
    assertEquals(await p.getGlobal(tricky), tricky);
    assertEquals(await p.getGlobal("NULL"), "NULL");
  });

  test("scanIndex: ranges, asc/desc, limits and byte order", async (p) => {
    const letters = "abcdefghij".split("");
    await p.commit([
      batch(10n, letters.map((l) => revision(l, 10n, l)), letters.map((l) => entry(1, key(l), l))),
    ]);
    assertEquals(await scanKeys(p, 1, 10n), letters);
    assertEquals(await scanKeys(p, 1, 10n, { order: "desc" }), [...letters].reverse());
    assertEquals(await scanKeys(p, 1, 10n, { limit: 3 }), ["a", "b", "c"]);
    assertEquals(await scanKeys(p, 1, 10n, { order: "desc", limit: 3 }), ["j", "i", "h"]);
    assertEquals(await scanKeys(p, 1, 10n, { low: "c", high: "f" }), ["c", "d", "e"]);
    assertEquals(await scanKeys(p, 1, 10n, { low: "c", high: "f", order: "desc" }), ["e", "d", "c"]);
    assertEquals(await scanKeys(p, 1, 10n, { low: "cc", high: "e" }), ["d"]);
    assertEquals(await scanKeys(p, 1, 10n, { low: "h", high: null }), ["h", "i", "j"]);
    assertEquals(await scanKeys(p, 1, 10n, { low: "h", order: "desc", limit: 2 }), ["j", "i"]);
    assertEquals(await scanKeys(p, 1, 10n, { low: "c", high: "c" }), []);
    assertEquals(await scanKeys(p, 1, 10n, { limit: 0 }), []);
    assertEquals(await scanKeys(p, 1, 9n), []);
    assertEquals(await scanKeys(p, 2, 10n), []);
    const rows = await p.scanIndex({
      indexId: 1,
      lowKey: key("b"),
      highKey: key("c"),
      order: "asc",
      snapshotTs: 10n,
      limit: 10,
    });
    assertEquals(plainRows(rows), [{ key: key("b"), document: revision("b", 10n, "b") }]);

    // Keys compare as unsigned bytes, shorter prefix first.
    const byteKeys = [[0x00], [0x01], [0x01, 0x00], [0x01, 0xff], [0x7f], [0x80], [0xff], [0xff, 0x00]];
    const shuffled = [5, 2, 7, 0, 3, 6, 1, 4].map((i) => byteKeys[i]);
    await p.commit([
      batch(
        20n,
        shuffled.map((_, i) => revision(`byte${i}`, 20n, i)),
        shuffled.map((bytes, i) => entry(3, new Uint8Array(bytes), `byte${i}`)),
      ),
    ]);
    const scanned = await p.scanIndex({
      indexId: 3,
      lowKey: new Uint8Array(0),
      highKey: null,
      order: "asc",
      snapshotTs: 20n,
      limit: 100,
    });
    assertEquals(scanned.map((row) => Array.from(row.key)), byteKeys);
    assert(scanned.every((row) => row.key.constructor === Uint8Array), "keys are plain Uint8Arrays");
  });

  test("scanIndex: tombstones and key updates", async (p) => {
    await p.commit([
      batch(10n, [revision("A", 10n, 1), revision("B", 10n, 1)], [entry(1, key("a"), "A"), entry(1, key("b"), "B")]),
    ]);
    // A's indexed field changes: its old key is deleted and a new one appears, at the same ts.
    await p.commit([
      batch(20n, [revision("A", 20n, 2, 10n)], [entry(1, key("a"), "A", true), entry(1, key("z"), "A")]),
    ]);
    await p.commit([batch(30n, [revision("B", 30n, null, 10n)], [entry(1, key("b"), "B", true)])]);
    assertEquals(await scanKeys(p, 1, 15n), ["a", "b"]);
    assertEquals(await scanKeys(p, 1, 25n), ["b", "z"]);
    assertEquals(await scanKeys(p, 1, 25n, { order: "desc" }), ["z", "b"]);
    assertEquals(await scanKeys(p, 1, 35n), ["z"]);
    assertEquals(await scanKeys(p, 1, 35n, { limit: 1 }), ["z"]);
    assertEquals(await scanKeys(p, 1, 35n, { order: "desc", limit: 1 }), ["z"]);
    const [at15] = await p.scanIndex({
      indexId: 1,
      lowKey: key("a"),
      highKey: null,
      order: "asc",
      snapshotTs: 15n,
      limit: 1,
    });
    assertEquals(at15.document, revision("A", 10n, 1));
    const [at25] = await p.scanIndex({
      indexId: 1,
      lowKey: key("z"),
      highKey: null,
      order: "asc",
      snapshotTs: 25n,
      limit: 1,
    });
    assertEquals(at25.document, revision("A", 20n, 2, 10n));

    // Many deleted keys before the live ones: the limit counts live rows only.
    const dead = Array.from({ length: 50 }, (_, i) => `d${String(i).padStart(2, "0")}`);
    await p.commit([batch(40n, dead.map((id) => revision(id, 40n, 0)), dead.map((id) => entry(2, key(id), id)))]);
    await p.commit([
      batch(
        50n,
        dead.map((id) => revision(id, 50n, null, 40n)),
        dead.map((id) => entry(2, key(id), id, true)),
      ),
      batch(51n, [revision("live", 51n, 1)], [entry(2, key("e-live"), "live")]),
    ]);
    assertEquals(await scanKeys(p, 2, 60n, { limit: 1 }), ["e-live"]);
    assertEquals(await scanKeys(p, 2, 60n, { limit: 1, order: "desc" }), ["e-live"]);
    assertEquals((await scanKeys(p, 2, 45n, { limit: 1000 })).length, 50);
  });

  test("scanIndex: an index entry newer than its document revision (backfill)", async (p) => {
    await p.commit([batch(10n, [revision("x", 10n, 1), revision("y", 10n, 2)])]);
    await p.commit([batch(20n, [], [entry(7, key("k-x"), "x"), entry(7, key("k-y"), "y")])]);
    assertEquals(await scanKeys(p, 7, 15n), []);
    const rows = await p.scanIndex({
      indexId: 7,
      lowKey: key(""),
      highKey: null,
      order: "desc",
      snapshotTs: 20n,
      limit: 10,
    });
    assertEquals(plainRows(rows), [
      { key: key("k-y"), document: revision("y", 10n, 2) },
      { key: key("k-x"), document: revision("x", 10n, 1) },
    ]);
    assertEquals(await p.maxTs(), 20n);
  });

  test("group commit: several batches in one call, each at its own ts", async (p) => {
    await p.commit([
      batch(10n, [revision("a", 10n, 1)], [entry(1, key("a1"), "a")]),
      batch(11n, [revision("b", 11n, 1)], [entry(1, key("b1"), "b")]),
      batch(12n, [revision("a", 12n, 2, 10n)], [entry(1, key("a1"), "a", true), entry(1, key("a2"), "a")]),
    ]);
    assertEquals(await p.maxTs(), 12n);
    assertEquals(valueOf(await p.getDocument("a", 11n)), 1);
    assertEquals(valueOf(await p.getDocument("b", 10n)), null);
    assertEquals(valueOf(await p.getDocument("a", 12n)), 2);
    assertEquals(await scanKeys(p, 1, 10n), ["a1"]);
    assertEquals(await scanKeys(p, 1, 11n), ["a1", "b1"]);
    assertEquals(await scanKeys(p, 1, 12n), ["a2", "b1"]);
    await p.commit([]);
    assertEquals(await p.maxTs(), 12n);
  });

  test("commit rejects out-of-order ts and writes nothing from a failed call", async (p) => {
    await p.commit([batch(10n, [revision("a", 10n, 1)])]);
    await assertRejects(() => p.commit([batch(10n, [revision("b", 10n, 1)])]));
    await assertRejects(() => p.commit([batch(5n, [revision("b", 5n, 1)])]));
    await assertRejects(() => p.commit([batch(12n, [revision("b", 12n, 1)]), batch(11n, [revision("c", 11n, 1)])]));
    await assertRejects(() => p.commit([batch(13n, [revision("b", 14n, 1)])]));
    // A storage error in the second batch (the same revision twice) rolls back the first batch too.
    await assertRejects(() =>
      p.commit([
        batch(13n, [revision("b", 13n, 1)], [entry(1, key("b"), "b")]),
        batch(14n, [revision("c", 14n, 1), revision("c", 14n, 2)]),
      ])
    );
    assertEquals(await p.maxTs(), 10n);
    assertEquals(await p.getDocument("b", 100n), null);
    assertEquals(await p.getDocument("c", 100n), null);
    assertEquals(await scanKeys(p, 1, 100n), []);
    await p.commit([batch(11n, [revision("b", 11n, 1)])]);
    assertEquals(valueOf(await p.getDocument("b", 11n)), 1);
    assertEquals(await p.maxTs(), 11n);
  });

  test("globals: set, overwrite, delete, list by prefix", async (p) => {
    assertEquals(await p.getGlobal("missing"), null);
    await p.setGlobals({ "table/users": "1", "table/tasks": "2", "tablex": "3", "schema": "{}", "é/1": "e" });
    assertEquals(await p.getGlobal("table/users"), "1");
    assertEquals(await p.listGlobals("table/"), ["table/tasks", "table/users"]);
    assertEquals(await p.listGlobals("table"), ["table/tasks", "table/users", "tablex"]);
    assertEquals(await p.listGlobals(""), ["schema", "table/tasks", "table/users", "tablex", "é/1"]);
    assertEquals(await p.listGlobals("é"), ["é/1"]);
    assertEquals(await p.listGlobals("nothing"), []);
    await p.setGlobals({ "table/users": "10", "table/tasks": null, "new": "n" });
    assertEquals(await p.getGlobal("table/users"), "10");
    assertEquals(await p.getGlobal("table/tasks"), null);
    assertEquals(await p.listGlobals("table/"), ["table/users"]);
    await p.setGlobals({ "never-set": null });
    await p.setGlobals({});
    assertEquals(await p.getGlobal("new"), "n");
  });

  test("maxTs, documents and globals survive close and reopen", async (first, fixture) => {
    await first.commit([batch(100n, [revision("a", 100n, 1)], [entry(1, key("a"), "a")])]);
    await first.commit([batch(250n, [], [entry(2, key("late"), "a")])]);
    await first.setGlobals({ clock: "300" });
    await first.close();
    const second = await fixture.open();
    try {
      assertEquals(await second.maxTs(), 250n);
      assertEquals(valueOf(await second.getDocument("a", 250n)), 1);
      assertEquals(await scanKeys(second, 2, 250n), ["late"]);
      assertEquals(await second.getGlobal("clock"), "300");
      await assertRejects(() => second.commit([batch(250n, [revision("b", 250n, 1)])]));
      await second.commit([batch(251n, [revision("b", 251n, 1)])]);
      assertEquals(await second.maxTs(), 251n);
    } finally {
      await second.close();
    }
  });

  test("a reader opened separately sees commits made after it opened", async (p, fixture) => {
    await p.commit([batch(10n, [revision("a", 10n, 1)], [entry(1, key("a"), "a")])]);
    const readers = [await fixture.openReader(), await p.openReader(), await openPersistenceReader(p.location)];
    try {
      for (const reader of readers) assertEquals(valueOf(await reader.getDocument("a", 10n)), 1);
      await p.commit([batch(20n, [revision("b", 20n, 2)], [entry(1, key("b"), "b")])]);
      for (const reader of readers) {
        assertEquals(valueOf(await reader.getDocument("b", 20n)), 2);
        assertEquals(await reader.getDocument("b", 19n), null);
        assertEquals(await scanKeys(reader, 1, 20n), ["a", "b"]);
        assertEquals(await scanKeys(reader, 1, 19n), ["a"]);
      }
    } finally {
      for (const reader of readers) await reader.close();
    }
  });

  test("a reader in another process sees commits while the writer stays open", async (p) => {
    await p.commit([batch(10n, [revision("a", 10n, 1)], [entry(1, key("a"), "a")])]);
    assertEquals(await readInChildProcess(p, "a", 10n), { value: 1, keys: ["a"] });
    await p.commit([batch(20n, [revision("a", 20n, 2, 10n)], [entry(1, key("b"), "a")])]);
    assertEquals(await readInChildProcess(p, "a", 20n), { value: 2, keys: ["a", "b"] });
    assertEquals(await readInChildProcess(p, "a", 15n), { value: 1, keys: ["a"] });
  });

  test("a 1,000-row scan returns every row in order", async (p) => {
    const ids = Array.from({ length: 1500 }, (_, i) => `doc${String(i).padStart(5, "0")}`);
    await p.commit([batch(10n, ids.map((id) => revision(id, 10n, id)), ids.map((id) => entry(1, key(id), id)))]);
    const asc = await scanKeys(p, 1, 10n, { limit: 1000 });
    assertEquals(asc, ids.slice(0, 1000));
    const desc = await scanKeys(p, 1, 10n, { limit: 1000, order: "desc" });
    assertEquals(desc, ids.slice(500).reverse());
  });

  test("prune removes superseded revisions and tombstones with their history", async (p) => {
    await p.commit([batch(10n, [revision("a", 10n, 1), revision("d", 10n, 1)], [entry(1, key("a1"), "a")])]);
    await p.commit([
      batch(20n, [revision("a", 20n, 2, 10n)], [entry(1, key("a1"), "a", true), entry(1, key("a2"), "a")]),
    ]);
    await p.commit([batch(30n, [revision("a", 30n, 3, 20n), revision("d", 30n, null, 10n)])]);
    // At 25: a@10 is superseded by a@20 (a@20 stays), index a1@10 by its tombstone a1@20, which goes too.
    let result = await p.prune(25n, 100);
    assertEquals(result, { removedRows: 3, done: true });
    assertEquals(valueOf(await p.getDocument("a", 25n)), 2);
    assertEquals(await scanKeys(p, 1, 25n), ["a2"]);
    // At 30: a@20 is superseded; d's tombstone is the newest at or before 30, so it goes with d@10.
    result = await p.prune(30n, 100);
    assertEquals(result, { removedRows: 3, done: true });
    assertEquals(valueOf(await p.getDocument("a", 30n)), 3);
    assertEquals(await p.getDocument("d", 30n), null);
    assertEquals(await p.prune(30n, 100), { removedRows: 0, done: true });
    assertEquals(await p.maxTs(), 30n);
  });

  test("prune with maxRows 1 stops part-way without exposing history, then finishes", async (p, fixture) => {
    await p.commit([batch(10n, [revision("a", 10n, 1)], [entry(1, key("a"), "a")])]);
    await p.commit([batch(20n, [revision("a", 20n, 2, 10n)], [entry(1, key("a"), "a")])]); // same key again
    await p.commit([batch(30n, [revision("a", 30n, null, 20n)], [entry(1, key("a"), "a", true)])]);
    let removed = 0;
    for (let call = 0;; call++) {
      assert(call < 100, "prune must finish");
      const result = await p.prune(35n, 1);
      assert(result.removedRows <= 1, `removed ${result.removedRows} rows with maxRows 1`);
      removed += result.removedRows;
      assertEquals(valueOf(await p.getDocument("a", 35n)), null);
      assertEquals(await scanKeys(p, 1, 35n), []);
      if (result.done) break;
    }
    assertEquals(removed, 6);
    assertEquals(await fixture.countRows(), { documents: 0, indexEntries: 0 });
  });

  test("prune never changes a read at or after retainTs, in small steps and across reopen", async (p, fixture) => {
    const history = buildHistory();
    for (const group of history.commits) await p.commit(group);
    const maxTs = await p.maxTs();
    const retainPoints = [history.maxTs / 3n, history.maxTs / 2n, history.maxTs - 5n, history.maxTs];
    let writer = p;
    let totalRemoved = 0;
    try {
      for (const retainTs of retainPoints) {
        const before = await readEverything(writer, history, retainTs, maxTs);
        for (let call = 0;; call++) {
          assert(call < 10_000, "prune must finish");
          const { removedRows, done } = await writer.prune(retainTs, 7);
          assert(removedRows <= 7, `removed ${removedRows} rows with maxRows 7`);
          totalRemoved += removedRows;
          if (done) break;
        }
        assertEquals(await readEverything(writer, history, retainTs, maxTs), before);
        // Reopen between rounds: the prune cursor is durable.
        if (writer !== p) await writer.close();
        writer = await fixture.open();
      }
    } finally {
      if (writer !== p) await writer.close();
    }
    assert(totalRemoved > history.commits.length, `prune removed only ${totalRemoved} rows`);
    // Pruned at maxTs, only the live revision of each live document and each live index key may remain.
    let liveDocuments = 0;
    for (const id of history.documentIds) if (valueOf(await p.getDocument(id, maxTs)) !== null) liveDocuments++;
    let liveEntries = 0;
    for (const indexId of history.indexIds) liveEntries += (await scanKeys(p, indexId, maxTs)).length;
    assertEquals(await fixture.countRows(), { documents: liveDocuments, indexEntries: liveEntries });
  });
}

/** Reads one document and index 1 through `openPersistenceReader(location)` in a separate Deno process. */
async function readInChildProcess(p: Persistence, id: string, snapshotTs: bigint): Promise<unknown> {
  const modUrl = new URL("../src/persistence/mod.ts", import.meta.url).href;
  const code = `
    import { openPersistenceReader } from ${JSON.stringify(modUrl)};
    const [location, id, snapshotTs] = [JSON.parse(Deno.args[0]), Deno.args[1], BigInt(Deno.args[2])];
    const reader = await openPersistenceReader(location);
    const document = await reader.getDocument(id, snapshotTs);
    const rows = await reader.scanIndex({
      indexId: 1, lowKey: new Uint8Array(0), highKey: null, order: "asc", snapshotTs, limit: 100,
    });
    await reader.close();
    console.log(JSON.stringify({
      value: document?.json ? JSON.parse(document.json).value : null,
      keys: rows.map((row) => new TextDecoder().decode(row.key)),
    }));`;
  const config = new URL("../deno.json", import.meta.url).pathname;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--config", config, "--ext=ts", code, JSON.stringify(p.location), id, snapshotTs.toString()],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert(output.success, `child reader failed: ${stderr}`);
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

// ---- prune fixtures -------------------------------------------------------------------------------------------

interface History {
  commits: CommitBatch[][];
  documentIds: string[];
  indexIds: number[];
  maxTs: bigint;
}

/**
 * A deterministic history: documents inserted, updated (changing or keeping their index keys), deleted and
 * re-created, plus an index backfilled late, committed in groups of batches.
 */
function buildHistory(): History {
  let seed = 42;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const documentIds = Array.from({ length: 12 }, (_, i) => `doc${i}`);
  const current = new Map<string, { ts: bigint; value: number }>();
  const commits: CommitBatch[][] = [];
  let ts = 0n;
  for (let group = 0; group < 40; group++) {
    const batches: CommitBatch[] = [];
    for (let b = 0; b < 1 + random(3); b++) {
      ts += 1n + BigInt(random(3));
      const id = documentIds[random(documentIds.length)];
      const previous = current.get(id);
      const documents: DocumentRevision[] = [];
      const indexEntries: IndexEntry[] = [];
      if (previous !== undefined && random(4) === 0) {
        documents.push(revision(id, ts, null, previous.ts));
        indexEntries.push(entry(1, key(`${previous.value % 5}/${id}`), id, true));
        indexEntries.push(entry(2, key(id), id, true));
        current.delete(id);
      } else {
        const value = random(100);
        documents.push(revision(id, ts, value, previous?.ts ?? null));
        if (previous === undefined || previous.value % 5 !== value % 5) {
          if (previous !== undefined) indexEntries.push(entry(1, key(`${previous.value % 5}/${id}`), id, true));
          indexEntries.push(entry(1, key(`${value % 5}/${id}`), id));
        } else {
          indexEntries.push(entry(1, key(`${value % 5}/${id}`), id)); // same key written again
        }
        if (previous === undefined) indexEntries.push(entry(2, key(id), id));
        current.set(id, { ts, value });
      }
      batches.push(batch(ts, documents, indexEntries));
    }
    commits.push(batches);
    if (group === 25) {
      ts += 1n;
      commits.push([batch(ts, [], [...current.keys()].map((id) => entry(9, key(id), id)))]);
    }
  }
  return { commits, documentIds, indexIds: [1, 2, 9], maxTs: ts };
}

/**
 * Every read a snapshot in [fromTs, toTs] can make: each document (a tombstone reads as null: both mean "no
 * document", and prune may remove a tombstone) and each index scanned both ways in full and in small pages.
 */
async function readEverything(reader: PersistenceReader, history: History, fromTs: bigint, toTs: bigint) {
  const reads: unknown[] = [];
  for (let ts = fromTs; ts <= toTs; ts++) {
    for (const id of history.documentIds) {
      const document = await reader.getDocument(id, ts);
      reads.push(document?.json === null ? null : document);
    }
    for (const indexId of history.indexIds) {
      for (const order of ["asc", "desc"] as const) {
        for (const limit of [1000, 2]) {
          reads.push(plainRows(
            await reader.scanIndex({ indexId, lowKey: new Uint8Array(0), highKey: null, order, snapshotTs: ts, limit }),
          ));
        }
      }
    }
  }
  return reads;
}

defineConformanceTests(sqliteBackend);
defineConformanceTests(postgresBackend);
defineConformanceTests(mysqlBackend);
