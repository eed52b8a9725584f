/**
 * Vector search (`ctx.vectorSearch`) and staged indexes end to end: an app with `vectorIndex` and staged database,
 * search and vector indexes pushed with the official CLI, called through the official `ConvexHttpClient` from isolate
 * and "use node" actions; cosine scores against hand-computed values, `q.eq` / `q.or` filters, `limit`, bad queries,
 * backfill of existing documents by a later push, and Convex's "currently staged" failure until a push enables one.
 */
import { ConvexHttpClient } from "convex/browser";
import { anyApi } from "convex/server";
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { createConvexApp, DEPLOY_ARGS, runConvexCli, startTestDeployment } from "./helpers/convex_app.ts";
import { stopBundler } from "./helpers/runtime_app.ts";
import { parseSchema } from "../src/deploy/schema.ts";

const api = anyApi;

const schema = (staged: boolean) => `
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
export default defineSchema({
  items: defineTable({ name: v.string(), kind: v.string(), embedding: v.array(v.float64()) })
    .vectorIndex("by_embedding", { vectorField: "embedding", dimensions: 3, filterFields: ["kind"] })
    .vectorIndex("later", { vectorField: "embedding", dimensions: 3, filterFields: [], staged: ${staged} })
    .index("by_name", { fields: ["name"], staged: ${staged} })
    .searchIndex("search_name", { searchField: "name", filterFields: [], staged: ${staged} }),
});
`;

const ITEMS = `
import { action, mutation, query } from "./_generated/server";
import { v } from "convex/values";

export const add = mutation({
  args: { name: v.string(), kind: v.string(), embedding: v.array(v.float64()) },
  handler: async (ctx, args) => await ctx.db.insert("items", args),
});
export const names = query({
  args: { ids: v.array(v.id("items")) },
  handler: async (ctx, { ids }) => Promise.all(ids.map(async (id) => (await ctx.db.get(id))?.name ?? null)),
});
export const similar = action({
  args: {
    vector: v.array(v.float64()),
    index: v.optional(v.string()),
    kinds: v.optional(v.array(v.string())),
    kind: v.optional(v.string()),
    limit: v.optional(v.number()),
  },
  handler: async (ctx, { vector, index, kinds, kind, limit }) =>
    await ctx.vectorSearch("items", index ?? "by_embedding", {
      vector,
      ...(limit === undefined ? {} : { limit }),
      ...(kinds ? { filter: (q) => q.or(...kinds.map((k) => q.eq("kind", k))) } : {}),
      ...(kind !== undefined ? { filter: (q) => q.eq("kind", kind) } : {}),
    }),
});
export const byName = query({
  args: { nonce: v.optional(v.number()) },
  handler: async (ctx) => (await ctx.db.query("items").withIndex("by_name").collect()).map((item) => item.name),
});
export const searchName = query({
  args: { text: v.string(), nonce: v.optional(v.number()) },
  handler: async (ctx, { text }) =>
    (await ctx.db.query("items").withSearchIndex("search_name", (q) => q.search("name", text)).collect())
      .map((item) => item.name),
});
`;

const NODE_ITEMS = `"use node";
import { action } from "./_generated/server";
import { v } from "convex/values";
export const similarNode = action({
  args: { vector: v.array(v.float64()) },
  handler: async (ctx, { vector }) => await ctx.vectorSearch("items", "by_embedding", { vector, limit: 2 }),
});
`;

const ROWS: [string, string, number[]][] = [
  ["a", "x", [1, 0, 0]],
  ["b", "y", [1, 1, 0]],
  ["c", "x", [0, 1, 0]],
  ["d", "y", [-1, 0, 0]],
];

/** Cosine similarity, computed by hand for the expectations. */
function cosine(a: number[], b: number[]): number {
  const dot = a.reduce((sum, x, i) => sum + x * b[i], 0);
  return dot / Math.sqrt(a.reduce((s, x) => s + x * x, 0) * b.reduce((s, x) => s + x * x, 0));
}

Deno.test("vector search: schema vector indexes are parsed and checked (2 to 4,096 dimensions)", () => {
  const parse = (vectorIndexes: unknown, stagedVectorIndexes: unknown = []) =>
    parseSchema(JSON.stringify({
      tables: [{
        tableName: "items",
        indexes: [],
        searchIndexes: [],
        vectorIndexes,
        stagedVectorIndexes,
        documentType: {
          type: "object",
          value: {
            embedding: { fieldType: { type: "array", value: { type: "number" } }, optional: false },
            kind: { fieldType: { type: "string" }, optional: false },
          },
        },
      }],
      schemaValidation: true,
    }));
  const parsed = parse(
    [{ indexDescriptor: "e", vectorField: "embedding", dimensions: 768, filterFields: ["kind"] }],
    [{ indexDescriptor: "s", vectorField: "embedding", dimensions: 2, filterFields: [] }],
  );
  assertEquals(parsed.tables[0].vectorIndexes, [
    { name: "items.e", vectorField: "embedding", dimensions: 768, filterFields: ["kind"] },
    { name: "items.s", vectorField: "embedding", dimensions: 2, filterFields: [], staged: true },
  ]);
  for (const [dimensions, ok] of [[1, false], [2, true], [4096, true], [4097, false], [2.5, false]] as const) {
    const run = () => parse([{ indexDescriptor: "e", vectorField: "embedding", dimensions, filterFields: [] }]);
    if (ok) run();
    else assertEquals(tryMessage(run).includes("dimensions must be an integer between 2 and 4096"), true);
  }
  assert(tryMessage(() => parse([{ indexDescriptor: "e", vectorField: "nope", dimensions: 3 }])).includes('"nope"'));
  assert(
    tryMessage(() => parse([{ indexDescriptor: "e", vectorField: "embedding", dimensions: 3, filterFields: ["x"] }]))
      .includes('"x"'),
  );
});

function tryMessage(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    return (error as Error).message;
  }
  return "";
}

Deno.test({
  name: "vector search: ctx.vectorSearch from isolate and node actions through the official client; staged indexes",
  async fn() {
    const deployment = await startTestDeployment({ functionRoutes: true });
    const app = await createConvexApp({ "schema.ts": schema(true), "items.ts": ITEMS, "nodeItems.ts": NODE_ITEMS });
    try {
      const pushed = await runConvexCli(app, DEPLOY_ARGS, deployment);
      assertEquals(pushed.code, 0, pushed.stdout + pushed.stderr);
      const client = new ConvexHttpClient(deployment.url);
      for (const [name, kind, embedding] of ROWS) await client.mutation(api.items.add, { name, kind, embedding });
      const names = async (results: { _id: string; _score: number }[]) =>
        await client.query(api.items.names, { ids: results.map((result) => result._id) });

      const query = [1, 0.1, 0];
      const all = await client.action(api.items.similar, { vector: query });
      assertEquals(await names(all), ["a", "b", "c", "d"]);
      all.forEach((result: { _score: number }, i: number) => {
        const expected = cosine(query, ROWS.find((row) => row[0] === ["a", "b", "c", "d"][i])![2]);
        assert(Math.abs(result._score - expected) < 1e-6, `score ${result._score} vs ${expected}`);
      });
      assertEquals(Object.keys(all[0]).sort(), ["_id", "_score"]);
      assertEquals(await names(await client.action(api.items.similar, { vector: query, limit: 2 })), ["a", "b"]);
      assertEquals(await names(await client.action(api.items.similar, { vector: query, kind: "y" })), ["b", "d"]);
      assertEquals(
        await names(await client.action(api.items.similar, { vector: [0, 1, 0], kinds: ["x", "y"], limit: 3 })),
        ["c", "b", "a"],
      );
      assertEquals(await client.action(api.items.similar, { vector: query, kind: "none" }), []);
      assertEquals(await names(await client.action(api.nodeItems.similarNode, { vector: [0, 1, 0] })), ["c", "b"]);

      await assertRejects(() => client.action(api.items.similar, { vector: [1, 0] }), Error, "has 3");
      await assertRejects(() => client.action(api.items.similar, { vector: query, limit: 300 }), Error, "256");
      const staged = "is currently staged and not available to query until it is enabled";
      await assertRejects(() => client.action(api.items.similar, { vector: query, index: "later" }), Error, staged);
      await assertRejects(() => client.query(api.items.byName, {}), Error, `Index items.by_name ${staged}`);
      await assertRejects(() => client.query(api.items.searchName, { text: "a" }), Error, staged);

      // Enabling the staged indexes: they were backfilled with the documents already there.
      await app.write({ "schema.ts": schema(false) });
      const enabled = await runConvexCli(app, DEPLOY_ARGS, deployment);
      assertEquals(enabled.code, 0, enabled.stdout + enabled.stderr);
      // (New arguments: this harness does not wire the server's invalidate-all-queries-on-deploy.)
      assertEquals(await client.query(api.items.byName, { nonce: 1 }), ["a", "b", "c", "d"]);
      assertEquals(await client.query(api.items.searchName, { text: "c", nonce: 1 }), ["c"]);
      assertEquals(await names(await client.action(api.items.similar, { vector: query, index: "later" })), [
        "a",
        "b",
        "c",
        "d",
      ]);
    } finally {
      await app.dispose();
      await deployment.close();
    }
  },
});

Deno.test({ name: "vector search: stop the bundler", fn: () => stopBundler() });
