/**
 * Test helper for the transaction suites (contention, retention reads, idempotency per identity): the sync test app
 * plus a `counters` module, served by an in-process backend on SQLite or PostgreSQL with the real runner pool, the
 * function routes and the sync hub mounted the way the server mounts them.
 */
import { Hono } from "hono";
import { type Backend, openBackend } from "../../src/server/backend.ts";
import { openStorage } from "../../src/server/storage.ts";
import { createApiApp } from "../../src/http/mod.ts";
import { functionRoutes } from "../../src/http/function_routes.ts";
import { SyncHub } from "../../src/sync/mod.ts";
import type { PersistenceLocation } from "../../src/persistence/types.ts";
import { addIndex } from "./engine.ts";
import { ADMIN_KEY, bundledModules, SYNC_APP_FILES } from "./sync_app.ts";
import { freshPostgres, freshSqlite } from "./databases.ts";

/** The sync app with a `counters` module: one document per counter, incremented by read-modify-write mutations. */
export const COUNTER_APP_FILES: Record<string, string> = {
  ...SYNC_APP_FILES,
  "counters.ts": `
    import { query, mutation } from "./_generated/server";
    import { v } from "convex/values";

    export const create = mutation({ args: {}, handler: async (ctx) => await ctx.db.insert("counters", { value: 0 }) });
    export const increment = mutation({
      args: { id: v.id("counters") },
      handler: async (ctx, { id }) => {
        const counter = await ctx.db.get(id);
        if (counter === null) throw new Error("no such counter");
        await ctx.db.patch(id, { value: counter.value + 1 });
        return counter.value + 1;
      },
    });
    // Reads, then computes for a while before writing: its window between snapshot and commit is wide.
    export const slowIncrement = mutation({
      args: { id: v.id("counters"), spins: v.number() },
      handler: async (ctx, { id, spins }) => {
        const counter = await ctx.db.get(id);
        if (counter === null) throw new Error("no such counter");
        let sum = 0;
        for (let i = 0; i < spins; i++) sum = (sum + i * 7) % 1_000_003;
        await ctx.db.patch(id, { value: counter.value + 1, sum });
        return counter.value + 1;
      },
    });
    export const remove = mutation({ args: { id: v.id("counters") }, handler: async (ctx, { id }) => ctx.db.delete(id) });
    export const get = query({
      args: { id: v.id("counters") },
      handler: async (ctx, { id }) => (await ctx.db.get(id))?.value ?? null,
    });
    export const all = query({ args: {}, handler: async (ctx) => (await ctx.db.query("counters").collect()).length });
  `,
};

/** A running counter-app server. */
export interface CounterServer {
  backend: Backend;
  url: string;
  close(): Promise<void>;
}

/** Which database a counter server uses. */
export type DatabaseKind = "sqlite" | "postgres";

/** Starts a backend with the counter app on a fresh database of `kind`, served on a random loopback port. */
export async function startCounterServer(kind: DatabaseKind = "sqlite"): Promise<CounterServer> {
  const fresh = kind === "sqlite" ? await freshSqlite() : await freshPostgres();
  const location: PersistenceLocation = fresh.kind === "sqlite"
    ? { kind: "sqlite", path: fresh.path }
    : { kind: "postgres", url: fresh.url };
  const dataDir = await Deno.makeTempDir({ prefix: "denvex-counter-" });
  const database = await openStorage(location);
  const urls = { cloudUrl: "http://127.0.0.1:0", siteUrl: "http://127.0.0.1:0" };
  const backend = await openBackend({ database, location, dataDir, adminKey: ADMIN_KEY, instanceName: "test", urls });
  await backend.deployments.activate(await backend.deployments.prepare(await counterModules(), {}));
  await database.createTable("messages");
  await addIndex(database, "messages", "by_channel", ["channel"]);
  await database.createTable("counters");
  const hub = new SyncHub(backend);
  const app: Hono = createApiApp({ version: "test", instanceName: "test", adminKey: ADMIN_KEY });
  app.get("/api/:version/sync", (c) => hub.handle(c.req.raw));
  app.route("/api", functionRoutes(backend));
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.fetch);
  return {
    backend,
    url: `http://127.0.0.1:${server.addr.port}`,
    async close() {
      await hub.close();
      await server.shutdown();
      await backend.close();
      await database.close();
      await fresh.cleanup();
      await Deno.remove(dataDir, { recursive: true });
    },
  };
}

let bundled: ReturnType<typeof bundledModules> | null = null;

/** The counter app bundled once per process. */
function counterModules(): ReturnType<typeof bundledModules> {
  bundled ??= bundledModules(COUNTER_APP_FILES);
  return bundled;
}

/** Runs `fn` against a fresh counter server of `kind` and closes it afterwards. */
export async function withCounterServer(
  kind: DatabaseKind,
  fn: (server: CounterServer) => Promise<void>,
): Promise<void> {
  const server = await startCounterServer(kind);
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}
