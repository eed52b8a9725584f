/**
 * The database engine against SQLite and PostgreSQL alike: documents, snapshots, queries, pagination, OCC,
 * serializability, indexes with backfill, schema validation, limits, retention, bad input.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { BACKENDS } from "./helpers/databases.ts";
import { addIndex, collect, mutate, query, rejects, sys } from "./helpers/engine.ts";
import { type Database, openDatabase } from "../src/database/mod.ts";
import { openPersistence } from "../src/persistence/mod.ts";
import type { PersistenceLocation } from "../src/persistence/types.ts";

type Doc = Record<string, unknown> & { _id: string; _creationTime: number };

async function withDatabase(
  fresh: () => Promise<PersistenceLocation & { cleanup: () => Promise<void> }>,
  body: (db: Database, location: PersistenceLocation) => Promise<void>,
): Promise<void> {
  const location = await fresh();
  const db = await openDatabase(await openPersistence(location));
  try {
    await body(db, location);
  } finally {
    await db.close();
    await location.cleanup();
  }
}

const scan = (tableName: string, order: "asc" | "desc" | null = null, operators: unknown[] = []) => ({
  source: { type: "FullTableScan", tableName, order },
  operators,
});
const range = (
  indexName: string,
  rangeExpressions: unknown[],
  order: "asc" | "desc" | null = null,
  operators: unknown[] = [],
) => ({
  source: { type: "IndexRange", indexName, range: rangeExpressions, order },
  operators,
});
const int = (n: number) => {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigInt64(0, BigInt(n), true);
  return { $integer: btoa(String.fromCharCode(...bytes)) };
};

async function insertMany(db: Database, table: string, values: Record<string, unknown>[]): Promise<string[]> {
  const { result } = await mutate(db, async (tx) => {
    const ids: string[] = [];
    for (const value of values) ids.push((await sys<{ _id: string }>(tx, "1.0/insert", { table, value }))._id);
    return ids;
  });
  return result;
}

for (const backend of BACKENDS) {
  const t = (name: string, body: (db: Database, location: PersistenceLocation) => Promise<void>) =>
    Deno.test({
      name: `database[${backend.name}]: ${name}`,
      fn: () => withDatabase(backend.fresh, body),
    });

  t("insert, get, patch, replace, delete, each visible from its commit ts only", async (db) => {
    const [id] = await insertMany(db, "notes", [{ body: "a", n: 1, tags: ["x"] }]);
    const tsInsert = db.latestTs;
    const doc = await query(db, (tx) => sys<Doc>(tx, "1.0/get", { id, isSystem: false, version: "1.48.0" }));
    assertEquals(doc.body, "a");
    assertEquals(doc.n, 1);
    assertEquals(doc._id, id);
    assertEquals(typeof doc._creationTime, "number");
    assert(Math.abs(doc._creationTime - Date.now()) < 60_000, "_creationTime is in milliseconds");

    await mutate(db, (tx) => sys(tx, "1.0/shallowMerge", { id, value: { body: "b", n: { $undefined: null } } }));
    const tsPatch = db.latestTs;
    await mutate(db, (tx) => sys(tx, "1.0/replace", { id, value: { title: "t" } }));
    const tsReplace = db.latestTs;
    await mutate(db, (tx) => sys(tx, "1.0/remove", { id }));

    const at = (ts: bigint) => query(db, (tx) => sys<Doc | null>(tx, "1.0/get", { id, isSystem: false }), ts);
    assertEquals((await at(tsInsert))!.body, "a");
    const patched = (await at(tsPatch))!;
    assertEquals(patched.body, "b");
    assert(!("n" in patched), "patch with undefined removes the field");
    assertEquals(patched.tags, ["x"]);
    const replaced = (await at(tsReplace))!;
    assertEquals(replaced.title, "t");
    assert(!("body" in replaced) && !("tags" in replaced), "replace drops the old fields");
    assertEquals(replaced._creationTime, doc._creationTime);
    assertEquals(await at(db.latestTs), null);
    assert(tsInsert < tsPatch && tsPatch < tsReplace && tsReplace < db.latestTs, "commit ts strictly increase");
  });

  t("reads inside a mutation see its own writes; a query sees none of an uncommitted one", async (db) => {
    await insertMany(db, "items", [{ k: 1 }, { k: 2 }]);
    await mutate(db, async (tx) => {
      await sys(tx, "1.0/insert", { table: "items", value: { k: 3 } });
      const all = await collect(tx, scan("items"));
      assertEquals(all.map((d) => d.k), [1, 2, 3]);
      await sys(tx, "1.0/shallowMerge", { id: all[0]._id, value: { k: 10 } });
      await sys(tx, "1.0/remove", { id: all[1]._id });
      assertEquals((await collect(tx, scan("items", "desc"))).map((d) => d.k), [3, 10]);
      const outside = await query(db, (q) => collect(q, scan("items")));
      assertEquals(outside.map((d) => d.k), [1, 2]);
    });
    assertEquals((await query(db, (tx) => collect(tx, scan("items")))).map((d) => d.k), [10, 3]);
  });

  t("index ranges: equality prefix, bounds, order, and the implicit _creationTime tiebreak", async (db) => {
    await insertMany(db, "msgs", [
      { ch: "a", n: 3 },
      { ch: "b", n: 1 },
      { ch: "a", n: 1 },
      { ch: "a", n: 2 },
      { ch: "a", n: 2, dup: true },
      { ch: "c", n: 5 },
      { n: 0 },
    ]);
    await addIndex(db, "msgs", "by_ch_n", ["ch", "n"]);
    const q = (expressions: unknown[], order: "asc" | "desc" | null = null) =>
      query(db, (tx) => collect(tx, range("msgs.by_ch_n", expressions, order)));
    const eqA = await q([{ type: "Eq", fieldPath: "ch", value: "a" }]);
    assertEquals(eqA.map((d) => [d.n, d.dup ?? false]), [[1, false], [2, false], [2, true], [3, false]]);
    const bounded = await q([
      { type: "Eq", fieldPath: "ch", value: "a" },
      { type: "Gt", fieldPath: "n", value: 1 },
      { type: "Lte", fieldPath: "n", value: 3 },
    ], "desc");
    assertEquals(bounded.map((d) => d.n), [3, 2, 2]);
    const gte = await q([{ type: "Gte", fieldPath: "ch", value: "b" }]);
    assertEquals(gte.map((d) => d.ch), ["b", "c"]);
    const missing = await q([{ type: "Eq", fieldPath: "ch", value: { $undefined: null } }]);
    assertEquals(missing.map((d) => d.n), [0], "missing sorts first and is matched by $undefined");
    const lt = await q([{ type: "Lt", fieldPath: "ch", value: "b" }]);
    assertEquals(lt.map((d) => d.ch ?? null), [null, "a", "a", "a", "a"]);
    const all = await query(db, (tx) => collect(tx, scan("msgs", "desc")));
    assertEquals(all.map((d) => d.n), [0, 5, 2, 2, 1, 1, 3], "full scan is by _creationTime");
    const byId = await query(
      db,
      (tx) => collect(tx, range("msgs.by_id", [{ type: "Eq", fieldPath: "_id", value: all[2]._id }])),
    );
    assertEquals(byId.length, 1);
    assertEquals(byId[0]._id, all[2]._id);
  });

  t("filters use Convex comparison semantics; limits apply in operator order", async (db) => {
    await insertMany(db, "f", [
      { a: 1, s: "x", o: { p: true } },
      { a: 2, s: "y" },
      { a: int(2), s: "z" },
      { s: "w" },
      { a: null },
      { a: 3.5, o: { p: false } },
    ]);
    const run = (operators: unknown[]) => query(db, (tx) => collect(tx, scan("f", null, operators)));
    const field = (f: string) => ({ $field: f });
    const lit = (v: unknown) => ({ $literal: v });
    assertEquals((await run([{ filter: { $gt: [field("a"), lit(1)] } }])).map((d) => d.a), [2, 3.5]);
    // int64 sorts below every float64, so int(2) < 1.0 and missing < null < int64.
    assertEquals((await run([{ filter: { $lt: [field("a"), lit(1)] } }])).length, 3);
    assertEquals((await run([{ filter: { $eq: [field("a"), lit({ $undefined: null })] } }])).map((d) => d.s), ["w"]);
    assertEquals((await run([{ filter: { $eq: [field("a"), lit(null)] } }])).length, 1);
    assertEquals((await run([{ filter: { $eq: [field("o.p"), lit(true)] } }])).map((d) => d.a), [1]);
    assertEquals(
      (await run([{ filter: { $or: [{ $eq: [field("s"), lit("y")] }, { $not: { $neq: [field("s"), lit("z")] } }] } }]))
        .length,
      2,
    );
    // Arithmetic needs two numbers of one type; mixing int64 and float64 (or a non-number) is an error.
    await rejects(run([{ filter: { $eq: [{ $add: [field("a"), lit(1)] }, lit(3)] } }]), /\$add needs two numbers/);
    await insertMany(db, "nums", [{ x: 1.5, k: int(4) }, { x: 2, k: int(-3) }, { x: -7.25, k: int(9) }]);
    const nums = (operators: unknown[]) => query(db, (tx) => collect(tx, scan("nums", null, operators)));
    assertEquals((await nums([{ filter: { $eq: [{ $add: [field("x"), lit(1)] }, lit(3)] } }])).map((d) => d.x), [2]);
    assertEquals((await nums([{ filter: { $gt: [{ $neg: field("x") }, lit(0)] } }])).map((d) => d.x), [-7.25]);
    assertEquals(
      (await nums([{ filter: { $eq: [{ $mul: [field("k"), lit(int(3))] }, lit(int(-9))] } }])).map((d) => d.x),
      [2],
    );
    assertEquals(
      (await nums([{ filter: { $eq: [{ $mod: [field("k"), lit(int(2))] }, lit(int(1))] } }])).map((d) => d.x),
      [
        -7.25,
      ],
    );
    assertEquals((await run([{ limit: 2 }, { filter: { $eq: [field("s"), lit("y")] } }])).length, 1);
    assertEquals((await run([{ filter: { $neq: [field("s"), lit("x")] } }, { limit: 2 }])).map((d) => d.s), ["y", "z"]);
    assertEquals((await run([{ limit: 0 }])).length, 0);
  });

  t("pagination: pages cover everything once, cursors are opaque, bad cursors are InvalidCursor", async (db) => {
    const values = Array.from({ length: 25 }, (_, i) => ({ i }));
    await insertMany(db, "p", values);
    const seen: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    for (;;) {
      const page: { page: Doc[]; isDone: boolean; continueCursor: string } = await query(
        db,
        (tx) =>
          sys(tx, "1.0/queryPage", { query: scan("p"), cursor, endCursor: null, pageSize: 10, maximumRowsRead: null }),
      );
      seen.push(...page.page.map((d) => d.i as number));
      pages++;
      assertEquals(typeof page.continueCursor, "string");
      cursor = page.continueCursor;
      if (page.isDone) break;
      assert(pages < 10, "pagination terminates");
    }
    assertEquals(seen, values.map((v) => v.i));
    const again: { page: Doc[]; isDone: boolean } = await query(
      db,
      (tx) =>
        sys(tx, "1.0/queryPage", { query: scan("p"), cursor, endCursor: null, pageSize: 10, maximumRowsRead: null }),
    );
    assertEquals(again.page.length, 0);
    assertEquals(again.isDone, true);
    // endCursor: a page with a fixed end, whatever the page size.
    const first: { page: Doc[]; continueCursor: string } = await query(
      db,
      (tx) =>
        sys(tx, "1.0/queryPage", {
          query: scan("p"),
          cursor: null,
          endCursor: null,
          pageSize: 5,
          maximumRowsRead: null,
        }),
    );
    await insertMany(db, "p", [{ i: 100 }]);
    const fixed: { page: Doc[] } = await query(db, (tx) =>
      sys(tx, "1.0/queryPage", {
        query: scan("p"),
        cursor: null,
        endCursor: first.continueCursor,
        pageSize: 1,
        maximumRowsRead: null,
      }));
    assertEquals(fixed.page.map((d) => d.i), [0, 1, 2, 3, 4]);
    await rejects(
      query(db, (tx) => sys(tx, "1.0/queryPage", { query: scan("p"), cursor: "garbage", pageSize: 5 })),
      /InvalidCursor/,
    );
    await rejects(
      query(db, (tx) => sys(tx, "1.0/queryPage", { query: scan("p"), cursor: null, pageSize: 0 })),
      /numItems must be a positive number/,
    );
    await rejects(
      query(db, async (tx) => {
        await sys(tx, "1.0/queryPage", { query: scan("p"), cursor: null, pageSize: 1 });
        await sys(tx, "1.0/queryPage", { query: scan("p"), cursor: null, pageSize: 1 });
      }),
      /single paginated query/,
    );
    assertEquals(await query(db, (tx) => sys(tx, "1.0/count", { table: "p" })), 26);
    assertEquals(await query(db, (tx) => sys(tx, "1.0/count", { table: "nothing_here" })), 0);
    // A table that was never created reads as empty, through streams and pages alike.
    assertEquals(await query(db, (tx) => collect(tx, scan("nothing_here"))), []);
    const emptyPage: { page: Doc[]; isDone: boolean } = await query(
      db,
      (tx) => sys(tx, "1.0/queryPage", { query: scan("nothing_here"), cursor: null, pageSize: 5 }),
    );
    assertEquals(emptyPage.page, []);
    assertEquals(emptyPage.isDone, true);
  });

  t("optimistic concurrency: a write into a range another transaction read rejects that transaction", async (db) => {
    const [id] = await insertMany(db, "c", [{ v: 0 }]);
    const a = db.begin("mutation");
    const b = db.begin("mutation");
    const readA = await sys<Doc>(a, "1.0/get", { id, isSystem: false });
    const readB = await sys<Doc>(b, "1.0/get", { id, isSystem: false });
    await sys(a, "1.0/shallowMerge", { id, value: { v: (readA.v as number) + 1 } });
    await sys(b, "1.0/shallowMerge", { id, value: { v: (readB.v as number) + 1 } });
    await db.commit(a.outcome());
    await rejects(db.commit(b.outcome()), /changed while this mutation was being run/);
    // A range read (not a point read) conflicts with an insert into the range.
    const c = db.begin("mutation");
    const d = db.begin("mutation");
    await collect(c, scan("c"));
    await sys(c, "1.0/insert", { table: "c", value: { v: 100 } });
    await sys(d, "1.0/insert", { table: "c", value: { v: 200 } });
    await db.commit(d.outcome());
    await rejects(db.commit(c.outcome()), /changed/);
    // Disjoint reads do not conflict.
    await addIndex(db, "c", "by_v", ["v"]);
    const e = db.begin("mutation");
    await collect(e, range("c.by_v", [{ type: "Eq", fieldPath: "v", value: 1 }]));
    await sys(e, "1.0/insert", { table: "c", value: { v: 1 } });
    await insertMany(db, "c", [{ v: 2 }]);
    await db.commit(e.outcome());
    // _creationTime is taken at the insert, so e's document sorts before the later-inserted v: 2.
    assertEquals((await query(db, (tx) => collect(tx, scan("c")))).map((x) => x.v), [1, 200, 1, 2]);
  });

  t("reading a table that does not exist yet conflicts with creating it, and its creation is a commit", async (db) => {
    const events: { ts: bigint; indexIds: number[] }[] = [];
    db.onCommit((event) => events.push({ ts: event.ts, indexIds: [...event.keysByIndex.keys()] }));
    const reader = db.begin("mutation");
    assertEquals(await collect(reader, scan("ghosts")), []);
    await sys(reader, "1.0/insert", { table: "other", value: { saw: 0 } });
    const before = db.latestTs;
    await insertMany(db, "ghosts", [{ boo: true }]);
    assert(events.some((e) => e.ts > before && e.indexIds.includes(0)), "creating the table announced it");
    await rejects(db.commit(reader.outcome()), /changed/);
    // A transaction that started after the creation sees the table and commits.
    await mutate(db, async (tx) => assertEquals((await collect(tx, scan("ghosts"))).length, 1));
  });

  t("serializability: concurrent appends to shared lists form one history", async (db) => {
    const lists = ["l0", "l1", "l2"];
    const ids = await insertMany(db, "lists", lists.map((name) => ({ name, items: [] })));
    const observed: { list: number; seen: number[] }[] = [];
    const workers = 12;
    const appendsPerWorker = 8;
    await Promise.all(Array.from({ length: workers }, async (_, worker) => {
      for (let step = 0; step < appendsPerWorker; step++) {
        const value = worker * 1000 + step;
        const listIndex = (worker + step) % lists.length;
        const { result } = await mutate(db, async (tx) => {
          const doc = await sys<Doc>(tx, "1.0/get", { id: ids[listIndex], isSystem: false });
          const items = doc.items as number[];
          // Read another list too, so read sets overlap in more ways than the written document.
          await sys(tx, "1.0/get", { id: ids[(listIndex + 1) % lists.length], isSystem: false });
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 3));
          await sys(tx, "1.0/shallowMerge", { id: ids[listIndex], value: { items: [...items, value] } });
          return [...items];
        }, 1000);
        observed.push({ list: listIndex, seen: result });
      }
    }));
    const finals = await query(
      db,
      (tx) => Promise.all(ids.map((id) => sys<Doc>(tx, "1.0/get", { id, isSystem: false }))),
    );
    const total = finals.reduce((sum, doc) => sum + (doc.items as number[]).length, 0);
    assertEquals(total, workers * appendsPerWorker, "nothing lost");
    for (const doc of finals) {
      const items = doc.items as number[];
      assertEquals(new Set(items).size, items.length, "nothing duplicated");
    }
    for (const { list, seen } of observed) {
      const final = finals[list].items as number[];
      assertEquals(final.slice(0, seen.length), seen, "every observed list is a prefix of the final list");
    }
  });

  t("adding an index backfills it over existing documents, and commits keep it current", async (db) => {
    await insertMany(db, "b", Array.from({ length: 2500 }, (_, i) => ({ g: i % 7, i })));
    await addIndex(db, "b", "by_g", ["g"]);
    const g3 = await query(db, (tx) => collect(tx, range("b.by_g", [{ type: "Eq", fieldPath: "g", value: 3 }])));
    assertEquals(g3.length, Array.from({ length: 2500 }, (_, i) => i).filter((i) => i % 7 === 3).length);
    assertEquals(g3.map((d) => d.i), [...g3.map((d) => d.i as number)].sort((x, y) => x - y));
    await mutate(db, (tx) => sys(tx, "1.0/shallowMerge", { id: g3[0]._id, value: { g: 100 } }));
    const after = await query(
      db,
      (tx) =>
        collect(
          tx,
          range("b.by_g", [{ type: "Gte", fieldPath: "g", value: 3 }, { type: "Lte", fieldPath: "g", value: 3 }]),
        ),
    );
    assertEquals(after.length, g3.length - 1);
    const moved = await query(db, (tx) => collect(tx, range("b.by_g", [{ type: "Eq", fieldPath: "g", value: 100 }])));
    assertEquals(moved.map((d) => d._id), [g3[0]._id]);
  });

  t("schema validation rejects non-matching writes and leaves data unchanged", async (db) => {
    await insertMany(db, "s", [{ name: "ok" }]);
    await db.updateCatalog((catalog) => ({
      ...catalog,
      schemaValidation: true,
      tables: catalog.tables.map((table) =>
        table.name === "s"
          ? {
            ...table,
            documentType: {
              type: "object",
              value: { name: { fieldType: { type: "string" }, optional: false } },
            },
          }
          : table
      ),
    }));
    await insertMany(db, "s", [{ name: "fine" }]);
    await rejects(insertMany(db, "s", [{ name: 3 }]), /does not match the schema/);
    await rejects(insertMany(db, "s", [{ name: "x", extra: true }]), /does not match the schema/);
    await rejects(insertMany(db, "other", [{ a: 1 }]), /not in the schema/);
    assertEquals((await query(db, (tx) => collect(tx, scan("s")))).map((d) => d.name), ["ok", "fine"]);
  });

  t("bad input gives clear errors and changes nothing", async (db) => {
    const [id] = await insertMany(db, "g", [{ a: 1 }]);
    const before = db.latestTs;
    const bad: [string, unknown, RegExp][] = [
      ["1.0/insert", { table: "bad-name", value: {} }, /bad-name/],
      ["1.0/insert", { table: "_system", value: {} }, /_system/],
      ["1.0/insert", { table: "g", value: { _id: "x" } }, /system field/],
      ["1.0/insert", { table: "g", value: { $bad: 1 } }, /\$bad/],
      ["1.0/insert", { table: "g", value: "not an object" }, /must be an object/],
      ["1.0/insert", { table: "g", value: { big: "x".repeat(1024 * 1024 + 10) } }, /1 ?MiB|size|too large/i],
      ["1.0/insert", { table: "g", value: { arr: new Array(8193).fill(0) } }, /8192|array/i],
      ["1.0/insert", { table: "g", value: { $integer: "AAA" } }, /./],
      ["1.0/shallowMerge", { id: "nope", value: { a: 2 } }, /nonexistent document/],
      ["1.0/remove", { id: 42 }, /must be a string/],
      ["1.0/shallowMerge", { id, value: { _id: "other" } }, /cannot be changed/],
      [
        "1.0/queryStream",
        { query: range("g.by_creation_time", [{ type: "Eq", fieldPath: "a", value: 1 }]) },
        /Invalid index range/,
      ],
      ["1.0/queryStream", { query: range("g.nope", []) }, /not found/],
      ["1.0/queryStream", {
        query: range("g.by_creation_time", [{ type: "Lt", fieldPath: "_creationTime", value: 1 }, {
          type: "Lt",
          fieldPath: "_creationTime",
          value: 2,
        }]),
      }, /two upper bounds/],
      ["1.0/queryStream", { query: scan("g", null, [{ filter: { $what: [] } }]) }, /unknown operator/],
      ["1.0/queryStream", { query: scan("g", null, [{ limit: -1 }]) }, /non-negative/],
      ["1.0/nonsense", {}, /Unknown async operation 1.0\/nonsense/],
    ];
    for (const [op, args, pattern] of bad) {
      await rejects(mutate(db, (tx) => sys(tx, op, args)), pattern);
    }
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let i = 0; i < 20; i++) deep = { d: deep };
    await rejects(mutate(db, (tx) => sys(tx, "1.0/insert", { table: "g", value: deep })), /depth|nest/i);
    await rejects(query(db, (tx) => sys(tx, "1.0/insert", { table: "g", value: { a: 1 } })), /read-only/);
    assertEquals(db.latestTs, before, "no failed call committed anything");
    assertEquals((await query(db, (tx) => collect(tx, scan("g")))).map((d) => d.a), [1]);
  });

  t(
    "nextDocuments: a stream's documents as JSON texts in batches; a batch size that is not a number reads one",
    async (db) => {
      await insertMany(db, "b", [1, 2, 3, 4, 5].map((n) => ({ n })));
      await query(db, async (tx) => {
        const { queryId } = await sys<{ queryId: number }>(tx, "1.0/queryStream", { query: scan("b") });
        const first = await tx.nextDocuments(queryId, 2);
        assertEquals(first.documentsJson.map((json) => JSON.parse(json).n), [1, 2]);
        assertEquals(first.done, false);
        const one = await tx.nextDocuments(queryId, Number.NaN);
        assertEquals(one.documentsJson.map((json) => JSON.parse(json).n), [3]);
        const rest = await tx.nextDocuments(queryId, 10);
        assertEquals(rest.documentsJson.map((json) => JSON.parse(json).n), [4, 5]);
        assertEquals(rest.done, true);
        await rejects(tx.nextDocuments(queryId + 1000, 1), /unknown query/);
      });
    },
  );

  t(
    "nextDocuments: a batch that uses up the query's limit, or the range, says done (no crossing to learn it), " +
      "and reads what the extra crossing read",
    async (db) => {
      await insertMany(db, "e", [1, 2, 3, 4, 5].map((n) => ({ n })));
      const readSetAfter = async (query: unknown, batches: number[]) => {
        const tx = db.begin("query", null);
        const { queryId } = await sys<{ queryId: number }>(tx, "1.0/queryStream", { query });
        const read: { n: number[]; done: boolean[] } = { n: [], done: [] };
        for (const size of batches) {
          const batch = await tx.nextDocuments(queryId, size);
          read.n.push(...batch.documentsJson.map((json) => JSON.parse(json).n));
          read.done.push(batch.done);
        }
        return { read, readSet: JSON.stringify(tx.outcome().readSet) };
      };
      // `take(3)`: the first batch is the whole answer (the worker asks for the limit).
      const limited = scan("e", null, [{ limit: 3 }]);
      const once = await readSetAfter(limited, [3]);
      assertEquals(once.read, { n: [1, 2, 3], done: [true] });
      const twice = await readSetAfter(limited, [3, 3]);
      assertEquals(twice.read, { n: [1, 2, 3], done: [true, true] });
      assertEquals(once.readSet, twice.readSet, "saying done early reads no less and no more");
      // The whole table in a batch of exactly its size.
      const whole = await readSetAfter(scan("e"), [5]);
      assertEquals(whole.read, { n: [1, 2, 3, 4, 5], done: [true] });
      assertEquals(whole.readSet, (await readSetAfter(scan("e"), [5, 5])).readSet);
      // More left: not done.
      assertEquals((await readSetAfter(scan("e", null, [{ limit: 4 }]), [3])).read, { n: [1, 2, 3], done: [false] });
    },
  );

  t("normalizeId, getSnapshotTs, identity and metrics", async (db) => {
    const [id] = await insertMany(db, "n", [{}]);
    await insertMany(db, "m", [{}]);
    const tx = db.begin("query", JSON.stringify({ tokenIdentifier: "iss|u1", subject: "u1", issuer: "iss" }));
    assertEquals(await sys(tx, "1.0/db/normalizeId", { table: "n", idString: id }), { id });
    assertEquals(await sys(tx, "1.0/db/normalizeId", { table: "m", idString: id }), { id: null });
    assertEquals(await sys(tx, "1.0/db/normalizeId", { table: "n", idString: "zzz" }), { id: null });
    const snapshot = await sys<{ $integer: string }>(tx, "1.0/getSnapshotTs", {});
    const bytes = Uint8Array.from(atob(snapshot.$integer), (c) => c.charCodeAt(0));
    assertEquals(new DataView(bytes.buffer).getBigUint64(0, true), db.latestTs);
    assertEquals(await sys(tx, "1.0/getUserIdentity", { requestId: "" }), {
      tokenIdentifier: "iss|u1",
      subject: "u1",
      issuer: "iss",
    });
    await sys(tx, "1.0/get", { id, isSystem: false });
    const metrics = await sys<Record<string, { used: number }>>(tx, "1.0/getTransactionMetrics", {});
    assertEquals(metrics.documentsRead.used, 1);
    await rejects(sys(tx, "1.0/get", { id, isSystem: false, table: "m" }), /not an ID of table "m"/);
  });

  t("retention prunes superseded revisions without changing what retained snapshots read", async (db) => {
    const ids = await insertMany(db, "r", Array.from({ length: 20 }, (_, i) => ({ i, v: 0 })));
    for (let round = 1; round <= 5; round++) {
      await mutate(db, async (tx) => {
        for (const id of ids) await sys(tx, "1.0/shallowMerge", { id, value: { v: round } });
      });
    }
    await mutate(db, (tx) => sys(tx, "1.0/remove", { id: ids[0] }));
    const retainTs = db.latestTs;
    const before = await query(db, (tx) => collect(tx, scan("r")));
    let removed = 0;
    for (;;) {
      const { removedRows, done } = await db.pruneNow(retainTs);
      removed += removedRows;
      if (done) break;
    }
    assert(removed >= 100, `old revisions were removed (${removed})`);
    assertEquals(await query(db, (tx) => collect(tx, scan("r"))), before);
    assertEquals(before.length, 19);
    assert(before.every((d) => d.v === 5));
  });

  t("timestamps keep increasing across a reopen", async (_db, location) => {
    // The outer database is open on `location`; write through it, close it, and reopen a second one.
    const db = _db;
    await insertMany(db, "ts", [{ a: 1 }]);
    const lastTs = db.latestTs;
    await db.close();
    const reopened = await openDatabase(await openPersistence(location));
    try {
      assertEquals(reopened.latestTs, lastTs);
      await insertMany(reopened, "ts", [{ a: 2 }]);
      assert(reopened.latestTs > lastTs, "new commits are later than every commit before the reopen");
      assertEquals((await query(reopened, (tx) => collect(tx, scan("ts")))).map((d) => d.a), [1, 2]);
    } finally {
      await reopened.close();
    }
  });
}
