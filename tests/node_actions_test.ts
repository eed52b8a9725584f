/**
 * `"use node"` actions end to end (issue 12): tests/fixtures/node_app deployed with the official CLI to an in-process
 * backend, then driven with ConvexHttpClient: node:crypto and Buffer, a convex.json external (semver, CommonJS inside)
 * installed by the server, the openai SDK against a mock server, isolate → node → isolate calls, ConvexError data,
 * function handles, metadata and auth in node actions, console lines in the client's logs and in `npx convex logs`,
 * unbounded allocation failing alone, unchanged node modules on a re-push, and pushes refused while the old code
 * keeps serving: a query in a node file (Convex's message), a node file inside a component, a package that cannot
 * install; on the real server, node and isolate busy loops failing alone by `--action-timeout`.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConvexHttpClient } from "convex/browser";
import { anyApi } from "convex/server";
import { ConvexError } from "convex/values";
import { assert, assertEquals, assertMatch, assertStringIncludes, assertThrows } from "./helpers/assert.ts";
import { parseCommandLine, UsageError } from "../src/server/config.ts";
import {
  type ConvexApp,
  createConvexAppFromFixture,
  DEPLOY_ARGS,
  deployApp,
  runConvexCli,
  spawnServer,
  startTestDeployment,
  type TestDeployment,
} from "./helpers/convex_app.ts";

const REPO = fileURLToPath(new URL("../", import.meta.url));
/** The real server's `--action-timeout` in the last test (seconds). */
const ACTION_TIMEOUT_S = 3;
// deno-lint-ignore no-explicit-any
const api = anyApi as any;

/**
 * An in-process deployment with the function routes (the client calls the node actions through them) and 127.0.0.1
 * allowed to actions (the test's mock OpenAI server listens there; the network policy closes loopback otherwise).
 */
function startNodeDeployment(): Promise<TestDeployment> {
  return startTestDeployment({ actionNet: { allowHosts: ["127.0.0.1"] }, functionRoutes: true });
}

/** The fixture app with the npm packages its node files import linked from this checkout. */
async function nodeApp(): Promise<ConvexApp> {
  const app = await createConvexAppFromFixture("node_app");
  for (const name of ["openai", "semver"]) {
    await Deno.symlink(await Deno.realPath(join(REPO, "node_modules", name)), join(app.dir, "node_modules", name));
  }
  return app;
}

async function deploy(app: ConvexApp, deployment: { url: string; adminKey: string }): Promise<string> {
  const result = await deployApp(app, deployment);
  return result.stdout + result.stderr;
}

/** A mock of OpenAI's chat completions endpoint; answers with the prompt reversed. */
function mockOpenAi(): { url: string; close(): Promise<void> } {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    const body = await request.json() as { messages: { content: string }[] };
    const content = [...body.messages[0].content].reverse().join("");
    return Response.json({
      id: "chatcmpl-1",
      object: "chat.completion",
      created: 1,
      model: "gpt-test",
      choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
    });
  });
  return { url: `http://127.0.0.1:${server.addr.port}/v1`, close: () => server.shutdown() };
}

/**
 * Runs `npx convex logs --history` (the official CLI) against `deployment` until its output matches `expected` (or
 * 20 s pass), and returns the output. `--history` prints the executions before it connected too, so no start-up race.
 */
async function cliLogsUntil(
  app: ConvexApp,
  deployment: { url: string; adminKey: string },
  expected: RegExp,
): Promise<string> {
  const logs = new Deno.Command("node", {
    args: [join(app.dir, "node_modules/convex/bin/main.js"), "logs", "--history", "1000"],
    cwd: app.dir,
    env: { CONVEX_SELF_HOSTED_URL: deployment.url, CONVEX_SELF_HOSTED_ADMIN_KEY: deployment.adminKey, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "null",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  const reader = logs.stdout.getReader();
  const deadline = Date.now() + 20_000;
  try {
    while (!expected.test(text) && Date.now() < deadline) {
      const timeout = new Promise<null>((resolve) => setTimeout(() => resolve(null), deadline - Date.now()));
      const chunk = await Promise.race([reader.read(), timeout]);
      if (chunk === null || chunk.done) break;
      text += decoder.decode(chunk.value, { stream: true });
    }
  } finally {
    logs.kill("SIGTERM");
    reader.releaseLock();
    await logs.stdout.cancel().catch(() => {});
    await logs.status;
  }
  return text;
}

/** A ConvexHttpClient whose console output is collected in `lines`. */
function clientWithLogs(url: string): { client: ConvexHttpClient; lines: string[] } {
  const lines: string[] = [];
  const collect = (...args: unknown[]) => lines.push(args.map(String).join(" "));
  const logger = { logVerbose: () => {}, log: collect, warn: collect, error: collect };
  return { client: new ConvexHttpClient(url, { logger }), lines };
}

Deno.test("node actions: the fixture app deploys with the CLI and its node actions run with the same ctx", async () => {
  const deployment = await startNodeDeployment();
  const openai = mockOpenAi();
  const app = await nodeApp();
  try {
    await deployment.backend.deployments.updateEnvironment([
      { name: "OPENAI_BASE_URL", value: openai.url },
      { name: "OPENAI_API_KEY", value: "sk-test" },
    ]);
    await deploy(app, deployment);
    const { client, lines } = clientWithLogs(deployment.url);

    // node:crypto and Buffer.
    const digest = await client.action(api.cryptoBuffer.digest, { text: "hello" });
    assertEquals(digest.sha256, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
    assertEquals(digest.base64, "aGVsbG8=");
    assertEquals(digest.isBuffer, true);
    // process.env: the deployment's variables (and the system ones) only.
    const env = await client.action(api.cryptoBuffer.env, { name: "OPENAI_API_KEY" });
    assertEquals(env.value, "sk-test");
    assertEquals(env.keys, ["CONVEX_CLOUD_URL", "CONVEX_SITE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL", "TMPDIR"]);

    // The external package, installed by the server at push (CommonJS inside).
    assertEquals(await client.action(api.versions.check, { version: "1.2.3", range: "^1.0.0" }), {
      satisfies: true,
      coerced: "1.2.3",
      bumped: "1.3.0",
    });

    // The openai SDK, bundled by the CLI, against the mock server.
    assertEquals(await client.action(api.ai.complete, { prompt: "abc" }), "cba");

    // Isolate action → node action → isolate query and mutation.
    const round = await client.action(api.notes.viaNode, { text: "from the test" });
    assertEquals(round.before, []);
    assertEquals(round.after, ["from the test"]);
    assertEquals(await client.query(api.notes.count, {}), 1);

    // File storage and the scheduler from a node action.
    assertEquals(await client.action(api.extras.storeAndRead, { text: "stored by node" }), {
      text: "stored by node",
      type: "text/plain",
      hasUrl: true,
    });
    await client.action(api.extras.scheduleNote, { text: "later" });
    const deadline = Date.now() + 10_000;
    while ((await client.query(api.notes.count, {})) < 2 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assertEquals(await client.query(api.notes.count, {}), 2);

    // Function handles, function metadata and auth in a node action, answered as in isolate actions.
    const handled = await client.action(api.extras.handleAndMetadata, { text: "via handle" });
    assertEquals(handled.handle, "function://;notes.js:add");
    assertEquals(handled.metadata, {
      name: "extras:handleAndMetadata",
      componentPath: "",
      type: "action",
      visibility: "public",
    });
    assertEquals(handled.identity, null);
    assertEquals(await client.query(api.notes.count, {}), 3);
    const noHandle = await client.action(api.extras.handleOfMissing, {}).catch((error: Error) => error);
    assert(noHandle instanceof Error, `expected an error, got ${noHandle}`);
    assertStringIncludes(noHandle.message, "Could not find function for 'notes:doesNotExist'");

    // ConvexError data reaches the client; a plain error is an error.
    let caught: unknown = null;
    try {
      await client.action(api.failures.throwsConvexError, { code: "E42" });
    } catch (error) {
      caught = error;
    }
    assert(caught instanceof ConvexError, `expected a ConvexError, got ${caught}`);
    assertEquals((caught as ConvexError<{ code: string; detail: string }>).data, { code: "E42", detail: "626164" });
    let plain: unknown = null;
    try {
      await client.action(api.failures.throwsPlainError, {});
    } catch (error) {
      plain = error;
    }
    assertStringIncludes(String((plain as Error).message), "plain failure from node");
    // The stack (in the execution log) points into the developer's source (source maps), not the server's folders.
    const failed = await deployment.backend.executor.call({
      path: "failures:throwsPlainError",
      args: {},
      identityJson: null,
      allowInternal: false,
    });
    assert(!failed.ok);
    assertStringIncludes(failed.errorMessage!, "convex/failures.ts:");
    assert(!failed.errorMessage!.includes("file://"), failed.errorMessage);

    // console lines come back to the client, and reach `npx convex logs`.
    assertEquals(await client.action(api.failures.logs, { n: 2 }), 2);
    const logText = lines.join("\n");
    assertStringIncludes(logText, "'node log line' 0");
    assertStringIncludes(logText, "'node log line' 1");
    assertStringIncludes(logText, "node warning");
    assertStringIncludes(logText, "node error line");
    const streamed = await cliLogsUntil(app, deployment, /node error line/);
    assertMatch(streamed, /failures(\.js)?:logs.*'node log line' 1/);
    assertStringIncludes(streamed, "node warning");

    // Unbounded allocation kills only its runner (512 MiB heap); a node call in flight meanwhile succeeds.
    const hog = client.action(api.failures.allocateForever, {}).catch((error: Error) => error);
    const bystander = await client.action(api.cryptoBuffer.digest, { text: "hello" });
    assertEquals(bystander.base64, "aGVsbG8=");
    const hogFailure = await hog;
    assert(hogFailure instanceof Error, `expected an error, got ${JSON.stringify(hogFailure)}`);
    assertStringIncludes(hogFailure.message, "ran out of memory");
    assertEquals((await client.action(api.cryptoBuffer.digest, { text: "hello" })).base64, "aGVsbG8=");

    // A busy loop failing by its deadline: the last test, on a server started with a short --action-timeout.

    // A re-push sends the node modules as unchanged hashes: it must deploy again.
    await deploy(app, deployment);
    assertEquals((await client.action(api.cryptoBuffer.digest, { text: "hello" })).base64, "aGVsbG8=");
    const hashes = deployment.backend.deployments.moduleRecords.filter((record) => record.environment === "node");
    assert(hashes.some((record) => record.path === "cryptoBuffer.js"), "node modules are recorded");
  } finally {
    await app.dispose();
    await openai.close();
    await deployment.close();
  }
});

Deno.test("node actions: a query in a node file fails the push with Convex's message; the old code serves", async () => {
  const deployment = await startNodeDeployment();
  const app = await nodeApp();
  try {
    await deploy(app, deployment);
    await app.write({
      "badNode.ts": `"use node";
import { query } from "./_generated/server";
export const hello = query({ args: {}, handler: async () => "hi" });
`,
    });
    const refused = await runConvexCli(app, DEPLOY_ARGS, deployment);
    assert(refused.code !== 0, "the push must fail");
    assertMatch(
      refused.stdout + refused.stderr,
      /`hello` defined in `badNode\.js` is a Query function\. Only actions can be defined in Node\.js\./,
    );
    await app.remove("badNode.ts");

    // "use node" inside a component: Convex has none (its CLI refuses them before pushing; the server would refuse
    // them too, with InvalidModules); the old code keeps serving.
    await app.write({
      "convex.config.ts": `import { defineApp } from "convex/server";
import widget from "./widget/convex.config";
const app = defineApp();
app.use(widget);
export default app;
`,
      "widget/convex.config.ts": `import { defineComponent } from "convex/server";
export default defineComponent("widget");
`,
      "widget/tool.ts": `"use node";
import { action } from "./_generated/server";
export const hash = action({ args: {}, handler: async () => Buffer.from("x").toString("hex") });
`,
    });
    const inComponent = await runConvexCli(app, DEPLOY_ARGS, deployment);
    assert(inComponent.code !== 0, "the push must fail");
    assertStringIncludes(
      inComponent.stdout + inComponent.stderr,
      '"use node" directive is not supported in components',
    );
    await app.remove("convex.config.ts");
    await Deno.remove(join(app.dir, "convex", "widget"), { recursive: true });

    // An external package the registry does not have: the install fails the push, naming it.
    const missing = join(app.dir, "node_modules", "denvex-no-such-package-xyz");
    await Deno.mkdir(missing, { recursive: true });
    await Deno.writeTextFile(join(missing, "package.json"), '{"name":"denvex-no-such-package-xyz","version":"1.0.0"}');
    await Deno.writeTextFile(join(missing, "index.js"), "module.exports = 1;");
    const manifest = JSON.parse(await Deno.readTextFile(join(app.dir, "package.json")));
    manifest.dependencies["denvex-no-such-package-xyz"] = "1.0.0";
    await Deno.writeTextFile(join(app.dir, "package.json"), JSON.stringify(manifest));
    await Deno.writeTextFile(
      join(app.dir, "convex.json"),
      JSON.stringify({ node: { externalPackages: ["semver", "denvex-no-such-package-xyz"] } }),
    );
    await app.write({
      "missingPackage.ts": `"use node";
import one from "denvex-no-such-package-xyz";
import { action } from "./_generated/server";
export const get = action({ args: {}, handler: async () => one });
`,
    });
    const notInstalled = await runConvexCli(app, DEPLOY_ARGS, deployment);
    assert(notInstalled.code !== 0, `the push must fail:\n${notInstalled.stdout}\n${notInstalled.stderr}`);
    assertStringIncludes(notInstalled.stdout + notInstalled.stderr, "denvex-no-such-package-xyz@1.0.0");

    const client = new ConvexHttpClient(deployment.url);
    assertEquals((await client.action(api.cryptoBuffer.digest, { text: "hello" })).base64, "aGVsbG8=");
    assertEquals((await client.action(api.versions.check, { version: "1.2.3", range: "^1.0.0" })).satisfies, true);
  } finally {
    await app.dispose();
    await deployment.close();
  }
});

Deno.test("node actions: --action-timeout parses a duration (default Convex's 10 minutes); bad values are refused", () => {
  const timeoutOf = (...args: string[]) =>
    (parseCommandLine(args, () => undefined) as { config: { actionTimeoutMs: number } }).config.actionTimeoutMs;
  assertEquals(timeoutOf(), 600_000);
  assertEquals(timeoutOf("--action-timeout", "90s"), 90_000);
  assertEquals(timeoutOf("--action-timeout=1h30m"), 5_400_000);
  for (const bad of ["10", "5x", "-1s", "500ms", "2d", ""]) {
    assertThrows(() => parseCommandLine(["--action-timeout", bad], () => undefined), UsageError, "--action-timeout");
  }
});

Deno.test("node actions: the real server (scoped permissions) installs the external package and runs node actions", async () => {
  // A short action time limit: a looping action fails by its real deadline (Convex's error), alone.
  const server = await spawnServer({ extraArgs: [`--action-timeout=${ACTION_TIMEOUT_S}s`] });
  const app = await nodeApp();
  try {
    await deploy(app, server);
    const client = new ConvexHttpClient(server.url);
    assertEquals((await client.action(api.cryptoBuffer.digest, { text: "hello" })).base64, "aGVsbG8=");
    assertEquals((await client.action(api.versions.check, { version: "2.0.0", range: "^1.0.0" })).satisfies, false);
    const round = await client.action(api.notes.viaNode, { text: "n" });
    assertEquals(round.after, ["n"]);

    // A node action and an isolate action that loop forever: each fails by the deadline with Convex's error, while
    // other calls (node and isolate) are served meanwhile and afterwards.
    const startedAt = performance.now();
    const nodeLoop = client.action(api.failures.loopForever, {}).then(() => null, (error: Error) => error);
    const isolateLoop = client.action(api.plain.loopForever, {}).then(() => null, (error: Error) => error);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assertEquals((await client.action(api.cryptoBuffer.digest, { text: "meanwhile" })).isBuffer, true);
    assertEquals(await client.query(api.plain.hello, {}), "hello from the isolate");
    // Bounded here, so a limit that is not applied fails the test instead of hanging it for 10 minutes.
    let guard: ReturnType<typeof setTimeout> | undefined;
    const nodeFailure = await Promise.race([
      nodeLoop,
      new Promise<string>((resolve) => guard = setTimeout(() => resolve("still running after 60 s"), 60_000)),
    ]);
    clearTimeout(guard);
    const elapsedMs = performance.now() - startedAt;
    assert(nodeFailure instanceof Error, `the looping node action must fail, got ${nodeFailure}`);
    assertStringIncludes(nodeFailure.message, `Function execution timed out (maximum duration: ${ACTION_TIMEOUT_S}s)`);
    // Not before its limit (the deadline is the flag's, not the default 10 minutes: the test would time out).
    assert(elapsedMs >= ACTION_TIMEOUT_S * 1000 - 50, `failed after ${elapsedMs} ms`);
    const isolateFailure = await isolateLoop;
    assert(isolateFailure instanceof Error, "the looping isolate action must fail");
    assertStringIncludes(
      isolateFailure.message,
      `Function execution timed out (maximum duration: ${ACTION_TIMEOUT_S}s)`,
    );
    assertEquals((await client.action(api.cryptoBuffer.digest, { text: "hello" })).base64, "aGVsbG8=");
    assertEquals((await client.action(api.notes.viaNode, { text: "after" })).after, ["n", "after"]);

    // A restart on the same data serves the node actions again (the node folder is rebuilt from the stored modules
    // if it is gone).
    await server.kill();
    for await (const entry of Deno.readDir(join(server.dataDir, "node"))) {
      if (/^[0-9a-f]{32}$/.test(entry.name)) {
        await Deno.remove(join(server.dataDir, "node", entry.name), { recursive: true });
      }
    }
    const restarted = await spawnServer({ dataDir: server.dataDir, adminKey: server.adminKey });
    try {
      const again = new ConvexHttpClient(restarted.url);
      assertEquals((await again.action(api.versions.check, { version: "1.5.0", range: "^1.0.0" })).satisfies, true);
    } finally {
      await restarted.close();
    }
  } finally {
    await app.dispose();
    await server.close();
  }
});
