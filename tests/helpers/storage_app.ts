/** Test helper: the storage functions the file-storage tests (local and S3) deploy alike. */

/**
 * The start of a `convex/files.ts` both storage tests deploy: upload URLs, the `_storage` document, URLs, metadata
 * and deletion. Each test appends the functions of its own.
 */
export const STORAGE_FILES_BASE = `
import { action, mutation, query } from "./_generated/server";
import { v } from "convex/values";
export const uploadUrl = mutation({ args: {}, handler: async (ctx) => await ctx.storage.generateUploadUrl() });
export const doc = query({ args: { id: v.id("_storage") }, handler: async (ctx, { id }) => await ctx.db.system.get(id) });
export const url = query({ args: { id: v.id("_storage") }, handler: async (ctx, { id }) => await ctx.storage.getUrl(id) });
export const meta = query({
  args: { id: v.id("_storage") },
  handler: async (ctx, { id }) => await ctx.storage.getMetadata(id),
});
export const remove = mutation({ args: { id: v.id("_storage") }, handler: async (ctx, { id }) => await ctx.storage.delete(id) });
`;
