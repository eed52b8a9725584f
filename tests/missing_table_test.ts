/**
 * A query over a table that does not exist yet reads as empty, and stays current: the table's creation by a later
 * insert re-runs the cached HTTP result and pushes the change to a live `ConvexClient` subscription.
 */
import { ConvexClient, ConvexHttpClient } from "convex/browser";
import { anyApi } from "convex/server";
import { assertEquals } from "./helpers/assert.ts";
import { startTestServer, SYNC_APP_FILES } from "./helpers/sync_app.ts";
import { stopBundler } from "./helpers/runtime_app.ts";

const FILES = {
  ...SYNC_APP_FILES,
  "ghosts.ts": `
    import { query, mutation } from "./_generated/server";
    export const count = query({ args: {}, handler: async (ctx) => (await ctx.db.query("ghosts").collect()).length });
    export const first = query({ args: {}, handler: async (ctx) => (await ctx.db.query("ghosts").first())?.name ?? null });
    export const add = mutation({ args: {}, handler: async (ctx) => await ctx.db.insert("ghosts", { name: "boo" }) });
  `,
};

Deno.test({
  name: "missing table: queries over a table created later update over HTTP and WebSocket",
  async fn() {
    const server = await startTestServer({ files: FILES });
    const live = new ConvexClient(server.url);
    try {
      const http = new ConvexHttpClient(server.url);
      assertEquals(await http.query(anyApi.ghosts.count, {}), 0);
      assertEquals(await http.query(anyApi.ghosts.first, {}), null);
      const seen: unknown[] = [];
      let resolveUpdated: () => void;
      const updated = new Promise<void>((resolve) => resolveUpdated = resolve);
      live.onUpdate(anyApi.ghosts.count, {}, (value) => {
        seen.push(value);
        if (value === 1) resolveUpdated();
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      await http.mutation(anyApi.ghosts.add, {});
      assertEquals(await http.query(anyApi.ghosts.count, {}), 1, "the cached HTTP result was invalidated");
      assertEquals(await http.query(anyApi.ghosts.first, {}), "boo");
      await Promise.race([
        updated,
        new Promise((_, reject) => setTimeout(() => reject(new Error(`no update: ${JSON.stringify(seen)}`)), 10_000)),
      ]);
      assertEquals(seen, [0, 1]);
    } finally {
      await live.close();
      await server.close();
      await stopBundler();
    }
  },
});
