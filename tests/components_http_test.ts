/**
 * Components (issue 11), the remaining fidelity gaps: HTTP routes of components mounted with
 * `app.use(component, { httpPrefix })` and routed as Convex routes them (exact route, then the longest prefix among
 * `http.js` prefix routes and mounts, the mount's prefix removed for the child); scheduling through a child reference
 * honours visibility like a call; `npx convex run` lists the available functions for a wrong name (the error says
 * "Could not find function" to admin callers); and the function logs put the lines of nested component calls under
 * those functions and their component paths. Units first, then an app with a local component through the official CLI.
 */
import { ConvexHttpClient } from "convex/browser";
import { anyApi } from "convex/server";
import { assert, assertEquals, assertMatch, assertRejects, waitFor } from "./helpers/assert.ts";
import { createConvexApp, DEPLOY_ARGS, runConvexCli, type ServerProcess, spawnServer } from "./helpers/convex_app.ts";
import { routeHttpRequest } from "../src/http/http_routing.ts";
import { functionLogEntries } from "../src/deploy/mod.ts";
import { httpMountsOf } from "../src/deploy/http_mounts.ts";
import type { ActiveDeployment, ComponentDeployment, LoggedExecution } from "../src/functions/mod.ts";
import type { ComponentInstance, DefinitionMetadata } from "../src/components/mod.ts";

function instance(
  path: string,
  routes: [string, string][] | null,
  children: [string, string][] = [],
  mounts: [string, string][] = [],
): ComponentDeployment {
  const httpRoutes = routes?.map(([method, routePath]) => ({ method, path: routePath }));
  return {
    path,
    modulesDir: "/x",
    analysis: { modules: httpRoutes === undefined ? [] : [{ path: "http.js", functions: [], httpRoutes }] },
    functions: new Map(),
    env: {},
    children: new Map(children),
    httpMounts: new Map(mounts),
  } as unknown as ComponentDeployment;
}

function deploymentOf(...instances: ComponentDeployment[]): ActiveDeployment {
  const app = instances[0];
  return {
    dir: "/x",
    nodeDir: null,
    analysis: app.analysis,
    functions: app.functions,
    components: new Map(instances.map((one) => [one.path, one])),
  };
}

Deno.test("http routing: exact routes, then the longest prefix among http.js prefixes and mounts, mounts recurse", () => {
  const deployment = deploymentOf(
    instance("", [["GET", "/hello"], ["GET", "/wh/special/*"], ["POST", "/wh/*"]], [["hooks", "hooks"]], [[
      "/wh/",
      "hooks",
    ]]),
    instance("hooks", [["GET", "/ping"], ["GET", "/files/*"]], [["inner", "hooks/inner"]], [["/deep/", "inner"]]),
    instance("hooks/inner", [["GET", "/x"]]),
  );
  const route = (path: string, method = "GET") => {
    const found = routeHttpRequest(deployment, path, method);
    return found === null ? null : [found.component.path, found.routedPath];
  };
  assertEquals(route("/hello"), ["", "/hello"]);
  assertEquals(route("/wh/ping"), ["hooks", "/ping"]);
  assertEquals(route("/wh/files/a/b"), ["hooks", "/files/a/b"]);
  assertEquals(route("/wh/deep/x"), ["hooks/inner", "/x"]);
  assertEquals(route("/wh/special/a"), ["", "/wh/special/a"], "a longer http.js prefix beats the mount");
  assertEquals(route("/wh/ping", "POST"), ["hooks", "/ping"], "an equal http.js prefix loses to the mount");
  assertEquals(route("/nothing"), ["", "/nothing"], "unmatched: the app's router answers (its 404)");
  assertEquals(route("/wh/deep/nothing"), ["hooks/inner", "/nothing"]);
  const noRouter = deploymentOf(instance("", null, [["hooks", "hooks"]], [["/wh/", "hooks"]]), instance("hooks", null));
  assertEquals(routeHttpRequest(noRouter, "/wh/x", "GET"), null, "a mounted child without http.js serves nothing");
  assertEquals(routeHttpRequest(noRouter, "/x", "GET"), null);
});

Deno.test("http mounts: a definition's mounts become prefix → child name pairs", () => {
  const root: ComponentInstance = {
    path: "",
    name: "",
    definitionPath: "",
    env: [],
    children: new Map([["hooks", { path: "hooks", name: "hooks", definitionPath: "h", env: [], children: new Map() }]]),
  };
  const definitions = new Map<string, DefinitionMetadata>([["", {
    path: "",
    definitionType: { type: "app" },
    childComponents: [],
    httpMounts: { "/wh/": "_reference/childComponent/hooks", "/gone/": "_reference/childComponent/missing" },
    exports: { type: "branch", branch: [] },
  }]]);
  assertEquals(httpMountsOf(root, definitions), [["/wh/", "hooks"]]);
});

Deno.test("function logs: lines of nested component calls go under those functions and component paths", () => {
  const entry = {
    cursor: 1,
    udfType: "query",
    displayName: "main:count",
    modulePath: "main.js",
    exportName: "count",
    ok: true,
    logLines: ["[LOG] 'app before'", "[LOG] 'in hooks'", "[INFO] 'in inner'", "[LOG] 'app after'"],
    logSources: [
      { fromLine: 1, componentPath: "hooks", udfPath: "lib.js:count" },
      { fromLine: 2, componentPath: "hooks/inner", udfPath: "lib.js:x" },
      { fromLine: 3, componentPath: "", udfPath: "main.js:count" },
    ],
    startedAtMs: 1_000,
    executionTimeMs: 5,
    requestId: "r1",
  } as LoggedExecution;
  const entries = functionLogEntries(entry);
  const summary = entries.map((one) => [
    one.kind,
    one.identifier,
    one.componentPath,
    (one.logLines as { messages: string[] }[]).map((line) => line.messages[0]),
  ]);
  assertEquals(summary, [
    ["Progress", "main.js:count", null, ["'app before'"]],
    ["Progress", "lib.js:count", "hooks", ["'in hooks'"]],
    ["Progress", "lib.js:x", "hooks/inner", ["'in inner'"]],
    ["Completion", "main.js:count", null, ["'app after'"]],
  ]);
  const plain = functionLogEntries({ ...entry, logSources: undefined });
  assertEquals(plain.length, 1);
  assertEquals((plain[0].logLines as unknown[]).length, 4);
});

// ---- end to end ----

const APP: Record<string, string> = {
  "convex.config.ts": `
import { defineApp } from "convex/server";
import hooks from "./hooks/convex.config";
const app = defineApp();
app.use(hooks, { httpPrefix: "/hooks", env: { GREETING: "hello hooks" } });
export default app;
`,
  "http.ts": `
import { httpRouter } from "convex/server";
import { httpAction } from "./_generated/server";
const http = httpRouter();
http.route({ path: "/hello", method: "GET", handler: httpAction(async () => new Response("app says hello")) });
export default http;
`,
  "main.ts": `
import { query, mutation, action } from "./_generated/server";
import { components } from "./_generated/api";

export const count = query({
  args: {},
  handler: async (ctx) => {
    console.log("app before");
    const n = await ctx.runQuery(components.hooks.lib.count, {});
    console.log("app after");
    return n;
  },
});
export const hookEntries = query({
  args: {},
  handler: async (ctx) => await ctx.runQuery(components.hooks.lib.entries, {}),
});
export const scheduleSecret = mutation({
  args: {},
  handler: async (ctx) => await ctx.scheduler.runAfter(0, (components.hooks.lib as any).secret, {}),
});
export const schedulePublic = mutation({
  args: {},
  handler: async (ctx) => await ctx.scheduler.runAfter(0, components.hooks.lib.record, { entry: "scheduled" }),
});
export const scheduleSecretFromAction = action({
  args: {},
  handler: async (ctx) => await ctx.scheduler.runAfter(0, (components.hooks.lib as any).secret, {}),
});
`,
  "hooks/convex.config.ts": `
import { defineComponent } from "convex/server";
import { v } from "convex/values";
export default defineComponent("hooks", { env: { GREETING: v.optional(v.string()) } });
`,
  "hooks/schema.ts": `
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
export default defineSchema({ events: defineTable({ entry: v.string() }) });
`,
  "hooks/lib.ts": `
import { query, mutation, internalMutation } from "./_generated/server";
import { v } from "convex/values";
export const count = query({
  args: {},
  handler: async (ctx) => {
    console.log("in hooks");
    return (await ctx.db.query("events").collect()).length;
  },
});
export const entries = query({
  args: {},
  handler: async (ctx) => (await ctx.db.query("events").collect()).map((row) => row.entry),
});
export const record = mutation({
  args: { entry: v.string() },
  handler: async (ctx, { entry }) => { await ctx.db.insert("events", { entry }); },
});
export const secret = internalMutation({
  args: {},
  handler: async (ctx) => { await ctx.db.insert("events", { entry: "secret ran" }); },
});
`,
  "hooks/http.ts": `
import { httpRouter } from "convex/server";
import { httpAction } from "./_generated/server";
import { api, internal } from "./_generated/api";
const http = httpRouter();
http.route({
  path: "/ping",
  method: "GET",
  handler: httpAction(async (ctx, request) => {
    const metadata = JSON.parse(await (globalThis as any).Convex.asyncSyscall("1.0/getFunctionMetadata", "{}"));
    return Response.json({
      url: new URL(request.url).pathname,
      componentPath: metadata.componentPath,
      greeting: process.env.GREETING ?? null,
      events: await ctx.runQuery(api.lib.count, {}),
    });
  }),
});
http.route({
  pathPrefix: "/events/",
  method: "POST",
  handler: httpAction(async (ctx, request) => {
    const entry = new URL(request.url).pathname.split("/").pop()!;
    await ctx.runMutation(api.lib.record, { entry });
    await ctx.scheduler.runAfter(0, internal.lib.secret, {});
    return new Response(null, { status: 204 });
  }),
});
export default http;
`,
};

const api = anyApi;

Deno.test({
  name: "components end to end: mounted HTTP routes, scheduling visibility, convex run's list, component log lines",
  async fn(t) {
    const server: ServerProcess = await spawnServer();
    const app = await createConvexApp(APP);
    const client = new ConvexHttpClient(server.url);
    const componentEntries = () => client.query(api.main.hookEntries, {});
    try {
      const deployed = await runConvexCli(app, DEPLOY_ARGS, server);
      assertEquals(deployed.code, 0, `deploy failed:\n${deployed.stdout}\n${deployed.stderr}`);

      await t.step("the app's own routes still answer", async () => {
        const response = await fetch(`${server.siteUrl}/hello`);
        assertEquals([response.status, await response.text()], [200, "app says hello"]);
      });

      await t.step("a request under the mount runs the component's router in its namespace with its env", async () => {
        const response = await fetch(`${server.siteUrl}/hooks/ping`);
        assertEquals(response.status, 200);
        assertEquals(await response.json(), {
          url: "/hooks/ping",
          componentPath: "hooks",
          greeting: "hello hooks",
          events: 0,
        });
        const posted = await fetch(`${server.siteUrl}/hooks/events/first`, { method: "POST" });
        assertEquals(posted.status, 204);
        await posted.body?.cancel();
        // The component's table got the row; its scheduler ran its internal function.
        await waitFor("the component's scheduled job", () => client.query(api.main.count, {}), (n) => n === 2);
        const viaApiOrigin = await fetch(`${server.url}/http/hooks/ping`);
        assertEquals((await viaApiOrigin.json()).events, 2);
      });

      await t.step("paths under the mount that its router does not know get its 404", async () => {
        const response = await fetch(`${server.siteUrl}/hooks/nothing`);
        assertEquals(response.status, 404);
        assertMatch((await response.json()).message, /No HttpAction routed for \/nothing/);
        const outside = await fetch(`${server.siteUrl}/elsewhere`);
        assertEquals(outside.status, 404);
        await outside.body?.cancel();
      });

      await t.step("scheduling an internal component function through a reference fails like calling it", async () => {
        const error = await assertRejects(() => client.mutation(api.main.scheduleSecret, {}));
        assertMatch(String(error), /Could not find public function for 'hooks\/lib:secret'/);
        const fromAction = await assertRejects(() => client.action(api.main.scheduleSecretFromAction, {}));
        assertMatch(String(fromAction), /Could not find public function for 'hooks\/lib:secret'/);
        await client.mutation(api.main.schedulePublic, {});
        const entries = await waitFor(
          "the scheduled public function",
          componentEntries,
          (rows) => (rows as string[]).includes("scheduled"),
        );
        assertEquals((entries as string[]).filter((entry) => entry === "secret ran").length, 1);
      });

      await t.step("npx convex run with a wrong name lists the available functions", async () => {
        const wrong = await runConvexCli(app, ["run", "main:nope"], server);
        assert(wrong.code !== 0);
        const output = wrong.stdout + wrong.stderr;
        assertMatch(output, /Could not find function for 'main:nope'/);
        assertMatch(output, /Available functions:[\s\S]*main:count/);
        const inComponent = await runConvexCli(app, ["run", "--component", "hooks", "lib:nope"], server);
        const componentOutput = inComponent.stdout + inComponent.stderr;
        assertMatch(componentOutput, /Available functions:[\s\S]*lib:entries/);
        await assertRejects(() => client.query("main:nope" as never, {}), Error, "Could not find public function");
      });

      await t.step("function logs put a nested component call's lines under its component", async () => {
        assertEquals(await client.query(api.main.count, {}), 3);
        const response = await fetch(`${server.url}/api/stream_function_logs?cursor=0`, {
          headers: { Authorization: `Convex ${server.adminKey}` },
        });
        const { entries } = await response.json() as { entries: Record<string, unknown>[] };
        const lines = (entry: Record<string, unknown>) =>
          (entry.logLines as { messages: string[] }[]).map((line) => line.messages.join(" "));
        const nested = entries.filter((entry) => entry.componentPath === "hooks" && entry.kind === "Progress");
        assert(nested.some((entry) => entry.identifier === "lib.js:count" && lines(entry).includes("'in hooks'")));
        const completions = entries.filter((entry) =>
          entry.kind === "Completion" && entry.identifier === "main.js:count"
        );
        assert(completions.some((entry) => lines(entry).includes("'app after'")));
        assert(completions.every((entry) => !lines(entry).includes("'in hooks'")));
        const httpEntry = entries.find((entry) => entry.componentPath === "hooks" && entry.kind === "Completion");
        assert(httpEntry !== undefined, "the mounted HTTP action is logged under its component");
      });
    } finally {
      await app.dispose();
      await server.close();
    }
  },
});
