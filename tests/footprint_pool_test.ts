/**
 * The runner pool's idle footprint (issue 14): a quiet pool holds one warm transaction runner and no action runner;
 * runners are spawned while calls wait (up to the bound), and those beyond the warm one exit after a quiet period,
 * the pool still answering afterwards.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { APP_FILES } from "./helpers/runtime_app.ts";
import { startAppPool } from "./helpers/app_pool.ts";
import type { RunnerPool } from "../src/runtime/mod.ts";

const FOOTPRINT_APP: Record<string, string> = {
  "_generated/server.ts": APP_FILES["_generated/server.ts"],
  "schema.ts": APP_FILES["schema.ts"],
  "load.ts": `
    import { action, query } from "./_generated/server";
    export const slow = query({ args: {}, handler: async () => { const end = Date.now(); let n = 0;
      for (let i = 0; i < 3e7; i++) n += i; return end > 0 ? "slow" : String(n); } });
    export const hello = query({ args: {}, handler: async () => "hello" });
    export const act = action({ args: {}, handler: async () => "acted" });
  `,
};
/** Short, so the test is quick; the server's default is 30 s. */
const IDLE_EXIT_MS = 800;

async function eventually(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const count = (pool: RunnerPool, kind: "transaction" | "action") =>
  pool.runnerStates().filter((runner) => runner.kind === kind).length;

Deno.test("footprint: one warm runner when idle, more under load, the extra ones exit when quiet", async () => {
  const app = await startAppPool({
    files: FOOTPRINT_APP,
    pool: { queryRunners: 3, maxActionRunners: 2, runnerIdleExitMs: IDLE_EXIT_MS },
    requestId: "footprint",
  });
  const { pool } = app;
  try {
    assertEquals(count(pool, "transaction"), 1, "one transaction runner is kept warm");
    assert(count(pool, "action") <= 1, "at most the action runner started with the pool");
    // None is kept warm: the one started with the pool exits when quiet.
    await eventually(() => count(pool, "action") === 0, "the unused action runner exited");

    // Calls that wait grow the set up to its bound, never beyond.
    const results = await Promise.all(Array.from({ length: 6 }, () => app.execute("query", "load.js", "slow")));
    assert(results.every((result) => result.ok), results.find((result) => !result.ok)?.errorMessage);
    const grown = count(pool, "transaction");
    assert(grown > 1 && grown <= 3, `waiting calls grew the set to ${grown} runners (bound 3)`);

    const acted = await app.execute("action", "load.js", "act");
    assertEquals(acted.resultJson, '"acted"', acted.errorMessage);
    assertEquals(count(pool, "action"), 1, "the first action started one action runner again");

    // Quiet: every runner beyond the warm minimum exits (the action set's minimum is 0).
    await eventually(
      () => count(pool, "transaction") === 1 && count(pool, "action") === 0,
      "the runners beyond the warm one exited",
    );
    assertEquals(pool.stats().transaction.idle, 1);
    // And the pool serves again, growing back on demand.
    assertEquals((await app.execute("query", "load.js", "hello")).resultJson, '"hello"');
    assertEquals((await app.execute("action", "load.js", "act")).resultJson, '"acted"');
  } finally {
    await app.close();
  }
});

Deno.test("footprint: a warm runner that served a burst is replaced by a fresh one when quiet", async () => {
  const app = await startAppPool({
    files: FOOTPRINT_APP,
    pool: { queryRunners: 1, runnerIdleExitMs: IDLE_EXIT_MS },
    requestId: "footprint-recycle",
  });
  const { pool } = app;
  const warmPid = () => pool.runnerStates().find((runner) => runner.kind === "transaction")?.pid;
  try {
    const few = warmPid();
    for (let i = 0; i < 5; i++) assertEquals((await app.execute("query", "load.js", "hello")).ok, true);
    await new Promise((resolve) => setTimeout(resolve, IDLE_EXIT_MS * 3));
    assertEquals(warmPid(), few, "a runner that served a few calls is kept");

    for (let i = 0; i < 120; i++) assertEquals((await app.execute("query", "load.js", "hello")).ok, true);
    const used = warmPid();
    await eventually(
      () => count(pool, "transaction") === 1 && warmPid() !== used && pool.stats().transaction.idle === 1,
      "the used runner was replaced by a fresh one",
    );
    assertEquals((await app.execute("query", "load.js", "hello")).resultJson, '"hello"');
  } finally {
    await app.close();
  }
});
