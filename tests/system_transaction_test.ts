/**
 * The system-transaction API (src/database/system_transaction.ts) on SQLite: buffered writes committed through the
 * committer, reads recorded in the read set (a conflicting commit re-runs the transaction, one outside what it read
 * does not), bounded retries ending in a clear error, index scans with bounds, and read-only snapshots.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { freshSqlite } from "./helpers/databases.ts";
import { rejects } from "./helpers/engine.ts";
import { type Database, openDatabase, withMutationResult } from "../src/database/mod.ts";
import { openPersistence } from "../src/persistence/mod.ts";
import { encodeDocumentId } from "../src/values/mod.ts";

async function withDatabase(body: (db: Database) => Promise<void>): Promise<void> {
  const location = await freshSqlite();
  const db = await openDatabase(await openPersistence(location));
  try {
    await body(db);
  } finally {
    await db.close();
    await location.cleanup();
  }
}

/** Inserts `count` documents `{n}` into `items` (creation times 1, 2, ...); returns their IDs in order. */
async function insertItems(db: Database, count: number): Promise<string[]> {
  const { value } = await db.runSystemTransaction(async (tx) => {
    const ids: string[] = [];
    for (let n = 1; n <= count; n++) ids.push(await tx.insert("items", { _creationTime: n, n }));
    return ids;
  });
  return value;
}

Deno.test("system transaction: writes commit once, at the returned ts, and snapshots see them", async () => {
  await withDatabase(async (db) => {
    const [first, second] = await insertItems(db, 2);
    const before = db.latestTs;
    const { value, ts } = await db.runSystemTransaction(async (tx) => {
      await tx.patch(first, { n: 10, note: "patched" });
      await tx.replace(second, { n: 20 });
      const deleted = await tx.delete(second);
      return { deleted, missing: await tx.delete(second) };
    });
    assertEquals(value, { deleted: true, missing: false });
    assert(ts > before);
    assertEquals(db.latestTs, ts);
    const snapshot = db.readSnapshot();
    const patched = JSON.parse((await snapshot.get(first))!.json);
    assertEquals([patched.n, patched.note, patched._creationTime], [10, "patched", 1]);
    assertEquals(await snapshot.get(second), null);
    // An older snapshot still sees both as they were.
    const old = db.readSnapshot(before);
    assertEquals(JSON.parse((await old.get(second))!.json).n, 2);
    // A transaction that writes nothing commits nothing.
    assertEquals((await db.runSystemTransaction(async (tx) => await tx.get(first))).ts, ts);
  });
});

Deno.test("system transaction: a conflicting commit on a document it read re-runs it", async () => {
  await withDatabase(async (db) => {
    const [id] = await insertItems(db, 1);
    let attempts = 0;
    const { value } = await db.runSystemTransaction(async (tx) => {
      attempts++;
      const n = JSON.parse((await tx.get(id))!.json).n as number;
      // Another writer changes the same document after this attempt's snapshot (once).
      if (attempts === 1) await db.runSystemTransaction((other) => other.patch(id, { n: n + 100 }));
      await tx.patch(id, { n: n + 1 });
      return n;
    });
    assertEquals(attempts, 2);
    assertEquals(value, 101);
    assertEquals(JSON.parse((await db.readSnapshot().get(id))!.json).n, 102);
  });
});

Deno.test("system transaction: the read set is the range scanned, not the whole table", async () => {
  await withDatabase(async (db) => {
    await insertItems(db, 4);
    const run = (insertCreationTime: number) => {
      let attempts = 0;
      return db.runSystemTransaction(async (tx) => {
        attempts++;
        const low = await tx.scan("items.by_creation_time", { from: [2], before: [4], limit: 10 });
        if (attempts === 1) {
          await db.runSystemTransaction((other) => other.insert("items", { _creationTime: insertCreationTime, n: 0 }));
        }
        await tx.insert("log", { seen: low.length });
        return attempts;
      });
    };
    // An insert outside [2, 4) does not touch what was read.
    assertEquals((await run(10)).value, 1);
    // An insert inside it does: the transaction re-runs and sees it.
    assertEquals((await run(3.5)).value, 2);
    const log = await db.readSnapshot().scan("log.by_creation_time", { order: "desc", limit: 1 });
    assertEquals(JSON.parse(log[0].json).seen, 3);
  });
});

Deno.test("system transaction: bounded retries end in a clear conflict error", async () => {
  await withDatabase(async (db) => {
    const [id] = await insertItems(db, 1);
    let attempts = 0;
    const message = await rejects(
      db.runSystemTransaction(async (tx) => {
        attempts++;
        await tx.get(id);
        await db.runSystemTransaction((other) => other.patch(id, { n: attempts }));
        await tx.patch(id, { n: -1 });
      }, { maxAttempts: 3, label: "test: always losing" }),
      /test: always losing gave up after 3 conflicting attempts/,
    );
    assert(message.includes("items"), message);
    assertEquals(attempts, 3);
    assertEquals(JSON.parse((await db.readSnapshot().get(id))!.json).n, 3);
  });
});

Deno.test("system transaction: scans honour prefix, bounds, order, limit and resume keys", async () => {
  await withDatabase(async (db) => {
    const ids = await insertItems(db, 5);
    const snapshot = db.readSnapshot();
    const ns = (documents: { json: string }[]) => documents.map((document) => JSON.parse(document.json).n);
    assertEquals(ns(await snapshot.scan("items.by_creation_time", { limit: 10 })), [1, 2, 3, 4, 5]);
    assertEquals(ns(await snapshot.scan("items.by_creation_time", { order: "desc", limit: 2 })), [5, 4]);
    const page = await snapshot.scan("items.by_creation_time", { from: [2], limit: 2 });
    assertEquals(ns(page), [2, 3]);
    const next = await snapshot.scan("items.by_creation_time", { resumeAfter: page[1].key, limit: 10 });
    assertEquals(ns(next), [4, 5]);
    const back = await snapshot.scan("items.by_creation_time", { order: "desc", resumeAfter: page[0].key, limit: 10 });
    assertEquals(ns(back), [1]);
    assertEquals(ns(await snapshot.scan("items.by_id", { prefix: [ids[3]], limit: 10 })), [4]);
    assertEquals(await snapshot.scan("items.by_creation_time", { from: [4], before: [2], limit: 10 }), []);
    // Inside a transaction the scan also shows the transaction's own writes.
    const { value } = await db.runSystemTransaction(async (tx) => {
      await tx.delete(ids[0]);
      await tx.insert("items", { _creationTime: 6, n: 6 });
      return ns(await tx.scan("items.by_creation_time", { limit: 10 }));
    });
    assertEquals(value, [2, 3, 4, 5, 6]);
  });
});

Deno.test("system transaction: chosen IDs, system tables and bad input", async () => {
  await withDatabase(async (db) => {
    const [id] = await insertItems(db, 1);
    await rejects(db.runSystemTransaction((tx) => tx.insert("items", { _id: id, n: 0 })), /already exists/);
    await rejects(db.runSystemTransaction((tx) => tx.insert("other", { _id: id, n: 0 })), /is not an ID of table/);
    await rejects(db.runSystemTransaction((tx) => tx.patch("nonsense", { n: 0 })), /does not exist/);
    await rejects(db.readSnapshot().scan("items.by_nothing", { limit: 1 }), /Index items.by_nothing not found/);
    const { value: jobId } = await db.runSystemTransaction((tx) =>
      tx.insert("_scheduled_functions", { name: "a.js:f", args: [{}], scheduledTime: 0, state: { kind: "pending" } })
    );
    const pending = await db.readSnapshot().scan("_scheduled_functions.by_next", { prefix: ["pending"], limit: 5 });
    assertEquals(pending.map((document) => document.id), [jobId]);
  });
});

Deno.test("system transaction: an ID read as missing is not read again when a document is inserted under it", async () => {
  await withDatabase(async (db) => {
    await insertItems(db, 1);
    const tableNumber = db.catalog.tables.find((table) => table.name === "items")!.tableNumber;
    const freshId = () => encodeDocumentId(tableNumber, crypto.getRandomValues(new Uint8Array(16)));
    // What a mutation's idempotency record does (src/functions/idempotency.ts): look for it, then insert it.
    const lookedUp = await db.runSystemTransaction(async (tx) => {
      const id = freshId();
      assertEquals(await tx.get(id), null);
      await tx.insert("items", { _id: id, n: 2 });
      return tx.outcome().readSet.length;
    });
    const insertedOnly = await db.runSystemTransaction(async (tx) => {
      await tx.insert("items", { _id: freshId(), n: 3 });
      return tx.outcome().readSet.length;
    });
    // One point read of the ID either way: the miss is remembered, not read from persistence a second time.
    assertEquals(lookedUp.value, insertedOnly.value);
    // A miss remembered does not hide the transaction's own insert.
    await db.runSystemTransaction(async (tx) => {
      const id = freshId();
      assertEquals(await tx.get(id), null);
      await tx.insert("items", { _id: id, n: 4 });
      assertEquals(JSON.parse((await tx.get(id))!.json).n, 4);
      await rejects(tx.insert("items", { _id: id, n: 5 }), /already exists/);
    });
  });
});

Deno.test("mutation results: commit without document writes, and two commits of one key conflict", async () => {
  await withDatabase(async (db) => {
    const key = new Uint8Array(16).fill(7);
    const snapshotTs = db.latestTs;
    const first = db.beginSystemTransaction(snapshotTs).outcome();
    withMutationResult(first, key, '"first"');
    assertEquals(first.writes.length, 0);
    const ts = await db.commit(first);
    assert(ts > snapshotTs, "a result alone is a write: it gets its own commit");
    assertEquals(await db.mutationResult(key), { ts, valueJson: '"first"' });
    assertEquals(await db.mutationResult(key, snapshotTs), null, "not visible before its commit");
    // Another execution of the key from the same snapshot: the look-up it made is in its read set.
    const second = db.beginSystemTransaction(snapshotTs).outcome();
    withMutationResult(second, key, '"second"');
    await rejects(db.commit(second), /same idempotency key/);
    assertEquals(await db.mutationResult(key), { ts, valueJson: '"first"' });
    // Another key from that snapshot commits.
    const other = db.beginSystemTransaction(snapshotTs).outcome();
    withMutationResult(other, new Uint8Array(16).fill(8), '"other"');
    assert(await db.commit(other) > ts);
  });
});

Deno.test("system transaction: inserts get strictly increasing _creationTime and keep their order in by_creation_time", async () => {
  await withDatabase(async (db) => {
    await insertItems(db, 0);
    // Fifty small inserts take well under a millisecond: with plain Date.now() they tied, and the tie fell to the ID.
    await db.runSystemTransaction(async (tx) => {
      for (let n = 0; n < 50; n++) await tx.insert("items", { n });
    });
    const scanned = await db.readSnapshot().scan("items.by_creation_time", { limit: 100 });
    const documents = scanned.map((document) => JSON.parse(document.json) as { n: number; _creationTime: number });
    assertEquals(documents.map((document) => document.n), Array.from({ length: 50 }, (_, n) => n));
    for (let i = 1; i < documents.length; i++) {
      assert(documents[i]._creationTime > documents[i - 1]._creationTime, `creation time ${i} is above ${i - 1}`);
    }
  });
});
