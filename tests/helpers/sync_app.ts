/**
 * Test helper for the HTTP API and sync suites: an in-process backend (SQLite in a temp dir, the real runner pool)
 * with a small Convex app bundled like the CLI does, served by `Deno.serve` on a random loopback port with the
 * function routes and the sync hub mounted the way the server mounts them.
 */
import { Hono } from "hono";
import { type Backend, openBackend } from "../../src/server/backend.ts";
import { openStorage } from "../../src/server/storage.ts";
import type { Database } from "../../src/database/mod.ts";
import { createApiApp } from "../../src/http/mod.ts";
import { functionRoutes } from "../../src/http/function_routes.ts";
import { SyncHub } from "../../src/sync/mod.ts";
import { APP_FILES, bundleApp, writeApp } from "./runtime_app.ts";
import { addIndex } from "./engine.ts";

export const ADMIN_KEY = "test-instance|" + "ab".repeat(32);

/** The app's `convex/` folder. */
export const SYNC_APP_FILES: Record<string, string> = {
  "_generated/server.ts": APP_FILES["_generated/server.ts"],
  "messages.ts": `
    import { query, mutation, action, internalQuery } from "./_generated/server";
    import { anyApi } from "convex/server";
    import { ConvexError, v } from "convex/values";

    export const list = query({
      args: { channel: v.string() },
      handler: async (ctx, { channel }) => {
        const rows = await ctx.db.query("messages").withIndex("by_channel", (q) => q.eq("channel", channel)).collect();
        return rows.map((row) => row.body);
      },
    });
    export const count = query({
      args: {},
      handler: async (ctx) => (await ctx.db.query("messages").collect()).length,
    });
    export const send = mutation({
      args: { channel: v.string(), body: v.string() },
      handler: async (ctx, { channel, body }) => {
        console.log("sending", body);
        return await ctx.db.insert("messages", { channel, body });
      },
    });
    export const hello = query({ args: { name: v.string() }, handler: async (_ctx, { name }) => "hello " + name });
    export const big = query({ args: { n: v.int64() }, handler: async (_ctx, { n }) => ({ n: n * 2n, f: 1.5 }) });
    export const fails = query({
      args: {},
      handler: async () => { throw new ConvexError({ code: "BAD", n: 3n }); },
    });
    export const failsMutation = mutation({
      args: {},
      handler: async () => { throw new ConvexError("nope"); },
    });
    export const secret = internalQuery({ args: {}, handler: async () => "secret" });
    export const whoami = query({
      args: {},
      handler: async (ctx) => await ctx.auth.getUserIdentity(),
    });
    export const shout = action({
      args: { text: v.string() },
      handler: async (ctx, { text }) => {
        const n = await ctx.runQuery(anyApi.messages.count, {});
        return text.toUpperCase() + " " + n;
      },
    });
    export default query({ args: {}, handler: async () => "default export" });
  `,
  "schema.ts": `
    import { defineSchema, defineTable } from "convex/server";
    import { v } from "convex/values";
    export default defineSchema({
      messages: defineTable({ channel: v.string(), body: v.string() }).index("by_channel", ["channel"]),
    });
  `,
};

/** A running test server. */
export interface TestServer {
  backend: Backend;
  hub: SyncHub;
  url: string;
  close(): Promise<void>;
}

let bundled: Promise<Awaited<ReturnType<typeof bundleApp>>> | null = null;

/** Bundles `files` once per process (esbuild is slow to start) and returns the modules. */
export function bundledModules(files: Record<string, string> = SYNC_APP_FILES) {
  if (files !== SYNC_APP_FILES) return bundleFiles(files);
  bundled ??= bundleFiles(files);
  return bundled;
}

async function bundleFiles(files: Record<string, string>) {
  const dir = await Deno.makeTempDir({ prefix: "denvex-app-" });
  try {
    return await bundleApp(await writeApp(dir, files));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Starts a backend with the test app deployed and serves it on a random port. */
export async function startTestServer(
  options: { files?: Record<string, string>; env?: Record<string, string> } = {},
): Promise<TestServer> {
  const dataDir = await Deno.makeTempDir({ prefix: "denvex-sync-" });
  const location = { kind: "sqlite" as const, path: `${dataDir}/denvex.sqlite3` };
  const database = await openStorage(location);
  const urls = { cloudUrl: "http://127.0.0.1:0", siteUrl: "http://127.0.0.1:0" };
  const backend = await openBackend({ database, location, dataDir, adminKey: ADMIN_KEY, instanceName: "test", urls });
  const modules = await bundledModules(options.files ?? SYNC_APP_FILES);
  const prepared = await backend.deployments.prepare(modules, options.env ?? {});
  await backend.deployments.activate(prepared);
  // No push protocol yet: create the schema's table and index the way a push would.
  await database.createTable("messages");
  await addIndex(database, "messages", "by_channel", ["channel"]);
  const hub = new SyncHub(backend);
  const app: Hono = createApiApp({ version: "test", instanceName: "test", adminKey: ADMIN_KEY });
  app.get("/api/:version/sync", (c) => hub.handle(c.req.raw));
  app.get("/api/sync", (c) => hub.handle(c.req.raw));
  app.route("/api", functionRoutes(backend));
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.fetch);
  const url = `http://127.0.0.1:${server.addr.port}`;
  return {
    backend,
    hub,
    url,
    async close() {
      await hub.close();
      await server.shutdown();
      await backend.close();
      await database.close();
      await Deno.remove(dataDir, { recursive: true });
    },
  };
}

/** Runs `fn` against a fresh test server and closes it afterwards. */
export async function withServer(fn: (server: TestServer) => Promise<void>): Promise<void> {
  const server = await startTestServer();
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

/** An in-process backend with the test app deployed and its `messages` table, without HTTP. */
export interface TestBackend {
  database: Database;
  backend: Backend;
}

/** Runs `fn` against a fresh in-process backend (SQLite in a temp dir), closing everything afterwards. */
export async function withTestBackend(fn: (test: TestBackend) => Promise<void>): Promise<void> {
  const dataDir = await Deno.makeTempDir({ prefix: "denvex-backend-" });
  const location = { kind: "sqlite" as const, path: `${dataDir}/denvex.sqlite3` };
  const urls = { cloudUrl: "http://127.0.0.1:1", siteUrl: "http://127.0.0.1:2" };
  const database = await openStorage(location);
  const backend = await openBackend({ database, location, dataDir, adminKey: ADMIN_KEY, instanceName: "t", urls });
  try {
    await backend.deployments.activate(await backend.deployments.prepare(await bundledModules(), {}));
    await database.createTable("messages");
    await addIndex(database, "messages", "by_channel", ["channel"]);
    await fn({ database, backend });
  } finally {
    await backend.close();
    await database.close();
    await Deno.remove(dataDir, { recursive: true });
  }
}

/** How many messages the app holds, read through `messages:count`. */
export async function messageCount(backend: Backend): Promise<number> {
  const result = await backend.executor.call({
    path: "messages:count",
    args: {},
    expectedType: "query",
    identityJson: null,
    allowInternal: false,
  });
  if (!result.ok) throw new Error(`messages:count failed: ${result.errorMessage}`);
  return JSON.parse(result.valueJson);
}
