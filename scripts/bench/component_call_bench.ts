/**
 * Component call benchmark (issue 11): what a query pays to call into a component. Deploys, with the official CLI,
 * an app with one local component to an in-process denvex backend, then times three queries called through the
 * executor (no HTTP, no query cache):
 *
 * - `direct`: reads one document itself (the floor, for scale);
 * - `viaApp`: calls an internal app query doing the same read, with a nested `ctx.runQuery(internal.bench.inner)`
 *   (the baseline: a nested call as apps make them today);
 * - `viaComponent`: calls the component's query doing the same read, `ctx.runQuery(components.store.lib.get)`.
 *
 * Rounds interleave the three so a slow moment of the machine hits all of them alike. Goal (issue 11): a call into a
 * component costs no more than the nested app call, i.e. the ratio viaComponent / viaApp ≤ ~1.1 (noise).
 *
 * Run: deno task bench component
 */
import { createConvexApp, deployApp, startTestDeployment } from "../../tests/helpers/convex_app.ts";
import type { TestDeployment } from "../../tests/helpers/convex_app.ts";

const ROUNDS = 5;
const CALLS_PER_ROUND = 200;
const WARMUP_CALLS = 50;
/** Above this the component call is noticeably dearer than a nested app call. */
const GOAL_RATIO = 1.1;

const APP: Record<string, string> = {
  "convex.config.ts": `
import { defineApp } from "convex/server";
import store from "./store/convex.config";
const app = defineApp();
app.use(store);
export default app;
`,
  "store/convex.config.ts": `
import { defineComponent } from "convex/server";
export default defineComponent("store");
`,
  "store/schema.ts": `
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
export default defineSchema({ items: defineTable({ n: v.number() }) });
`,
  "store/lib.ts": `
import { mutation, query } from "./_generated/server";
export const seed = mutation({ args: {}, handler: async (ctx) => { await ctx.db.insert("items", { n: 1 }); } });
export const get = query({ args: {}, handler: async (ctx) => (await ctx.db.query("items").first())?.n ?? null });
`,
  "schema.ts": `
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
export default defineSchema({ items: defineTable({ n: v.number() }) });
`,
  "bench.ts": `
import { components, internal } from "./_generated/api";
import { internalQuery, mutation, query } from "./_generated/server";
const read = async (ctx: any) => (await ctx.db.query("items").first())?.n ?? null;
export const seed = mutation({
  args: {},
  handler: async (ctx) => {
    await ctx.db.insert("items", { n: 1 });
    await ctx.runMutation(components.store.lib.seed, {});
  },
});
export const inner = internalQuery({ args: {}, handler: read });
export const direct = query({ args: {}, handler: read });
export const viaApp = query({ args: {}, handler: async (ctx): Promise<number | null> => await ctx.runQuery(internal.bench.inner, {}) });
export const viaComponent = query({
  args: {},
  handler: async (ctx): Promise<number | null> => await ctx.runQuery(components.store.lib.get, {}),
});
`,
};

type Variant = "direct" | "viaApp" | "viaComponent";
const VARIANTS: readonly Variant[] = ["direct", "viaApp", "viaComponent"];

async function call(deployment: TestDeployment, path: string): Promise<void> {
  const result = await deployment.backend.executor.call({ path, args: {}, identityJson: null, allowInternal: false });
  if (!result.ok) throw new Error(`${path} failed: ${result.errorMessage}`);
}

/** Mean milliseconds per call of `bench:<variant>`, calls one after the other. */
async function timeCalls(deployment: TestDeployment, variant: Variant, calls: number): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < calls; i++) await call(deployment, `bench:${variant}`);
  return (performance.now() - started) / calls;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

const deployment = await startTestDeployment();
const app = await createConvexApp(APP);
const perCallMs = new Map<Variant, number[]>(VARIANTS.map((variant) => [variant, []]));
try {
  await deployApp(app, deployment);
  await call(deployment, "bench:seed");
  for (const variant of VARIANTS) await timeCalls(deployment, variant, WARMUP_CALLS);
  for (let round = 0; round < ROUNDS; round++) {
    for (const variant of VARIANTS) perCallMs.get(variant)!.push(await timeCalls(deployment, variant, CALLS_PER_ROUND));
  }
} finally {
  await app.dispose();
  await deployment.close();
}

const ms = Object.fromEntries(VARIANTS.map((variant) => [variant, median(perCallMs.get(variant)!)])) as Record<
  Variant,
  number
>;
console.log(`query calls through the executor, median of ${ROUNDS} rounds of ${CALLS_PER_ROUND}:`);
console.log(`  direct read                        ${ms.direct.toFixed(3)} ms/call (floor)`);
console.log(`  nested ctx.runQuery(internal.…)    ${ms.viaApp.toFixed(3)} ms/call (baseline)`);
console.log(`  ctx.runQuery(components.store.…)   ${ms.viaComponent.toFixed(3)} ms/call`);
const ratio = ms.viaComponent / ms.viaApp;
console.log(
  `ratio component call / nested app call: ${ratio.toFixed(2)} (direct / nested: ${
    (ms.direct / ms.viaApp).toFixed(2)
  })`,
);
console.log(`goal: ratio ≤ ${GOAL_RATIO}: ${ratio <= GOAL_RATIO ? "met" : "MISSED"}`);
