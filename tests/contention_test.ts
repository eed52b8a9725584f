/**
 * Contention costs latency, never correctness or errors: many concurrent `ConvexHttpClient` mutations of one document
 * all succeed and none is lost, on SQLite and PostgreSQL; and a mutation that keeps conflicting (a slow one while
 * fast writers hammer the same document) is eventually run so that it cannot conflict again.
 */
import { ConvexHttpClient } from "convex/browser";
import { anyApi } from "convex/server";
import { assert, assertEquals } from "./helpers/assert.ts";
import { type DatabaseKind, withCounterServer } from "./helpers/counter_app.ts";
import { stopBundler } from "./helpers/runtime_app.ts";
import { openDatabase } from "../src/database/mod.ts";
import { openPersistence } from "../src/persistence/mod.ts";
import { BACKENDS } from "./helpers/databases.ts";
import { mutate, sys } from "./helpers/engine.ts";

const api = anyApi;
const CONCURRENT_INCREMENTS = 100;

for (const kind of ["sqlite", "postgres"] as DatabaseKind[]) {
  Deno.test({
    name: `contention (${kind}): ${CONCURRENT_INCREMENTS} concurrent increments of one document all succeed`,
    async fn() {
      await withCounterServer(kind, async (server) => {
        const client = new ConvexHttpClient(server.url);
        const id = await client.mutation(api.counters.create, {});
        const clients = Array.from({ length: CONCURRENT_INCREMENTS }, () => new ConvexHttpClient(server.url));
        const settled = await Promise.allSettled(clients.map((c) => c.mutation(api.counters.increment, { id })));
        const errors = settled.flatMap((s) => s.status === "rejected" ? [String(s.reason)] : []);
        assertEquals(errors, [], "no mutation fails because of contention");
        const results = settled.map((s) => (s as PromiseFulfilledResult<number>).value).sort((a, b) => a - b);
        assertEquals(results, Array.from({ length: CONCURRENT_INCREMENTS }, (_, i) => i + 1), "each saw one value");
        assertEquals(await client.query(api.counters.get, { id }), CONCURRENT_INCREMENTS);
      });
      await stopBundler();
    },
  });
}

Deno.test({
  name: "contention: a slow mutation that keeps conflicting with fast writers still commits",
  async fn() {
    await withCounterServer("sqlite", async (server) => {
      const client = new ConvexHttpClient(server.url);
      const id = await client.mutation(api.counters.create, {});
      let hammering = true;
      let fastCommits = 0;
      // Writers in the server process, straight to the committer: a commit lands every millisecond or two.
      const database = server.backend.database;
      const hammer = async () => {
        while (hammering) {
          await mutate(database, async (tx) => {
            const counter = await sys<{ value: number }>(tx, "1.0/get", { id, isSystem: false });
            await sys(tx, "1.0/shallowMerge", { id, value: { value: counter.value + 1 } });
          });
          fastCommits++;
          // SQLite answers synchronously: yield, or this loop would starve the server's event loop.
          await new Promise((resolve) => setTimeout(resolve, 0));
        }
      };
      const writers = Array.from({ length: 2 }, hammer);
      try {
        // Computes for tens of milliseconds between its read and its write: fast commits land inside every
        // optimistic attempt's window, so only a turn lets it commit.
        const slow = await new ConvexHttpClient(server.url).mutation(api.counters.slowIncrement, {
          id,
          spins: 3_000_000,
        });
        hammering = false;
        await Promise.all(writers);
        assertEquals(typeof slow, "number");
        assertEquals(await client.query(api.counters.get, { id }), fastCommits + 1, "no increment was lost");
      } finally {
        hammering = false;
        await Promise.allSettled(writers);
      }
    });
    await stopBundler();
  },
});

for (const backend of BACKENDS) {
  Deno.test({
    name: `contention (${backend.name}): no other commit lands inside an exclusive commit turn`,
    async fn() {
      const fresh = await backend.fresh();
      const db = await openDatabase(await openPersistence(fresh));
      try {
        await db.createTable("counters");
        const seed = db.begin("mutation");
        const { _id: id } = await sys<{ _id: string }>(seed, "1.0/insert", { table: "counters", value: { value: 0 } });
        await db.commit(seed.outcome());
        const increment = async (tx: ReturnType<typeof db.begin>) => {
          const counter = await sys<{ value: number }>(tx, "1.0/get", { id, isSystem: false });
          await sys(tx, "1.0/shallowMerge", { id, value: { value: counter.value + 1 } });
        };
        const order: string[] = [];
        let outsider: Promise<void> = Promise.resolve();
        const turnTs = await db.withCommitTurn(async (commit) => {
          const tx = db.begin("mutation");
          await increment(tx);
          // A transaction from outside the turn, at the same snapshot, reaches the committer first...
          const other = db.begin("mutation");
          await increment(other);
          outsider = db.commit(other.outcome()).then(
            () => void order.push("outsider"),
            () => void order.push("outsider failed"),
          );
          await new Promise((resolve) => setTimeout(resolve, 50));
          assertEquals(order, [], "...but waits for the turn");
          const ts = await commit(tx.outcome());
          order.push("turn");
          return ts;
        });
        await outsider;
        assertEquals(order, ["turn", "outsider failed"], "the turn committed first; the stale outsider conflicts");
        const read = db.begin("query");
        assertEquals((await sys<{ value: number }>(read, "1.0/get", { id, isSystem: false })).value, 1);
        assertEquals(db.latestTs, turnTs);
      } finally {
        await db.close();
        await fresh.cleanup();
      }
    },
  });
}

Deno.test({
  name: "contention: closing the database lets a running turn commit, then writes the commits held behind it",
  async fn() {
    const fresh = await BACKENDS[0].fresh();
    const db = await openDatabase(await openPersistence(fresh));
    try {
      await db.createTable("things");
      const insert = (value: number) => {
        const tx = db.begin("mutation");
        return sys(tx, "1.0/insert", { table: "things", value: { value } }).then(() => tx.outcome());
      };
      let closing: Promise<void> | null = null;
      let held: Promise<bigint> | null = null;
      const turnTs = await db.withCommitTurn(async (commit) => {
        const outcome = await insert(1);
        held = db.commit(await insert(2));
        closing = db.close();
        return await commit(outcome);
      });
      const heldTs = await held!;
      assert(heldTs > turnTs, "the held commit is written after the turn");
      await closing;
    } finally {
      await db.close();
      await fresh.cleanup();
    }
  },
});
