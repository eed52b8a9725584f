/**
 * Idle runners sleep (issue 14): between calls, neither the watchdog (a 20 ms interval while a call runs) nor the
 * channel's parked wait (50 ms slices while a call runs) wakes a runner. Both used to tick all the time, ~70 wake-ups
 * and ~4 ms of CPU per second per idle runner. Counted as voluntary context switches of all of a runner's threads,
 * which, unlike CPU time, a loaded test machine does not blur.
 */
import { assert } from "./helpers/assert.ts";
import { APP_FILES } from "./helpers/runtime_app.ts";
import { withAppPool } from "./helpers/app_pool.ts";

const IDLE_APP: Record<string, string> = {
  "_generated/server.ts": APP_FILES["_generated/server.ts"],
  "schema.ts": APP_FILES["schema.ts"],
  "idle.ts": `
    import { action, query } from "./_generated/server";
    export const hello = query({ args: {}, handler: async () => "hello" });
    export const act = action({ args: {}, handler: async () => "acted" });
  `,
};
/** How long the runners are watched. */
const WATCH_MS = 3_000;
/** Wake-ups allowed in that time: the parked wait's 1 s slices and the odd timer; the old ticking made ~200. */
const MAX_WAKEUPS = 40;

/** Voluntary context switches of every thread of `pid` so far (each is a sleep, ended by a wake-up). */
function voluntarySwitches(pid: number): number {
  let total = 0;
  for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
    const status = Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/status`);
    total += Number(/^voluntary_ctxt_switches:\s+(\d+)$/m.exec(status)![1]);
  }
  return total;
}

Deno.test("idle runners, before and after a call, are not woken by their own timers", async () => {
  const pool = { queryRunners: 1, minActionRunners: 1, maxActionRunners: 1 };
  await withAppPool({ files: IDLE_APP, pool, requestId: "idle-test" }, async (app) => {
    const watch = async (when: string) => {
      const runners = app.pool.runnerStates();
      assert(runners.length === 2 && runners.every((runner) => runner.state === "idle"), JSON.stringify(runners));
      const before = runners.map((runner) => voluntarySwitches(runner.pid));
      await new Promise((resolve) => setTimeout(resolve, WATCH_MS));
      runners.forEach((runner, i) => {
        const wakeups = voluntarySwitches(runner.pid) - before[i];
        assert(wakeups <= MAX_WAKEUPS, `idle ${runner.kind} runner ${when}: ${wakeups} wake-ups in ${WATCH_MS} ms`);
      });
    };
    await watch("before any call");
    const query = await app.execute("query", "idle.js", "hello");
    const acted = await app.execute("action", "idle.js", "act");
    assert(query.ok && acted.ok, `${query.errorMessage} ${acted.errorMessage}`);
    // The answer comes before the runner reports idle, and the watchdog stops at its first tick after that.
    await new Promise((resolve) => setTimeout(resolve, 500));
    await watch("after a call");
  });
});
