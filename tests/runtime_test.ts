/**
 * The function runtime end to end: a small Convex app bundled like the CLI does, written as a deployment, analyzed
 * and run in runner processes against a real SQLite database.
 */
import { assert, assertEquals, assertMatch, assertRejects, assertStringIncludes } from "./helpers/assert.ts";
import { bundleApp, openDeployedApp, stopBundler, writeApp } from "./helpers/runtime_app.ts";
import {
  type ExecuteRequest,
  type ExecutionResult,
  ModuleLoadError,
  RunnerPool,
  RunnerPoolFullError,
  writeDeploymentModules,
} from "../src/runtime/mod.ts";
import { freshPostgres } from "./helpers/databases.ts";
import { startAppPool } from "./helpers/app_pool.ts";

const SERVER_SECRET_ENV = "DENVEX_RUNTIME_TEST_SECRET";

function isProcessAlive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) Z/.test(stat); // a zombie is dead
  } catch {
    return false;
  }
}

Deno.test("runtime: runs a bundled Convex app in sandboxed runners", async (t) => {
  Deno.env.set(SERVER_SECRET_ENV, "must not leak");
  const dir = await Deno.makeTempDir({ prefix: "denvex-runtime-test-" });
  const modules = await bundleApp(await writeApp(dir));
  await stopBundler();
  const { dataDir, persistence, database, deploymentDir } = await openDeployedApp(dir, modules);
  const calls: string[] = [];
  const runnerOutput: string[] = [];
  const fileServer = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, () => new Response("served"));

  const execute = (
    udfType: ExecuteRequest["udfType"],
    exportName: string,
    args: Record<string, unknown> = {},
    modulePath = "messages.js",
  ): Promise<ExecutionResult> =>
    pool.execute({
      udfType,
      modulePath,
      exportName,
      argsJson: JSON.stringify([args]),
      snapshotTs: database.latestTs,
      catalog: database.catalog,
      identityJson: null,
      env: { GREETING: "hej", CONVEX_CLOUD_URL: "http://127.0.0.1:3210", CONVEX_SITE_URL: "http://127.0.0.1:3211" },
      requestId: "req-1",
      deploymentDir,
    });
  const query = (exportName: string, args: Record<string, unknown> = {}) => execute("query", exportName, args);
  const mutate = async (exportName: string, args: Record<string, unknown> = {}) => {
    const result = await execute("mutation", exportName, args);
    if (result.ok && result.outcome) await database.commit(result.outcome);
    return result;
  };

  const pool: RunnerPool = new RunnerPool({
    dataDir,
    location: persistence.location,
    queryRunners: 2,
    maxActionRunners: 2,
    maxHeapMb: 128,
    // The action below fetches a local test server, which the default network policy keeps out of reach.
    actionNet: { allowHosts: ["127.0.0.1"] },
    createTable: (name) => database.createTable(name),
    onRunnerOutput: (line) => runnerOutput.push(line),
    onCall: async (op, argsJson, context) => {
      calls.push(`${op} from ${context.functionPath}`);
      const args = JSON.parse(argsJson) as { name: string; args: Record<string, unknown> };
      if (op === "1.0/getUserIdentity") return context.identityJson ?? "null";
      if (op !== "1.0/actions/query" && op !== "1.0/actions/mutation") throw new Error(`Unknown async operation ${op}`);
      const [module, name] = args.name.split(":");
      const result = await execute(op === "1.0/actions/query" ? "query" : "mutation", name, args.args, `${module}.js`);
      if (!result.ok) throw Object.assign(new Error(result.errorMessage), { data: result.errorData });
      return result.resultJson!;
    },
  });

  try {
    await pool.ready();

    await t.step("rejects forbidden imports when writing modules", async () => {
      const cases: [string, string][] = [
        ['import x from "npm:left-pad";', "npm:left-pad"],
        ['export { a } from "https://example.com/x.js";', "https://example.com/x.js"],
        ['import { readFileSync } from "node:fs";', "node:fs"],
        ['const m = await import("data:text/javascript,1");', "data:text/javascript,1"],
        ['import "left-pad";', "left-pad"],
        ['import y from "../outside.js";', "../outside.js"],
      ];
      for (const [source, specifier] of cases) {
        const error = await assertRejects(
          () => writeDeploymentModules(dataDir, [{ path: "bad.js", source, environment: "isolate" }]),
          ModuleLoadError,
        );
        assertStringIncludes(error.message, "bad.js");
        assertStringIncludes(error.message, specifier);
      }
    });

    await t.step("analyzes functions, routes, crons, schema and auth config", async () => {
      const analysis = await pool.analyze(deploymentDir, modules.map((m) => m.path), { AUTH_DOMAIN: "auth.test" });
      const messages = analysis.modules.find((m) => m.path === "messages.js")!;
      const hello = messages.functions.find((f) => f.name === "hello")!;
      assertEquals(hello.udfType, "Query");
      assertEquals(hello.visibility, { kind: "public" });
      assertEquals(JSON.parse(hello.args!), {
        type: "object",
        value: { name: { fieldType: { type: "string" }, optional: false } },
      });
      assertEquals(JSON.parse(hello.returns!), { type: "string" });
      assertEquals(messages.functions.find((f) => f.name === "secret")?.visibility, { kind: "internal" });
      assertEquals(messages.functions.find((f) => f.name === "send")?.udfType, "Mutation");
      assertEquals(messages.functions.find((f) => f.name === "act")?.udfType, "Action");
      const util = analysis.modules.find((m) => m.path === "dir/util.js")!;
      assertEquals(util.functions.map((f) => [f.name, f.udfType, f.args]), [["default", "Query", '{"type":"any"}']]);
      const http = analysis.modules.find((m) => m.path === "http.js")!;
      assertEquals(http.httpRoutes, [{ path: "/hello", method: "GET" }, { path: "/files/*", method: "POST" }]);
      const crons = JSON.parse(analysis.modules.find((m) => m.path === "crons.js")!.cronsJson!);
      assertEquals(crons.tick.name, "messages:send");
      assertEquals(JSON.parse(analysis.schemaJson!).tables[0].tableName, "messages");
      assertEquals(analysis.authConfig, { providers: [{ domain: "auth.test", applicationID: "convex" }] });
      assert(!analysis.modules.some((m) => m.path.startsWith("_deps/")));
    });

    await t.step("reports a module that fails to load, naming it", async () => {
      const broken = [{ path: "broken.js", source: "export const x = ;", environment: "isolate" as const }];
      const written = await writeDeploymentModules(dataDir, broken);
      const error = await assertRejects(() => pool.analyze(written.deploymentDir, ["broken.js"]));
      assertStringIncludes((error as Error).message, "broken.js");
      assertStringIncludes((error as Error).message, "SyntaxError");
      const throwing = [{
        path: "t.js",
        source: 'throw new Error("top-level boom");',
        environment: "isolate" as const,
      }];
      const second = await writeDeploymentModules(dataDir, throwing);
      const thrown = await assertRejects(() => pool.analyze(second.deploymentDir, ["t.js"]));
      assertMatch((thrown as Error).message, /t\.js.*top-level boom/);
    });

    await t.step("runs a trivial query", async () => {
      const result = await query("hello", { name: "world" });
      assertEquals(result.ok, true);
      assertEquals(result.resultJson, '"hello world"');
      assert(result.executionTimeMs >= 0);
    });

    await t.step("captures console output as log lines", async () => {
      const result = await query("logs");
      assertEquals(result.logLines, [
        "[LOG] 'hi' 1",
        "[INFO] {\n  a: 1,\n  b: 'x'\n}",
        "[WARN] [ 1, 'two' ]",
        "[ERROR] 'bad' 2n",
      ]);
    });

    await t.step("reports ConvexError data and plain errors with their stack", async () => {
      const convexError = await query("fails");
      assertEquals(convexError.ok, false);
      assertEquals(convexError.errorMessage, 'Uncaught ConvexError: {"code":"BAD","n":"3n"}');
      assertEquals(convexError.errorData, { code: "BAD", n: { $integer: "AwAAAAAAAAA=" } });
      const plain = await query("throwsPlain");
      // Mapped through the pushed source map to the developer's file, convex/server's own frames left out.
      assertMatch(
        plain.errorMessage!,
        /^Uncaught Error: plain failure\n {4}at handler \(\.\.\/convex\/messages\.ts:\d+:\d+\)$/,
      );
      assertEquals(plain.errorData, undefined);
    });

    await t.step("keeps queries deterministic and without fetch or timers", async () => {
      const clock = JSON.parse((await query("clock")).resultJson!);
      assertEquals(clock.first, clock.second);
      assert(clock.random >= 0 && clock.random < 1);
      assertStringIncludes((await query("tryFetch")).errorMessage!, "fetch is not allowed in queries and mutations");
      assertStringIncludes(
        (await query("tryTimer")).errorMessage!,
        "setTimeout is not allowed in queries and mutations",
      );
    });

    await t.step("sandboxes user code: no files, no server env, no imports outside the deployment", async () => {
      const read = await query("readHostname");
      assertEquals(read.ok, false);
      assertMatch(read.errorMessage!, /NotCapable: Requires read access to "\/etc\/hostname"/);
      const env = JSON.parse((await query("environment")).resultJson!);
      assertEquals(env.processEnv, {
        GREETING: "hej",
        CONVEX_CLOUD_URL: "http://127.0.0.1:3210",
        CONVEX_SITE_URL: "http://127.0.0.1:3211",
      });
      assertEquals(env.denoEnv, "NotCapable");
      const exited = await query("exits", { how: "exit" });
      assertStringIncludes(exited.errorMessage!, "Deno.exit() is not allowed");
      // Node's process.exit/abort must not end the worker either (its call would hang until the time limit): they go
      // through the guarded Deno.exit, or are refused in a worker.
      for (const method of ["exit", "abort", "reallyExit"]) {
        const nodeExit = await query("exits", { how: `node:process ${method}` });
        assertMatch(nodeExit.errorMessage!, /Deno\.exit\(\) is not allowed|process\.abort\(\) is not supported/);
      }
      const closed = await query("exits", { how: "close" });
      assertStringIncludes(closed.errorMessage!, "TypeError");
      // The runner's standard streams are the server's (stderr: its log): user code writes log lines, not to them.
      for (const stream of ["stdout", "stderr"]) {
        const written = await query("writesStdio", { stream });
        assertEquals(written.ok, false, `Deno.${stream} was writable`);
        assertStringIncludes(written.errorMessage!, `Deno.${stream} is not available in Convex functions`);
      }
      // What still reaches the runner's stderr (node:process needs no permission) reaches the server's marked as the
      // runner's, one line per line, with no control character that could redraw a log line.
      const nodeWrite = await query("writesNodeStderr", {
        module: "node:process",
        text: "from user code\x1b[2K\rforged line\nsecond\n",
      });
      assertEquals(nodeWrite.resultJson, '"written"');
      const deadline = performance.now() + 5_000;
      while (runnerOutput.length < 2 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const pids = pool.runnerPids().join("|");
      assertEquals(runnerOutput.length, 2, runnerOutput.join("\n"));
      assertMatch(runnerOutput[0], new RegExp(`^denvex runner (${pids}): from user code\\?\\[2K\\?forged line$`));
      assertMatch(runnerOutput[1], new RegExp(`^denvex runner (${pids}): second$`));
      const imported = await query("importOutside");
      assertEquals(imported.ok, false);
      assertStringIncludes(imported.errorMessage!, "Requires read access");
    });

    await t.step("fails an infinite loop within 2 s, keeps serving, and kills the runner", async () => {
      const pidsBefore = pool.runnerPids();
      const started = performance.now();
      const spinning = query("spin");
      const concurrent = await query("hello", { name: "still here" });
      assertEquals(concurrent.resultJson, '"hello still here"');
      const spin = await spinning;
      const elapsedMs = performance.now() - started;
      assertEquals(spin.ok, false);
      assertStringIncludes(spin.errorMessage!, "timed out");
      assert(elapsedMs < 2_000, `the loop was stopped after ${elapsedMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const gone = pidsBefore.filter((pid) => !pool.runnerPids().includes(pid));
      assertEquals(gone.length, 1, "exactly the spinning runner was replaced");
      assertEquals(isProcessAlive(gone[0]), false, "the spinning runner process is gone");
      assertEquals((await query("hello", { name: "again" })).ok, true);
    });

    await t.step("fails unbounded allocation with an out-of-memory error and keeps serving", async () => {
      const hog = await query("hog");
      assertEquals(hog.ok, false);
      assertStringIncludes(hog.errorMessage!, "out of memory");
      assertEquals((await query("hello", { name: "after hog" })).resultJson, '"hello after hog"');
    });

    await t.step("runs mutations against the database, with nested calls and rollback", async () => {
      const sent = await mutate("send", { body: "first" });
      assertEquals(sent.ok, true);
      assertEquals(sent.outcome?.writes.length, 1);
      assertEquals(JSON.parse((await query("list")).resultJson!).map((d: { body: string }) => d.body), ["first"]);
      const nested = await mutate("nestedWrite");
      assertEquals(nested.resultJson, "2", "the failed nested mutation was rolled back");
      assertEquals(JSON.parse((await query("list")).resultJson!).length, 2);
      // Scheduling writes the job into the mutation's own transaction (table 1 is `_scheduled_functions`).
      const scheduled = await mutate("schedule");
      assertEquals(scheduled.ok, true, scheduled.errorMessage);
      assertEquals(scheduled.outcome?.writes.map((write) => write.tableNumber), [1]);
    });

    await t.step("validates nested calls and carries ConvexError data through them", async () => {
      const result = JSON.parse((await query("nested")).resultJson!);
      assertEquals(result.doubled, 42);
      assertMatch(result.invalid, /^ArgumentValidationError: /);
      assertEquals(result.data, { code: "BAD", n: { $integer: "AwAAAAAAAAA=" } });
      assertEquals(result.meta, { name: "messages:nested", componentPath: "", type: "query", visibility: "public" });
    });

    await t.step("moves results larger than the syscall channel in chunks", async () => {
      // 3 documents of ~900 KB: one batch of them is larger than the 1 MiB channel buffer.
      assertEquals((await mutate("sendBig", { count: 3, size: 900_000 })).ok, true);
      assertEquals((await query("bigTotal")).resultJson, String(3 * 900_000));
    });

    await t.step("runs actions with concurrent server calls and real fetch", async () => {
      const result = await execute("action", "act", { name: "bob" });
      assertEquals(result.ok, true, result.errorMessage);
      const value = JSON.parse(result.resultJson!);
      assertEquals([value.a, value.b], ["hello bob", "hello bob!"]);
      assertStringIncludes(value.failure.message, "defined as Query");
      assertEquals(value.identity, null);
      assert(calls.includes("1.0/actions/query from messages.js:act"));
      const url = `http://127.0.0.1:${fileServer.addr.port}/`;
      const fetched = await execute("action", "fetchUrl", { url });
      assertEquals(fetched.resultJson, '"served"', fetched.errorMessage);
    });
  } finally {
    await pool.close();
    await fileServer.shutdown();
    await persistence.close();
    await Deno.remove(dir, { recursive: true });
    Deno.env.delete(SERVER_SECRET_ENV);
  }
  await assertRejects(() => pool.execute({ udfType: "action" } as ExecuteRequest), RunnerPoolFullError);
});

Deno.test("runtime: runners read and write through PostgreSQL", async () => {
  const location = await freshPostgres();
  const app = await startAppPool({ location, pool: { queryRunners: 1, minActionRunners: 0 }, requestId: "pg" });
  const run = (udfType: "query" | "mutation", exportName: string, args: Record<string, unknown>) =>
    app.execute(udfType, "messages.js", exportName, args);
  try {
    const sent = await run("mutation", "sendMany", { count: 300 });
    assertEquals(sent.ok, true, sent.errorMessage);
    await app.database.commit(sent.outcome!);
    const counted = await run("query", "count", {});
    assertEquals(counted.resultJson, "300", counted.errorMessage);
  } finally {
    await app.close();
    await location.cleanup();
  }
});
