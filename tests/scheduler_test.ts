/**
 * End to end: `ctx.scheduler` and cron jobs on the real server process, deployed with the official CLI. Job states are
 * read back through `ctx.db.system` over the HTTP API; a kill -9 checks that a pending mutation runs exactly once.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { compileSchedule } from "../src/scheduler/mod.ts";
import { createConvexApp, deployApp, type ServerProcess, spawnServer } from "./helpers/convex_app.ts";

const JOBS = `
import { action, internalAction, internalMutation, mutation, query } from "./_generated/server";
import { api, internal } from "./_generated/api";
import { v } from "convex/values";

export const record = internalMutation({
  args: { tag: v.string(), scheduledAt: v.number() },
  handler: async (ctx, { tag, scheduledAt }) => {
    await ctx.db.insert("runs", { tag, scheduledAt, ranAt: Date.now() });
  },
});
export const later = mutation({
  args: { tag: v.string(), delayMs: v.number() },
  handler: async (ctx, { tag, delayMs }) => {
    const id = await ctx.scheduler.runAfter(delayMs, internal.jobs.record, { tag, scheduledAt: Date.now() });
    const metrics = await (ctx as any).meta?.getTransactionMetrics?.();
    return { id, scheduled: metrics?.functionsScheduled?.used ?? null };
  },
});
export const cancel = mutation({
  args: { id: v.id("_scheduled_functions") },
  handler: async (ctx, { id }) => await ctx.scheduler.cancel(id),
});
export const laterThenThrow = mutation({
  args: { tag: v.string() },
  handler: async (ctx, { tag }) => {
    await ctx.scheduler.runAfter(0, internal.jobs.record, { tag, scheduledAt: Date.now() });
    throw new Error("rolled back on purpose");
  },
});
export const act = internalAction({
  args: { tag: v.string() },
  handler: async (ctx, { tag }) => {
    await ctx.runMutation(internal.jobs.record, { tag, scheduledAt: 0 });
  },
});
export const laterAction = mutation({
  args: { tag: v.string() },
  handler: async (ctx, { tag }) => await ctx.scheduler.runAfter(0, internal.jobs.act, { tag }),
});
export const laterQuery = mutation({
  args: {},
  handler: async (ctx) => await ctx.scheduler.runAfter(0, api.jobs.runs, { tag: "query" }),
});
export const tooMany = mutation({
  args: {},
  handler: async (ctx) => {
    for (let i = 0; i <= 1000; i++) await ctx.scheduler.runAfter(60_000, internal.jobs.record, { tag: "many", scheduledAt: 0 });
  },
});
export const fromAction = action({
  args: { tag: v.string() },
  handler: async (ctx, { tag }) => {
    const keep = await ctx.scheduler.runAfter(0, internal.jobs.record, { tag, scheduledAt: Date.now() });
    const drop = await ctx.scheduler.runAt(Date.now() + 60_000, internal.jobs.record, { tag, scheduledAt: 0 });
    await ctx.scheduler.cancel(drop);
    return { keep, drop };
  },
});
export const runs = query({
  args: { tag: v.string() },
  handler: async (ctx, { tag }) => (await ctx.db.query("runs").collect()).filter((run) => run.tag === tag),
});
export const job = query({
  args: { id: v.id("_scheduled_functions") },
  handler: async (ctx, { id }) => await ctx.db.system.get(id),
});
export const jobs = query({
  args: {},
  handler: async (ctx) => await ctx.db.system.query("_scheduled_functions").collect(),
});
export const tick = internalAction({
  args: {},
  handler: async (ctx) => {
    await ctx.runMutation(internal.jobs.record, { tag: "tick-start", scheduledAt: 0 });
    // Longer than the 1 s interval: the next tick comes while this run is going and must be skipped.
    await new Promise((resolve) => setTimeout(resolve, 1300));
    await ctx.runMutation(internal.jobs.record, { tag: "tick-end", scheduledAt: 0 });
  },
});
`;

const CRONS = `
import { cronJobs } from "convex/server";
import { internal } from "./_generated/api";
const crons = cronJobs();
crons.interval("tick every second", { seconds: 1 }, internal.jobs.tick, {});
export default crons;
`;

interface Run {
  tag: string;
  scheduledAt: number;
  ranAt: number;
}

interface JobDocument {
  _id: string;
  name: string;
  args: unknown[];
  scheduledTime: number;
  completedTime?: number;
  state: { kind: string; error?: string };
}

async function callFunction(server: ServerProcess, kind: string, path: string, args: Record<string, unknown> = {}) {
  const response = await fetch(`${server.url}/api/${kind}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ path, args, format: "convex_encoded_json" }),
  });
  const body = await response.json();
  if (response.status !== 200) throw new Error(`${kind} ${path}: HTTP ${response.status} ${JSON.stringify(body)}`);
  return body as { status: "success" | "error"; value?: unknown; errorMessage?: string };
}

async function call<T>(server: ServerProcess, kind: string, path: string, args: Record<string, unknown> = {}) {
  const body = await callFunction(server, kind, path, args);
  if (body.status !== "success") throw new Error(`${kind} ${path} failed: ${body.errorMessage}`);
  return body.value as T;
}

const runsOf = (server: ServerProcess, tag: string) => call<Run[]>(server, "query", "jobs:runs", { tag });
const jobOf = (server: ServerProcess, id: string) => call<JobDocument | null>(server, "query", "jobs:job", { id });

/** Polls `check` until it returns true or `timeoutMs` passes. */
async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function deploy(app: Awaited<ReturnType<typeof createConvexApp>>, server: ServerProcess) {
  await deployApp(app, server);
}

Deno.test("cron schedules: intervals, calendar schedules and cron expressions compute the next run in UTC", () => {
  const at = Date.UTC(2025, 0, 31, 10, 30, 15); // Friday 2025-01-31 10:30:15
  assertEquals(compileSchedule({ type: "interval", seconds: 90 }).nextRunMs(at), at + 90_000);
  assertEquals(compileSchedule({ type: "hourly", minuteUTC: 5 }).nextRunMs(at), Date.UTC(2025, 0, 31, 11, 5));
  assertEquals(compileSchedule({ type: "daily", hourUTC: 9 }).nextRunMs(at), Date.UTC(2025, 1, 1, 9, 0));
  assertEquals(
    compileSchedule({ type: "weekly", dayOfWeek: "monday", hourUTC: 8, minuteUTC: 15 }).nextRunMs(at),
    Date.UTC(2025, 1, 3, 8, 15),
  );
  assertEquals(
    compileSchedule({ type: "monthly", day: 30, hourUTC: 0 }).nextRunMs(at),
    Date.UTC(2025, 2, 30, 0, 0),
    "February has no 30th",
  );
  assertEquals(compileSchedule({ type: "cron", cron: "*/20 * * * *" }).nextRunMs(at), Date.UTC(2025, 0, 31, 10, 40));
  assertEquals(compileSchedule({ type: "cron", cron: "0 12 * * sat,sun" }).nextRunMs(at), Date.UTC(2025, 1, 1, 12));
  assertEquals(compileSchedule({ type: "cron", cron: "0 0 29 2 *" }).nextRunMs(at), Date.UTC(2028, 1, 29));
});

Deno.test({
  name: "scheduler: runAfter, cancel, rollback, actions, crons and a kill -9 on the real server",
  async fn(t) {
    const app = await createConvexApp({ "jobs.ts": JOBS });
    let server = await spawnServer();
    const dataDir = server.dataDir;
    try {
      await deploy(app, server);

      await t.step("a mutation scheduled 1 s ahead runs once, after at least 1 s, and ends in success", async () => {
        const scheduledAtMs = Date.now();
        const { id, scheduled } = await call<{ id: string; scheduled: number | null }>(
          server,
          "mutation",
          "jobs:later",
          { tag: "once", delayMs: 1000 },
        );
        if (scheduled !== null) assertEquals(scheduled, 1, "getTransactionMetrics counts the scheduled function");
        const pending = await jobOf(server, id);
        assertEquals(pending?.state, { kind: "pending" });
        assertEquals(pending?.name, "jobs:record");
        await waitFor("the job to succeed", async () => (await jobOf(server, id))?.state.kind === "success");
        const runs = await runsOf(server, "once");
        assertEquals(runs.length, 1);
        assert(runs[0].ranAt - scheduledAtMs >= 1000, `ran ${runs[0].ranAt - scheduledAtMs} ms after scheduling`);
        assert(typeof (await jobOf(server, id))?.completedTime === "number", "completedTime is set");
      });

      await t.step("a canceled job never runs", async () => {
        const { id } = await call<{ id: string }>(server, "mutation", "jobs:later", { tag: "canceled", delayMs: 700 });
        await call(server, "mutation", "jobs:cancel", { id });
        assertEquals((await jobOf(server, id))?.state, { kind: "canceled" });
        await new Promise((resolve) => setTimeout(resolve, 1200));
        assertEquals((await runsOf(server, "canceled")).length, 0);
        assertEquals((await jobOf(server, id))?.state, { kind: "canceled" });
      });

      await t.step("a mutation that throws after scheduling schedules nothing", async () => {
        const before = (await call<JobDocument[]>(server, "query", "jobs:jobs")).length;
        const failed = await callFunction(server, "mutation", "jobs:laterThenThrow", { tag: "rolled back" });
        assertEquals(failed.status, "error");
        assertEquals((await call<JobDocument[]>(server, "query", "jobs:jobs")).length, before);
        await new Promise((resolve) => setTimeout(resolve, 300));
        assertEquals((await runsOf(server, "rolled back")).length, 0);
      });

      await t.step("queries are not schedulable, and a mutation schedules at most 1,000 functions", async () => {
        const id = await call<string>(server, "mutation", "jobs:laterQuery");
        await waitFor("the query job to fail", async () => (await jobOf(server, id))?.state.kind === "failed");
        const state = (await jobOf(server, id))!.state;
        assert(/only mutations and actions/.test(state.error ?? ""), state.error);
        const tooMany = await callFunction(server, "mutation", "jobs:tooMany");
        assertEquals(tooMany.status, "error");
        assert(/Too many functions scheduled/.test(tooMany.errorMessage ?? ""), tooMany.errorMessage);
      });

      await t.step("a scheduled action runs, and actions can schedule and cancel", async () => {
        const id = await call<string>(server, "mutation", "jobs:laterAction", { tag: "action" });
        await waitFor("the action job to succeed", async () => (await jobOf(server, id))?.state.kind === "success");
        assertEquals((await runsOf(server, "action")).length, 1);

        const { keep, drop } = await call<{ keep: string; drop: string }>(server, "action", "jobs:fromAction", {
          tag: "from action",
        });
        assertEquals((await jobOf(server, drop))?.state, { kind: "canceled" });
        await waitFor("the action's job to succeed", async () => (await jobOf(server, keep))?.state.kind === "success");
        assertEquals((await runsOf(server, "from action")).length, 1);
      });

      await t.step("a 1 s cron ticks, one run at a time, and the next push without it stops it", async () => {
        await app.write({ "crons.ts": CRONS });
        await deploy(app, server);
        await waitFor("two finished cron runs", async () => (await runsOf(server, "tick-end")).length >= 2, 12_000);
        await app.remove("crons.ts");
        await deploy(app, server);
        const starts = (await runsOf(server, "tick-start")).map((run) => run.ranAt);
        const ends = (await runsOf(server, "tick-end")).map((run) => run.ranAt);
        // Never concurrently: every start comes after the previous run's end.
        const sortedStarts = starts.toSorted((a, b) => a - b);
        for (let i = 1; i < sortedStarts.length; i++) {
          const previousEnd = ends.toSorted((a, b) => a - b)[i - 1];
          assert(previousEnd !== undefined && previousEnd <= sortedStarts[i], `run ${i} overlapped the one before`);
        }
        // A run the cron started just before the push may record its start after the counts above (its action runner
        // can take a moment under load): let every started run end, and the counts hold still, before counting.
        const settledStarts = async () => {
          for (let attempt = 0; attempt < 10; attempt++) {
            const before = (await runsOf(server, "tick-start")).length;
            await new Promise((resolve) => setTimeout(resolve, 1500));
            const after = (await runsOf(server, "tick-start")).length;
            if (after === before && after === (await runsOf(server, "tick-end")).length) return after;
          }
          throw new Error("cron runs kept starting after the crons were removed");
        };
        const settled = await settledStarts();
        assert(settled <= starts.length + 1, `at most the run in flight at the push started after it (${settled})`);
        // Over two intervals of the removed cron: it would have ticked.
        await new Promise((resolve) => setTimeout(resolve, 2500));
        assertEquals((await runsOf(server, "tick-start")).length, settled, "no tick after the crons were removed");
      });

      await t.step("a mutation pending at a kill -9 runs exactly once after the restart", async () => {
        const { id } = await call<{ id: string }>(server, "mutation", "jobs:later", { tag: "crash", delayMs: 1500 });
        await server.kill();
        server = await spawnServer({ dataDir, adminKey: server.adminKey });
        await waitFor(
          "the job to succeed after the restart",
          async () => (await jobOf(server, id))?.state.kind === "success",
        );
        await new Promise((resolve) => setTimeout(resolve, 500));
        assertEquals((await runsOf(server, "crash")).length, 1);
      });
    } finally {
      await server.close();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
      await app.dispose();
    }
  },
});
