/**
 * End to end: the official CLI (`npx convex deploy`, `dev --once`, `env`) against a denvex backend, good pushes and
 * bad ones, schema changes with index backfills and document validation.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "./helpers/assert.ts";
import type { JsonValue } from "../src/values/types.ts";
import { systemFunctions } from "../src/deploy/system_functions.ts";
import {
  type ConvexApp,
  createConvexApp,
  DEPLOY_ARGS,
  deployApp,
  runConvexCli,
  spawnServer,
  startTestDeployment,
  type TestDeployment,
} from "./helpers/convex_app.ts";

const SCHEMA = `
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
export default defineSchema({
  messages: defineTable({ body: v.string(), author: v.string() }).index("by_author", ["author"]),
  counters: defineTable({ n: v.number(), bucket: v.number() }),
});
`;

const APP: Record<string, string> = {
  "schema.ts": SCHEMA,
  "messages.ts": `
import { query, mutation, action, internalQuery } from "./_generated/server";
import { internal } from "./_generated/api";
import { v } from "convex/values";
export const list = query({ args: {}, handler: async (ctx) => await ctx.db.query("messages").collect() });
export const byAuthor = query({
  args: { author: v.string() },
  handler: async (ctx, { author }) =>
    await ctx.db.query("messages").withIndex("by_author", (q) => q.eq("author", author)).collect(),
});
export const send = mutation({
  args: { body: v.string(), author: v.string() },
  handler: async (ctx, args) => await ctx.db.insert("messages", args),
});
export const version = query({ args: {}, handler: async () => 1 });
export const secret = internalQuery({ args: {}, handler: async () => "internal" });
export const viaAction = action({ args: {}, handler: async (ctx): Promise<string> => await ctx.runQuery(internal.messages.secret, {}) });
`,
  "counters.ts": `
import { query, mutation } from "./_generated/server";
import { v } from "convex/values";
export const fill = mutation({
  args: { from: v.number(), count: v.number() },
  handler: async (ctx, { from, count }) => {
    for (let i = from; i < from + count; i++) await ctx.db.insert("counters", { n: i, bucket: i % 10 });
  },
});
export const inBucket = query({
  args: { bucket: v.number() },
  handler: async (ctx, { bucket }) =>
    (await ctx.db.query("counters").withIndex("by_bucket", (q) => q.eq("bucket", bucket)).collect()).length,
});
`,
  "http.ts": `
import { httpRouter } from "convex/server";
import { httpAction } from "./_generated/server";
const http = httpRouter();
http.route({ path: "/hello", method: "GET", handler: httpAction(async () => new Response("hello")) });
export default http;
`,
  "crons.ts": `
import { cronJobs } from "convex/server";
import { internal } from "./_generated/api";
const crons = cronJobs();
crons.interval("tick", { hours: 1 }, internal.tasks.tick, {});
export default crons;
`,
  "tasks.ts": `
import { internalMutation } from "./_generated/server";
export const tick = internalMutation({ args: {}, handler: async () => null });
`,
};

/** The app as first written: a step below edits APP in place for the rest of its test. */
const PRISTINE_APP: Record<string, string> = { ...APP };

async function call(deployment: TestDeployment, path: string, args: Record<string, JsonValue> = {}, admin = false) {
  const result = await deployment.backend.executor.call({ path, args, identityJson: null, allowInternal: admin });
  if (!result.ok) throw new Error(`${path} failed: ${result.errorMessage}`);
  return JSON.parse(result.valueJson);
}

async function system(deployment: TestDeployment, name: string, args: Record<string, JsonValue> = {}) {
  const fn = systemFunctions(deployment.backend)(name);
  assert(fn, `system function ${name}`);
  const database = deployment.backend.database;
  return await fn(args, { database, snapshotTs: database.latestTs, identityJson: null });
}

/** Pushes `files` (on top of the good app), expects the CLI to fail naming `reason`, then restores the app. */
async function expectBadPush(
  app: ConvexApp,
  deployment: TestDeployment,
  files: Record<string, string>,
  reason: RegExp,
) {
  await app.write(files);
  const result = await runConvexCli(app, DEPLOY_ARGS, deployment);
  const output = result.stdout + result.stderr;
  assert(result.code !== 0, `the push should fail:\n${output}`);
  assertMatch(output, reason);
  for (const path of Object.keys(files)) {
    if (path in APP) await app.write({ [path]: APP[path] });
    else await app.remove(path);
  }
  // The previous deployment still serves, unchanged.
  assertEquals(await call(deployment, "messages:version"), 2);
}

Deno.test({
  name: "the official CLI deploys to denvex, and bad pushes leave the old code serving",
  async fn(t) {
    const deployment = await startTestDeployment();
    const app = await createConvexApp(APP);
    try {
      await t.step("deploy succeeds and functions answer", async () => {
        const result = await deployApp(app, deployment);
        assertStringIncludes(result.stdout + result.stderr, "messages.by_author");
        await call(deployment, "messages:send", { body: "hi", author: "ann" });
        await call(deployment, "messages:send", { body: "yo", author: "bob" });
        assertEquals((await call(deployment, "messages:byAuthor", { author: "ann" })).length, 1);
        assertEquals(await call(deployment, "messages:viaAction"), "internal");
        const denied = await deployment.backend.executor.call({
          path: "messages:secret",
          args: {},
          identityJson: null,
          allowInternal: false,
        });
        assert(!denied.ok, "internal functions are not public");
        const spec = await system(deployment, "_system/cli/modules:apiSpec") as Record<string, JsonValue>[];
        assert(spec.some((entry) => entry.identifier === "messages.js:send" && entry.functionType === "Mutation"));
        assert(spec.some((entry) => entry.functionType === "HttpAction" && entry.path === "/hello"));
        const crons = deployment.backend.deployments.active!.analysis.modules.find((m) => m.path === "crons.js");
        assertStringIncludes(crons!.cronsJson!, "tasks:tick");
      });

      await t.step("a changed app redeploys and the change is live", async () => {
        await app.write({
          "messages.ts": APP["messages.ts"].replace("handler: async () => 1", "handler: async () => 2"),
        });
        APP["messages.ts"] = APP["messages.ts"].replace("handler: async () => 1", "handler: async () => 2");
        const result = await deployApp(app, deployment, [...DEPLOY_ARGS, "--verbose"]);
        assertMatch(result.stdout + result.stderr, /unchangedModuleHashes|Uploading functions/);
        assertEquals(await call(deployment, "messages:version"), 2);
        assertEquals((await call(deployment, "messages:list")).length, 2);
        // The replaced module's source is forgotten: the store keeps the active deployment's modules only.
        const stored = await deployment.backend.database.persistence.listGlobals("module:");
        const active = deployment.backend.deployments.moduleRecords.map((m) => `module:${m.sha256}`);
        assertEquals([...stored].sort(), [...new Set(active)].sort());
      });

      await t.step("a module that throws at import time", async () => {
        await expectBadPush(app, deployment, {
          "broken.ts": `import { query } from "./_generated/server";\nexport const x = query(async () => 1);\n` +
            `throw new Error("boom at import");\n`,
        }, /boom at import/);
      });

      await t.step("a syntax error", async () => {
        await expectBadPush(app, deployment, { "broken.ts": `export const x = ;\n` }, /broken\.ts|Expected/);
      });

      await t.step("an index on a field the table does not have", async () => {
        await expectBadPush(app, deployment, {
          "schema.ts": SCHEMA.replace(`.index("by_author", ["author"])`, `.index("by_title", ["title"])`),
        }, /by_title[\s\S]*title/);
      });

      await t.step("an auth config reading an unset environment variable", async () => {
        await expectBadPush(app, deployment, {
          "auth.config.ts":
            `export default { providers: [{ domain: process.env.AUTH_ISSUER_URL, applicationID: "convex" }] };\n`,
        }, /AUTH_ISSUER_URL/);
      });

      await t.step("a module with a remote import", async () => {
        await expectBadPush(app, deployment, {
          "remote.ts": `import { query } from "./_generated/server";\n` +
            `export const x = query(async () => (await import("https://example.com/x.js")).default);\n`,
        }, /example\.com|remote|import/i);
      });

      await t.step("data that violates the new schema", async () => {
        await expectBadPush(app, deployment, {
          "schema.ts": SCHEMA.replace("author: v.string() }", "author: v.string(), priority: v.number() }"),
        }, /priority/);
        // The table keeps accepting writes under the old schema.
        await call(deployment, "messages:send", { body: "still", author: "ann" });
      });

      await t.step("environment variables", async () => {
        let result = await runConvexCli(app, ["env", "set", "GREETING", "hello there"], deployment);
        assertEquals(result.code, 0, result.stderr);
        assertEquals(deployment.backend.deployments.environmentVariables.GREETING, "hello there");
        assertEquals(await system(deployment, "_system/cli/queryEnvironmentVariables:get", { name: "GREETING" }), {
          name: "GREETING",
          value: "hello there",
        });
        assertEquals(await system(deployment, "_system/cli/queryEnvironmentVariables"), [{
          name: "GREETING",
          value: "hello there",
        }]);
        result = await runConvexCli(app, ["env", "remove", "GREETING"], deployment);
        assertEquals(result.code, 0, result.stderr);
        assertEquals(deployment.backend.deployments.environmentVariables.GREETING, undefined);
      });

      await t.step("tables and table data", async () => {
        const tables = await system(deployment, "_system/cli/tables", {
          paginationOpts: { numItems: 100, cursor: null },
        });
        assert((tables as { page: { name: string }[] }).page.some((table) => table.name === "messages"));
        assertEquals(await system(deployment, "_system/cli/tableSize", { tableName: "messages" }), 3);
        const first = await system(deployment, "_system/cli/tableData", {
          table: "messages",
          order: "asc",
          paginationOpts: { numItems: 2, cursor: null },
        }) as { page: { body: string }[]; isDone: boolean; continueCursor: string };
        assertEquals(first.page.map((doc) => doc.body), ["hi", "yo"]);
        const rest = await system(deployment, "_system/cli/tableData", {
          table: "messages",
          order: "asc",
          paginationOpts: { numItems: 2, cursor: first.continueCursor },
        }) as { page: { body: string }[]; isDone: boolean };
        assertEquals(rest.page.map((doc) => doc.body), ["still"]);
        assert(rest.isDone);
      });

      await t.step("dev --once", async () => {
        await app.write({
          "extra.ts": `import { query } from "./_generated/server";\nexport const ping = query(async () => "pong");\n`,
        });
        const result = await runConvexCli(app, ["dev", "--once", "--typecheck=disable"], deployment);
        assertEquals(result.code, 0, result.stdout + result.stderr);
        assertEquals(await call(deployment, "extra:ping"), "pong");
      });

      await t.step("a new index on 10,000 documents is backfilled and serves", async () => {
        for (let from = 0; from < 10_000; from += 1_000) {
          await call(deployment, "counters:fill", { from, count: 1_000 });
        }
        await app.write({
          "schema.ts": SCHEMA.replace(
            "counters: defineTable({ n: v.number(), bucket: v.number() })",
            `counters: defineTable({ n: v.number(), bucket: v.number() }).index("by_bucket", ["bucket"])`,
          ),
        });
        const started = performance.now();
        const result = await deployApp(app, deployment);
        console.log(`deploy with a 10,000-document backfill: ${Math.round(performance.now() - started)} ms`);
        assertStringIncludes(result.stdout + result.stderr, "counters.by_bucket");
        assertEquals(await call(deployment, "counters:inBucket", { bucket: 3 }), 1_000);
        await call(deployment, "counters:fill", { from: 10_000, count: 10 });
        assertEquals(await call(deployment, "counters:inBucket", { bucket: 3 }), 1_001);
      });

      await t.step("admin endpoints refuse missing and wrong keys", async () => {
        const missing = await fetch(`${deployment.url}/api/get_config_hashes`, { method: "POST", body: "{}" });
        assertEquals(missing.status, 403);
        assertEquals((await missing.json()).code, "MissingAdminKey");
        const wrong = await fetch(`${deployment.url}/api/get_config_hashes`, {
          method: "POST",
          body: JSON.stringify({ adminKey: "denvex-test|nope" }),
        });
        assertEquals(wrong.status, 403);
        assertEquals((await wrong.json()).code, "BadAdminKey");
        const hashes = await fetch(`${deployment.url}/api/get_config_hashes`, {
          method: "POST",
          headers: { Authorization: `Convex ${deployment.adminKey}` },
          body: JSON.stringify({ version: "1.48.0" }),
        });
        const { moduleHashes } = await hashes.json() as { moduleHashes: { path: string; hash: string }[] };
        assert(moduleHashes.some((entry) => entry.path === "messages.js" && /^[0-9a-f]{64}$/.test(entry.hash)));
        assert(!moduleHashes.some((entry) => entry.path === "schema.js"), "schema.js is not a function module");
        const tooLarge = await fetch(`${deployment.url}/api/update_environment_variables`, {
          method: "POST",
          headers: { Authorization: `Convex ${deployment.adminKey}` },
          body: JSON.stringify({ changes: [], padding: "x".repeat(3 * 1024 * 1024) }),
        });
        assertEquals(tooLarge.status, 413);
        assertEquals((await tooLarge.json()).code, "PayloadTooLarge");
        const urls = await fetch(`${deployment.url}/api/v1/get_canonical_urls`, {
          headers: { Authorization: `Convex ${deployment.adminKey}` },
        });
        assertEquals((await urls.json()).convexCloudUrl, deployment.url);
      });
    } finally {
      await app.dispose();
      await deployment.close();
    }
  },
});

Deno.test({
  name: "the official CLI against the real server process: deploy, run, env, data, function-spec, logs, dev --once",
  async fn() {
    const server = await spawnServer();
    const app = await createConvexApp(PRISTINE_APP);
    const cli = async (args: readonly string[]) => {
      const result = await runConvexCli(app, args, server);
      assertEquals(result.code, 0, `convex ${args.join(" ")}:\n${result.stdout}\n${result.stderr}`);
      return result.stdout + result.stderr;
    };
    try {
      await cli(DEPLOY_ARGS);
      const query = await fetch(`${server.url}/api/query`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ path: "messages:version", args: {}, format: "json" }),
      });
      assertEquals(await query.json(), { status: "success", value: 1, logLines: [] });

      // run: a mutation, a query, an internal function (admin), and an action calling an internal query.
      assertMatch(
        await cli(["run", "messages:send", JSON.stringify({ body: "hi", author: "ann" })]),
        /"?[a-z0-9]{31,32}"?/,
      );
      assertStringIncludes(await cli(["run", "messages:byAuthor", JSON.stringify({ author: "ann" })]), "hi");
      assertStringIncludes(await cli(["run", "messages:secret"]), "internal");
      assertStringIncludes(await cli(["run", "messages:viaAction"]), "internal");

      // env: set, get, list, remove.
      await cli(["env", "set", "GREETING", "hello there"]);
      assertStringIncludes(await cli(["env", "get", "GREETING"]), "hello there");
      assertMatch(await cli(["env", "list"]), /GREETING=hello there/);
      await cli(["env", "remove", "GREETING"]);
      assert(!(await cli(["env", "list"])).includes("GREETING"), "the variable is gone");

      // data: the tables, then one table's documents.
      const tables = await cli(["data"]);
      assertStringIncludes(tables, "messages");
      assertStringIncludes(await cli(["data", "messages"]), "ann");

      // function-spec: the functions and the HTTP route.
      const spec = await cli(["function-spec"]);
      assertStringIncludes(spec, "messages.js:byAuthor");
      assertStringIncludes(spec, "/hello");

      // logs: the execution log stream shows a function run after it starts.
      const logs = new Deno.Command("node", {
        args: [`${app.dir}/node_modules/convex/bin/main.js`, "logs", "--success"],
        cwd: app.dir,
        env: { CONVEX_SELF_HOSTED_URL: server.url, CONVEX_SELF_HOSTED_ADMIN_KEY: server.adminKey },
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      await cli(["run", "messages:send", JSON.stringify({ body: "logged", author: "bob" })]);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      logs.kill("SIGTERM");
      const output = await logs.output();
      const logged = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
      assertMatch(logged, /messages(\.js)?:send.*Function executed in \d+ ms/);

      await cli(["dev", "--once", "--typecheck=disable"]);
    } finally {
      await app.dispose();
      await server.close();
    }
  },
});
