/**
 * Asynchronous syscalls that user code issues together (`Promise.all` of `ctx.db.get`, writes it does not await) cross
 * from the worker to the runner's main thread as one batch (src/runtime/worker/syscall_batch.ts, issue 14), and the
 * transaction still sees them one by one, in the order they were issued, each with its own answer.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { isIdle, withInProcessRunner } from "./helpers/in_process_runner.ts";
import type { FromRunnerMessage, RunnerExecuteMessage } from "../src/runtime/runner_protocol.ts";
import { errorResponse, okResponse } from "../src/runtime/sync_channel.ts";
import {
  BATCH_OP,
  decodeParts,
  encodeParts,
  MAX_BATCH_REQUESTS,
  SyscallBatch,
} from "../src/runtime/worker/syscall_batch.ts";

Deno.test("syscall batch: parts survive encoding, malformed batches are refused", () => {
  for (const parts of [[], [""], ["a", "", '{"x":"1,2\\n"}', "é😀"], Array.from({ length: 40 }, (_, i) => "p" + i)]) {
    assertEquals(decodeParts(encodeParts(parts)), parts);
  }
  for (const bad of ["", "3\nab", "1\nab", "x\na", "-1\n", "1,\na"]) {
    let threw = false;
    try {
      decodeParts(bad);
    } catch {
      threw = true;
    }
    assert(threw, `accepted ${JSON.stringify(bad)}`);
  }
});

Deno.test("syscall batch: one crossing per synchronous stretch, answers in order, failures kept apart", async () => {
  const crossings: string[] = [];
  /** Answers `echo` with its args and `fail` with an error; a batch with the answers of its parts. */
  const answer = (request: string): string => {
    const [op, , args] = request.split("\n");
    return op === "fail" ? errorResponse(`failed ${args}`) : okResponse(args);
  };
  const batch = new SyscallBatch((request) => {
    crossings.push(request);
    if (!request.startsWith(BATCH_OP + "\n")) return answer(request);
    const parts = decodeParts(request.slice(BATCH_OP.length + 2));
    return okResponse(encodeParts(parts.map(answer)));
  });

  const results = await Promise.allSettled([
    batch.add("echo", "1", ""),
    batch.add("fail", "2", ""),
    batch.add("echo", "3", "child"),
  ]);
  assertEquals(crossings.length, 1);
  assertEquals(decodeParts(crossings[0].slice(BATCH_OP.length + 2)), ["echo\n\n1", "fail\n\n2", "echo\nchild\n3"]);
  assertEquals(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled"]);
  assertEquals((results[0] as PromiseFulfilledResult<string>).value, "1");
  assertEquals(((results[1] as PromiseRejectedResult).reason as Error).message, "failed 2");
  assertEquals((results[2] as PromiseFulfilledResult<string>).value, "3");

  // A lone request crosses as itself; an explicit flush sends what is queued at once.
  crossings.length = 0;
  const alone = batch.add("echo", "4", "");
  batch.flush();
  assertEquals(crossings, ["echo\n\n4"]);
  assertEquals(await alone, "4");

  // More than a batch holds: full batches go as they fill.
  crossings.length = 0;
  const many = Array.from({ length: MAX_BATCH_REQUESTS * 2 + 1 }, (_, i) => batch.add("echo", String(i), ""));
  assertEquals(crossings.length, 2);
  assertEquals((await Promise.all(many)).map(Number), many.map((_, i) => i));
  assertEquals(crossings.length, 3);

  // A batch the other side cannot answer fails every request in it.
  const broken = new SyscallBatch(() => errorResponse("channel closed"));
  const failed = await Promise.allSettled([broken.add("echo", "1", ""), broken.add("echo", "2", "")]);
  for (const outcome of failed) {
    assert(outcome.status === "rejected" && (outcome.reason as Error).message === "channel closed");
  }
});

const MODULE = `
import { query, mutation } from "./_generated/server";
import { v } from "convex/values";

export const seed = mutation({
  args: { count: v.number() },
  handler: async (ctx, { count }) => {
    const ids = [];
    for (let i = 0; i < count; i++) ids.push(await ctx.db.insert("messages", { body: "m" + i }));
    return ids;
  },
});
export const getTogether = query({
  args: { ids: v.array(v.string()) },
  handler: async (ctx, { ids }) => (await Promise.all(ids.map((id) => ctx.db.get(id as any)))).map((d) => d?.body ?? null),
});
export const getOneByOne = query({
  args: { ids: v.array(v.string()) },
  handler: async (ctx, { ids }) => {
    const bodies = [];
    for (const id of ids) bodies.push((await ctx.db.get(id as any))?.body ?? null);
    return bodies;
  },
});
/** Gets by id, or by table and id (a table the id is not of fails). */
export const settledGets = query({
  args: { entries: v.array(v.object({ table: v.optional(v.string()), id: v.string() })) },
  handler: async (ctx, { entries }) =>
    (await Promise.allSettled(entries.map(({ table, id }) =>
      table === undefined ? ctx.db.get(id as any) : ctx.db.get(table as any, id as any)
    ))).map((r) => r.status === "fulfilled" ? r.value?.body ?? null : "error: " + r.reason.message),
});
/** An insert left unawaited, then a query in the same stretch: the query must see the insert. */
export const insertThenRead = mutation({
  args: { body: v.string() },
  handler: async (ctx, { body }) => {
    void ctx.db.insert("messages", { body });
    const all = await ctx.db.query("messages").collect();
    return all.some((d) => d.body === body);
  },
});
/** A patch left unawaited, then a query whose first batch holds the patched document: the query sees the patch. */
export const patchThenFirst = mutation({
  args: { id: v.string(), body: v.string() },
  handler: async (ctx, { id, body }) => {
    void ctx.db.patch(id as any, { body });
    return (await ctx.db.query("messages").first())?.body ?? null;
  },
});
/** A patch and a get issued together: the get sees the patch. */
export const patchThenGet = mutation({
  args: { id: v.string(), body: v.string() },
  handler: async (ctx, { id, body }) => {
    const patched = ctx.db.patch(id as any, { body });
    const doc = await ctx.db.get(id as any);
    await patched;
    return doc?.body ?? null;
  },
});
/** Writes nobody awaits, and a return at once: they still belong to the transaction. */
export const fireAndForget = mutation({
  args: { bodies: v.array(v.string()) },
  handler: async (ctx, { bodies }) => {
    for (const body of bodies) void ctx.db.insert("messages", { body });
    return null;
  },
});
export const bodies = query({
  args: {},
  handler: async (ctx) => (await ctx.db.query("messages").collect()).map((d) => d.body),
});
`;

Deno.test("syscall batch: a runner answers gets issued together in one crossing, in order, with the same results", async () => {
  await withInProcessRunner({ "batch.ts": MODULE }, async ({ runner, sent, query, mutation, until, database }) => {
    let executionId = 0;
    /** Runs one call to the end (committing a mutation's writes); returns its value and the channel requests it made. */
    const call = async (make: (id: string) => RunnerExecuteMessage): Promise<{ value: unknown; requests: number }> => {
      const from = sent.length;
      const requestsBefore = runner.channelRequests;
      runner.handle(make(`b${executionId++}`));
      await until((all) => all.slice(from).some(isIdle));
      const result = sent.slice(from).find((m): m is Extract<FromRunnerMessage, { type: "result" }> =>
        m.type === "result"
      );
      assert(result !== undefined && result.ok, JSON.stringify(sent.slice(from)));
      if (result.outcome !== undefined) await database.commit(result.outcome);
      return { value: JSON.parse(result.resultJson!), requests: runner.channelRequests - requestsBefore };
    };
    const q = (name: string, args: unknown) => call((id) => query(id, "batch.js", name, args));
    const m = (name: string, args: unknown) => call((id) => mutation(id, "batch.js", name, args));

    await database.createTable("messages"); // a runner asks the server for a new table; nobody answers here
    const ids = (await m("seed", { count: 40 })).value as string[];
    const ten = ids.slice(0, 10);
    const expected = ten.map((_, i) => "m" + i);

    // The same ten documents, one by one and together: the same answer, and ten crossings against one.
    await q("getTogether", { ids: [] }); // warm
    const empty = await q("getTogether", { ids: [] });
    const oneByOne = await q("getOneByOne", { ids: ten });
    const together = await q("getTogether", { ids: ten });
    assertEquals(oneByOne.value, expected);
    assertEquals(together.value, expected);
    assertEquals(oneByOne.requests - empty.requests, 10);
    assertEquals(together.requests - empty.requests, 1);

    // Forty: two batches (MAX_BATCH_REQUESTS at a time), every answer in its place.
    const forty = await q("getTogether", { ids });
    assertEquals(forty.value, ids.map((_, i) => "m" + i));
    assertEquals(forty.requests - empty.requests, Math.ceil(40 / MAX_BATCH_REQUESTS));

    // A failing get among good ones fails alone, with the text it has when it crosses by itself.
    const wrongTable = { table: "no_such_table", id: ids[2] };
    const alone = await q("settledGets", { entries: [wrongTable] });
    const mixed = await q("settledGets", { entries: [{ id: ids[0] }, wrongTable, { id: ids[1] }] });
    assert(String((alone.value as string[])[0]).startsWith("error: "), JSON.stringify(alone.value));
    assertEquals(mixed.value, ["m0", (alone.value as string[])[0], "m1"]);

    // Order against the transaction: a read issued after an unawaited write sees it, both ways a read can come.
    assertEquals((await m("insertThenRead", { body: "unawaited" })).value, true);
    assertEquals((await m("patchThenFirst", { id: ids[0], body: "first patched" })).value, "first patched");
    assertEquals((await m("patchThenGet", { id: ids[5], body: "patched" })).value, "patched");

    // Writes a function never awaits still commit with it.
    await m("fireAndForget", { bodies: ["f1", "f2", "f3"] });
    const bodies = (await q("bodies", {})).value as string[];
    for (const body of ["unawaited", "first patched", "patched", "f1", "f2", "f3"]) assert(bodies.includes(body), body);
    assertEquals(bodies.filter((b) => b === "m0" || b === "m5").length, 0);
  });
});
