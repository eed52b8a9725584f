/**
 * Memory under an unauthenticated large-argument load (denvex issue 9, item 1): the real server process
 * (`main.ts serve`, as the tests spawn it) with an app whose public query puts its string argument in an index range,
 * then `QUERIES` distinct `ARG_BYTES`-byte queries over HTTP (`CONCURRENCY` in flight) and `SUBSCRIPTIONS` distinct
 * subscriptions over WebSocket (`SOCKETS` sockets, held live until the end). The server's RSS is sampled from
 * `/proc/<pid>/status`; printed: the idle baseline, the peak (VmHWM), the RSS after the load is gone, both as ratios
 * to the idle baseline (goal: peak < 1 GiB), and whether the server still answers.
 *
 *   deno run -A scripts/bench/memory_bench.ts        (env QUERIES, SUBSCRIPTIONS, ARG_BYTES, CONCURRENCY, SOCKETS)
 */
import { createConvexApp, deployApp, spawnServer } from "../../tests/helpers/convex_app.ts";
import {
  holdLargeSubscriptions,
  MEMORY_APP,
  type Outcomes,
  postLargeQueries,
  readProcessMemory,
  RssSampler,
} from "../../tests/helpers/memory_load.ts";

const QUERIES = Number(Deno.env.get("QUERIES") ?? 1_000);
const SUBSCRIPTIONS = Number(Deno.env.get("SUBSCRIPTIONS") ?? 1_000);
const ARG_BYTES = Number(Deno.env.get("ARG_BYTES") ?? 1024 * 1024);
const CONCURRENCY = Number(Deno.env.get("CONCURRENCY") ?? 4);
const SOCKETS = Number(Deno.env.get("SOCKETS") ?? 10);
/** The goal on the server's peak RSS. */
const GOAL_PEAK_BYTES = 1024 * 1024 * 1024;
/** Time given to the server to settle (GC, freed sockets) before "after" is read. */
const SETTLE_MS = 3_000;

const MIB = 1024 * 1024;
const mib = (bytes: number) => `${(bytes / MIB).toFixed(0)} MiB`;
const summary = (outcomes: Outcomes) =>
  Object.entries(outcomes).map(([kind, n]) => `${n} ${kind}`).join(", ") || "none";

async function stillAnswers(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/api/query`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ path: "items:byKey", args: { k: "small" }, format: "json" }),
      signal: AbortSignal.timeout(10_000),
    });
    return response.status === 200 && (await response.json()).status === "success";
  } catch {
    return false;
  }
}

const server = await spawnServer();
const app = await createConvexApp(MEMORY_APP);
try {
  await deployApp(app, server);
  if (!await stillAnswers(server.url)) throw new Error("the warm-up query failed");
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const idle = readProcessMemory(server.pid)!.rssBytes;
  const sampler = new RssSampler(server.pid);
  const started = performance.now();
  const http = await postLargeQueries(server.url, { n: QUERIES, argBytes: ARG_BYTES, concurrency: CONCURRENCY });
  const httpSeconds = (performance.now() - started) / 1000;
  const load = await holdLargeSubscriptions(server.url, { n: SUBSCRIPTIONS, argBytes: ARG_BYTES, sockets: SOCKETS });
  const answersUnderLoad = await stillAnswers(server.url);
  const duringLoad = sampler.sample();
  load.close();
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  const after = sampler.sample();
  sampler.stop();
  const answersAfter = await stillAnswers(server.url);
  const peak = Math.max(sampler.maxRssBytes, after?.peakRssBytes ?? duringLoad?.peakRssBytes ?? 0);
  console.log(
    `memory_bench: ${QUERIES} HTTP queries of ${mib(ARG_BYTES)} args (${CONCURRENCY} in flight, ` +
      `${httpSeconds.toFixed(1)} s): ${summary(http)}`,
  );
  console.log(
    `memory_bench: ${SUBSCRIPTIONS} subscriptions held on ${SOCKETS} sockets: ${summary(load.outcomes)}`,
  );
  console.log(
    `memory_bench: server RSS idle ${mib(idle)}; peak ${mib(peak)} = ${(peak / idle).toFixed(2)}× idle ` +
      `(goal < ${mib(GOAL_PEAK_BYTES)}: ${peak < GOAL_PEAK_BYTES ? "met" : "MISSED"}); after ` +
      (after === null
        ? "— (the server process died)"
        : `${mib(after.rssBytes)} = ${(after.rssBytes / idle).toFixed(2)}×`),
  );
  console.log(`memory_bench: the server answers a small query under load: ${answersUnderLoad}, after: ${answersAfter}`);
} finally {
  await app.dispose();
  await server.close().catch(() => {});
}
