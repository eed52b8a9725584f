/**
 * The runner pool's states as a unit (starting → idle ⇄ busy → retiring → dead): a busy runner runs no second call,
 * a full queue refuses with RunnerPoolFullError, a runner that used up its time is retired and never called again, a
 * runner that exits is replaced, and a closed pool refuses everything.
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./helpers/assert.ts";
import { APP_FILES } from "./helpers/runtime_app.ts";
import { withAppPool } from "./helpers/app_pool.ts";
import { type ExecutionResult, type RunnerPool, RunnerPoolFullError } from "../src/runtime/mod.ts";
import { MAX_CALLS_BEHIND } from "../src/runtime/runner_protocol.ts";

const POOL_APP: Record<string, string> = {
  "_generated/server.ts": APP_FILES["_generated/server.ts"],
  "schema.ts": APP_FILES["schema.ts"],
  "pool.ts": `
    import { query } from "./_generated/server";
    export const hello = query({ args: {}, handler: async () => "hello" });
    export const spin = query({ args: {}, handler: async () => { for (;;) {} } });
  `,
};
/** The user-code limit of a spinning call: short, so the test is quick. */
const SPIN_LIMIT_MS = 300;

/** Waits until `condition` holds, polling (runner processes start and exit on their own time). */
async function eventually(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

interface PoolFixture {
  pool: RunnerPool;
  call(exportName: string, timeLimitMs?: number): Promise<ExecutionResult>;
}

/** One transaction runner and room for one queued call: the smallest pool that shows every state. */
function withPool(body: (fixture: PoolFixture) => Promise<void>): Promise<void> {
  const pool = { queryRunners: 1, maxQueuedCalls: 1, minActionRunners: 0, maxActionRunners: 1 };
  return withAppPool({ files: POOL_APP, pool, requestId: "pool-test" }, (app) =>
    body({
      pool: app.pool,
      call: (exportName, timeLimitMs) =>
        app.execute("query", "pool.js", exportName, {}, timeLimitMs === undefined ? {} : { timeLimitMs }),
    }));
}

function transactionRunners(pool: RunnerPool) {
  return pool.runnerStates().filter((runner) => runner.kind === "transaction");
}

Deno.test("runner pool: idle ⇄ busy; a full queue refuses; a runner out of time retires and is replaced", async () => {
  await withPool(async ({ pool, call }) => {
    const [first] = transactionRunners(pool);
    assertEquals(first.state, "idle", "ready means the warm runner is idle");
    assertEquals((await call("hello")).resultJson, '"hello"');
    // The answer comes before the runner reports idle (its worker answers a probe after each call).
    await eventually(() => transactionRunners(pool)[0]?.state === "idle", "the runner is idle again");
    assertEquals(transactionRunners(pool), [first], "the same runner serves the next call");

    const spinning = call("spin", SPIN_LIMIT_MS);
    assertEquals(transactionRunners(pool), [{ ...first, state: "busy" }], "dispatch is immediate");
    // The first waiting calls are sent behind the running one (runner_pipeline_test), the next one waits in the queue.
    const behind = Array.from({ length: MAX_CALLS_BEHIND }, () => call("hello"));
    const queued = call("hello");
    // If an assertion below fails, closing the pool rejects them: not an unhandled rejection.
    for (const waiting of [...behind, queued]) waiting.catch(() => {});
    assertEquals(pool.stats().transaction.sentBehind, MAX_CALLS_BEHIND, "calls wait behind the running one");
    assertEquals(pool.stats().transaction.queued, 1, "a busy runner takes no call beyond those");
    const refused = await assertRejects(() => call("hello"), RunnerPoolFullError);
    assertStringIncludes(refused.message, "at most 1 queued");

    const spin = await spinning;
    assertEquals(spin.ok, false);
    assertStringIncludes(spin.errorMessage!, "timed out");
    // The pool retires it right after the answer: it goes busy → retiring → dead, never back to idle.
    await eventually(() => {
      const spun = transactionRunners(pool).find((runner) => runner.pid === first.pid);
      assert(spun?.state !== "idle", "a runner that ran out of time is never idle again");
      return spun === undefined || spun.state === "retiring";
    }, "the spun runner is retiring");
    for (const held of behind) {
      assertEquals((await held).resultJson, '"hello"', "a call sent behind ran on a replacement");
    }
    assertEquals((await queued).resultJson, '"hello"', "the queued call ran on a replacement");
    await eventually(() => !pool.runnerPids().includes(first.pid), "the spun runner is gone");
    const [replacement] = transactionRunners(pool);
    assert(replacement.pid !== first.pid, "a new runner process");
  });
});

Deno.test("runner pool: a runner that exits while idle is replaced", async () => {
  await withPool(async ({ pool, call }) => {
    const [first] = transactionRunners(pool);
    Deno.kill(first.pid, "SIGKILL");
    await eventually(() => {
      const runners = transactionRunners(pool);
      return runners.length === 1 && runners[0].pid !== first.pid && runners[0].state === "idle";
    }, "a replacement runner is idle");
    assertEquals((await call("hello")).resultJson, '"hello"');
  });
});

Deno.test("runner pool: closing retires every runner and refuses queued and new calls", async () => {
  await withPool(async ({ pool, call }) => {
    const pids = pool.runnerPids();
    const spinning = call("spin", SPIN_LIMIT_MS);
    const queuedRefused = assertRejects(() => call("hello"), RunnerPoolFullError, "closed");
    await pool.close();
    await queuedRefused;
    const spin = await spinning;
    assertEquals(spin.ok, false, "the running call fails");
    assertEquals(pool.runnerStates(), [], "every runner has exited");
    for (const pid of pids) assert(!pool.runnerPids().includes(pid));
    await assertRejects(() => call("hello"), RunnerPoolFullError, "closed");
  });
});
