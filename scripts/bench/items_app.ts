/**
 * The small Convex app the call-path benches share: an `items` table indexed by `k`, a query reading the ten items of
 * one key (`nonce` makes each call distinct, so none is answered from the cache) and an insert. Each bench adds its
 * own seeding mutation (`seed`), whose key scheme differs.
 */

/** `schema.ts`: `items` with `by_k`. */
export const ITEMS_SCHEMA_TS = `
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
export default defineSchema({ items: defineTable({ k: v.string(), n: v.number() }).index("by_k", ["k"]) });
`;

/** The head of `bench.ts`: imports, `list` and `add`; append the bench's own functions. */
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
`;
