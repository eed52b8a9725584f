/**
 * Only user code fails a scheduled job. A scheduled mutation whose runner process dies under it (killed from
 * outside, as an OOM killer or a crash would) is an infrastructure failure: the job stays pending, runs again after a
 * backoff, succeeds, and its effect is committed exactly once. A mutation that throws still fails at once.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { createConvexApp, DEPLOY_ARGS, runConvexCli, spawnServer } from "./helpers/convex_app.ts";
import { commandLineOf, descendantPids } from "./helpers/server_child.ts";
import { InfrastructureRetries, MAX_INFRASTRUCTURE_ATTEMPTS, MAX_RETRY_DELAY_MS } from "../src/scheduler/retry.ts";

/** How long the scheduled mutation's user code should run (well under the 1 s limit, even on a loaded machine). */
const SPIN_TARGET_MS = 400;
/** When the runners are killed, counted from the scheduling mutation's return. */
const KILL_AFTER_MS = 120;
const JOB_TIMEOUT_MS = 20_000;

const APP = {
  "jobs.ts": `
import { internalMutation, mutation, query } from "./_generated/server";
import { internal } from "./_generated/api";
import { v } from "convex/values";

export const spin = internalMutation({
  args: { tag: v.string(), iterations: v.number() },
  handler: async (ctx, { tag, iterations }) => {
    let x = 0;
    for (let i = 0; i < iterations; i++) x = (x * 31 + i) % 1000003;
    await ctx.db.insert("runs", { tag, x });
  },
});
export const boom = internalMutation({
  args: {},
  handler: async () => {
    throw new Error("user code failed on purpose");
  },
});
export const schedule = mutation({
  args: { tag: v.string(), iterations: v.number() },
  handler: async (ctx, args) => await ctx.scheduler.runAfter(0, internal.jobs.spin, args),
});
export const scheduleBoom = mutation({
  args: {},
  handler: async (ctx) => await ctx.scheduler.runAfter(0, internal.jobs.boom, {}),
});
export const runs = query({
  args: { tag: v.string() },
  handler: async (ctx, { tag }) => (await ctx.db.query("runs").collect()).filter((run) => run.tag === tag).length,
});
export const job = query({
  args: { id: v.id("_scheduled_functions") },
  handler: async (ctx, { id }) => await ctx.db.system.get(id),
});
`,
};

/** Loop iterations that take about `targetMs` here (the runner runs the same loop on the same machine). */
function calibrateIterations(targetMs: number): number {
  let iterations = 1_000_000;
  for (;;) {
    const started = performance.now();
    let x = 0;
    for (let i = 0; i < iterations; i++) x = (x * 31 + i) % 1000003;
    const elapsedMs = performance.now() - started;
    if (elapsedMs > 50 || x < 0) return Math.round(iterations * targetMs / elapsedMs);
    iterations *= 4;
  }
}

async function callFunction(url: string, kind: "query" | "mutation", path: string, args: unknown): Promise<unknown> {
  const response = await fetch(`${url}/api/${kind}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ path, args, format: "json" }),
  });
  const body = await response.json();
  if (body.status !== "success") throw new Error(`${path}: ${JSON.stringify(body)}`);
  return body.value;
}

async function waitForFinalState(url: string, id: string): Promise<{ kind: string; error?: string }> {
  const deadline = Date.now() + JOB_TIMEOUT_MS;
  for (;;) {
    // A poll that was itself on a killed runner fails; the next one runs on a fresh runner.
    const job = await callFunction(url, "query", "jobs:job", { id }).catch(() => null) as
      | { state: { kind: string; error?: string } }
      | null;
    if (job && job.state.kind !== "pending" && job.state.kind !== "inProgress") return job.state;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${job?.state.kind} after ${JOB_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

Deno.test({
  name: "scheduler: a runner crash under a scheduled mutation retries it (exactly once); a user error still fails it",
  async fn() {
    const server = await spawnServer();
    const app = await createConvexApp(APP);
    try {
      const deployed = await runConvexCli(app, DEPLOY_ARGS, server);
      assertEquals(deployed.code, 0, deployed.stdout + deployed.stderr);
      const iterations = calibrateIterations(SPIN_TARGET_MS);

      const id = await callFunction(server.url, "mutation", "jobs:schedule", { tag: "crash", iterations }) as string;
      await new Promise((resolve) => setTimeout(resolve, KILL_AFTER_MS));
      // Every runner process of the server dies, the one running the job included.
      let killed = 0;
      for (const pid of await descendantPids(server.pid)) {
        if (!(await commandLineOf(pid)).includes(" runner")) continue;
        try {
          Deno.kill(pid, "SIGKILL");
          killed++;
        } catch { /* exited meanwhile */ }
      }
      assert(killed > 0, "no runner process found to kill");
      const state = await waitForFinalState(server.url, id);
      assertEquals(state, { kind: "success" }, `the job must survive its runner's crash: ${JSON.stringify(state)}`);
      assertEquals(await callFunction(server.url, "query", "jobs:runs", { tag: "crash" }), 1, "committed exactly once");

      const boomId = await callFunction(server.url, "mutation", "jobs:scheduleBoom", {}) as string;
      const boom = await waitForFinalState(server.url, boomId);
      assertEquals(boom.kind, "failed");
      assert(boom.error?.includes("user code failed on purpose"), JSON.stringify(boom));
    } finally {
      await server.close();
      await app.dispose();
    }
  },
});

Deno.test("scheduler retries: backoff grows to its cap, attempts are bounded, stale entries are forgotten", () => {
  const retries = new InfrastructureRetries();
  const delays: number[] = [];
  for (let attempt = 1; attempt < MAX_INFRASTRUCTURE_ATTEMPTS; attempt++) {
    const decision = retries.note("job", 0);
    assert(decision.retry, `attempt ${attempt} should retry`);
    delays.push(decision.delayMs);
    assertEquals(retries.notBeforeMs("job"), decision.delayMs);
  }
  assert(delays[delays.length - 1] > delays[0] * 8, `backoff should grow: ${delays}`);
  assert(delays.every((delayMs) => delayMs <= MAX_RETRY_DELAY_MS * 1.25), `backoff is capped: ${delays}`);
  assertEquals(retries.note("job", 0), { retry: false, attempts: MAX_INFRASTRUCTURE_ATTEMPTS });
  assertEquals(retries.notBeforeMs("job"), 0, "a job that gave up may run (and fail) at once");
  // Without giving up (the job's state could not even be written), it keeps retrying at the cap.
  for (let attempt = 0; attempt < MAX_INFRASTRUCTURE_ATTEMPTS * 2; attempt++) {
    assert(retries.note("stuck", 0, false).retry);
  }
  assertEquals(retries.size, 1);
  retries.forgetStale(10 * 60_000 + MAX_RETRY_DELAY_MS * 2, 10 * 60_000);
  assertEquals(retries.size, 0);
});
