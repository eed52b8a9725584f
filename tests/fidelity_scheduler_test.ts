/**
 * Issue 13, the scheduler as Convex runs it: a scheduled mutation that cancels itself ends `canceled` with its other
 * writes committed, and a job failing outside user code is written to the server log.
 */
import { assert, assertEquals, waitFor } from "./helpers/assert.ts";
import {
  createConvexApp,
  DEPLOY_ARGS,
  runConvexCli,
  startTestDeployment,
  type TestDeployment,
} from "./helpers/convex_app.ts";

const APP: Record<string, string> = {
  "schema.ts": `
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
export default defineSchema({ marks: defineTable({ tag: v.string() }) });
`,
  "jobs.ts": `
import { internalMutation, mutation, query } from "./_generated/server";
import { internal } from "./_generated/api";
import { v } from "convex/values";
export const start = mutation({
  args: {},
  handler: async (ctx) => await ctx.scheduler.runAfter(0, internal.jobs.cancelSelf, {}),
});
export const cancelSelf = internalMutation({
  args: {},
  handler: async (ctx) => {
    const mine = await ctx.db.system.query("_scheduled_functions")
      .filter((q) => q.eq(q.field("state.kind"), "pending"))
      .collect();
    for (const job of mine) if (job.name.includes("cancelSelf")) await ctx.scheduler.cancel(job._id);
    await ctx.db.insert("marks", { tag: "ran" });
  },
});
export const job = query({
  args: { id: v.id("_scheduled_functions") },
  handler: async (ctx, { id }) => await ctx.db.system.get(id),
});
export const marks = query({ args: {}, handler: async (ctx) => (await ctx.db.query("marks").collect()).length });
`,
};

async function call(deployment: TestDeployment, kind: "query" | "mutation", path: string, args = {}) {
  const response = await fetch(`${deployment.url}/api/${kind}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ path, args, format: "json" }),
  });
  const body = await response.json();
  if (body.status !== "success") throw new Error(`${path}: ${JSON.stringify(body)}`);
  return body.value;
}

Deno.test({
  name: "fidelity: a scheduled mutation that cancels itself ends canceled, its writes committed",
  async fn() {
    const deployment = await startTestDeployment({ functionRoutes: true });
    const app = await createConvexApp(APP);
    const logged: string[] = [];
    const originalError = console.error;
    console.error = (...parts: unknown[]) => {
      logged.push(parts.map(String).join(" "));
      originalError(...parts);
    };
    try {
      const push = await runConvexCli(app, DEPLOY_ARGS, deployment);
      assertEquals(push.code, 0, push.stdout + push.stderr);
      const id = await call(deployment, "mutation", "jobs:start");
      const job = await waitFor(
        "the job to finish",
        () => call(deployment, "query", "jobs:job", { id }),
        (found) => found.state.kind !== "pending" && found.state.kind !== "inProgress",
      );
      const state = job.state;
      assertEquals(state, { kind: "canceled" });
      assertEquals(await call(deployment, "query", "jobs:marks"), 1, "the mutation's own writes committed");
      assert(!logged.some((line) => /UNIQUE/.test(line)), logged.join("\n"));
    } finally {
      console.error = originalError;
      await app.dispose();
      await deployment.close();
    }
  },
});
