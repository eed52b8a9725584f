/**
 * The bank app of the backup tests: accounts whose balance total a transfer keeps, a log of transfers, and file
 * storage — a snapshot is consistent exactly when its balances add up to `accounts × startBalance`.
 */
import { makeFunctionReference } from "convex/server";

/** `convex/bank.ts` with `accounts` accounts of `startBalance` each. */
export function bankModule(accounts: number, startBalance: number): string {
  return `
import { mutation, query } from "./_generated/server";
import { v } from "convex/values";
export const seed = mutation({
  args: {},
  handler: async (ctx) => {
    const ids = [];
    for (let i = 0; i < ${accounts}; i++) ids.push(await ctx.db.insert("accounts", { owner: "o" + i, balance: ${startBalance} }));
    return ids;
  },
});
export const transfer = mutation({
  args: { from: v.id("accounts"), to: v.id("accounts"), amount: v.number() },
  handler: async (ctx, { from, to, amount }) => {
    const a = (await ctx.db.get(from))!;
    const b = (await ctx.db.get(to))!;
    await ctx.db.patch(from, { balance: a.balance - amount });
    await ctx.db.patch(to, { balance: b.balance + amount });
    await ctx.db.insert("transfers", { from, to, amount });
  },
});
export const accounts = query({ args: {}, handler: async (ctx) => await ctx.db.query("accounts").collect() });
export const transferCount = query({ args: {}, handler: async (ctx) => (await ctx.db.query("transfers").collect()).length });
export const uploadUrl = mutation({ args: {}, handler: async (ctx) => await ctx.storage.generateUploadUrl() });
export const fileUrl = query({ args: { id: v.id("_storage") }, handler: async (ctx, { id }) => await ctx.storage.getUrl(id) });
`;
}

/** The bank module's functions and the backups list, for the clients. */
export const bank = {
  seed: makeFunctionReference<"mutation", Record<string, never>, string[]>("bank:seed"),
  transfer: makeFunctionReference<"mutation", { from: string; to: string; amount: number }, null>("bank:transfer"),
  accounts: makeFunctionReference<"query", Record<string, never>, { _id: string; balance: number }[]>("bank:accounts"),
  transferCount: makeFunctionReference<"query", Record<string, never>, number>("bank:transferCount"),
  uploadUrl: makeFunctionReference<"mutation", Record<string, never>, string>("bank:uploadUrl"),
  fileUrl: makeFunctionReference<"query", { id: string }, string | null>("bank:fileUrl"),
  backupList: makeFunctionReference<"query", Record<string, never>, unknown>("_system/frontend/backups:list"),
};
