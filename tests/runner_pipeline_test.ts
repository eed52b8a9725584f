/**
 * Calls sent behind a running one (pool.ts, issue 14): while more calls wait than there are transaction runners, a
 * busy runner gets the next query behind its running one and starts it by itself once idle. Every call still gets its
 * own answer, and a call whose runner dies before starting it (the one ahead ran out of time, or the runner was
 * killed) is put back in the queue and answers on another runner, instead of failing for what another call did. A call
 * sent behind one that turns out long is taken back from its runner and answers on a free one.
 */
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { APP_FILES } from "./helpers/runtime_app.ts";
import { type AppPool, withAppPool } from "./helpers/app_pool.ts";
import { type ExecutionResult, RunnerPoolFullError } from "../src/runtime/mod.ts";

const PIPELINE_APP: Record<string, string> = {
  "_generated/server.ts": APP_FILES["_generated/server.ts"],
  "schema.ts": APP_FILES["schema.ts"],
  "pipe.ts": `
    import { query } from "./_generated/server";
    export const echo = query({ handler: async (_ctx, args: { i: number }) => args.i });
    export const spin = query({ args: {}, handler: async () => { for (;;) {} } });
  `,
};
/** The user-code limit of a spinning call that should time out: short, so the test is quick. */
const SPIN_LIMIT_MS = 300;

/**
 * `queryRunners` transaction runners; with one, every call beyond the first waits and the second is sent behind the
 * first.
 */
function withRunners(queryRunners: number, body: (app: AppPool) => Promise<void>): Promise<void> {
  const pool = { queryRunners, maxQueuedCalls: 100, minActionRunners: 0, maxActionRunners: 1 };
  return withAppPool({ files: PIPELINE_APP, pool, requestId: "pipeline-test" }, body);
}

function echo(app: AppPool, i: number): Promise<ExecutionResult> {
  return app.execute("query", "pipe.js", "echo", { i });
}

function spin(app: AppPool, timeLimitMs: number): Promise<ExecutionResult> {
  return app.execute("query", "pipe.js", "spin", {}, { timeLimitMs });
}

/** Starts `count` echo calls at once (numbered from `from`). */
function echoes(app: AppPool, count: number, from = 0): Promise<ExecutionResult>[] {
  return Array.from({ length: count }, (_, i) => echo(app, from + i));
}

/** Starts calls until `count` transaction runners are up (the second starts on demand), then waits for all idle. */
async function waitForIdleRunners(app: AppPool, count: number): Promise<void> {
  await assertEchoed(echoes(app, 8));
  const deadline = performance.now() + 20_000;
  const idleRunners = () => app.pool.runnerStates().filter((r) => r.kind === "transaction" && r.state === "idle");
  while (idleRunners().length < count) {
    assert(performance.now() < deadline, `${count} idle transaction runners`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Asserts that each echo answered its own number. */
async function assertEchoed(calls: Promise<ExecutionResult>[], from = 0): Promise<void> {
  const results = await Promise.all(calls);
  results.forEach((result, i) => {
    assert(result.ok, `echo ${from + i} failed: ${result.errorMessage}`);
    assertEquals(result.resultJson, String(from + i));
  });
}

Deno.test("runner pipeline: a burst on one runner sends calls behind running ones, each answered with its own result", async () => {
  await withRunners(1, async (app) => {
    await assertEchoed(echoes(app, 60));
    const stats = app.pool.stats().transaction;
    assert(stats.sentBehind > 0, "with 59 calls waiting for one runner, some are sent behind a running one");
    assertEquals(stats.requeued, 0, "no runner died: nothing was put back");
    assertEquals(stats.runners, 1);
  });
});

Deno.test("runner pipeline: a call sent behind one that runs out of time is put back and answers on a replacement", async () => {
  await withRunners(1, async (app) => {
    const spinning = spin(app, SPIN_LIMIT_MS);
    const waiting = echoes(app, 3);
    assertEquals(app.pool.stats().transaction.sentBehind, 1, "the second waiting call went behind the spinning one");
    const spun = await spinning;
    assertEquals(spun.ok, false);
    assert(spun.errorMessage!.includes("timed out"), spun.errorMessage);
    await assertEchoed(waiting);
    assert(app.pool.stats().transaction.requeued >= 1, "the call sent behind was put back, not failed");
  });
});

Deno.test("runner pipeline: a call sent behind one whose runner is killed is put back and answers", async () => {
  await withRunners(1, async (app) => {
    const [runnerPid] = app.pool.runnerPids();
    const spinning = spin(app, 60_000);
    const waiting = echoes(app, 3);
    assertEquals(app.pool.stats().transaction.sentBehind, 1);
    Deno.kill(runnerPid, "SIGKILL");
    const spun = await spinning;
    assertEquals(spun.ok, false, "the running call fails with its runner");
    assert(spun.errorMessage!.includes("crashed"), spun.errorMessage);
    await assertEchoed(waiting);
    assertEquals(app.pool.stats().transaction.requeued, 1);
    assert(!app.pool.runnerPids().includes(runnerPid), "the killed runner was replaced");
  });
});

Deno.test("runner pipeline: a call is not sent behind one that has been running for a while", async () => {
  await withRunners(2, async (app) => {
    await waitForIdleRunners(app, 2);
    const spinLimitMs = 1_500;
    const spinning = spin(app, spinLimitMs);
    await new Promise((resolve) => setTimeout(resolve, 100));
    // One runner spins; the first echo takes the other, the second waits: behind that echo, not behind the spin.
    const sentBefore = app.pool.stats().transaction.sentBehind;
    const started = performance.now();
    await assertEchoed(echoes(app, 2, 100), 100);
    const tookMs = performance.now() - started;
    assert(app.pool.stats().transaction.sentBehind > sentBefore, "the second echo was sent behind the first");
    assert(tookMs < spinLimitMs / 2, `the echoes took ${tookMs.toFixed(0)} ms: one waited for the spinning call`);
    assertEquals((await spinning).ok, false);
  });
});

Deno.test("runner pipeline: a call sent behind one that turns out long is taken back and answers on a free runner", async () => {
  await withRunners(2, async (app) => {
    await waitForIdleRunners(app, 2);
    const spinLimitMs = 1_500;
    // The first echo takes one runner and answers at once; the spin takes the other; the second echo goes behind the
    // spin (the call that started last), which then runs on while the first runner is free.
    const first = echo(app, 200);
    const spinning = spin(app, spinLimitMs);
    const started = performance.now();
    const second = echo(app, 201);
    assertEquals(app.pool.stats().transaction.sentBehind, 1, "the second echo went behind the spin");
    await assertEchoed([first, second], 200);
    const tookMs = performance.now() - started;
    assert(tookMs < spinLimitMs / 2, `the second echo took ${tookMs.toFixed(0)} ms: it waited for the spinning call`);
    assertEquals(app.pool.stats().transaction.withdrawn, 1, "the runner gave the second echo back");
    assertEquals(app.pool.stats().transaction.requeued, 0, "no runner died");
    assertEquals((await spinning).ok, false);
  });
});

Deno.test("runner pipeline: closing the pool refuses a call sent behind as closed", async () => {
  await withRunners(1, async (app) => {
    const spinning = spin(app, 60_000);
    const waiting = echoes(app, 2);
    assertEquals(app.pool.stats().transaction.sentBehind, 1);
    // Observed before closing: the queued one is refused during close().
    const refused = waiting.map((call) => assertRejects(() => call, RunnerPoolFullError, "closed"));
    await app.pool.close();
    assertEquals((await spinning).ok, false);
    await Promise.all(refused);
  });
});
