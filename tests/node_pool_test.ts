/**
 * The node runner kind inside the runner pool (src/runtime/node/pool.ts through RunnerPool): calls routed by
 * `environment: "node"`, syscalls answered by the pool's `onCall` with the call's context, analysis of node modules,
 * and runaway calls (a busy loop past its time limit, unbounded allocation) failing alone while other node calls keep
 * being served, and the syscalls the node set answers itself (identity, function metadata). The modules are the
 * CLI's bundles of tests/fixtures/node_app (tests/node_samples).
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./helpers/assert.ts";
import { join } from "node:path";
import { prepareNodeDir } from "../src/deploy/node_packages.ts";
import { type CallContext, type ExecuteRequest, type ModuleConfig, RunnerPool } from "../src/runtime/mod.ts";
import type { NodeDependency } from "../src/runtime/mod.ts";
import { answerLocally } from "../src/runtime/node/local_syscalls.ts";

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
  const context: CallContext = {
    executionId: "e1",
    requestId: "r1",
    identityJson: '{"subject":"u1"}',
    functionPath: "dir/tools.js:run",
    componentPath: "widget",
  };
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
