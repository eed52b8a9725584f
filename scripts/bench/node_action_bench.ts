/**
 * Node action benchmark (issue 12): what a `"use node"` action costs next to an isolate action. Deploys, with the
 * official CLI, an app with one isolate action and one node action (both echo their argument) to an in-process denvex
 * backend, then, through the executor (no HTTP):
 *
 * - cold: the first node call right after the deploy (the pool pre-starts a node runner at activation, so this is
 *   what the first caller sees; the spawn may still be in flight);
 * - warm: rounds of calls to each, interleaved so a slow moment of the machine hits both alike; per-call medians.
 *
 * Goals (issue 12): cold < 1 s; warm node call < isolate call + 5 ms.
 *
 * Run: deno task bench node_action
 */
import { createConvexApp, deployApp, startTestDeployment } from "../../tests/helpers/convex_app.ts";
import type { TestDeployment } from "../../tests/helpers/convex_app.ts";

const ROUNDS = 5;
const CALLS_PER_ROUND = 100;
const WARMUP_CALLS = 20;
const COLD_GOAL_MS = 1_000;
const WARM_EXTRA_GOAL_MS = 5;

const APP: Record<string, string> = {
  "iso.ts": `
import { v } from "convex/values";
import { action } from "./_generated/server";
export const echo = action({ args: { n: v.number() }, handler: async (_ctx, { n }) => n });
`,
  "nodeEcho.ts": `"use node";
import { createHash } from "node:crypto";
import { v } from "convex/values";
import { action } from "./_generated/server";
export const echo = action({ args: { n: v.number() }, handler: async (_ctx, { n }) => n });
export const hash = action({ args: {}, handler: async () => createHash("sha256").update("x").digest("hex") });
`,
};

async function timedCall(deployment: TestDeployment, path: string): Promise<number> {
  const started = performance.now();
  const result = await deployment.backend.executor.call({
    path,
    args: { n: 1 },
    identityJson: null,
    allowInternal: false,
  });
  const elapsedMs = performance.now() - started;
  if (!result.ok) throw new Error(`${path} failed: ${result.errorMessage}`);
  return elapsedMs;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

const deployment = await startTestDeployment();
const app = await createConvexApp(APP);
try {
  await deployApp(app, deployment);
  const coldMs = await timedCall(deployment, "nodeEcho:echo");

  for (let i = 0; i < WARMUP_CALLS; i++) {
    await timedCall(deployment, "iso:echo");
    await timedCall(deployment, "nodeEcho:echo");
  }
  const isolateMs: number[] = [];
  const nodeMs: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < CALLS_PER_ROUND; i++) isolateMs.push(await timedCall(deployment, "iso:echo"));
    for (let i = 0; i < CALLS_PER_ROUND; i++) nodeMs.push(await timedCall(deployment, "nodeEcho:echo"));
  }
  const isolate = median(isolateMs);
  const node = median(nodeMs);
  console.log(`cold first node call after deploy: ${coldMs.toFixed(1)} ms (goal < ${COLD_GOAL_MS} ms)`);
  console.log(
    `warm call, median of ${nodeMs.length}: isolate action ${isolate.toFixed(3)} ms, node action ${node.toFixed(3)} ms`,
  );
  console.log(
    `node / isolate: ${(node / isolate).toFixed(2)}×; node − isolate: ${
      (node - isolate).toFixed(3)
    } ms (goal < ${WARM_EXTRA_GOAL_MS} ms)`,
  );
  const ok = coldMs < COLD_GOAL_MS && node - isolate < WARM_EXTRA_GOAL_MS;
  console.log(ok ? "goals met" : "GOALS MISSED");
} finally {
  await app.dispose();
  await deployment.close();
}
