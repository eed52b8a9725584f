/**
 * Deploy benchmark: `npx convex deploy` of a 20-module app (a schema with indexes, queries, mutations, actions) to an
 * in-process denvex backend. Reports the server time (the sum of the admin requests' handling times, which is what
 * denvex controls; the CLI's own bundling and typecheck are excluded) of a first deploy, of a redeploy with one
 * changed module, and of a no-op redeploy. Goal: < 5 s server time for the first deploy.
 *
 * Run: deno task bench deploy
 */
import { createConvexApp, DEPLOY_ARGS, runConvexCli, startTestDeployment } from "../../tests/helpers/convex_app.ts";

const MODULES = 20;
const GOAL_MS = 5_000;

function moduleSource(i: number, variant: number): string {
  return `
import { query, mutation, action, internalMutation } from "./_generated/server";
import { v } from "convex/values";
export const list${i} = query({ args: { tag: v.string() }, handler: async (ctx, { tag }) =>
  await ctx.db.query("items").withIndex("by_tag", (q) => q.eq("tag", tag)).take(10) });
export const add${i} = mutation({ args: { tag: v.string(), n: v.number() }, handler: async (ctx, args) =>
  await ctx.db.insert("items", args) });
export const bump${i} = internalMutation({ args: {}, handler: async () => ${variant} });
export const run${i} = action({ args: {}, handler: async () => "module ${i} v${variant}" });
`;
}

function appFiles(variant: number): Record<string, string> {
  const files: Record<string, string> = {
    "schema.ts": `
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
export default defineSchema({
  items: defineTable({ tag: v.string(), n: v.number() }).index("by_tag", ["tag"]).index("by_n", ["n"]),
});
`,
  };
  for (let i = 0; i < MODULES - 1; i++) files[`mod${i}.ts`] = moduleSource(i, i === 0 ? variant : 0);
  return files;
}

let serverMs = 0;
const deployment = await startTestDeployment({
  onRequest: (_method, path, durationMs) => {
    if (path.startsWith("/api/deploy2/") || path === "/api/get_config_hashes") serverMs += durationMs;
  },
});
const app = await createConvexApp(appFiles(1));
const results: { name: string; serverMs: number; wallMs: number }[] = [];
try {
  for (const [name, variant] of [["first deploy", 1], ["one module changed", 2], ["no change", 2]] as const) {
    await app.write(appFiles(variant));
    serverMs = 0;
    const started = performance.now();
    const result = await runConvexCli(app, DEPLOY_ARGS, deployment);
    const wallMs = performance.now() - started;
    if (result.code !== 0) throw new Error(`deploy failed:\n${result.stdout}\n${result.stderr}`);
    results.push({ name, serverMs, wallMs });
  }
} finally {
  await app.dispose();
  await deployment.close();
}
console.log(`deploy of a ${MODULES}-module app (${MODULES - 1} function modules + schema):`);
for (const { name, serverMs, wallMs } of results) {
  console.log(`  ${name.padEnd(20)} server ${Math.round(serverMs)} ms, CLI wall ${Math.round(wallMs)} ms`);
}
const first = results[0].serverMs;
console.log(`goal: first deploy server time < ${GOAL_MS} ms: ${first < GOAL_MS ? "met" : "MISSED"}`);
if (first >= GOAL_MS) Deno.exit(1);
