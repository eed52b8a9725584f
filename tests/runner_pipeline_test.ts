/**
 * Calls sent behind a running one (pool.ts, issue 14): while more calls wait than there are transaction runners, a
 * busy runner gets the next queries behind its running one (up to MAX_CALLS_BEHIND) and starts each by itself once
 * idle. Every call still gets its
 * own answer, and a call whose runner dies before starting it (the one ahead ran out of time, or the runner was
 * killed) is put back in the queue and answers on another runner, instead of failing for what another call did. A call
 * sent behind one that turns out long is taken back from its runner and answers on a free one.
 */
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { APP_FILES } from "./helpers/runtime_app.ts";
import { type AppPool, withAppPool } from "./helpers/app_pool.ts";
import { type ExecutionResult, RunnerPoolFullError } from "../src/runtime/mod.ts";
import { MAX_CALLS_BEHIND } from "../src/runtime/runner_protocol.ts";

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
 * `queryRunners` transaction runners; with one, every call beyond the first waits, and the next MAX_CALLS_BEHIND are
 * sent behind the first.
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
    const waiting = echoes(app, MAX_CALLS_BEHIND + 2);
    assertEquals(
      app.pool.stats().transaction.sentBehind,
      MAX_CALLS_BEHIND,
      "as many waiting calls as a runner holds went behind the spinning one, the rest wait in the queue",
    );
    const spun = await spinning;
    assertEquals(spun.ok, false);
    assert(spun.errorMessage!.includes("timed out"), spun.errorMessage);
    await assertEchoed(waiting);
    assert(
      app.pool.stats().transaction.requeued >= MAX_CALLS_BEHIND,
      "the calls sent behind were put back, not failed",
    );
  });
});

Deno.test("runner pipeline: a call sent behind one whose runner is killed is put back and answers", async () => {
  await withRunners(1, async (app) => {
    const [runnerPid] = app.pool.runnerPids();
    const spinning = spin(app, 60_000);
    const waiting = echoes(app, 3);
    assertEquals(app.pool.stats().transaction.sentBehind, 3);
    Deno.kill(runnerPid, "SIGKILL");
    const spun = await spinning;
    assertEquals(spun.ok, false, "the running call fails with its runner");
    assert(spun.errorMessage!.includes("crashed"), spun.errorMessage);
    await assertEchoed(waiting);
    assertEquals(app.pool.stats().transaction.requeued, 3);
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

/**
 * Two runners: an echo takes one and answers at once, a spin takes the other, then `count` echoes go behind running
 * calls, at least half of them (rounded up) behind the spin (the runner with the fewest held, the spin's on a tie: its
 * call started last). Each must be taken back from the spinning runner and answer on the free one, long before the
 * spin ends.
 */
function assertTakenBackFromLongCall(count: number): Promise<void> {
  return withRunners(2, async (app) => {
    await waitForIdleRunners(app, 2);
    const spinLimitMs = 1_500;
    const first = echo(app, 200);
    const spinning = spin(app, spinLimitMs);
    const started = performance.now();
    const rest = echoes(app, count, 201);
    assertEquals(app.pool.stats().transaction.sentBehind, count, "every echo went behind a running call");
    await assertEchoed([first, ...rest], 200);
    const tookMs = performance.now() - started;
    assert(tookMs < spinLimitMs / 2, `the echoes took ${tookMs.toFixed(0)} ms: one waited for the spinning call`);
    const { withdrawn, requeued } = app.pool.stats().transaction;
    assert(
      withdrawn >= Math.ceil(count / 2),
      `the spinning runner gave back each call it held (${withdrawn} withdrawn)`,
    );
    assertEquals(requeued, 0, "no runner died");
    assertEquals((await spinning).ok, false);
  });
}

Deno.test("runner pipeline: a call sent behind one that turns out long is taken back and answers on a free runner", () =>
  assertTakenBackFromLongCall(1));

Deno.test("runner pipeline: every call sent behind one that turns out long is taken back", () =>
  assertTakenBackFromLongCall(3));

Deno.test("runner pipeline: closing the pool refuses a call sent behind as closed", async () => {
  await withRunners(1, async (app) => {
    const spinning = spin(app, 60_000);
    const waiting = echoes(app, 2);
    assertEquals(app.pool.stats().transaction.sentBehind, 2);
    // Observed before closing: the queued one is refused during close().
    const refused = waiting.map((call) => assertRejects(() => call, RunnerPoolFullError, "closed"));
    await app.pool.close();
    assertEquals((await spinning).ok, false);
    await Promise.all(refused);
  });
});
