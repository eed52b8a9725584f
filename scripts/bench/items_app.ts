/**
 * The small Convex app the call-path benches share: an `items` table indexed by `k`, a query reading the ten items of
 * one key (`nonce` makes each call distinct, so none is answered from the cache), a query that does nothing (`noop`,
 * distinct the same way), an insert, and a seeding mutation
 * whose key scheme each bench chooses (`itemsApp`). Also: calling a function over HTTP, and deploying and seeding.
 */
import { type ConvexApp, deployApp } from "../../tests/helpers/convex_app.ts";

/** `schema.ts`: `items` with `by_k`. */
export const ITEMS_SCHEMA_TS = `
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
export default defineSchema({ items: defineTable({ k: v.string(), n: v.number() }).index("by_k", ["k"]) });
`;

/** The head of `bench.ts`: imports, `list`, `add` and `noop` (does nothing); append the bench's own functions. */
export const ITEMS_FUNCTIONS_TS = `
import { mutation, query } from "./_generated/server";
import { v } from "convex/values";
export const list = query({
  args: { k: v.string(), nonce: v.number() },
  handler: (ctx, { k }) => ctx.db.query("items").withIndex("by_k", (q) => q.eq("k", k)).take(10),
});
export const add = mutation({
  args: { k: v.string(), n: v.number() },
  handler: (ctx, args) => ctx.db.insert("items", args),
});
export const noop = query({ args: { nonce: v.number() }, handler: async () => null });
`;

/**
 * The app's files: `items` with `list`, `add`, and `seed({from, count})`, which inserts items `from`… with `n: j` and
 * `k` given by `keyOfJ` (a JavaScript expression of `j`, e.g. `"k" + (j % 1000)`).
 */
export function itemsApp(keyOfJ: string): Record<string, string> {
  return {
    "schema.ts": ITEMS_SCHEMA_TS,
    "bench.ts": ITEMS_FUNCTIONS_TS + `
export const seed = mutation({
  args: { from: v.number(), count: v.number() },
  handler: async (ctx, { from, count }) => {
    for (let j = from; j < from + count; j++) await ctx.db.insert("items", { k: ${keyOfJ}, n: j });
  },
});
`,
  };
}

/** Calls a function over the HTTP API (`POST /api/<kind>`); throws with the server's message when it fails. */
export async function callFunction(
  url: string,
  kind: "query" | "mutation",
  path: string,
  args: Record<string, unknown>,
): Promise<void> {
  const response = await fetch(`${url}/api/${kind}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ path, args, format: "json" }),
  });
  const result = await response.json() as { status: string; errorMessage?: string };
  if (result.status !== "success") throw new Error(`${path} failed: ${result.errorMessage}`);
}

/** Deploys `app` to `server` with the official CLI, then seeds `documents` items in batches of `batch`. */
export async function deployAndSeed(
  app: ConvexApp,
  server: { url: string; adminKey: string },
  documents: number,
  batch = 1_000,
): Promise<void> {
  await deployApp(app, server);
  for (let from = 0; from < documents; from += batch) {
    await callFunction(server.url, "mutation", "bench:seed", { from, count: Math.min(batch, documents - from) });
  }
}
