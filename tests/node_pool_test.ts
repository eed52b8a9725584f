/**
 * The node runner kind inside the runner pool (src/runtime/node/pool.ts through RunnerPool): calls routed by
 * `environment: "node"`, syscalls answered by the pool's `onCall` with the call's context, analysis of node modules,
 * and runaway calls (a busy loop past its time limit, unbounded allocation) failing alone while other node calls keep
 * being served, the syscalls the node set answers itself (identity, function metadata), a call handed an idle runner
 * that died just before (it runs on a new runner, never twice), and `--node-packages=off` refusing pushes that list
 * external packages (the official CLI against the real server). The modules are the CLI's bundles of
 * tests/fixtures/node_app (tests/node_samples).
 */
import { assert, assertEquals, assertRejects, assertStringIncludes, assertThrows } from "./helpers/assert.ts";
import { join } from "node:path";
import { prepareNodeDir } from "../src/deploy/node_packages.ts";
import { type CallContext, type ExecuteRequest, type ModuleConfig, RunnerPool } from "../src/runtime/mod.ts";
import type { NodeDependency } from "../src/runtime/mod.ts";
import { answerLocally } from "../src/runtime/node/local_syscalls.ts";
import { createConvexApp, DEPLOY_ARGS, runConvexCli, spawnServer } from "./helpers/convex_app.ts";
import { parseCommandLine, UsageError } from "../src/server/mod.ts";

const SAMPLES = JSON.parse(
  await Deno.readTextFile(new URL("./node_samples/push_modules.json", import.meta.url)),
) as { nodeDependencies: NodeDependency[]; modules: ModuleConfig[] };

const QUERY_IN_NODE: ModuleConfig = {
  path: "badNode.js",
  environment: "node",
  source: `export const hello = Object.assign(() => {}, { isQuery: true, isPublic: true });\n`,
};

interface Harness {
  pool: RunnerPool;
  nodeDir: string;
  calls: { op: string; context: CallContext }[];
  request(modulePath: string, exportName: string, args?: unknown): ExecuteRequest;
  dispose(): Promise<void>;
}

async function harness(actionTimeLimitMs = 60_000): Promise<Harness> {
  const dataDir = await Deno.makeTempDir({ prefix: "denvex-node-pool-" });
  const calls: { op: string; context: CallContext }[] = [];
  const pool = new RunnerPool({
    dataDir,
    location: { kind: "sqlite", path: join(dataDir, "db.sqlite3") },
    queryRunners: 1,
    minActionRunners: 0,
    actionTimeLimitMs,
    onCall: (op, _argsJson, context) => {
      calls.push({ op, context });
      if (op === "1.0/actions/query") return Promise.resolve(JSON.stringify(["a note"]));
      if (op === "1.0/actions/mutation") return Promise.resolve(JSON.stringify("id1"));
      return Promise.reject(new Error(`unexpected ${op}`));
    },
  });
  const { dir } = await prepareNodeDir(dataDir, [...SAMPLES.modules, QUERY_IN_NODE], SAMPLES.nodeDependencies, {
    // The checkout's cache already holds semver (deno.json pins it): no registry needed.
    denoDir: undefined,
    cachedOnly: true,
  });
  return {
    pool,
    nodeDir: dir,
    calls,
    request: (modulePath, exportName, args = {}) => ({
      udfType: "action",
      environment: "node",
      nodeDir: dir,
      modulePath,
      exportName,
      argsJson: JSON.stringify([args]),
      identityJson: null,
      env: { GREETING: "hi" },
      requestId: "r1",
      deploymentDir: dir,
    }),
    async dispose() {
      await pool.close();
      await Deno.remove(dataDir, { recursive: true });
    },
  };
}

Deno.test("node pool: node calls, syscalls through onCall, analysis", async () => {
  const h = await harness();
  try {
    const digest = await h.pool.execute(h.request("cryptoBuffer.js", "digest", { text: "hello" }));
    assert(digest.ok, digest.errorMessage);
    assertEquals(JSON.parse(digest.resultJson!).base64, "aGVsbG8=");

    const round = await h.pool.execute(h.request("roundTrip.js", "addAndList", { text: "x" }));
    assert(round.ok, round.errorMessage);
    assertEquals(JSON.parse(round.resultJson!), { id: "id1", before: ["a note"], after: ["a note"] });
    assertEquals(h.calls.map((call) => call.op), ["1.0/actions/query", "1.0/actions/mutation", "1.0/actions/query"]);
    assertEquals(h.calls[0].context.functionPath, "roundTrip.js:addAndList");
    assertEquals(h.calls[0].context.requestId, "r1");

    const analysis = await h.pool.analyzeNode(h.nodeDir, ["cryptoBuffer.js", "_deps/node/FNEXLUVL.js"], {});
    assertEquals(analysis.length, 1);
    assertEquals(analysis[0].environment, "node");
    assertEquals(analysis[0].functions.map((fn) => fn.name).sort(), ["digest", "env", "tempFiles"]);
    const refused = await assertRejects(() => h.pool.analyzeNode(h.nodeDir, ["badNode.js"], {}));
    assertStringIncludes(
      (refused as Error).message,
      "`hello` defined in `badNode.js` is a Query function. Only actions can be defined in Node.js.",
    );
  } finally {
    await h.dispose();
  }
});

Deno.test("node pool: a runaway loop or allocation fails alone", async () => {
  const h = await harness(1_500);
  try {
    const loop = h.pool.execute(h.request("failures.js", "loopForever"));
    const allocation = h.pool.execute(h.request("failures.js", "allocateForever"));
    // Served meanwhile, by another runner.
    const bystander = await h.pool.execute(h.request("cryptoBuffer.js", "digest", { text: "hello" }));
    assert(bystander.ok, bystander.errorMessage);
    const looped = await loop;
    assertEquals(looped.ok, false);
    assertStringIncludes(looped.errorMessage!, "timed out");
    const allocated = await allocation;
    assertEquals(allocated.ok, false);
    assert(/out of memory|timed out/.test(allocated.errorMessage!), allocated.errorMessage);
    const after = await h.pool.execute(h.request("cryptoBuffer.js", "digest", { text: "hello" }));
    assert(after.ok, after.errorMessage);
  } finally {
    await h.dispose();
  }
});

Deno.test("node pool: identity and function metadata are answered from the call's context, not by onCall", () => {
  const requestMetadata = { ip: "10.0.0.7", userAgent: "ua/1", scheduledFunctionId: null, authToken: "jwt" };
  const context: CallContext = {
    executionId: "e1",
    requestId: "r1",
    requestMetadata,
    deploymentName: "my-deployment",
    identityJson: '{"subject":"u1"}',
    functionPath: "dir/tools.js:run",
    componentPath: "widget",
  };
  assertEquals(JSON.parse(answerLocally("1.0/getRequestMetadata", context)!), { ...requestMetadata, requestId: "r1" });
  assertEquals(JSON.parse(answerLocally("1.0/getDeploymentMetadata", context)!), {
    name: "my-deployment",
    region: null,
    class: "s16",
  });
  assertEquals(answerLocally("1.0/getUserIdentity", context), '{"subject":"u1"}');
  assertEquals(answerLocally("1.0/getUserIdentity", { ...context, identityJson: null }), "null");
  assertEquals(JSON.parse(answerLocally("1.0/getFunctionMetadata", context)!), {
    name: "dir/tools:run",
    componentPath: "widget",
  });
  assertEquals(
    JSON.parse(answerLocally("1.0/getFunctionMetadata", { ...context, functionPath: "a.js:default" })!).name,
    "a",
  );
  // createFunctionHandle needs the deployment's functions: the server's onCall (serveActionCall) answers it.
  assertEquals(answerLocally("1.0/createFunctionHandle", context), null);
  assertEquals(answerLocally("1.0/actions/query", context), null);
});

Deno.test("node pool: a call handed an idle runner that died before the pool saw it runs on a new runner", async () => {
  const h = await harness();
  try {
    const first = await h.pool.execute(h.request("cryptoBuffer.js", "digest", { text: "a" }));
    assert(first.ok, first.errorMessage);
    const [idlePid] = h.pool.nodeRunnerPids();
    for (let round = 0; round < 3; round++) {
      const [pid] = h.pool.nodeRunnerPids();
      Deno.kill(pid, "SIGKILL");
      // Same tick: the pool has not processed the exit yet, so it hands out the dead runner.
      const next = await h.pool.execute(h.request("cryptoBuffer.js", "digest", { text: "hello" }));
      assert(next.ok, `round ${round}: ${next.errorMessage}`);
      assertEquals(JSON.parse(next.resultJson!).base64, "aGVsbG8=");
      assert(!h.pool.nodeRunnerPids().includes(pid), "the dead runner is gone");
    }
    assert(!h.pool.nodeRunnerPids().includes(idlePid));
    // A call that started and then lost its runner is not run again: it fails (here at its deadline).
    const slow = await harness(800);
    try {
      const looped = await slow.pool.execute(slow.request("failures.js", "loopForever"));
      assertEquals(looped.ok, false);
      assertStringIncludes(looped.errorMessage!, "timed out");
    } finally {
      await slow.dispose();
    }
  } finally {
    await h.dispose();
  }
});

Deno.test({
  name: "--node-packages=off: a push listing external packages is refused clearly; bundled packages still deploy",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    assertEquals(
      (parseCommandLine(["--node-packages", "off"], () => undefined) as { config: { nodePackages: string } }).config
        .nodePackages,
      "off",
    );
    assertThrows(() => parseCommandLine(["--node-packages", "never"], () => undefined), UsageError, "auto or off");
    const repo = new URL("../", import.meta.url).pathname;
    const app = await createConvexApp({
      "versions.ts": `"use node";
import semver from "semver";
import { action } from "./_generated/server";
export const valid = action({ args: {}, handler: async () => semver.valid("1.2.3") });
`,
    });
    await Deno.symlink(await Deno.realPath(join(repo, "node_modules", "semver")), join(app.dir, "node_modules/semver"));
    await Deno.writeTextFile(join(app.dir, "convex.json"), JSON.stringify({ node: { externalPackages: ["semver"] } }));
    // The CLI reports an external package's version from the app's package.json.
    const semverVersion = JSON.parse(await Deno.readTextFile(join(repo, "node_modules/semver/package.json"))).version;
    await Deno.writeTextFile(
      join(app.dir, "package.json"),
      JSON.stringify({ private: true, type: "module", dependencies: { convex: "1.48.0", semver: semverVersion } }),
    );
    const server = await spawnServer({ extraArgs: ["--node-packages=off"] });
    try {
      const refused = await runConvexCli(app, DEPLOY_ARGS, server);
      const output = refused.stdout + refused.stderr;
      assertEquals(refused.code, 1, output);
      assertStringIncludes(output, "--node-packages=off");
      assert(/semver@\d+\.\d+\.\d+/.test(output), output);
      assert(
        !(await Deno.stat(join(server.dataDir, "node")).then((s) => s.isDirectory, () => false)) ||
          ![...Deno.readDirSync(join(server.dataDir, "node"))].some((entry) => /^[0-9a-f]{32}$/.test(entry.name)),
        "nothing was installed",
      );
      // Without the list the CLI bundles semver into the module: that push is accepted and runs.
      await Deno.remove(join(app.dir, "convex.json"));
      const deployed = await runConvexCli(app, DEPLOY_ARGS, server);
      assertEquals(deployed.code, 0, deployed.stdout + deployed.stderr);
      const ran = await runConvexCli(app, ["run", "versions:valid"], server);
      assertStringIncludes(ran.stdout, "1.2.3");
    } finally {
      await server.close();
      await app.dispose();
    }
  },
});
