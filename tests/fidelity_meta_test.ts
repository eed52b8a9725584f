/**
 * `ctx.meta` as the convex 1.48 package defines it (server/meta.d.ts): function, deployment and request metadata and
 * the snapshot timestamp, from queries, mutations and actions, called over HTTP with the real client's wire format.
 */
import { ConvexClient } from "convex/browser";
import { assert, assertEquals, waitFor } from "./helpers/assert.ts";
import { createConvexApp, DEPLOY_ARGS, runConvexCli, type ServerProcess, spawnServer } from "./helpers/convex_app.ts";
import { requestMetadataOf } from "../src/http/request_metadata.ts";

const APP: Record<string, string> = {
  "schema.ts": `
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
export default defineSchema({ seen: defineTable({ request: v.any() }) });
`,
  "meta.ts": `
import { action, internalMutation, mutation, query } from "./_generated/server";
import { api, internal } from "./_generated/api";
export const schedule = mutation({
  args: {},
  handler: async (ctx) => await ctx.scheduler.runAfter(0, internal.meta.record, {}),
});
export const record = internalMutation({
  args: {},
  handler: async (ctx) => { await ctx.db.insert("seen", { request: await ctx.meta.getRequestMetadata() }); },
});
export const seen = query({ args: {}, handler: async (ctx) => (await ctx.db.query("seen").collect()).map((d) => d.request) });
export const inQuery = query({
  args: {},
  handler: async (ctx) => ({
    fn: await ctx.meta.getFunctionMetadata(),
    deployment: await ctx.meta.getDeploymentMetadata(),
    snapshotTs: String(ctx.meta.getSnapshotTs()),
  }),
});
export const inMutation = mutation({
  args: {},
  handler: async (ctx) => ({
    fn: await ctx.meta.getFunctionMetadata(),
    deployment: await ctx.meta.getDeploymentMetadata(),
    request: await ctx.meta.getRequestMetadata(),
    snapshotTs: String(ctx.meta.getSnapshotTs()),
  }),
});
export const inAction = action({
  args: {},
  handler: async (ctx): Promise<any> => ({
    fn: await ctx.meta.getFunctionMetadata(),
    deployment: await ctx.meta.getDeploymentMetadata(),
    request: await ctx.meta.getRequestMetadata(),
    nested: await ctx.runMutation(api.meta.inMutation, {}),
  }),
});
`,
};

async function call(deployment: ServerProcess, kind: string, path: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${deployment.url}/api/${kind}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ path, args: {}, format: "json" }),
  });
  const body = await response.json();
  if (body.status !== "success") throw new Error(`${path}: ${JSON.stringify(body)}`);
  return body.value;
}

Deno.test("fidelity: ctx.meta answers function, deployment and request metadata and the snapshot timestamp", async () => {
  const deployment = await spawnServer({ extraArgs: ["--instance-name=meta-test"] });
  const app = await createConvexApp(APP);
  try {
    const push = await runConvexCli(app, DEPLOY_ARGS, deployment);
    assertEquals(push.code, 0, push.stdout + push.stderr);
    const deploymentMetadata = { name: "meta-test", region: null, class: "s16" };

    const fromQuery = await call(deployment, "query", "meta:inQuery");
    assertEquals(fromQuery.fn, { name: "meta:inQuery", componentPath: "", type: "query", visibility: "public" });
    assertEquals(fromQuery.deployment, deploymentMetadata);
    assert(/^\d+$/.test(fromQuery.snapshotTs) && BigInt(fromQuery.snapshotTs) > 0n, fromQuery.snapshotTs);

    const fromMutation = await call(deployment, "mutation", "meta:inMutation", { "user-agent": "meta-test/1.0" });
    assertEquals(fromMutation.fn.type, "mutation");
    assertEquals(fromMutation.deployment, deploymentMetadata);
    assertEquals(fromMutation.request.userAgent, "meta-test/1.0");
    assertEquals(fromMutation.request.ip, "127.0.0.1");
    assertEquals(fromMutation.request.scheduledFunctionId, null);
    assertEquals(fromMutation.request.authToken, null);
    assert(typeof fromMutation.request.requestId === "string" && fromMutation.request.requestId.length > 0);
    assert(BigInt(fromMutation.snapshotTs) >= BigInt(fromQuery.snapshotTs));

    const fromAction = await call(deployment, "action", "meta:inAction", { "user-agent": "meta-test/2.0" });
    assertEquals(fromAction.fn.type, "action");
    assertEquals(fromAction.deployment, deploymentMetadata);
    assertEquals(fromAction.request.userAgent, "meta-test/2.0");
    // A nested call carries its parent's request metadata.
    assertEquals(fromAction.nested.request, fromAction.request);

    // Over the WebSocket protocol, with the official client.
    const client = new ConvexClient(deployment.url);
    try {
      const overSocket = await client.mutation("meta:inMutation" as never, {} as never) as typeof fromMutation;
      assertEquals(overSocket.request.ip, "127.0.0.1");
      assertEquals(overSocket.request.authToken, null);
    } finally {
      await client.close();
    }

    // A scheduled job knows its own id; no client, so no address.
    const jobId = await call(deployment, "mutation", "meta:schedule");
    const [seen] = await waitFor("the job to run", () => call(deployment, "query", "meta:seen"), (s) => s.length > 0);
    assertEquals({ ...seen, requestId: "" }, {
      ip: null,
      userAgent: null,
      scheduledFunctionId: jobId,
      authToken: null,
      requestId: "",
    });
  } finally {
    await app.dispose();
    await deployment.close();
  }
});

Deno.test("fidelity: request metadata hands user code a user's token, never an admin key or a failed token", () => {
  const request = (authorization: string) =>
    new Request("http://x/api/mutation", { headers: { Authorization: authorization, "User-Agent": "ua/3" } });
  assertEquals(requestMetadataOf(request("Bearer user.jwt.token"), "10.1.2.3", true), {
    ip: "10.1.2.3",
    userAgent: "ua/3",
    scheduledFunctionId: null,
    authToken: "user.jwt.token",
  });
  assertEquals(requestMetadataOf(request("Convex admin|key"), null, false).authToken, null);
  assertEquals(requestMetadataOf(request("Bearer not-verified"), null, false).authToken, null);
});
