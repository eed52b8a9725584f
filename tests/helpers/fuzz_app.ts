/**
 * The fuzz test's target: a small Convex app (queries with index lookups, mutations, an action, file storage, HTTP
 * actions) deployed with the official CLI to the real server process, plus what the fuzzer needs to know about it
 * (ports, admin key, a valid upload token, a stored file, a snapshot timestamp) and the server's memory.
 */
import { createConvexApp, deployApp, type ServerProcess } from "./convex_app.ts";

/** The app's `convex/` folder. Its HTTP actions only ever answer 2xx or a JSON 400, so any 5xx is the server's. */
export const FUZZ_APP_FILES: Record<string, string> = {
  "schema.ts": `
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
export default defineSchema({
  messages: defineTable({ channel: v.string(), body: v.string() }).index("by_channel", ["channel"]),
});
`,
  "messages.ts": `
import { query, mutation, action, internalQuery } from "./_generated/server";
import { api } from "./_generated/api";
import { paginationOptsValidator } from "convex/server";
import { ConvexError, v } from "convex/values";
export const list = query({
  args: { channel: v.string() },
  handler: async (ctx, { channel }) =>
    (await ctx.db.query("messages").withIndex("by_channel", (q) => q.eq("channel", channel)).take(20)).map((m) => m.body),
});
export const page = query({
  args: { channel: v.string(), paginationOpts: paginationOptsValidator },
  handler: async (ctx, { channel, paginationOpts }) =>
    await ctx.db.query("messages").withIndex("by_channel", (q) => q.eq("channel", channel)).paginate(paginationOpts),
});
export const count = query({ args: {}, handler: async (ctx) => (await ctx.db.query("messages").take(1000)).length });
export const echo = query({ args: { value: v.any() }, handler: async (_ctx, { value }) => value });
export const get = query({ args: { id: v.id("messages") }, handler: async (ctx, { id }) => await ctx.db.get(id) });
export const send = mutation({
  args: { channel: v.string(), body: v.string() },
  handler: async (ctx, { channel, body }) => await ctx.db.insert("messages", { channel: channel.slice(0, 64), body: body.slice(0, 256) }),
});
export const fails = mutation({ args: {}, handler: async () => { throw new ConvexError({ code: "NOPE", n: 1n }); } });
export const shout = action({
  args: { text: v.string() },
  handler: async (ctx, { text }) => text.slice(0, 64).toUpperCase() + " " + (await ctx.runQuery(api.messages.count, {})),
});
export const secret = internalQuery({ args: {}, handler: async () => "secret" });
export const whoami = query({ args: {}, handler: async (ctx) => await ctx.auth.getUserIdentity() });
`,
  "files.ts": `
import { mutation, query } from "./_generated/server";
import { v } from "convex/values";
export const uploadUrl = mutation({ args: {}, handler: async (ctx) => await ctx.storage.generateUploadUrl() });
export const url = query({ args: { id: v.id("_storage") }, handler: async (ctx, { id }) => await ctx.storage.getUrl(id) });
`,
  "http.ts": `
import { httpRouter } from "convex/server";
import { httpAction } from "./_generated/server";
import { api } from "./_generated/api";
const http = httpRouter();
const json = (value: unknown, status = 200) =>
  new Response(JSON.stringify(value), { status, headers: { "content-type": "application/json" } });
http.route({ path: "/hello", method: "GET", handler: httpAction(async () => new Response("hello")) });
http.route({
  path: "/echo",
  method: "POST",
  handler: httpAction(async (_ctx, request) => json({ bytes: (await request.arrayBuffer()).byteLength })),
});
http.route({
  path: "/json",
  method: "POST",
  handler: httpAction(async (_ctx, request) => {
    try {
      return json({ type: typeof (await request.json()) });
    } catch (error) {
      return json({ code: "BadJson", message: String(error).slice(0, 200) }, 400);
    }
  }),
});
http.route({
  pathPrefix: "/files/",
  method: "GET",
  handler: httpAction(async (_ctx, request) => json({ path: new URL(request.url).pathname.slice(0, 200) })),
});
http.route({ path: "/count", method: "GET", handler: httpAction(async (ctx) => json(await ctx.runQuery(api.messages.count, {}))) });
for (const method of ["PUT", "DELETE", "PATCH", "OPTIONS"] as const) {
  http.route({ path: "/method", method, handler: httpAction(async (_ctx, request) => json({ method: request.method })) });
}
export default http;
`,
};

/** What the fuzzer knows about the deployment it attacks. */
export interface FuzzTarget {
  apiPort: number;
  sitePort: number;
  adminKey: string;
  /** A valid upload token (from `files:uploadUrl`). */
  uploadToken: string;
  /** The storage ID of a small stored file. */
  storageId: string;
  /** A message document's ID. */
  messageId: string;
  /** A snapshot timestamp from `/api/query_ts` (base64). */
  ts: string;
}

async function call(server: ServerProcess, kind: string, path: string, args: unknown): Promise<unknown> {
  const response = await fetch(`${server.url}/api/${kind}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ path, args, format: "json" }),
  });
  const body = await response.json();
  if (body.status !== "success") throw new Error(`${path}: ${JSON.stringify(body)}`);
  return body.value;
}

/** Deploys {@link FUZZ_APP_FILES} to `server` with the official CLI and seeds a document and a file. */
export async function deployFuzzApp(server: ServerProcess): Promise<FuzzTarget> {
  const app = await createConvexApp(FUZZ_APP_FILES);
  try {
    await deployApp(app, server);
  } finally {
    await app.dispose();
  }
  const messageId = await call(server, "mutation", "messages:send", { channel: "a", body: "first" }) as string;
  const uploadUrl = new URL(await call(server, "mutation", "files:uploadUrl", {}) as string);
  const stored = await fetch(uploadUrl, {
    method: "POST",
    body: "fuzz file",
    headers: { "content-type": "text/plain" },
  });
  const { storageId } = await stored.json();
  const tsResponse = await fetch(`${server.url}/api/query_ts`, { method: "POST" });
  const { ts } = await tsResponse.json();
  return {
    apiPort: Number(new URL(server.url).port),
    sitePort: Number(new URL(server.siteUrl).port),
    adminKey: server.adminKey,
    uploadToken: uploadUrl.searchParams.get("token")!,
    storageId,
    messageId,
    ts,
  };
}

/** The resident set size of process `pid` in bytes (`VmRSS` of `/proc/<pid>/status`), or null if it is gone. */
export function residentBytes(pid: number): number | null {
  let status: string;
  try {
    status = Deno.readTextFileSync(`/proc/${pid}/status`);
  } catch {
    return null;
  }
  if (/^State:\s+Z/m.test(status)) return null;
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  return match ? Number(match[1]) * 1024 : null;
}
