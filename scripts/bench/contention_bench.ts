/**
 * Contention: 100 concurrent `ConvexHttpClient` increments of ONE counter document, on SQLite and PostgreSQL. Every
 * one must succeed; the figures are the wall time for all 100 and the per-call p50/p99, printed as ratios against
 * baselines measured in the same run on the same server: 100 concurrent increments of 100 DIFFERENT documents (no
 * contention), and 100 sequential increments of one document (no concurrency).
 *
 * PostgreSQL comes from DENVEX_TEST_PG_URL (default: the local server), in a fresh schema.
 */
import { ConvexHttpClient } from "convex/browser";
import { anyApi } from "convex/server";
import { type DatabaseKind, startCounterServer } from "../../tests/helpers/counter_app.ts";
import { stopBundler } from "../../tests/helpers/runtime_app.ts";
import type { ExecutionLog } from "../../src/functions/mod.ts";

const INCREMENTS = 100;
const api = anyApi;

/** Wall time and per-call latencies of one batch of increments. */
interface Run {
  wallMs: number;
  latenciesMs: number[];
  errors: number;
  /** Function executions the server ran (retries included): the work contention wasted. */
  executions: number;
}

async function timed(calls: (() => Promise<unknown>)[], concurrent: boolean, log: ExecutionLog): Promise<Run> {
  const firstCursor = log.headCursor;
  const latenciesMs: number[] = [];
  let errors = 0;
  const one = async (call: () => Promise<unknown>) => {
    const startedMs = performance.now();
    try {
      await call();
    } catch {
      errors++;
    }
    latenciesMs.push(performance.now() - startedMs);
  };
  const startedMs = performance.now();
  if (concurrent) await Promise.all(calls.map(one));
  else for (const call of calls) await one(call);
  const wallMs = performance.now() - startedMs;
  return { wallMs, latenciesMs: latenciesMs.sort((a, b) => a - b), errors, executions: log.headCursor - firstCursor };
}

function percentile(sortedMs: number[], fraction: number): number {
  return sortedMs[Math.min(sortedMs.length - 1, Math.floor(sortedMs.length * fraction))];
}

function describe(label: string, run: Run, baseline?: Run): string {
  const ratio = baseline ? ` = ${(run.wallMs / baseline.wallMs).toFixed(2)}× baseline wall time` : "";
  return `${label}: ${run.wallMs.toFixed(0)} ms for ${INCREMENTS}${ratio}, p50 ${
    percentile(run.latenciesMs, 0.5).toFixed(1)
  } ms, p99 ${percentile(run.latenciesMs, 0.99).toFixed(1)} ms, errors ${run.errors}, executions ${run.executions}`;
}

async function benchmark(kind: DatabaseKind): Promise<boolean> {
  const server = await startCounterServer(kind);
  try {
    const clients = Array.from({ length: INCREMENTS }, () => new ConvexHttpClient(server.url));
    const ids: string[] = [];
    for (let i = 0; i < INCREMENTS; i++) ids.push(await clients[0].mutation(api.counters.create, {}));
    const hotId = await clients[0].mutation(api.counters.create, {});
    // Warm-up: runners, JIT, connections.
    const log = server.backend.executionLog;
    await timed(clients.map((client, i) => () => client.mutation(api.counters.increment, { id: ids[i] })), true, log);

    const spread = await timed(
      clients.map((client, i) => () => client.mutation(api.counters.increment, { id: ids[i] })),
      true,
      log,
    );
    const sequential = await timed(
      clients.map((client) => () => client.mutation(api.counters.increment, { id: ids[0] })),
      false,
      log,
    );
    const hot = await timed(
      clients.map((client) => () => client.mutation(api.counters.increment, { id: hotId })),
      true,
      log,
    );
    const value = await clients[0].query(api.counters.get, { id: hotId });
    const prefix = `contention_bench [${kind}]`;
    console.log(describe(`${prefix} baseline: ${INCREMENTS} concurrent increments of ${INCREMENTS} documents`, spread));
    console.log(describe(`${prefix} baseline: ${INCREMENTS} sequential increments of one document`, sequential));
    console.log(describe(`${prefix} ${INCREMENTS} concurrent increments of ONE document`, hot, spread));
    console.log(
      `${prefix} one document vs sequential: ${(hot.wallMs / sequential.wallMs).toFixed(2)}× wall time; ` +
        `final value ${value} (expected ${INCREMENTS})`,
    );
    return hot.errors === 0 && value === INCREMENTS;
  } finally {
    await server.close();
  }
}

let ok = true;
try {
  for (const kind of ["sqlite", "postgres"] as DatabaseKind[]) ok = (await benchmark(kind)) && ok;
} finally {
  await stopBundler();
}
if (!ok) {
  console.error("contention_bench: some increments failed or were lost");
  Deno.exit(1);
}
