/**
 * A transaction runner's answer stands for its `idle` message when its worker settles right after the result (one
 * frame per call instead of two, issue 14), and only then: a call whose leftover microtasks keep the worker busy past
 * the channel's blocking wait gets its answer at once, unmarked, and `idle` follows once the worker is done.
 * Drives a real `Runner` in this process (tests/helpers/in_process_runner.ts).
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { isIdle, withInProcessRunner } from "./helpers/in_process_runner.ts";
import type { FromRunnerMessage } from "../src/runtime/runner_protocol.ts";

const MODULE = `
import { query } from "./_generated/server";
import { v } from "convex/values";
export const plain = query({ args: { n: v.number() }, handler: async (_ctx, { n }) => n * 2 });
/**
 * Returns at once, leaving ~150 ms of microtasks behind: 1,500 links of 0.1 ms, so that the few the runtime's own
 * continuations interleave with before the result leaves are a small part (finite: the worker settles after them,
 * well within the runner's 500 ms probe timeout). Long enough that a runner thread preempted under a loaded machine
 * (the whole suite on two cores) still wakes while they run: with ~40 ms it once woke after them.
 */
export const lingering = query({
  args: {},
  handler: async () => {
    const spin = () => { const end = performance.now() + 0.1; while (performance.now() < end); };
    let chain = Promise.resolve();
    for (let i = 0; i < 1500; i++) chain = chain.then(spin);
    void chain;
    return true;
  },
});
`;

Deno.test("runner: the answer stands for idle when the worker settles at once, not when leftover work holds it", async () => {
  await withInProcessRunner({ "idle.ts": MODULE }, async ({ runner, sent, query, until }) => {
    let executionId = 0;
    /** Runs one call and returns what the runner sent for it, once it is idle again. */
    const call = async (exportName: string, args: unknown): Promise<FromRunnerMessage[]> => {
      const from = sent.length;
      runner.handle(query(`t${executionId++}`, "idle.js", exportName, args));
      await until((all) => all.slice(from).some(isIdle));
      return sent.slice(from);
    };
    // Warm (first load of the module), then plain calls: one frame each, marked idle.
    await call("plain", { n: 0 });
    let marked = 0;
    for (let n = 1; n <= 20; n++) {
      const messages = await call("plain", { n });
      const result = messages.find((m) => m.type === "result");
      assert(result?.type === "result" && result.ok && result.resultJson === String(n * 2), JSON.stringify(messages));
      if (messages.length === 1 && result.idle === true) marked++;
    }
    // A pause (GC, a preempted worker) may let one call miss its chance; most calls must not.
    assert(marked >= 18, `${marked} of 20 plain answers stood for idle`);
    // Leftover microtasks keep the worker busy past the channel's wait: the answer goes at once, idle later.
    const lingering = await call("lingering", {});
    assertEquals(lingering.map((m) => m.type), ["result", "idle"]);
    const answer = lingering[0];
    assert(answer.type === "result" && answer.ok && answer.idle === undefined, JSON.stringify(answer));
    // And the runner serves the next call normally.
    const after = await call("plain", { n: 21 });
    assert(after.some((m) => m.type === "result" && m.resultJson === "42"));
  });
});
