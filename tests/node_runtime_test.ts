/**
 * The node runner (src/runtime/node) and the push-time install (src/deploy/node_packages.ts) on bundles produced by the official CLI for tests/fixtures/node_app
 * (saved in tests/node_samples/push_modules.json): Node builtins and Buffer, a CommonJS external package installed
 * with `deno install`, ConvexError data, syscalls back to the server, logs, the sandbox, and runaway calls that kill
 * only their runner.
 */
import { assert, assertEquals, assertMatch, assertRejects, assertStringIncludes } from "./helpers/assert.ts";
import { join } from "node:path";
import { MAX_LOG_LINE_CHARS, MAX_LOG_LINES } from "../src/runtime/worker/console_capture.ts";
import { resolveActionNetPolicy } from "../src/runtime/net_policy/mod.ts";
import { installNodeDependencies, NodeInstallError, writeNodeModules } from "../src/deploy/node_packages.ts";
import {
  NodeAnalyzeError,
  type NodeCall,
  type NodeCallResult,
  type NodeDependency,
  type NodeModuleConfig,
  NodeRunner,
  NodeRunnerDiedError,
  type NodeSyscallHandler,
} from "../src/runtime/node/mod.ts";

const SAMPLES = JSON.parse(
  await Deno.readTextFile(new URL("./node_samples/push_modules.json", import.meta.url)),
) as { nodeDependencies: NodeDependency[]; modules: NodeModuleConfig[] };

/** Modules written by the tests themselves, next to the CLI's (esbuild's `__require` shape, sandbox probes). */
const PROBES: NodeModuleConfig[] = [{
  path: "probes.js",
  environment: "node",
  source: `
const __require = typeof require !== "undefined" ? require : () => { throw new Error("Dynamic require"); };
const action = (handler) => ({
  isAction: true, isPublic: true,
  invokeAction: async (_requestId, argsJson) => JSON.stringify(await handler(...JSON.parse(argsJson))),
});
export const viaRequire = action(async () => {
  const { createHash } = __require("node:crypto");
  const path = __require("path");
  return { hash: createHash("md5").update("x").digest("hex"), joined: path.join("a", "b") };
});
export const readFile = action(async ({ path }) => {
  try { return { ok: true, text: (await import("node:fs")).readFileSync(path, "utf8").slice(0, 20) }; }
  catch (error) { return { ok: false, error: String(error.message) }; }
});
export const fetchUrl = action(async ({ url }) => {
  try { const response = await fetch(url); return { ok: true, status: response.status }; }
  catch (error) { return { ok: false, error: error.name + ": " + error.message + " " + (error.cause?.message ?? "") }; }
});
export const spawn = action(async () => {
  const errors = [];
  try { (await import("node:child_process")).execFileSync("/bin/true"); } catch (error) { errors.push(error.message); }
  try { new Deno.Command("/bin/true").outputSync(); } catch (error) { errors.push(error.name); }
  return errors;
});
export const timerUnref = action(async () => {
  const timer = setTimeout(() => {}, 10);
  timer.unref();
  await new Promise((resolve) => setTimeout(resolve, 5));
  return { hasUnref: typeof timer.unref === "function", worker: typeof Worker };
});
export const echo = action(async (args) => args);
export const floodsStderr = action(async ({ lines, longChars }) => {
  for (let i = 0; i < lines; i++) process.stderr.write("stray " + i + "\\n");
  process.stderr.write("x".repeat(longChars) + "\\n");
  await new Promise((resolve) => setTimeout(resolve, 300));
  return "done";
});
export const importSpecifier = action(async ({ specifier }) => {
  try { await import(specifier); return "loaded"; } catch (error) { return error.message; }
});
export const nodeNet = action(async ({ port }) => {
  const http = await import("node:http");
  const net = await import("node:net");
  const outcome = (attempt) => new Promise((resolve) => attempt(resolve));
  const results = {};
  results.net = await outcome((done) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.on("connect", () => { socket.destroy(); done("connected"); });
    socket.on("error", (error) => done(error.message.split(",")[0]));
  });
  for (const host of ["0.0.0.0", "[::ffff:127.0.0.1]", "localhost"]) {
    results[host] = await outcome((done) => {
      http.get("http://" + host + ":" + port + "/", (response) => { response.resume(); done(response.statusCode); })
        .on("error", (error) => done(error.message.split(",")[0]));
    });
  }
  return results;
});
`,
}];

/** A "use node" module that defines a query: the push must fail with Convex's message. */
const QUERY_IN_NODE: NodeModuleConfig = {
  path: "lib/badNode.js",
  environment: "node",
  source: `export const hello = Object.assign(() => {}, { isQuery: true, isPublic: true });\n`,
};

const noSyscalls: NodeSyscallHandler = (op) => Promise.reject(new Error(`unexpected syscall ${op}`));

/** A deployment folder with the sampled modules and probes, external packages installed from the npm cache. */
async function prepareDeployment(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "denvex-node-deploy-" });
  await writeNodeModules(dir, [...SAMPLES.modules, ...PROBES, QUERY_IN_NODE]);
  await installNodeDependencies(dir, SAMPLES.nodeDependencies, { cachedOnly: true });
  return dir;
}

interface Harness {
  dir: string;
  tmpDirs: string[];
  start(options?: { maxHeapMb?: number; denyNet?: string[] | null }): Promise<NodeRunner>;
  dispose(): Promise<void>;
}

async function harness(): Promise<Harness> {
  const dir = await prepareDeployment();
  const runners: NodeRunner[] = [];
  const tmpDirs: string[] = [];
  return {
    dir,
    tmpDirs,
    async start(options = {}) {
      const tmpDir = await Deno.makeTempDir({ prefix: "denvex-node-tmp-" });
      tmpDirs.push(tmpDir);
      const runner = await NodeRunner.start({
        deploymentDir: dir,
        tmpDir,
        denyNet: options.denyNet === undefined ? [] : options.denyNet,
        maxHeapMb: options.maxHeapMb,
      });
      runners.push(runner);
      return runner;
    },
    async dispose() {
      await Promise.all(runners.map((runner) => runner.close()));
      for (const path of [dir, ...tmpDirs]) await Deno.remove(path, { recursive: true });
    },
  };
}

function call(modulePath: string, exportName: string, args: unknown = {}, env: Record<string, string> = {}): NodeCall {
  return { modulePath, exportName, argsJson: JSON.stringify([args]), requestId: "req-1", env };
}

function value(result: NodeCallResult): unknown {
  assert(result.ok, `call failed: ${result.ok ? "" : result.errorMessage}`);
  return JSON.parse(result.resultJson);
}

Deno.test("node runtime: Node builtins, Buffer, temp dir and env of the CLI's bundles", async () => {
  const h = await harness();
  try {
    const runner = await h.start();
    const digest = value(await runner.call(call("cryptoBuffer.js", "digest", { text: "hello" }), noSyscalls)) as {
      sha256: string;
      base64: string;
      hexOfBytes: string;
      randomLength: number;
      isBuffer: boolean;
    };
    assertEquals(digest.sha256, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
    assertEquals(digest.base64, "aGVsbG8=");
    assertEquals(digest.hexOfBytes, "deadbeef");
    assertEquals(digest.randomLength, 16);
    assertEquals(digest.isBuffer, true);

    // The temp dir is writable and emptied between calls.
    for (let i = 0; i < 2; i++) {
      const files = value(await runner.call(call("cryptoBuffer.js", "tempFiles", { name: "f.txt" }), noSyscalls));
      assertEquals(files, { before: [], readBack: "hello" });
    }

    // process.env is the call's variables (and TMPDIR), nothing of the server's.
    const env = value(
      await runner.call(call("cryptoBuffer.js", "env", { name: "API_KEY" }, { API_KEY: "k1" }), noSyscalls),
    );
    assertEquals(env, { value: "k1", keys: ["API_KEY", "TMPDIR"] });
    const next = value(await runner.call(call("cryptoBuffer.js", "env", { name: "API_KEY" }, {}), noSyscalls));
    assertEquals(next, { value: null, keys: ["TMPDIR"] });

    // esbuild's `__require` for CommonJS requires of builtins, Node's timers, no nested workers.
    assertEquals(value(await runner.call(call("probes.js", "viaRequire"), noSyscalls)), {
      hash: "9dd4e461268c8034f5c8564e155c67a6",
      joined: "a/b",
    });
    assertEquals(value(await runner.call(call("probes.js", "timerUnref"), noSyscalls)), {
      hasUnref: true,
      worker: "undefined",
    });
  } finally {
    await h.dispose();
  }
});

Deno.test("node runtime: a convex.json externalPackages dependency with CommonJS internals", async () => {
  const h = await harness();
  try {
    const packageJson = JSON.parse(await Deno.readTextFile(join(h.dir, "package.json")));
    assertEquals(packageJson.dependencies, { semver: "7.8.6" });
    const runner = await h.start();
    const checked = value(
      await runner.call(call("versions.js", "check", { version: "1.2.3", range: "^1.0.0" }), noSyscalls),
    );
    assertEquals(checked, { satisfies: true, coerced: "1.2.3", bumped: "1.3.0" });
  } finally {
    await h.dispose();
  }
});

Deno.test("node runtime: a package that cannot be installed fails with a clear message", async () => {
  const dir = await Deno.makeTempDir({ prefix: "denvex-node-deploy-" });
  try {
    const error = await assertRejects(
      () =>
        installNodeDependencies(dir, [{ name: "denvex-no-such-package-xyz", version: "1.0.0" }], { cachedOnly: true }),
      NodeInstallError,
    );
    assertStringIncludes(error.message, "denvex-no-such-package-xyz@1.0.0");
    await assertRejects(
      () => installNodeDependencies(dir, [{ name: "semver", version: "^7" }]),
      NodeInstallError,
      "no exact version",
    );
    await assertRejects(
      () => writeNodeModules(dir, [{ path: "../escape.js", source: "", environment: "node" }]),
      NodeInstallError,
      "Invalid module path",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("node runtime: ConvexError data, plain errors, logs and syscalls back to the server", async () => {
  const h = await harness();
  try {
    const runner = await h.start();
    const failed = await runner.call(call("failures.js", "throwsConvexError", { code: "E42" }), noSyscalls);
    assert(!failed.ok);
    assertMatch(failed.errorMessage, /^Uncaught ConvexError: /);
    assertEquals(failed.errorData, { code: "E42", detail: "626164" });

    const plain = await runner.call(call("failures.js", "throwsPlainError"), noSyscalls);
    assert(!plain.ok);
    assertStringIncludes(plain.errorMessage, "Uncaught Error: plain failure from node");
    // Stack frames are the developer's sources (the pushed source maps), never the server's folders.
    assert(!plain.errorMessage.includes(h.dir), plain.errorMessage);

    const logged = await runner.call(call("failures.js", "logs", { n: 2 }), noSyscalls);
    assertEquals(value(logged), 2);
    // The isolate functions' console (worker/console_capture.ts): Convex's `[LOG] 'text' 0` rendering.
    assertEquals(logged.logLines, [
      "[LOG] 'node log line' 0",
      "[LOG] 'node log line' 1",
      "[WARN] 'node warning'",
      "[ERROR] 'node error line'",
    ]);

    // ctx.runQuery / ctx.runMutation become the same async syscalls as in isolate actions.
    const ops: string[] = [];
    const notes: string[] = ["first"];
    const onSyscall: NodeSyscallHandler = (op, argsJson) => {
      const args = JSON.parse(argsJson);
      ops.push(`${op} ${args.name}`);
      if (op === "1.0/actions/query") return Promise.resolve(JSON.stringify([...notes]));
      if (op === "1.0/actions/mutation") {
        notes.push(args.args.text);
        return Promise.resolve(JSON.stringify("id123"));
      }
      return Promise.reject(new Error(`unexpected ${op}`));
    };
    const trip = value(await runner.call(call("roundTrip.js", "addAndList", { text: "second" }), onSyscall));
    assertEquals(trip, { id: "id123", before: ["first"], after: ["first", "second"] });
    assertEquals(ops, [
      "1.0/actions/query notes:list",
      "1.0/actions/mutation notes:add",
      "1.0/actions/query notes:list",
    ]);

    // A syscall's ConvexError reaches user code as a ConvexError with its data.
    const rejecting: NodeSyscallHandler = () =>
      Promise.reject(Object.assign(new Error("denied"), { data: JSON.stringify({ why: "nope" }) }));
    const rethrown = await runner.call(call("roundTrip.js", "addAndList", { text: "x" }), rejecting);
    assert(!rethrown.ok);
    assertStringIncludes(rethrown.errorMessage, "denied");
  } finally {
    await h.dispose();
  }
});

Deno.test("node runtime: output written straight to stderr joins the call's log lines within their limits", async () => {
  const h = await harness();
  try {
    const runner = await h.start();
    const flooded = await runner.call(call("probes.js", "floodsStderr", { lines: 2_000, longChars: 0 }), noSyscalls);
    assertEquals(value(flooded), "done");
    assertEquals(flooded.logLines.length, MAX_LOG_LINES + 1, "the limit, then one overflow line");
    assertEquals(flooded.logLines[0], "[LOG] stray 0");
    assertStringIncludes(flooded.logLines.at(-1)!, "Log overflow");

    const long = await runner.call(call("probes.js", "floodsStderr", { lines: 0, longChars: 1_000_000 }), noSyscalls);
    assertEquals(value(long), "done");
    assertEquals(long.logLines.length, 1);
    assert(long.logLines[0].length < MAX_LOG_LINE_CHARS + 200, `a line of ${long.logLines[0].length} characters`);
    assertStringIncludes(long.logLines[0], "truncated");
    // The runner still answers.
    assertEquals(value(await runner.call(call("probes.js", "echo", { still: "here" }), noSyscalls)), { still: "here" });
  } finally {
    await h.dispose();
  }
});

Deno.test("node runtime: the sandbox denies files, subprocesses and denied addresses", async () => {
  const h = await harness();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response("hi"));
  try {
    const url = `http://127.0.0.1:${server.addr.port}/`;
    const open = await h.start({ denyNet: [] });
    assertEquals(value(await open.call(call("probes.js", "fetchUrl", { url }), noSyscalls)), { ok: true, status: 200 });
    const secret = value(await open.call(call("probes.js", "readFile", { path: "/etc/hostname" }), noSyscalls));
    assertStringIncludes((secret as { error: string }).error, "Requires read access");
    assertEquals(value(await open.call(call("probes.js", "spawn"), noSyscalls)), [
      "Command failed: /bin/true",
      "NotCapable",
    ]);
    // The module folder is readable (it is the deployment's own code).
    const own = value(
      await open.call(call("probes.js", "readFile", { path: join(h.dir, "package.json") }), noSyscalls),
    );
    assertEquals((own as { ok: boolean }).ok, true);

    // npm: specifiers resolve only from the deployment's node_modules (no way into the server's npm cache).
    const npmImport = value(
      await open.call(call("probes.js", "importSpecifier", { specifier: "npm:postgres@3.4.9" }), noSyscalls),
    );
    assertStringIncludes(String(npmImport), "Could not find a matching package for 'npm:postgres@3.4.9'");
    assertEquals(
      value(await open.call(call("probes.js", "importSpecifier", { specifier: "npm:semver@7.8.6" }), noSyscalls)),
      "loaded",
    );

    // Denied addresses (an ActionNetPolicy's denyNet): Deno checks the resolved address, whatever the spelling.
    const denied = await h.start({ denyNet: ["127.0.0.1"] });
    for (const host of ["127.0.0.1", "localhost"]) {
      const target = `http://${host}:${server.addr.port}/`;
      const refused = value(await denied.call(call("probes.js", "fetchUrl", { url: target }), noSyscalls));
      assertStringIncludes((refused as { error: string }).error, "Requires net access", host);
    }
    // The action network policy of the isolate runtime (src/runtime/net_policy) also holds for node:net and
    // node:http, whatever the spelling of the address.
    const policy = await resolveActionNetPolicy({ allowHosts: [], database: null, serverPorts: [] });
    const guarded = await h.start({ denyNet: policy.denyNet });
    const port = server.addr.port;
    const viaNode = value(await guarded.call(call("probes.js", "nodeNet", { port }), noSyscalls));
    assertEquals(Object.keys(viaNode as object), ["net", "0.0.0.0", "[::ffff:127.0.0.1]", "localhost"]);
    for (const [how, outcome] of Object.entries(viaNode as Record<string, unknown>)) {
      assertMatch(String(outcome), /^Requires net access to "/, how);
    }
    const offline = await h.start({ denyNet: null });
    const noNet = value(await offline.call(call("probes.js", "fetchUrl", { url }), noSyscalls));
    assertStringIncludes((noNet as { error: string }).error, "Requires net access");
  } finally {
    await server.shutdown();
    await h.dispose();
  }
});

Deno.test("node runtime: a runaway loop or allocation kills only its runner", async () => {
  const h = await harness();
  try {
    const looping = await h.start();
    const hungry = await h.start({ maxHeapMb: 64 });
    const bystander = await h.start();
    const loop = assertRejects(
      () => looping.call(call("failures.js", "loopForever"), noSyscalls, 1500),
      NodeRunnerDiedError,
      "timed out",
    );
    const oom = assertRejects(
      () => hungry.call(call("failures.js", "allocateForever"), noSyscalls, 60_000),
      NodeRunnerDiedError,
      "exited",
    );
    // The bystander keeps answering while the others spin and grow.
    for (let i = 0; i < 5; i++) {
      assertEquals(value(await bystander.call(call("probes.js", "echo", { i }), noSyscalls)), { i });
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await loop;
    await oom;
    assert(looping.dead && hungry.dead && !bystander.dead);
    assertEquals(value(await bystander.call(call("probes.js", "echo", { done: true }), noSyscalls)), { done: true });
  } finally {
    await h.dispose();
  }
});

Deno.test("node runtime: cold start and warm call overhead next to a plain permission-less worker", async () => {
  const h = await harness();
  const worker = new Worker(
    `data:text/javascript,self.onmessage = (e) => self.postMessage(JSON.stringify(JSON.parse(e.data)));`,
    { type: "module", deno: { permissions: "none" } },
  );
  try {
    const coldStarted = performance.now();
    const runner = await h.start();
    const spawnMs = performance.now() - coldStarted;
    value(await runner.call(call("cryptoBuffer.js", "digest", { text: "x" }), noSyscalls));
    const coldMs = performance.now() - coldStarted;

    const warmCalls = 200;
    let started = performance.now();
    for (let i = 0; i < warmCalls; i++) value(await runner.call(call("probes.js", "echo", { i }), noSyscalls));
    const warmUs = (performance.now() - started) * 1000 / warmCalls;

    const roundTrip = (data: string) =>
      new Promise<unknown>((resolve) => {
        worker.onmessage = (event) => resolve(event.data);
        worker.postMessage(data);
      });
    await roundTrip("{}");
    started = performance.now();
    for (let i = 0; i < warmCalls; i++) await roundTrip(JSON.stringify([{ i }]));
    const workerUs = (performance.now() - started) * 1000 / warmCalls;
    console.log(
      `node runner: spawn+bootstrap ${spawnMs.toFixed(1)} ms, cold first call ${coldMs.toFixed(1)} ms, ` +
        `warm call ${warmUs.toFixed(0)} µs; plain worker round trip ${workerUs.toFixed(0)} µs`,
    );
  } finally {
    worker.terminate();
    await h.dispose();
  }
});

Deno.test("node runtime: push-time analysis lists actions and refuses queries in node modules", async () => {
  const h = await harness();
  try {
    const entries = SAMPLES.modules.map((module) => module.path).filter((path) => !path.startsWith("_deps/"));
    const analyses = await (await h.start()).analyze(entries, { OPENAI_API_KEY: "k" });
    const byPath = Object.fromEntries(analyses.map((analysis) => [analysis.path, analysis.functions]));
    assertEquals(Object.keys(byPath).sort(), ["cryptoBuffer.js", "failures.js", "roundTrip.js", "versions.js"]);
    assertEquals(byPath["versions.js"], [{
      name: "check",
      udfType: "Action",
      visibility: { kind: "public" },
      args: JSON.stringify({
        type: "object",
        value: {
          version: { fieldType: { type: "string" }, optional: false },
          range: { fieldType: { type: "string" }, optional: false },
        },
      }),
      returns: "null",
    }]);
    assertEquals(byPath["roundTrip.js"].map((fn) => fn.visibility), [{ kind: "internal" }]);

    await assertRejects(
      async () => (await h.start()).analyze(["lib/badNode.js"], {}),
      NodeAnalyzeError,
      "`hello` defined in `lib/badNode.js` is a Query function. Only actions can be defined in Node.js.",
    );
  } finally {
    await h.dispose();
  }
});
