/**
 * Issue 13, function errors as Convex reports them, through the official clients: `[Request ID: <id>] Server Error`
 * then `Uncaught <Name>: <message>` with the error's own class name and frames mapped into `convex/*.ts`; nested calls
 * wrapped once per level; ConvexError data on every path; logs with the same text; HTTP-action failures as JSON
 * `{code, trace, data}`; the request ID in every client's error names the failed execution's log line.
 */
import { ConvexClient, ConvexHttpClient } from "convex/browser";
import { anyApi } from "convex/server";
import { ConvexError } from "convex/values";
import { assert, assertEquals, assertMatch, waitFor } from "./helpers/assert.ts";
import { createConvexApp, DEPLOY_ARGS, runConvexCli, spawnServer } from "./helpers/convex_app.ts";
import { framedFunctionError, newRequestId } from "../src/errors/mod.ts";

const api = anyApi;
const APP: Record<string, string> = {
  "schema.ts": `
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
export default defineSchema({ notes: defineTable({ text: v.string() }) });
`,
  "errs.ts": `
import { ConvexError, v } from "convex/values";
import { action, internalMutation, internalQuery, mutation, query } from "./_generated/server";
import { internal } from "./_generated/api";

class AppError extends ConvexError<{ reason: string }> {
  constructor(reason: string) {
    super({ reason });
    this.name = "AppError";
  }
}
class PaymentFailed extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PaymentFailed";
  }
}

export const plain = query({ args: {}, handler: async () => { throw new Error("boom"); } });
export const custom = query({ args: {}, handler: async () => { throw new PaymentFailed("card declined"); } });
export const typed = mutation({ args: {}, handler: async () => { throw new AppError("nope"); } });
export const data = action({ args: {}, handler: async () => { throw new ConvexError({ code: 42 }); } });
export const innerData = internalMutation({ args: {}, handler: async () => { throw new ConvexError("inner data"); } });
export const innerPlain = internalMutation({ args: {}, handler: async () => { throw new Error("inner boom"); } });
export const innerQuery = internalQuery({ args: {}, handler: async () => { throw new ConvexError({ q: 1 }); } });
export const nestedData = action({ args: {}, handler: async (ctx) => { await ctx.runMutation(internal.errs.innerData, {}); } });
export const nestedPlain = action({ args: {}, handler: async (ctx) => { await ctx.runMutation(internal.errs.innerPlain, {}); } });
export const nestedInQuery = query({ args: {}, handler: async (ctx) => await ctx.runQuery(internal.errs.innerQuery, {}) });
export const later = mutation({ args: {}, handler: async (ctx) => await ctx.scheduler.runAfter(0, internal.errs.innerData, {}) });
export const job = query({ args: { id: v.id("_scheduled_functions") }, handler: async (ctx, { id }) => await ctx.db.system.get(id) });
`,
  "http.ts": `
import { httpRouter } from "convex/server";
import { ConvexError } from "convex/values";
import { httpAction } from "./_generated/server";
const http = httpRouter();
http.route({ path: "/fail", method: "GET", handler: httpAction(async () => { throw new Error("http boom"); }) });
http.route({ path: "/failData", method: "GET", handler: httpAction(async () => { throw new ConvexError({ why: "x" }); }) });
export default http;
`,
};

const FRAMED = /^\[Request ID: [0-9a-f]{16}\] Server Error\n/;

async function failure(run: () => Promise<unknown>): Promise<Error & { data?: unknown }> {
  try {
    await run();
  } catch (error) {
    return error as Error & { data?: unknown };
  }
  throw new Error("expected the call to fail");
}

/** The `[Request ID: X]` of a client's error. */
function idOf(error: Error): string {
  const found = /\[Request ID: ([0-9a-f]{16})\] Server Error/.exec(error.message);
  assert(found !== null, `no request ID in ${JSON.stringify(error.message)}`);
  return found[1];
}

/** Waits for the function log's failed execution of `identifier` with `requestId`. */
async function loggedFailure(
  deployment: { url: string; adminKey: string },
  requestId: string,
  identifier: string,
): Promise<void> {
  type Entry = { identifier: string; requestId?: string; error?: string };
  const entry = await waitFor(
    `the log line of request ${requestId}`,
    async () => {
      const response = await fetch(`${deployment.url}/api/stream_function_logs?cursor=0`, {
        headers: { Authorization: `Convex ${deployment.adminKey}` },
      });
      const { entries } = await response.json() as { entries: Entry[] };
      // Nested calls share their parent's request ID (as on Convex: one request, one ID): look for the function's line.
      return entries.find((candidate) => candidate.requestId === requestId && candidate.identifier === identifier);
    },
    (found) => found !== undefined,
    5_000,
  );
  assert(typeof entry!.error === "string" && entry!.error.length > 0, JSON.stringify(entry));
}

Deno.test({
  name: "fidelity: function errors are framed, named, source-mapped and carry ConvexError data as on Convex",
  async fn(t) {
    const deployment = await spawnServer();
    const app = await createConvexApp(APP);
    const http = new ConvexHttpClient(deployment.url);
    try {
      const push = await runConvexCli(app, DEPLOY_ARGS, deployment);
      assertEquals(push.code, 0, push.stdout + push.stderr);

      await t.step("a thrown Error: request-ID framing, its name, frames in convex/errs.ts", async () => {
        const error = await failure(() => http.query(api.errs.plain, {}));
        assertMatch(error.message, FRAMED);
        assertMatch(error.message, /\nUncaught Error: boom\n {4}at handler \(\.\.\/convex\/errs\.ts:\d+:\d+\)/);
      });

      await t.step("an Error subclass keeps its class name", async () => {
        const error = await failure(() => http.query(api.errs.custom, {}));
        assertMatch(error.message, /\nUncaught PaymentFailed: card declined\n/);
      });

      await t.step("ConvexError data reaches the client from a mutation, an action and a subclass", async () => {
        const typed = await failure(() => http.mutation(api.errs.typed, {}));
        assert(typed instanceof ConvexError, String(typed));
        assertEquals(typed.data, { reason: "nope" });
        assertMatch(typed.message, FRAMED);
        assertMatch(typed.message, /\nUncaught AppError: /);
        const data = await failure(() => http.action(api.errs.data, {}));
        assertEquals(data.data, { code: 42 });
      });

      await t.step("nested calls: data survives, a plain error is wrapped once per level", async () => {
        const nested = await failure(() => http.action(api.errs.nestedData, {}));
        assertEquals(nested.data, "inner data");
        const inQuery = await failure(() => http.query(api.errs.nestedInQuery, {}));
        assertEquals(inQuery.data, { q: 1 });
        const plain = await failure(() => http.action(api.errs.nestedPlain, {}));
        assertMatch(plain.message, FRAMED);
        assertMatch(plain.message, /\nUncaught Error: Uncaught Error: inner boom\n/);
        // The inner trace, a blank line, then the caller's frames, as Convex shows a nested failure.
        assertMatch(
          plain.message,
          /inner boom\n {4}at handler \(\.\.\/convex\/errs\.ts:\d+:\d+\)\n\n {4}at async handler /,
        );
        assert(!/Request ID[\s\S]*Request ID/.test(plain.message), plain.message);
      });

      await t.step("the WebSocket client gets the same framing and data", async () => {
        const client = new ConvexClient(deployment.url);
        try {
          const typed = await failure(() => client.mutation(api.errs.typed, {}));
          assertEquals(typed.data, { reason: "nope" });
          const plain = await failure(() => client.action(api.errs.nestedPlain, {}));
          // The client prefixes the function's name itself, as it does for Convex.
          assertMatch(plain.message, /^\[CONVEX A\(errs:nestedPlain\)\] \[Request ID: [0-9a-f]{16}\] Server Error\n/);
        } finally {
          await client.close();
        }
      });

      await t.step("logs carry `Uncaught <Name>: <message>` with mapped frames", async () => {
        await failure(() => http.query(api.errs.custom, {}));
        const logged = await waitFor(
          "the failure in the log stream",
          async () => {
            const response = await fetch(`${deployment.url}/api/stream_function_logs?cursor=0`, {
              headers: { Authorization: `Convex ${deployment.adminKey}` },
            });
            const { entries } = await response.json() as { entries: { identifier: string; error?: string }[] };
            return entries.find((entry) => entry.identifier === "errs.js:custom" && entry.error);
          },
          (found) => found !== undefined,
          5_000,
        );
        assertMatch(logged!.error!, /^Uncaught PaymentFailed: card declined\n {4}at .*convex\/errs\.ts/);
      });

      await t.step("the request ID a client is told names the failed execution's log line", async () => {
        // What an operator does with a user's `[Request ID: X]`: find X in the function logs (`npx convex logs`,
        // the dashboard: /api/stream_function_logs), as on Convex. HTTP: query, mutation, action.
        const logged = (error: Error, identifier: string) => loggedFailure(deployment, idOf(error), identifier);
        await logged(await failure(() => http.query(api.errs.plain, {})), "errs.js:plain");
        await logged(await failure(() => http.mutation(api.errs.typed, {})), "errs.js:typed");
        await logged(await failure(() => http.action(api.errs.data, {})), "errs.js:data");
        // A failed query answered from the cache keeps the ID of the execution that failed.
        const again = await failure(() => http.query(api.errs.plain, {}));
        await logged(again, "errs.js:plain");
        // WebSocket: mutation, action, and a subscribed query (its failure is shared by every subscriber of the same
        // query and arguments, so all of them are told the ID of the one execution that failed).
        const client = new ConvexClient(deployment.url);
        try {
          await logged(await failure(() => client.mutation(api.errs.typed, {})), "errs.js:typed");
          await logged(await failure(() => client.action(api.errs.nestedPlain, {})), "errs.js:nestedPlain");
          const queryError = await new Promise<Error>((resolve) => {
            client.onUpdate(api.errs.custom, {}, () => {}, resolve);
          });
          await logged(queryError, "errs.js:custom");
        } finally {
          await client.close();
        }
      });

      await t.step("a scheduled function's ConvexError is kept in its job and its log", async () => {
        const id = await http.mutation(api.errs.later, {});
        const job = await waitFor(
          "the job to fail",
          () => http.query(api.errs.job, { id }),
          (found) => found.state.kind === "failed",
        );
        assertMatch(job.state.error, /^Uncaught ConvexError: inner data/);
      });

      await t.step("a failing HTTP action answers 500 JSON {code, trace, data}", async () => {
        const response = await fetch(`${deployment.siteUrl}/fail`);
        assertEquals(response.status, 500);
        const body = await response.json();
        assertMatch(body.code, /^\[Request ID: [0-9a-f]{16}\] Server Error: Uncaught Error: http boom$/);
        assertMatch(body.trace, /^Uncaught Error: http boom\n {4}at .*convex\/http\.ts/);
        assertEquals("data" in body, false);
        await loggedFailure(deployment, idOf(new Error(body.code)), "http.js:default");
        const withData = await fetch(`${deployment.siteUrl}/failData`);
        assertEquals(withData.status, 500);
        const dataBody = await withData.json();
        assertEquals(dataBody.data, { why: "x" });
        assertMatch(dataBody.code, /Server Error: Uncaught ConvexError: /);
      });
    } finally {
      await app.dispose();
      await deployment.close();
    }
  },
});

Deno.test("fidelity: the client framing is added once, with a 16-hex request ID", () => {
  const framed = framedFunctionError("Uncaught Error: boom\n    at handler (../convex/a.ts:1:1)");
  assertMatch(framed, /^\[Request ID: [0-9a-f]{16}\] Server Error\nUncaught Error: boom\n {4}at handler/);
  assertEquals(framedFunctionError(framed), framed, "a framed message is not framed again");
  assertEquals(framedFunctionError("x", "0123456789abcdef"), "[Request ID: 0123456789abcdef] Server Error\nx");
  assertMatch(newRequestId(), /^[0-9a-f]{16}$/);
});
