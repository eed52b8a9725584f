/**
 * The runner side of taking back a call sent behind a running one (runner.ts, pool.ts's `#withdrawStuck`): a runner
 * asked for a call it has not started gives it back (`withdrawn`, before the running call's `idle`) and never runs
 * it; asked for one it has already started, it says nothing and answers it as usual. Drives a real `Runner` in this
 * process (tests/helpers/in_process_runner.ts). Several calls may be held at once; they run in the order sent.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { isIdle, withInProcessRunner } from "./helpers/in_process_runner.ts";
import { type FromRunnerMessage, MAX_CALLS_BEHIND } from "../src/runtime/runner_protocol.ts";

const MODULE = `
import { query } from "./_generated/server";
import { v } from "convex/values";
export const double = query({ args: { n: v.number() }, handler: async (_ctx, { n }) => n * 2 });
/** Runs for \`ms\` of user code, then answers. */
export const slow = query({
  args: { ms: v.number() },
  handler: async (_ctx, { ms }) => {
    const end = performance.now() + ms;
    while (performance.now() < end);
    return "slow";
  },
});
`;

/** What the runner sent for `executionId`: its answers and withdrawals, as `type:id`. */
function about(sent: FromRunnerMessage[], executionId: string): string[] {
  return sent.filter((m) => "executionId" in m && m.executionId === executionId).map((m) => m.type);
}

Deno.test("runner: a call sent behind is given back while unstarted, and answered as usual once started", async () => {
  await withInProcessRunner({ "withdraw.ts": MODULE }, async ({ runner, sent, query, until }) => {
    // Warm: the module's first load.
    runner.handle(query("warm", "withdraw.js", "double", { n: 1 }));
    await until((all) => all.some(isIdle));

    // Unstarted: the runner holds `behind` while `ahead` runs, and gives it back when asked.
    let from = sent.length;
    runner.handle(query("ahead", "withdraw.js", "slow", { ms: 150 }));
    runner.handle(query("behind", "withdraw.js", "double", { n: 21 }));
    runner.handle({ type: "withdraw", executionId: "behind" });
    await until((all) => all.slice(from).some(isIdle));
    // Then nothing more comes for it: give the runner time to have started it, were it still held.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const order = sent.slice(from).map((m) => `${m.type}:${"executionId" in m ? m.executionId : ""}`);
    assertEquals(about(sent, "behind"), ["withdrawn"], order.join(", "));
    assert(order.indexOf("withdrawn:behind") < order.findIndex((m) => m.startsWith("result:ahead")), order.join(", "));
    const slow = sent.find((m) => m.type === "result" && m.executionId === "ahead");
    assert(slow?.type === "result" && slow.ok && slow.resultJson === '"slow"', JSON.stringify(slow));

    // Started: asked too late, the runner says nothing and answers it.
    from = sent.length;
    runner.handle(query("first", "withdraw.js", "double", { n: 1 }));
    runner.handle(query("second", "withdraw.js", "double", { n: 2 }));
    // The runner starts `second` right after it reports idle after `first`.
    await until((all) => all.slice(from).some(isIdle));
    runner.handle({ type: "withdraw", executionId: "second" });
    await until((all) => all.slice(from).filter(isIdle).length >= 2);
    assertEquals(about(sent, "second").filter((type) => type === "withdrawn"), []);
    const second = sent.find((m) => m.type === "result" && m.executionId === "second");
    assert(second?.type === "result" && second.ok && second.resultJson === "4", JSON.stringify(second));

    // A withdrawal of a call the runner never had changes nothing.
    runner.handle({ type: "withdraw", executionId: "unknown" });
    from = sent.length;
    runner.handle(query("after", "withdraw.js", "double", { n: 5 }));
    await until((all) => all.slice(from).some(isIdle));
    assertEquals(about(sent, "unknown"), []);
    assert(sent.some((m) => m.type === "result" && m.executionId === "after" && m.resultJson === "10"));
  });
});

Deno.test("runner: several calls sent behind run in the order sent, and one taken from the middle is given back", async () => {
  await withInProcessRunner({ "withdraw.ts": MODULE }, async ({ runner, sent, query, until }) => {
    runner.handle(query("warm", "withdraw.js", "double", { n: 1 }));
    await until((all) => all.some(isIdle));

    const from = sent.length;
    runner.handle(query("ahead", "withdraw.js", "slow", { ms: 100 }));
    for (let i = 0; i < MAX_CALLS_BEHIND; i++) runner.handle(query(`behind${i}`, "withdraw.js", "double", { n: i }));
    runner.handle({ type: "withdraw", executionId: "behind1" });
    const done = (all: FromRunnerMessage[]) => all.slice(from).filter(isIdle).length >= MAX_CALLS_BEHIND;
    await until(done);
    const results = sent.slice(from).filter((m) => m.type === "result").map((m) => m.executionId);
    const expected = ["ahead", ...Array.from({ length: MAX_CALLS_BEHIND }, (_, i) => `behind${i}`)]
      .filter((id) => id !== "behind1");
    assertEquals(results, expected, "every call held behind answered once, in the order sent");
    assertEquals(about(sent, "behind1"), ["withdrawn"]);
    for (let i = 0; i < MAX_CALLS_BEHIND; i++) {
      if (i === 1) continue;
      const result = sent.find((m) => m.type === "result" && m.executionId === `behind${i}`);
      assert(result?.type === "result" && result.ok && result.resultJson === String(2 * i), JSON.stringify(result));
    }
  });
});
