/**
 * A transaction runner's answer stands for its `idle` message when its worker settles right after the result (one
 * frame per call instead of two, issue 14), and only then: a call whose leftover microtasks keep the worker busy past
 * the channel's blocking wait gets its answer at once, unmarked, and `idle` follows once the worker is done.
 * Drives a real `Runner` (runner.ts, with its user-code worker and the app's SQLite file) in this process.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { APP_FILES, bundleApp, openDeployedApp, stopBundler, writeApp } from "./helpers/runtime_app.ts";
import { NO_REQUEST_METADATA } from "../src/runtime/mod.ts";
import { modulesRoot } from "../src/runtime/module_writer.ts";
import { Runner } from "../src/runtime/runner.ts";
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
  const dir = await Deno.makeTempDir({ prefix: "denvex-answer-idle-" });
  try {
    const modules = await bundleApp(await writeApp(dir, { ...APP_FILES, "idle.ts": MODULE }));
    await stopBundler();
    const { dataDir, persistence, database, deploymentDir } = await openDeployedApp(dir, modules);
    const sent: FromRunnerMessage[] = [];
    let changed = Promise.withResolvers<void>();
    const runner = new Runner(
      {
        type: "init",
        kind: "transaction",
        location: persistence.location,
        modulesDir: modulesRoot(dataDir),
        allowNet: false,
      },
      (message: FromRunnerMessage) => {
        sent.push(message);
        changed.resolve();
        return Promise.resolve();
      },
    );
    await runner.start();
    let executionId = 0;
    /** Runs one call and returns what the runner sent for it, once it is idle again. */
    const call = async (exportName: string, args: unknown): Promise<FromRunnerMessage[]> => {
      const from = sent.length;
      const catalog = database.catalog;
      runner.handle({
        type: "execute",
        executionId: `t${executionId++}`,
        udfType: "query",
        modulePath: "idle.js",
        exportName,
        argsJson: JSON.stringify([args]),
        snapshotTs: database.latestTs.toString(),
        catalog,
        catalogVersion: catalog.version,
        identityJson: null,
        journal: null,
        env: {},
        requestId: "test",
        deploymentDir,
        timeLimitMs: 1_000,
        metadata: { deploymentName: "test", request: NO_REQUEST_METADATA },
      });
      for (;;) {
        const mine = sent.slice(from);
        const idle = mine.some((m) => m.type === "idle" || (m.type === "result" && m.idle === true));
        if (idle) return mine;
        await changed.promise;
        changed = Promise.withResolvers<void>();
      }
    };
    try {
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
    } finally {
      runner.stop();
      await persistence.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
