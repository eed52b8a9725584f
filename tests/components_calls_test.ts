/**
 * Calls across components (issue 11): address resolution (names, child references, function handles) relative to the
 * calling component, the syscall channel's component path, per-component env and scheduled targets as units; then an
 * app with two local components (app → counter → leaf) deployed with the official CLI and driven with the official
 * clients: calls in every direction, handles created in the app and called or scheduled by a component, a throwing
 * child mutation rolled back alone, internal component functions out of reach, and a live query over component data.
 */
import { ConvexClient, ConvexHttpClient } from "convex/browser";
import { anyApi } from "convex/server";
import { assert, assertEquals, assertMatch, assertRejects, assertThrows, waitFor } from "./helpers/assert.ts";
import { createConvexApp, DEPLOY_ARGS, runConvexCli, type ServerProcess, spawnServer } from "./helpers/convex_app.ts";
import {
  CallAddressError,
  canonicalUdfPath,
  childComponentPath,
  displayUdfPath,
  handleOf,
  resolveCallAddress,
} from "../src/runtime/mod.ts";
import { decodeRequest, encodeRequest } from "../src/runtime/sync_channel.ts";
import { scanSpecifiers } from "../src/runtime/specifiers.ts";
import { componentEnvironments } from "../src/functions/mod.ts";
import type { ActiveDeployment, ComponentDeployment } from "../src/functions/mod.ts";
import { CronRunner, scheduledTarget } from "../src/scheduler/mod.ts";
import { startAppPool } from "./helpers/app_pool.ts";
import type { FunctionExecutor } from "../src/functions/mod.ts";

Deno.test("call addresses: names stay in the caller's component, references reach children, handles anywhere", () => {
  assertEquals(resolveCallAddress("", { name: "messages:list" }), {
    componentPath: "",
    udfPath: "messages.js:list",
    publicOnly: false,
  });
  assertEquals(resolveCallAddress("counter", { name: "dir/lib" }), {
    componentPath: "counter",
    udfPath: "dir/lib.js:default",
    publicOnly: false,
  });
  assertEquals(resolveCallAddress("", { reference: "_reference/childComponent/counter/lib/add" }), {
    componentPath: "counter",
    udfPath: "lib.js:add",
    publicOnly: true,
  });
  assertEquals(resolveCallAddress("counter", { reference: "_reference/childComponent/leaf/dir/mod/ping" }), {
    componentPath: "counter/leaf",
    udfPath: "dir/mod.js:ping",
    publicOnly: true,
  });
  assertEquals(resolveCallAddress("counter/leaf", { functionHandle: "function://;main.js:record" }), {
    componentPath: "",
    udfPath: "main.js:record",
    publicOnly: false,
  });
  assertEquals(resolveCallAddress("", { functionHandle: "function://counter;lib.js:add" }).componentPath, "counter");
  // The root-only form of handles before components still reads as the app's.
  assertEquals(resolveCallAddress("counter", { functionHandle: "function://main.js:record" }).componentPath, "");
  assertThrows(() => resolveCallAddress("", { reference: "_reference/childComponent/counter" }), CallAddressError);
  assertThrows(() => resolveCallAddress("", { functionHandle: "https://x" }), CallAddressError);
  assertThrows(() => resolveCallAddress("", {}), CallAddressError);
});

Deno.test("call addresses: canonical paths, handles and display names", () => {
  assertEquals(canonicalUdfPath("messages"), "messages.js:default");
  assertEquals(canonicalUdfPath("a/b.js:c"), "a/b.js:c");
  assertEquals(childComponentPath("", "x"), "x");
  assertEquals(childComponentPath("x", "y"), "x/y");
  const handle = handleOf({ componentPath: "counter/leaf", udfPath: "lib.js:ping", publicOnly: true });
  assertEquals(handle, "function://counter/leaf;lib.js:ping");
  assertEquals(resolveCallAddress("", { functionHandle: handle }).udfPath, "lib.js:ping");
  assertEquals(displayUdfPath("", "messages.js:list"), "messages:list");
  assertEquals(displayUdfPath("counter", "lib.js:default"), "counter/lib");
});

Deno.test("sync channel requests carry the calling frame's component path", () => {
  assertEquals(decodeRequest(encodeRequest("1.0/get", '{"id":"x"}', "counter/leaf")), {
    op: "1.0/get",
    componentPath: "counter/leaf",
    argsJson: '{"id":"x"}',
  });
  assertEquals(decodeRequest(encodeRequest("1.0/get", "{\n}")), { op: "1.0/get", componentPath: "", argsJson: "{\n}" });
});

Deno.test("component env: a component sees what its parent bound plus the URLs; the app keeps the deployment's", () => {
  const component = (path: string, env: Record<string, string>) => ({ path, env }) as unknown as ComponentDeployment;
  const deployment = {
    components: new Map([["", component("", {})], ["pool", component("pool", { LOG_LEVEL: "REPORT" })]]),
  } as unknown as ActiveDeployment;
  const appEnv = { SECRET: "s", CONVEX_CLOUD_URL: "http://c", CONVEX_SITE_URL: "http://s" };
  const fromApp = componentEnvironments(deployment, "", appEnv);
  assertEquals(fromApp.env, appEnv);
  assertEquals(fromApp.others?.pool, {
    LOG_LEVEL: "REPORT",
    CONVEX_CLOUD_URL: "http://c",
    CONVEX_SITE_URL: "http://s",
  });
  const fromPool = componentEnvironments(deployment, "pool", appEnv);
  assertEquals(fromPool.env.SECRET, undefined);
  assertEquals(fromPool.others?.[""], appEnv, "a handle into the app runs with the app's env");
  const single = { components: new Map([["", component("", {})]]) } as unknown as ActiveDeployment;
  assertEquals(componentEnvironments(single, "", appEnv), { env: appEnv });
});

Deno.test("scheduled targets: a handle into another component records that component", () => {
  assertEquals(scheduledTarget("pool", { name: "lib:run" }), { name: "lib:run" });
  assertEquals(scheduledTarget("pool", { functionHandle: "function://;main.js:done" }), {
    name: "main.js:done",
    componentPath: "",
  });
  assertEquals(scheduledTarget("pool", { functionHandle: "function://pool;lib.js:run" }), { name: "lib.js:run" });
  assertEquals(scheduledTarget("", { reference: "_reference/childComponent/pool/lib/run" }), {
    name: "lib.js:run",
    componentPath: "pool",
  });
});

Deno.test("crons: every instance's static crons, named with their component's path", () => {
  const crons = new CronRunner({} as FunctionExecutor);
  const spec = JSON.stringify({
    tick: { name: "lib:tick", args: [{}], schedule: { type: "interval", seconds: 3600 } },
  });
  crons.updateComponents(new Map([["", spec], ["pool", spec], ["none", null]]));
  assertEquals(crons.identifiers.sort(), ["pool/tick", "tick"]);
  crons.update(null);
  assertEquals(crons.identifiers, []);
  crons.stop();
});

Deno.test("specifier scan: imports in JSDoc and line comments of packages are skipped, code never is", () => {
  const found = (source: string) => scanSpecifiers(source).map((s) => s.specifier);
  // @convex-dev/migrations documents its client like this; esbuild keeps the comment in the bundle.
  assertEquals(found('/**\n * import { Migrations } from "@convex-dev/migrations";\n */\nimport "./a.js";'), [
    "./a.js",
  ]);
  assertEquals(found('// import x from "pkg"\n'), []);
  assertEquals(found('//import "pkg"'), []);
  assertEquals(found('// import("npm:evil")'), []); // a real comment: the lexer knows it is one
  // A raw line separator inside a string cannot come from a bundler (they escape it): refused rather than guessed at.
  assertThrows(() => found('const s = "a\u2028b"; import "./a.js"'), Error, "cannot be parsed");
  // Code that only looks like a comment line is still scanned.
  const evil = [
    'const a = b\n * c; import "npm:evil"',
    '/*\n */ import "npm:evil"',
    'const s = `\n// `; import "npm:evil"',
    'const s = "a\\\n// "; import "npm:evil"',
    '// comment\u2028import "npm:evil"',
    '// comment\rimport "npm:evil"',
    ' * import x\nimport y from "npm:evil"',
  ];
  for (const source of evil) assertEquals(found(source), ["npm:evil"], JSON.stringify(source));
});

async function copyFolder(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    if (entry.name.startsWith("@")) continue;
    if (entry.isDirectory) await copyFolder(`${from}/${entry.name}`, `${to}/${entry.name}`);
    else await Deno.copyFile(`${from}/${entry.name}`, `${to}/${entry.name}`);
  }
}

Deno.test("runtime: a component's modules load from its folder, in its namespace, with its own env", async () => {
  const app = await startAppPool({
    pool: { createTable: (name, componentPath) => database().createTable(name, componentPath) },
  });
  const database = () => app.database;
  try {
    // The same modules again as the instance `x`, where the deployment layout puts an instance's modules.
    await copyFolder(app.deploymentDir, `${app.deploymentDir}/@components/x`);
    const analysis = await app.pool.analyze(app.deploymentDir, ["messages.js"], {}, "x");
    assert(analysis.modules[0].functions.some((fn) => fn.name === "send"));
    await app.database.mountComponent("x");
    const inX = { componentPath: "x", catalog: app.database.catalog };
    const sent = await app.execute("mutation", "messages.js", "send", { body: "in x" }, inX);
    assert(sent.ok, sent.errorMessage);
    await app.database.commit(sent.outcome!);
    const fresh = { snapshotTs: app.database.latestTs, catalog: app.database.catalog };
    const listed = await app.execute("query", "messages.js", "count", {}, { ...fresh, componentPath: "x" });
    assertEquals(JSON.parse(listed.resultJson!), 1);
    const inApp = await app.execute("query", "messages.js", "count", {}, fresh);
    assertEquals(JSON.parse(inApp.resultJson!), 0, "the app's messages table is another table");
    const env = await app.execute("query", "messages.js", "environment", {}, {
      ...fresh,
      componentPath: "x",
      env: { LEVEL: "x's own", CONVEX_CLOUD_URL: "http://cloud" },
    });
    assertEquals(JSON.parse(env.resultJson!).processEnv, { LEVEL: "x's own", CONVEX_CLOUD_URL: "http://cloud" });
  } finally {
    await app.close();
  }
});

// ---- end to end ----

const APP: Record<string, string> = {
  "convex.config.ts": `
import { defineApp } from "convex/server";
import counter from "./counter/convex.config";
const app = defineApp();
app.use(counter);
export default app;
`,
  "schema.ts": `
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
export default defineSchema({ log: defineTable({ entry: v.string() }) });
`,
  "main.ts": `
import { query, mutation, action, internalMutation } from "./_generated/server";
import { components, internal } from "./_generated/api";
import { createFunctionHandle } from "convex/server";
import { v } from "convex/values";

export const total = query({ args: {}, handler: async (ctx) => await ctx.runQuery(components.counter.lib.total, {}) });
export const add = mutation({
  args: { n: v.number() },
  handler: async (ctx, { n }) => {
    await ctx.db.insert("log", { entry: "add " + n });
    return await ctx.runMutation(components.counter.lib.add, { n });
  },
});
export const viaChild = query({ args: {}, handler: async (ctx) => await ctx.runQuery(components.counter.lib.viaLeaf, {}) });
export const secret = query({
  args: {},
  handler: async (ctx) => await ctx.runQuery((components.counter.lib as any).secret, {}),
});
export const tryFailing = mutation({
  args: {},
  handler: async (ctx) => {
    await ctx.db.insert("log", { entry: "before failing" });
    try {
      await ctx.runMutation(components.counter.lib.addThenThrow, { n: 100 });
      return "no error";
    } catch (error) {
      return (error as Error).message;
    }
  },
});
export const record = internalMutation({
  args: { entry: v.string() },
  handler: async (ctx, { entry }) => {
    await ctx.db.insert("log", { entry });
    return entry.length;
  },
});
export const handOver = mutation({
  args: {},
  handler: async (ctx) => {
    const handle = await createFunctionHandle(internal.main.record);
    const called = await ctx.runMutation(components.counter.lib.callHandle, { handle, entry: "called back" });
    await ctx.runMutation(components.counter.lib.scheduleHandle, { handle, entry: "scheduled back" });
    return { handle, called };
  },
});
export const scheduleIntoComponent = mutation({
  args: { n: v.number() },
  handler: async (ctx, { n }) => await ctx.scheduler.runAfter(0, components.counter.lib.add, { n }),
});
export const scheduleInsideComponent = action({
  args: { n: v.number() },
  handler: async (ctx, { n }) => {
    await ctx.runMutation(components.counter.lib.scheduleOwn, { n });
    await ctx.runAction(components.counter.lib.scheduleOwnFromAction, { n });
  },
});
export const ticks = query({ args: {}, handler: async (ctx) => await ctx.runQuery(components.counter.lib.ticks, {}) });
export const componentReachesParent = query({
  args: {},
  handler: async (ctx) => await ctx.runQuery(components.counter.lib.reachParent, {}),
});
export const entries = query({
  args: {},
  handler: async (ctx) => (await ctx.db.query("log").collect()).map((row) => row.entry),
});
export const fromAction = action({
  args: {},
  handler: async (ctx) => {
    await ctx.runMutation(components.counter.lib.add, { n: 5 });
    const total = await ctx.runQuery(components.counter.lib.total, {});
    const leaf = await ctx.runAction(components.counter.lib.leafAction, {});
    const handle = await createFunctionHandle(components.counter.lib.total);
    const viaHandle = await ctx.runQuery(handle, {});
    return { total, leaf, handle, viaHandle };
  },
});
`,
  "counter/convex.config.ts": `
import { defineComponent } from "convex/server";
import leaf from "../leaf/convex.config";
const counter = defineComponent("counter");
counter.use(leaf, { env: { GREETING: "hello from counter" } });
export default counter;
`,
  "counter/schema.ts": `
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
export default defineSchema({ counts: defineTable({ n: v.number() }), ticks: defineTable({}) });
`,
  "counter/lib.ts": `
import { query, mutation, action, internalQuery, internalMutation } from "./_generated/server";
import { components, internal } from "./_generated/api";
import { anyApi } from "convex/server";
import { v } from "convex/values";

export const add = mutation({
  args: { n: v.number() },
  returns: v.id("counts"),
  handler: async (ctx, { n }) => await ctx.db.insert("counts", { n }),
});
export const total = query({
  args: {},
  handler: async (ctx) => (await ctx.db.query("counts").collect()).reduce((sum, row) => sum + row.n, 0),
});
export const addThenThrow = mutation({
  args: { n: v.number() },
  handler: async (ctx, { n }) => {
    await ctx.db.insert("counts", { n });
    throw new Error("counter refused");
  },
});
export const secret = internalQuery({ args: {}, handler: async () => "internal" });
export const reachParent = query({
  args: {},
  handler: async (ctx) => {
    try {
      return await ctx.runQuery(anyApi.main.entries, {});
    } catch (error) {
      return "refused: " + (error as Error).message;
    }
  },
});
export const viaLeaf = query({
  args: {},
  handler: async (ctx) => ({
    leaf: await ctx.runQuery(components.leaf.lib.where, {}),
    counterGreeting: process.env.GREETING ?? null,
  }),
});
export const callHandle = mutation({
  args: { handle: v.string(), entry: v.string() },
  handler: async (ctx, { handle, entry }) => await ctx.runMutation(handle as any, { entry }),
});
export const scheduleHandle = mutation({
  args: { handle: v.string(), entry: v.string() },
  handler: async (ctx, { handle, entry }) => await ctx.scheduler.runAfter(0, handle as any, { entry }),
});
export const addInternal = internalMutation({
  args: { n: v.number() },
  handler: async (ctx, { n }) => await ctx.db.insert("counts", { n }),
});
export const scheduleOwn = mutation({
  args: { n: v.number() },
  handler: async (ctx, { n }) => await ctx.scheduler.runAfter(0, internal.lib.addInternal, { n }),
});
export const scheduleOwnFromAction = action({
  args: { n: v.number() },
  handler: async (ctx, { n }) => await ctx.scheduler.runAfter(0, internal.lib.addInternal, { n }),
});
export const tick = internalMutation({ args: {}, handler: async (ctx) => { await ctx.db.insert("ticks", {}); } });
export const ticks = query({ args: {}, handler: async (ctx) => (await ctx.db.query("ticks").collect()).length });
export const leafAction = action({
  args: {},
  handler: async (ctx) => await ctx.runQuery(components.leaf.lib.where, {}),
});
`,
  "counter/crons.ts": `
import { cronJobs } from "convex/server";
import { internal } from "./_generated/api";
const crons = cronJobs();
crons.interval("tick", { seconds: 1 }, internal.lib.tick);
export default crons;
`,
  "leaf/convex.config.ts": `
import { defineComponent } from "convex/server";
import { v } from "convex/values";
export default defineComponent("leaf", { env: { GREETING: v.optional(v.string()) } });
`,
  "leaf/lib.ts": `
import { query } from "./_generated/server";
export const where = query({
  args: {},
  handler: async () => {
    const metadata = await (globalThis as any).Convex.asyncSyscall("1.0/getFunctionMetadata", "{}");
    return { ...JSON.parse(metadata), greeting: process.env.GREETING ?? null };
  },
});
`,
};

const api = anyApi;

Deno.test({
  name: "components end to end: calls, handles, sub-transactions, visibility and reactivity across instances",
  async fn(t) {
    const server: ServerProcess = await spawnServer();
    const app = await createConvexApp(APP);
    const client = new ConvexHttpClient(server.url);
    try {
      const deployed = await runConvexCli(app, DEPLOY_ARGS, server);
      assertEquals(deployed.code, 0, `deploy failed:\n${deployed.stdout}\n${deployed.stderr}`);

      await t.step("app → component mutation and query, with validators of the component", async () => {
        const id = await client.mutation(api.main.add, { n: 2 });
        assert(typeof id === "string");
        assertEquals(await client.query(api.main.total, {}), 2);
        await assertRejects(() => client.mutation(api.main.add, { n: "x" as unknown as number }));
      });

      await t.step("component → child, which reports its own component path and sees its own env", async () => {
        assertEquals(await client.query(api.main.viaChild, {}), {
          leaf: { name: "lib:where", componentPath: "counter/leaf", greeting: "hello from counter" },
          counterGreeting: null,
        });
      });

      await t.step("an internal function of a component is out of the app's reach", async () => {
        const error = await assertRejects(() => client.query(api.main.secret, {}));
        assertMatch(String(error), /Could not find public function for 'counter\/lib:secret'/);
      });

      await t.step("a component cannot call its parent's functions by name", async () => {
        assertMatch(String(await client.query(api.main.componentReachesParent, {})), /^refused: .*main\.js/);
      });

      await t.step("a throwing child mutation rolls back alone; the caller catches it and commits", async () => {
        const before = await client.query(api.main.total, {});
        const message = await client.mutation(api.main.tryFailing, {});
        assertMatch(String(message), /counter refused/);
        assertEquals(await client.query(api.main.total, {}), before, "the child's insert was rolled back");
        assert((await client.query(api.main.entries, {}) as string[]).includes("before failing"));
      });

      await t.step("a handle created in the app is called and scheduled by the component, into the app", async () => {
        const { handle, called } = await client.mutation(api.main.handOver, {}) as { handle: string; called: number };
        assertEquals(handle, "function://;main.js:record");
        assertEquals(called, "called back".length);
        await waitFor(
          "the scheduled handle",
          () => client.query(api.main.entries, {}) as Promise<string[]>,
          (entries) => entries.includes("scheduled back"),
        );
        assert((await client.query(api.main.entries, {}) as string[]).includes("called back"));
      });

      await t.step("jobs scheduled into and inside a component run there", async () => {
        const total = () => client.query(api.main.total, {}) as Promise<number>;
        const before = await total();
        await client.mutation(api.main.scheduleIntoComponent, { n: 1000 });
        await waitFor("the job scheduled through a child reference", total, (value) => value === before + 1000);
        await client.action(api.main.scheduleInsideComponent, { n: 20 });
        await waitFor("the component's own jobs", total, (value) => value === before + 1040);
      });

      await t.step("a component's static cron runs in the component", async () => {
        await waitFor("two ticks", () => client.query(api.main.ticks, {}) as Promise<number>, (n) => n >= 2);
      });

      await t.step("an action reaches component queries, mutations and actions", async () => {
        const before = await client.query(api.main.total, {}) as number;
        const result = await client.action(api.main.fromAction, {});
        assertEquals(result, {
          total: before + 5,
          leaf: { name: "lib:where", componentPath: "counter/leaf", greeting: "hello from counter" },
          handle: "function://counter;lib.js:total",
          viaHandle: before + 5,
        });
      });

      await t.step("a live query over component data updates after a component write", async () => {
        const live = new ConvexClient(server.url);
        try {
          const seen: number[] = [];
          const start = await client.query(api.main.total, {}) as number;
          const unsubscribe = live.onUpdate(api.main.total, {}, (value: number) => void seen.push(value));
          await waitFor("the first result", () => Promise.resolve(seen), (values) => values.includes(start));
          await client.mutation(api.main.add, { n: 10 });
          await waitFor("the update", () => Promise.resolve(seen), (values) => values.includes(start + 10));
          unsubscribe();
        } finally {
          await live.close();
        }
      });
    } finally {
      await app.dispose();
      await server.close();
    }
  },
});
