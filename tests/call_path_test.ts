/**
 * The call path's design changes of issue 14, each checked for what it must keep: a stream opened with its first
 * batch (and a `take(n)` read in one crossing) serves exactly what separate syscalls served; a cleaned-up stream
 * fails like the transaction's; a mutation's snapshot is taken when it goes to its runner, not when it was queued; the
 * worker's own probe answer after a call still lets the runner reuse it; commits that arrive while a group is written
 * go together in the next group; and user code that keeps the runner in the channel still meets its time limit.
 */
import { assert, assertEquals, assertThrows } from "./helpers/assert.ts";
import { APP_FILES, bundleApp, openDeployedApp, stopBundler, writeApp } from "./helpers/runtime_app.ts";
import { type ExecuteRequest, RunnerPool } from "../src/runtime/mod.ts";
import {
  decodeStreamBatch,
  encodeStreamBatch,
  FIRST_BATCH,
  firstBatchSize,
  QueryStreams,
} from "../src/runtime/worker/query_streams.ts";
import { MAX_CALLS_BEHIND } from "../src/runtime/runner_protocol.ts";
import { CommitQueue, type QueuedCommit } from "../src/database/commit_queue.ts";
import type { TransactionOutcome } from "../src/database/mod.ts";

const APP = {
  "_generated/server.ts": APP_FILES["_generated/server.ts"],
  "schema.ts": `
    import { defineSchema, defineTable } from "convex/server";
    import { v } from "convex/values";
    export default defineSchema({ items: defineTable({ n: v.number() }) }, { schemaValidation: false });
  `,
  "items.ts": `
    import { mutation, query } from "./_generated/server";
    import { v } from "convex/values";
    export const add = mutation({
      args: { count: v.number() },
      handler: async (ctx, { count }) => { for (let n = 0; n < count; n++) await ctx.db.insert("items", { n }); },
    });
    export const reads = query({
      args: {},
      handler: async (ctx) => {
        // Inserted in order of n: the creation-time order is n's.
        const byN = () => ctx.db.query("items");
        let unique = "ok";
        try { await byN().unique(); } catch (error) { unique = "threw"; }
        return {
          take3: (await byN().take(3)).map((d) => d.n),
          first: (await byN().order("desc").first())?.n ?? null,
          ranged: (await byN().filter((q) => q.gte(q.field("n"), 5)).take(4)).map((d) => d.n),
          all: (await byN().collect()).length,
          iterated: await (async () => { let k = 0; for await (const _ of byN()) { if (++k === 20) break; } return k; })(),
          unique,
          none: await byN().filter((q) => q.eq(q.field("n"), -1)).first(),
        };
      },
    });
    export const slow = mutation({
      args: {},
      handler: async (ctx) => {
        let spins = 0;
        while (spins < 30_000_000) spins++;
        return (await ctx.db.query("items").collect()).length;
      },
    });
    export const computeAndRead = query({
      args: {},
      handler: async (ctx) => {
        const first = await ctx.db.query("items").first();
        let sum = 0;
        for (;;) {
          for (let i = 0; i < 20_000; i++) sum += i;
          await ctx.db.get(first!._id);
        }
      },
    });
    export const count = mutation({ args: {}, handler: async (ctx) => (await ctx.db.query("items").collect()).length });
  `,
};

Deno.test("call path: stream reads, snapshot at runner start, and reuse after the worker's own probe", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "denvex-call-path-test-" });
  const modules = await bundleApp(await writeApp(dir, APP));
  await stopBundler();
  const { dataDir, persistence, database, deploymentDir } = await openDeployedApp(dir, modules);
  const pool = new RunnerPool({
    dataDir,
    location: persistence.location,
    queryRunners: 1,
    minActionRunners: 0,
    onCall: () => Promise.reject(new Error("no server calls in this test")),
    createTable: (name) => database.createTable(name),
  });
  const request = (udfType: "query" | "mutation", exportName: string, args = {}): ExecuteRequest => ({
    udfType,
    modulePath: "items.js",
    exportName,
    argsJson: JSON.stringify([args]),
    snapshotTs: database.latestTs,
    catalog: database.catalog,
    identityJson: null,
    env: {},
    requestId: "call-path-test",
    deploymentDir,
  });
  const run = async (call: ExecuteRequest) => {
    const result = await pool.execute(call);
    if (!result.ok) throw new Error(result.errorMessage);
    return result;
  };
  try {
    await pool.ready();
    await database.commit((await run(request("mutation", "add", { count: 40 }))).outcome!);

    await t.step("queries read the same documents through the fused stream syscalls, call after call", async () => {
      for (let i = 0; i < 3; i++) {
        const result = await run(request("query", "reads"));
        assertEquals(JSON.parse(result.resultJson!), {
          take3: [0, 1, 2],
          first: 39,
          ranged: [5, 6, 7, 8],
          all: 40,
          iterated: 20,
          unique: "threw",
          none: null,
        });
      }
    });

    await t.step("user code that keeps making syscalls still meets its time limit", async () => {
      const started = performance.now();
      const result = await pool.execute({ ...request("query", "computeAndRead"), timeLimitMs: 300 });
      assertEquals(result.ok, false);
      assertEquals(result.errorMessage, "Function execution timed out: user code ran for more than 300 ms");
      assert(performance.now() - started < 3_000, "stopped at its limit, not at the pool's hard deadline");
    });

    await t.step("a mutation's snapshot is taken when it goes to its runner, not when it is queued", async () => {
      const written = await run(request("mutation", "add", { count: 1 }));
      // The answer comes before the runner reports idle: wait for that, so that `slow` starts at once.
      while (pool.stats().transaction.idle === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      const busy = pool.execute(request("mutation", "slow"));
      // The first calls that wait are sent behind `slow` at once (pool.ts: pipelining), with their snapshots.
      const behind = Array.from({ length: MAX_CALLS_BEHIND }, () => pool.execute(request("query", "reads")));
      assertEquals(pool.stats().transaction.sentBehind, MAX_CALLS_BEHIND);
      // Queued (one runner, the calls it holds behind taken): a snapshot taken now would miss the commit below.
      const queuedAt = database.latestTs;
      const counted = pool.execute({
        ...request("mutation", "count"),
        snapshot: () => ({ snapshotTs: database.latestTs, catalog: database.catalog }),
      });
      assertEquals(pool.stats().transaction.queued, 1, "count waits in the queue");
      // Not committed when `count` was queued; `slow` still holds the runner (it spins for a while).
      const committedTs = await database.commit(written.outcome!);
      assert(committedTs > queuedAt);
      assert((await busy).ok);
      for (const held of behind) assert((await held).ok);
      const result = await counted;
      assert(result.ok, result.errorMessage);
      assert(result.snapshotTs !== undefined && result.snapshotTs >= committedTs, "snapshot taken at start");
      assertEquals(JSON.parse(result.resultJson!), 41, "the mutation read the commit made while it waited");
    });
  } finally {
    await pool.close();
    await persistence.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("query streams: a stream opened with its first batch, and a cleaned-up stream failing like the transaction's", () => {
  const streams = new QueryStreams();
  const fetched: number[] = [];
  const fetch = (_queryId: number, batchSize: number) => {
    fetched.push(batchSize);
    return { documentsJson: ['{"n":99}'], done: true };
  };
  streams.open(3, { documentsJson: ['{"n":1}', '{"n":2}'], done: false });
  assertEquals(JSON.parse(streams.next(3, fetch)), { value: { n: 1 }, done: false });
  assertEquals(JSON.parse(streams.next(3, fetch)), { value: { n: 2 }, done: false });
  assertEquals(fetched, [], "the first batch came with the open");
  assertEquals(JSON.parse(streams.next(3, fetch)), { value: { n: 99 }, done: false });
  assertEquals(fetched, [FIRST_BATCH * 4], "the next batch grows as before");
  assertEquals(JSON.parse(streams.next(3, fetch)), { value: null, done: true });
  assertEquals(streams.cleanup(3), true);
  assertEquals(streams.cleanup(3), false, "cleaning up twice says it was not open");
  assertThrows(() => streams.next(3, fetch), Error, "unknown query 3");
  streams.clear();
  assertEquals(JSON.parse(streams.next(3, fetch)).value, { n: 99 }, "a new execution may reuse the id");
});

Deno.test("query streams: a batch crosses as its documents' texts and reads back as sent", () => {
  const documentsJson = ['{"k":"a\\nb","n":1}', "{}", '{"s":"é😀\\u2028"}', '{"nested":{"x":[1,2,{"y":null}]}}'];
  for (const batch of [{ documentsJson, done: false }, { documentsJson: [], done: true }]) {
    const text = encodeStreamBatch(12, batch);
    assertEquals(decodeStreamBatch(text), { queryId: 12, ...batch });
  }
  const text = encodeStreamBatch(1, { documentsJson, done: true });
  assertThrows(() => decodeStreamBatch(text.slice(0, -1)), Error, "does not add up");
  assertThrows(() => decodeStreamBatch(text + "}"), Error, "does not add up");
  assertThrows(() => decodeStreamBatch('{"queryId":1}'), Error, "no header");
  // Served to the runtime inside the answer text it parses: the documents come back as they were.
  const streams = new QueryStreams();
  streams.open(1, decodeStreamBatch(text));
  const served = documentsJson.map(() => JSON.parse(streams.next(1, () => ({ documentsJson: [], done: true }))).value);
  assertEquals(served, documentsJson.map((json) => JSON.parse(json)));
});

Deno.test("query streams: the first batch covers a small limit whole, and only a limit", () => {
  const query = (operators: unknown[]) => ({ query: { source: { type: "FullTableScan" }, operators } });
  assertEquals(firstBatchSize(query([{ limit: 10 }])), 10);
  assertEquals(firstBatchSize(query([{ filter: {} }, { limit: 1 }])), 1);
  assertEquals(firstBatchSize(query([{ limit: 100_000 }])), FIRST_BATCH, "a large limit reads in growing batches");
  assertEquals(firstBatchSize(query([{ limit: 3 }, { filter: {} }])), FIRST_BATCH, "a limit before a filter");
  assertEquals(firstBatchSize(query([{ limit: 2.5 }])), FIRST_BATCH);
  assertEquals(firstBatchSize(query([])), FIRST_BATCH);
  assertEquals(firstBatchSize(null), FIRST_BATCH);
  assertEquals(firstBatchSize({ query: { operators: "x" } }), FIRST_BATCH);
});

Deno.test("commit queue: commits that arrive while a group is written go together in the next group", async () => {
  const groups: string[][] = [];
  let ts = 0n;
  const queue = new CommitQueue({
    commitGroup(group: QueuedCommit[]) {
      groups.push(group.map((item) => item.outcome.writes[0].id));
      // A synchronous write (SQLite's), during which answers pile up unread: they are due when it returns.
      const until = performance.now() + 15;
      while (performance.now() < until) { /* the write and its fsync */ }
      for (const item of group) item.resolve(++ts);
      return Promise.resolve();
    },
    latestTs: () => ts,
  });
  const outcome = (label: string): TransactionOutcome => ({
    readSet: [],
    writes: [{ id: label, tableNumber: 1, document: null }],
  } as unknown as TransactionOutcome);
  // Three answers "arrive" as I/O during the first group's write (timers due while it holds the event loop).
  const later = ["b", "c", "d"].map((label, i) =>
    new Promise<bigint>((resolve) => setTimeout(() => resolve(queue.commit(outcome(label))), 1 + i))
  );
  const first = await queue.commit(outcome("a"));
  assertEquals([first, ...await Promise.all(later)], [1n, 2n, 3n, 4n]);
  assertEquals(groups, [["a"], ["b", "c", "d"]]);
  await queue.close();
});
