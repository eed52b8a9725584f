/**
 * The in-memory search indexes (src/search) at the engine level. Text: the same ranked results as the table scan it
 * replaces at the latest snapshot and at an older one, with filters, prefixes and a transaction's own writes, on SQLite
 * and PostgreSQL; hand-computed BM25; compaction; the same results after a restart. Vector: built from the table,
 * kept current by commits and the same after a restart, on SQLite and PostgreSQL.
 */
import { assert, assertEquals, seededRandom } from "./helpers/assert.ts";
import { freshPostgres, freshSqlite } from "./helpers/databases.ts";
import { collect, mutate, query, rejects, sys } from "./helpers/engine.ts";
import { type Database, type DatabaseSyscalls, openDatabase } from "../src/database/mod.ts";
import { openPersistence, type PersistenceLocation } from "../src/persistence/mod.ts";
import { SearchService } from "../src/search/mod.ts";
import { parseCommandLine } from "../src/server/config.ts";
import { TextIndex } from "../src/search/text_index.ts";

const INDEX = "docs.search_body";
const WORDS = "apple banana cherry date elder fig grape honeydew iris jasmine kiwi lemon mango nectar olive pear"
  .split(" ");
const TAGS = ["red", "green", "blue"];

/** Creates `docs` and declares its search index (as a push would: with a term-key index ID). */
async function declareIndex(db: Database): Promise<void> {
  await db.createTable("docs");
  await db.updateCatalog((catalog) => ({
    ...catalog,
    tables: catalog.tables.map((table) =>
      table.name === "docs"
        ? {
          ...table,
          searchIndexes: [{
            name: INDEX,
            searchField: "body",
            filterFields: ["tag"],
            indexId: -(table.tableNumber * 100),
          }],
        }
        : table
    ),
  }));
}

/** Runs `body` on a fresh SQLite database with `console.error` lines collected (the service logs dropped indexes). */
async function withSqliteCapturingErrors(body: (db: Database, errors: string[]) => Promise<void>): Promise<void> {
  const location = await freshSqlite();
  const db = await openDatabase(await openPersistence(location));
  const errors: string[] = [];
  const consoleError = console.error;
  console.error = (...args: unknown[]) => errors.push(args.map(String).join(" "));
  try {
    await body(db, errors);
  } finally {
    console.error = consoleError;
    await db.close();
    await location.cleanup();
  }
}

/** Creates `items` with the two-dimensional vector index `items.by_embedding` on `embedding`, as a push would. */
async function declareVectorIndex(db: Database): Promise<void> {
  await db.createTable("items");
  const vectorIndexes = [{ name: "items.by_embedding", vectorField: "embedding", dimensions: 2, filterFields: [] }];
  await db.updateCatalog((catalog) => ({
    ...catalog,
    tables: catalog.tables.map((table) => table.name === "items" ? { ...table, vectorIndexes } : table),
  }));
}

function randomBody(random: () => number, serial: number): string {
  const length = 1 + Math.floor(random() * 12);
  const words = Array.from({ length }, () => WORDS[Math.floor(random() * random() * WORDS.length)]);
  return `${words.join(" ")} n${serial}`;
}

async function insert(tx: DatabaseSyscalls, body: string, tag: string): Promise<string> {
  return (await sys<{ _id: string }>(tx, "1.0/insert", { table: "docs", value: { body, tag } }))._id;
}

/** The serialized `withSearchIndex` query of `text` (with an `eq` on `tag` when given). */
function searchQuery(text: string, tag?: string) {
  const filters: unknown[] = [{ type: "Search", fieldPath: "body", value: text }];
  if (tag !== undefined) filters.push({ type: "Eq", fieldPath: "tag", value: tag });
  return { source: { type: "Search", indexName: INDEX, filters }, operators: [] };
}

const QUERIES: [string, string | undefined][] = [
  ["apple", undefined],
  ["apple banana", undefined],
  ["banana ch", undefined],
  ["a", undefined],
  ["fig grape honeydew", "red"],
  ["kiwi", "blue"],
  ["pear olive n1", undefined],
  ["zzz", undefined],
  ["lemon m", "green"],
  ["", undefined],
];

async function runQueries(db: Database, snapshotTs?: bigint): Promise<string[][]> {
  const out: string[][] = [];
  for (const [text, tag] of QUERIES) {
    const documents = await query(db, (tx) => collect(tx, searchQuery(text, tag)), snapshotTs);
    out.push(documents.map((document) => `${document.body}|${document.tag}`));
  }
  return out;
}

/** A mutation's view: its own inserts, a patch and a delete, then every query. */
async function runQueriesWithOwnWrites(db: Database, ids: string[]): Promise<string[][]> {
  const tx = db.begin("mutation");
  await insert(tx, "apple apple apple own", "red");
  await insert(tx, "banana cherry own", "blue");
  await sys(tx, "1.0/shallowMerge", { id: ids[0], value: { body: "kiwi kiwi patched" } });
  await sys(tx, "1.0/remove", { id: ids[1] });
  const out: string[][] = [];
  for (const [text, tag] of QUERIES) {
    out.push((await collect(tx, searchQuery(text, tag))).map((document) => `${document.body}|${document.tag}`));
  }
  return out;
}

async function equivalence(location: PersistenceLocation): Promise<void> {
  const db = await openDatabase(await openPersistence(location));
  try {
    await declareIndex(db);
    const random = seededRandom(18);
    const ids: string[] = [];
    for (let batch = 0; batch < 10; batch++) {
      const { result } = await mutate(db, async (tx) => {
        const inserted: string[] = [];
        for (let i = 0; i < 30; i++) {
          const serial = batch * 30 + i;
          inserted.push(await insert(tx, randomBody(random, serial), TAGS[serial % 3]));
        }
        return inserted;
      });
      ids.push(...result);
    }
    const service = await SearchService.open(db);
    const oldTs = db.latestTs;
    // Writes after the old snapshot: updates, deletes and inserts the old snapshot must not see.
    for (let i = 0; i < 40; i++) {
      await mutate(db, async (tx) => {
        const id = ids[10 + i];
        if (i % 3 === 0) await sys(tx, "1.0/remove", { id });
        else await sys(tx, "1.0/shallowMerge", { id, value: { body: randomBody(random, 1000 + i) } });
        await insert(tx, randomBody(random, 2000 + i), TAGS[i % 3]);
      });
    }
    const indexed = {
      latest: await runQueries(db),
      old: await runQueries(db, oldTs),
      own: await runQueriesWithOwnWrites(db, ids),
    };
    assertEquals(service.answeredTextSearches, QUERIES.length * 3);
    service.close(); // transactions now rank by scanning the table
    const scanned = {
      latest: await runQueries(db),
      old: await runQueries(db, oldTs),
      own: await runQueriesWithOwnWrites(db, ids),
    };
    assert(indexed.latest[0].length > 10, "the corpus should match apple often");
    assert(JSON.stringify(indexed.latest) !== JSON.stringify(indexed.old), "the old snapshot should differ");
    assertEquals(indexed.latest, scanned.latest);
    assertEquals(indexed.old, scanned.old);
    assertEquals(indexed.own, scanned.own);
  } finally {
    await db.close();
  }
}

Deno.test("search index: ranks exactly as the table scan (latest and older snapshot, own writes) on SQLite", async () => {
  const location = await freshSqlite();
  try {
    await equivalence(location);
  } finally {
    await location.cleanup();
  }
});

Deno.test("search index: ranks exactly as the table scan on PostgreSQL", async () => {
  const location = await freshPostgres();
  try {
    await equivalence(location);
  } finally {
    await location.cleanup();
  }
});

Deno.test("search index: BM25 scores match a hand computation; filters and the 1,024-result limit", async () => {
  const location = await freshSqlite();
  const db = await openDatabase(await openPersistence(location));
  try {
    await declareIndex(db);
    // Corpus: N = 3, average length 3. "cat": df 2 → idf = ln(1 + (3 - 2 + 0.5) / 2.5) = ln 1.6.
    // d1 "cat cat dog" (len 3): tf 2 → idf·2·2.2 / (2 + 1.2) = 1.375·idf
    // d2 "cat bird fish fish" (len 4): norm = 1.2·(0.25 + 0.75·4/3) = 1.5 → idf·1·2.2 / 2.5 = 0.88·idf
    // d3 "dog fish" : no "cat". So the order is d1, d2; with tag = "b" only d2.
    await mutate(db, async (tx) => {
      await insert(tx, "cat cat dog", "a");
      await insert(tx, "cat bird fish fish", "b");
      await insert(tx, "dog fish", "b");
    });
    const service = await SearchService.open(db);
    // A later commit to another table: snapshots after it are still answered by the index.
    await mutate(db, async (tx) => await sys(tx, "1.0/insert", { table: "other", value: { x: 1 } }));
    const bodies = async (text: string, tag?: string) =>
      (await query(db, (tx) => collect(tx, searchQuery(text, tag)))).map((document) => document.body);
    assertEquals(await bodies("cat"), ["cat cat dog", "cat bird fish fish"]);
    assertEquals(await bodies("cat", "b"), ["cat bird fish fish"]);
    // "fish dog": fish idf = ln(1 + 1.5/2.5), dog idf same; d3 (len 2, norm 1.2·(0.25 + 0.5) = 0.9) has both once:
    // 2·idf·2.2/1.9 = 2.316·idf; d2 has fish twice: idf·2·2.2/3.5 = 1.257·idf; d1 has dog once: idf·2.2/2.2 = idf.
    assertEquals(await bodies("fish dog"), ["dog fish", "cat bird fish fish", "cat cat dog"]);
    // The last term is a prefix: "fi" matches fish.
    assertEquals(await bodies("fi"), ["cat bird fish fish", "dog fish"]);
    for (let batch = 0; batch < 3; batch++) {
      await mutate(db, async (tx) => {
        for (let i = 0; i < 400; i++) await insert(tx, `many ${batch}-${i}`, "c");
      });
    }
    assertEquals((await bodies("many")).length, 1024);
    assertEquals(service.answeredTextSearches, 5, "every search answered by the index");
    service.close();
  } finally {
    await db.close();
    await location.cleanup();
  }
});

Deno.test("search index: identical results before and after a restart (rebuilt from the table)", async () => {
  const location = await freshSqlite();
  try {
    let before: string[][] = [];
    {
      const db = await openDatabase(await openPersistence(location));
      await declareIndex(db);
      const random = seededRandom(7);
      await mutate(db, async (tx) => {
        for (let i = 0; i < 200; i++) await insert(tx, randomBody(random, i), TAGS[i % 3]);
      });
      const service = await SearchService.open(db);
      before = await runQueries(db);
      service.close();
      await db.close();
    }
    const db = await openDatabase(await openPersistence(location));
    try {
      const service = await SearchService.open(db);
      assertEquals(service.stats().map((stats) => stats.documents), [200]);
      assertEquals(await runQueries(db), before);
      service.close();
    } finally {
      await db.close();
    }
  } finally {
    await location.cleanup();
  }
});

Deno.test("search index: compaction drops versions no snapshot can see and keeps every answer above the horizon", () => {
  const index = new TextIndex({ name: "docs.s", searchField: "body", filterFields: [], indexId: -1 }, 0n);
  const json = (id: string, body: string) => JSON.stringify({ _id: id, _creationTime: Number(id.slice(1)), body });
  const request = (snapshotTs: bigint, query: string) => ({
    tableNumber: 1,
    indexName: "docs.s",
    snapshotTs: snapshotTs.toString(),
    query,
    filters: [],
    overlay: [],
  });
  for (let i = 0; i < 3000; i++) index.apply(1n, `d${i}`, json(`d${i}`, `apple v${i % 7}`));
  // Every document rewritten twice: the versions of ts 1 and 2 become invisible above ts 3.
  for (let i = 0; i < 3000; i++) index.apply(2n, `d${i}`, json(`d${i}`, `banana v${i % 5}`));
  for (let i = 0; i < 3000; i++) index.apply(3n, `d${i}`, json(`d${i}`, `cherry v${i % 3}`));
  const before = [index.search(request(3n, "cherry v1")), index.search(request(3n, "banana"))];
  assertEquals(index.search(request(1n, "apple"))!.length, 1024);
  assert(index.compact(3n), "two thirds of the versions are dead: compaction runs");
  assertEquals([index.search(request(3n, "cherry v1")), index.search(request(3n, "banana"))], before);
  assertEquals(index.search(request(1n, "apple")), null, "a snapshot below the horizon is refused");
  assertEquals(index.documentCount, 3000);
});

for (const backend of [{ name: "SQLite", fresh: freshSqlite }, { name: "PostgreSQL", fresh: freshPostgres }]) {
  Deno.test(`vector index on ${backend.name}: built from the table, kept current, identical after a restart`, async () => {
    const location = await backend.fresh();
    try {
      const vectorSearch = async (service: SearchService, vector: number[]) =>
        (JSON.parse(
          await service.vectorSearch(
            JSON.stringify({ query: { indexName: "items.by_embedding", vector, limit: 3, expressions: null } }),
            "",
          ),
        ) as { results: { _id: string; _score: number }[] }).results;
      const names = new Map<string, string>();
      let before: unknown[] = [];
      {
        const db = await openDatabase(await openPersistence(location));
        await declareVectorIndex(db);
        const insertItem = (name: string, embedding: number[]) =>
          mutate(db, async (tx) => {
            const id = (await sys<{ _id: string }>(tx, "1.0/insert", { table: "items", value: { name, embedding } }))
              ._id;
            names.set(id, name);
          });
        await insertItem("east", [1, 0]);
        await insertItem("north", [0, 1]);
        const service = await SearchService.open(db);
        await insertItem("northeast", [1, 1]); // after the build: applied from the commit
        const results = await vectorSearch(service, [1, 0.2]);
        assertEquals(results.map((r) => names.get(r._id)), ["east", "northeast", "north"]);
        before = results;
        service.close();
        await db.close();
      }
      const db = await openDatabase(await openPersistence(location));
      try {
        const service = await SearchService.open(db);
        assertEquals(await vectorSearch(service, [1, 0.2]), before);
        service.close();
      } finally {
        await db.close();
      }
    } finally {
      await location.cleanup();
    }
  });
}

Deno.test("search index: indexes over the memory budget are dropped, largest first: text searches scan, vector searches fail clearly", async () => {
  await withSqliteCapturingErrors(async (db, errors) => {
    await declareIndex(db);
    await declareVectorIndex(db);
    const random = seededRandom(7);
    for (let batch = 0; batch < 10; batch++) {
      await mutate(db, async (tx) => {
        for (let i = 0; i < 30; i++) await insert(tx, randomBody(random, batch * 30 + i), TAGS[i % 3]);
      });
    }
    await mutate(db, async (tx) => {
      for (const embedding of [[1, 0], [0, 1], [1, 1]]) {
        await sys(tx, "1.0/insert", { table: "items", value: { embedding } });
      }
    });
    const vectorSearch = (service: SearchService) =>
      service.vectorSearch(
        JSON.stringify({ query: { indexName: "items.by_embedding", vector: [1, 0], limit: 2, expressions: null } }),
        "",
      );
    const sizes = new Map((await SearchService.open(db).then((service) => {
      const stats = service.stats();
      service.close();
      return stats;
    })).map((stat) => [stat.name, stat.sizeBytes]));
    const textBytes = sizes.get(INDEX)!;
    const vectorBytes = sizes.get("items.by_embedding")!;
    assert(textBytes > vectorBytes, `the text index (${textBytes} B) is the larger one (${vectorBytes} B)`);
    const scanned = await runQueries(db); // no service: every search scans

    // Both fit: both serve.
    const roomy = await SearchService.open(db, { memoryBudgetBytes: textBytes + vectorBytes });
    assertEquals(await runQueries(db), scanned);
    assertEquals(roomy.answeredTextSearches, QUERIES.length);
    roomy.close();

    // One byte short: the largest (text) goes, its searches scan with the same results; the vector index serves.
    const tight = await SearchService.open(db, { memoryBudgetBytes: textBytes + vectorBytes - 1 });
    assertEquals(tight.stats().map((stat) => stat.name), ["items.by_embedding"]);
    assertEquals(await runQueries(db), scanned);
    assertEquals(tight.answeredTextSearches, 0, "answered by scans");
    assertEquals(JSON.parse(await vectorSearch(tight)).results.length, 2);
    assert(errors.some((line) => line.includes(`search index ${INDEX}`) && line.includes("--search-memory")));
    tight.close();

    // Smaller than either: both go; a vector search says why.
    const none = await SearchService.open(db, { memoryBudgetBytes: vectorBytes - 1 });
    assertEquals(none.stats(), []);
    assertEquals(await runQueries(db), scanned);
    const message = await rejects(vectorSearch(none), /does not fit in the search memory budget/);
    assert(message.includes("items.by_embedding"), message);
    none.close();

    // Growth past the budget after the build: the next check drops the index.
    const growing = await SearchService.open(db, { memoryBudgetBytes: textBytes + vectorBytes, compactIntervalMs: 20 });
    await mutate(db, async (tx) => {
      for (let i = 0; i < 200; i++) await insert(tx, `${randomBody(random, 5000 + i)} novel${i}`, "red");
    });
    const deadline = Date.now() + 5_000;
    while (growing.stats().some((stat) => stat.name === INDEX) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assertEquals(growing.stats().map((stat) => stat.name), ["items.by_embedding"], "the grown text index is dropped");
    const answeredBefore = growing.answeredTextSearches;
    const afterGrowth = await runQueries(db);
    assertEquals(growing.answeredTextSearches, answeredBefore);
    growing.close();
    assertEquals(afterGrowth, await runQueries(db), "the scans answer as before");
  });
});

Deno.test("search index: --search-memory takes whole MiB (default 512) and refuses anything else clearly", () => {
  const bytesOf = (...args: string[]) =>
    (parseCommandLine(args, () => undefined) as { config: { searchMemoryBytes: number } }).config.searchMemoryBytes;
  assertEquals(bytesOf(), 512 * 1024 * 1024);
  assertEquals(bytesOf("--search-memory", "64"), 64 * 1024 * 1024);
  for (const bad of ["0", "-1", "1.5", "64MiB", "", "99999999"]) {
    let error: Error | null = null;
    try {
      bytesOf(`--search-memory=${bad}`);
    } catch (caught) {
      error = caught as Error;
    }
    assert(error?.name === "UsageError" && error.message.includes("--search-memory"), `refused: '${bad}'`);
  }
});

Deno.test("search index: a build that outgrows the memory budget stops part-way; its searches scan", async () => {
  await withSqliteCapturingErrors(async (db, errors) => {
    await declareIndex(db);
    // More than 8 build pages of 2,000 documents: the build checks the budget before it ends.
    const random = seededRandom(11);
    for (let batch = 0; batch < 17; batch++) {
      await mutate(db, async (tx) => {
        for (let i = 0; i < 1_000; i++) await insert(tx, randomBody(random, batch * 1_000 + i), TAGS[i % 3]);
      });
    }
    const scanned = await runQueries(db);
    const service = await SearchService.open(db, { memoryBudgetBytes: 64 * 1024 });
    assertEquals(service.stats(), []);
    assert(
      errors.some((line) => line.includes(`building the search index`) && line.includes("does not fit")),
      "the build itself stopped",
    );
    assertEquals(await runQueries(db), scanned);
    assertEquals(service.answeredTextSearches, 0);
    service.close();
  });
});
