/**
 * Runner hygiene (issue 9, items 5–8 and the HTTP-action disconnect): nothing one call does — nested workers, work
 * left running, a breached time limit, global state — reaches the next call on the same runner, and a runner is
 * recycled when it cannot be cleaned.
 */
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { APP_FILES, bundleApp, openDeployedApp, stopBundler, writeApp } from "./helpers/runtime_app.ts";
import {
  type ExecuteRequest,
  type ExecutionResult,
  type ModuleConfig,
  RunnerPool,
  writeDeploymentModules,
} from "../src/runtime/mod.ts";
import { startTestDeployment } from "./helpers/convex_app.ts";
import { handleHttpAction } from "../src/http/http_action_handler.ts";

const HYGIENE_MODULE = `
  import { query, action } from "./_generated/server";
  import { v } from "convex/values";

  let calls = 0;
  // A load-time polyfill: part of the module, so it stays for the module's later calls.
  (globalThis as any).loadedPolyfill = () => "polyfill";
  let pendingFetch: Promise<string> | null = null;

  export const spawnWorker = query({
    args: {},
    handler: async () => {
      new Worker("data:text/javascript,for(;;){}", { type: "module" });
      return "started";
    },
  });
  export const spawnNodeWorker = query({
    args: {},
    handler: async () => {
      const { Worker: NodeWorker } = await import(["node", "worker_threads"].join(":"));
      new NodeWorker("for(;;){}", { eval: true });
      return "started";
    },
  });
  export const detachedLoop = query({
    args: {},
    handler: async () => {
      void (async () => { for (;;) await null; })();
      return "left running";
    },
  });
  export const bump = query({ args: {}, handler: async () => ++calls });
  export const polyfill = query({ args: {}, handler: async () => typeof (globalThis as any).loadedPolyfill });
  export const pollute = query({
    args: {},
    handler: async (ctx) => {
      const identity = await ctx.auth.getUserIdentity();
      (globalThis as any).lastCaller = identity?.subject ?? null;
      (Object.prototype as any).pollutedBy = identity?.subject ?? null;
      (Array.prototype as any).at = () => "hijacked";
      (String.prototype as any).shout = () => "!";
      (Promise.prototype as any).leak = identity?.subject;
      // RegExp's legacy statics (RegExp.$1, .input, .lastMatch…) keep the last match of the realm.
      new RegExp("user (\\w+)").exec("token of user " + identity?.subject);
      console.count("calls");
      console.time("timer of " + identity?.subject);
      return "polluted";
    },
  });
  export const inspectGlobals = query({
    args: {},
    handler: async (ctx) => ({
      me: (await ctx.auth.getUserIdentity())?.subject ?? null,
      lastCaller: (globalThis as any).lastCaller ?? null,
      polluted: ({} as any).pollutedBy ?? null,
      at: [1, 2].at(-1),
      shout: typeof ("" as any).shout,
      leak: (Promise.resolve() as any).leak ?? null,
      frozen: Object.isFrozen(Array.prototype),
      lastMatch: [RegExp.$1, (RegExp as any).input, (RegExp as any).lastMatch, (RegExp as any).leftContext].join("|"),
    }),
  });
  export const consoleState = query({
    args: {},
    handler: async () => {
      console.count("calls");
      console.timeEnd("timer of alice");
      return null;
    },
  });
  export const freeze = query({ args: {}, handler: async () => { Object.freeze(Array.prototype); return "frozen"; } });
  export const leaveTimers = action({
    args: {},
    handler: async () => {
      // Would block the worker for good (the next call on the runner would time out) if it ever fired.
      setTimeout(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0), 20);
      setInterval(() => { const end = performance.now() + 20; while (performance.now() < end); }, 1);
      return "left timers";
    },
  });
  export const startFetch = action({
    args: { url: v.string() },
    handler: async (_ctx, { url }) => {
      pendingFetch = fetch(url).then((response) => "answered " + response.status, (error) => error.name);
      await new Promise((resolve) => setTimeout(resolve, 100));
      return "left a fetch";
    },
  });
  export const pendingFetchOutcome = action({ args: {}, handler: async () => await pendingFetch });
  export const detachedActionLoop = action({
    args: {},
    handler: async () => {
      void (async () => { for (;;) await null; })();
      return "left running";
    },
  });
  export const quick = action({ args: {}, handler: async () => "quick" });
`;

const OTHER_DEPLOYMENT_MODULE = `
  import { query } from "./_generated/server";
  export const polyfill = query({ args: {}, handler: async () => typeof (globalThis as any).loadedPolyfill });
`;

const HTTP_MODULE = `
  import { httpRouter } from "convex/server";
  import { httpAction } from "./_generated/server";
  const http = httpRouter();
  http.route({ path: "/spin", method: "GET", handler: httpAction(async () => { for (;;) {} }) });
  http.route({
    path: "/drip",
    method: "GET",
    handler: httpAction(async () => {
      let sent = 0;
      const body = new ReadableStream({
        async pull(controller) {
          await new Promise((resolve) => setTimeout(resolve, 10));
          controller.enqueue(new TextEncoder().encode("chunk " + sent++ + "\\n"));
        },
      });
      return new Response(body);
    }),
  });
  http.route({ path: "/hello", method: "GET", handler: httpAction(async () => new Response("hi")) });
  export default http;
`;

const ALICE = JSON.stringify({ tokenIdentifier: "test|alice", subject: "alice", issuer: "test" });
const BOB = JSON.stringify({ tokenIdentifier: "test|bob", subject: "bob", issuer: "test" });
/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** CPU time (user + system) the process has used so far, from /proc. */
function cpuMs(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of stat (utime, stime), counted after the command name.
  return (Number(fields[11]) + Number(fields[12])) * 1000 / TICKS_PER_SECOND;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function bundle(dir: string, files: Record<string, string>): Promise<ModuleConfig[]> {
  return await bundleApp(await writeApp(dir, files));
}

Deno.test("runner hygiene: nothing a call leaves behind reaches the next call", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "denvex-hygiene-test-" });
  const modules = await bundle(`${dir}/app`, { ...APP_FILES, "hygiene.ts": HYGIENE_MODULE });
  const otherModules = await bundle(`${dir}/other`, {
    "_generated/server.ts": APP_FILES["_generated/server.ts"],
    "schema.ts": APP_FILES["schema.ts"],
    "hygiene.ts": OTHER_DEPLOYMENT_MODULE,
  });
  await stopBundler();
  const { dataDir, persistence, database, deploymentDir } = await openDeployedApp(dir, modules);
  const other = await writeDeploymentModules(dataDir, otherModules);
  // One runner of each kind: every call below lands on the runner the previous call used (or its replacement).
  const pool = new RunnerPool({
    dataDir,
    location: persistence.location,
    queryRunners: 1,
    minActionRunners: 1,
    maxActionRunners: 1,
    actionTimeLimitMs: 3_000,
    hardDeadlineSlackMs: 1_000,
    actionNet: { allowHosts: ["127.0.0.1"] },
    createTable: (name) => database.createTable(name),
    onCall: () => Promise.reject(new Error("no server calls expected")),
  });
  const run = (
    udfType: ExecuteRequest["udfType"],
    exportName: string,
    options: { args?: Record<string, unknown>; identityJson?: string; deploymentDir?: string } = {},
  ): Promise<ExecutionResult> =>
    pool.execute({
      udfType,
      modulePath: "hygiene.js",
      exportName,
      argsJson: JSON.stringify([options.args ?? {}]),
      snapshotTs: database.latestTs,
      catalog: database.catalog,
      identityJson: options.identityJson ?? null,
      env: {},
      requestId: "hygiene",
      deploymentDir: options.deploymentDir ?? deploymentDir,
    });
  const spin = () =>
    pool.execute({
      udfType: "query",
      modulePath: "messages.js",
      exportName: "spin",
      argsJson: "[{}]",
      snapshotTs: database.latestTs,
      catalog: database.catalog,
      identityJson: null,
      env: {},
      requestId: "spin",
      deploymentDir,
    });
  const pidOf = (kind: "transaction" | "action") => pool.runnerStates().find((runner) => runner.kind === kind)?.pid;
  const result = async (udfType: ExecuteRequest["udfType"], exportName: string, options = {}) => {
    const outcome = await run(udfType, exportName, options);
    assertEquals(outcome.ok, true, outcome.errorMessage);
    return JSON.parse(outcome.resultJson!);
  };

  try {
    await pool.ready();

    await t.step("user code cannot start workers (global Worker, node:worker_threads)", async () => {
      const web = await run("query", "spawnWorker");
      assertEquals(web.ok, false, "new Worker() must fail");
      assertStringIncludes(web.errorMessage!, "Worker is not defined");
      const node = await run("query", "spawnNodeWorker");
      assertEquals(node.ok, false, "node:worker_threads' Worker must fail");
      assertStringIncludes(node.errorMessage!, "Workers are not available");
      // No thread was left spinning: the idle runner uses (almost) no CPU.
      const pid = pidOf("transaction")!;
      const before = cpuMs(pid);
      await sleep(500);
      const usedMs = cpuMs(pid) - before;
      assert(usedMs < 150, `the idle runner used ${usedMs} ms of CPU in 500 ms`);
    });

    await t.step("a detached microtask loop retires the runner before it serves another call", async () => {
      const pid = pidOf("transaction");
      assertEquals(await result("query", "detachedLoop"), "left running");
      assertEquals(await result("query", "bump"), 1, "the next call runs (no false time-out)");
      assert(pidOf("transaction") !== pid, "the runner with leftover work was replaced");
    });

    await t.step("a runner past its time limit never receives the next queued call", async () => {
      const spinning = spin();
      const queued = run("query", "bump"); // waits for the only runner, which is spinning
      const spinResult = await spinning;
      assertEquals(spinResult.ok, false);
      assertStringIncludes(spinResult.errorMessage!, "timed out");
      const next = await queued;
      assertEquals(next.ok, true, `the queued call failed: ${next.errorMessage}`);
      // And a call made right after the time-out answer (the runner may not have exited yet).
      for (let attempt = 0; attempt < 3; attempt++) {
        assertEquals((await spin()).ok, false);
        const after = await run("query", "bump");
        assertEquals(after.ok, true, `the call after a time-out failed: ${after.errorMessage}`);
      }
    });

    await t.step("globals and prototype pollution of one call do not reach the next (identity included)", async () => {
      assertEquals(await result("query", "pollute", { identityJson: ALICE }), "polluted");
      assertEquals(await result("query", "inspectGlobals", { identityJson: BOB }), {
        me: "bob",
        lastCaller: null,
        polluted: null,
        at: 2,
        shout: "undefined",
        leak: null,
        frozen: false,
        lastMatch: "|||",
      });
      // console.count and console.time state is the call's own.
      assertEquals(await result("query", "pollute", { identityJson: ALICE }), "polluted");
      const consoleState = await run("query", "consoleState", { identityJson: BOB });
      assertEquals(consoleState.logLines, ["[INFO] calls: 1", "[WARN] Timer 'timer of alice' does not exist"]);
    });

    await t.step("module-level state and load-time globals stay within a deployment", async () => {
      const first = await result("query", "bump");
      assertEquals(await result("query", "bump"), first + 1);
      assertEquals(await result("query", "polyfill"), "function");
      assertEquals(await result("query", "polyfill"), "function");
    });

    await t.step("a prototype frozen by user code gets the worker replaced", async () => {
      assertEquals(await result("query", "freeze"), "frozen");
      assertEquals((await result("query", "inspectGlobals")).frozen, false);
    });

    await t.step("a worker serves one deployment only", async () => {
      assertEquals(await result("query", "polyfill"), "function");
      assertEquals(await result("query", "polyfill", { deploymentDir: other.deploymentDir }), "undefined");
      assertEquals(await result("query", "polyfill"), "function");
    });

    await t.step("an action's leftover timers and intervals are dropped when it ends", async () => {
      const pid = pidOf("action");
      assertEquals(await result("action", "leaveTimers"), "left timers");
      await sleep(100); // the timer and the interval would have fired by now
      const before = cpuMs(pid!);
      await sleep(300);
      const usedMs = cpuMs(pid!) - before;
      assert(usedMs < 100, `the runner's leftover interval used ${usedMs} ms of CPU in 300 ms`);
      assertEquals(await result("action", "quick"), "quick");
      assertEquals(pidOf("action"), pid, "dropping the timers needed no new runner");
    });

    await t.step("a fetch left in flight is aborted when the action ends", async () => {
      const aborted = Promise.withResolvers<void>();
      const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
        // Answers once the client has gone, or after a while (so that shutdown() never waits long on it).
        let timer: ReturnType<typeof setTimeout> | undefined;
        const gaveUp = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 3_000)));
        const gone = new Promise<boolean>((resolve) => request.signal.addEventListener("abort", () => resolve(true)));
        if (await Promise.race([gone, gaveUp])) aborted.resolve();
        clearTimeout(timer);
        return new Response("too late");
      });
      try {
        const url = `http://127.0.0.1:${server.addr.port}/`;
        assertEquals(await result("action", "startFetch", { args: { url } }), "left a fetch");
        const timeout = sleep(2_000).then(() => "still open");
        assertEquals(await Promise.race([aborted.promise.then(() => "aborted"), timeout]), "aborted");
        assertEquals(await result("action", "pendingFetchOutcome"), "AbortError");
      } finally {
        await server.shutdown();
      }
    });

    await t.step("a detached loop in an action does not stall the next action", async () => {
      const pid = pidOf("action");
      assertEquals(await result("action", "detachedActionLoop"), "left running");
      assertEquals(await result("action", "quick"), "quick");
      assert(pidOf("action") !== pid, "the runner with leftover work was replaced");
    });

    await t.step("runner states are explicit", () => {
      const states = pool.runnerStates();
      assert(states.every((runner) => ["starting", "idle", "busy", "retiring"].includes(runner.state)));
    });
  } finally {
    await pool.close();
    await persistence.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "runner hygiene: an HTTP action whose client disconnects is stopped and fails",
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "denvex-hygiene-http-" });
    const modules = await bundle(dir, {
      "_generated/server.ts": APP_FILES["_generated/server.ts"],
      "schema.ts": APP_FILES["schema.ts"],
      "http.ts": HTTP_MODULE,
    });
    await stopBundler();
    const deployment = await startTestDeployment();
    const { backend } = deployment;
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (request) => handleHttpAction(backend, request, new URL(request.url).pathname),
    );
    const url = `http://127.0.0.1:${server.addr.port}`;
    const actionPids = () => backend.pool.runnerStates().filter((r) => r.kind === "action").map((r) => r.pid);
    const failedLogEntry = async (path: string) => {
      for (let i = 0; i < 100; i++) {
        const entry = backend.executionLog.after(0).find((e) => e.displayName === `GET ${path}`);
        if (entry) return entry;
        await sleep(50);
      }
      throw new Error(`no execution logged for ${path}`);
    };
    try {
      await backend.deployments.activate(await backend.deployments.prepare(modules, {}));
      assertEquals(await (await fetch(`${url}/hello`)).text(), "hi");

      await t.step("a client that gives up before the response stops a spinning action", async () => {
        const before = actionPids();
        const client = new AbortController();
        const response = fetch(`${url}/spin`, { signal: client.signal }).catch((error) => error);
        await sleep(500);
        client.abort();
        await response;
        const entry = await failedLogEntry("/spin");
        assertEquals(entry.ok, false);
        assertStringIncludes(entry.errorMessage!, "disconnected");
        await sleep(200);
        assert(before.every((pid) => !actionPids().includes(pid)), "the spinning runner was recycled");
        assertEquals(await (await fetch(`${url}/hello`)).text(), "hi", "HTTP actions still work");
      });

      await t.step("a client that stops reading a streamed response stops the action", async () => {
        const response = await fetch(`${url}/drip`);
        const reader = response.body!.getReader();
        assertStringIncludes(new TextDecoder().decode((await reader.read()).value), "chunk 0");
        await reader.cancel();
        const entry = await failedLogEntry("/drip");
        assertEquals(entry.ok, false);
        assertStringIncludes(entry.errorMessage!, "disconnected");
      });
    } finally {
      await server.shutdown();
      await deployment.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
