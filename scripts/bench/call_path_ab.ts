/**
 * An interleaved A/B of the call path (issue 14): two servers up at once, one started from an older checkout
 * (`BASELINE_TREE`, as in call_path_bench.ts) and one from this tree, with call_path_bench's app deployed by the
 * official CLI and seeded in each. `CLIENTS` closed-loop HTTP clients drive one workload against them in alternating
 * slices of `SLICE_MS` (A then B, then B then A, …), so that the machine's drift, which moves call_path_bench's
 * separate rounds by 20–50 % here, falls on both alike. Prints calls/s and CPU µs per call (server and runners, from
 * /proc) per tree, the after/before ratios, and the spread of the per-pair ratios: an A/A run (the same tree twice)
 * shows how small a difference this can tell. Here, on a day when call_path_bench's 3-round medians of one tree moved by
 * 20 %, an A/A query run of 30 pairs gave 1.016 for calls/s and 0.984 for CPU per call (10 pairs: 1.062 and 0.933).
 * On a later machine, A/A query runs of 20 pairs favoured the server started second by 2–9 %: the pairs are now run in
 * two halves, each with fresh servers started in the opposite order. It also prints the share of the time the host
 * took (steal) and the pairs that lost little to it.
 *
 *   BASELINE_TREE=<dir> deno run -A scripts/bench/call_path_ab.ts   (env WORKLOAD=query|insert|rmw|join|noop, PAIRS, SLICE_MS,
 *                                                                     CLIENTS)
 *
 * Server flags can differ too: env BEFORE_ARGS and AFTER_ARGS (whitespace-separated) go to the before and after server,
 * and without BASELINE_TREE both servers come from this tree. E.g. `AFTER_ARGS=--no-pin-runners` compares unpinned
 * runners with pinned ones; `BEFORE_ARGS="--db postgres://…/ab1" AFTER_ARGS="--db postgres://…/ab2"` runs on
 * PostgreSQL (one database each: two deployments must not share one).
 */
import { createConvexApp, deployApp, type ServerProcess, spawnServer } from "../../tests/helpers/convex_app.ts";
import { processCpuSplitUs } from "../../tests/helpers/server_child.ts";
import {
  APP,
  machineCpuUs,
  median,
  openCaller,
  processKinds,
  seed,
  stealShare,
  type Workload,
  WORKLOADS,
} from "./call_path_bench.ts";

const BASELINE_TREE = Deno.env.get("BASELINE_TREE");
const WORKLOAD = Deno.env.get("WORKLOAD") ?? "query";
const PAIRS = Number(Deno.env.get("PAIRS") ?? 10);
const SLICE_MS = Number(Deno.env.get("SLICE_MS") ?? 1_000);
const CLIENTS = Number(Deno.env.get("CLIENTS") ?? 32);
const BEFORE_ARGS = argsOf("BEFORE_ARGS");
const AFTER_ARGS = argsOf("AFTER_ARGS");

/** The server flags in env `name`, split at whitespace. */
function argsOf(name: string): string[] {
  return (Deno.env.get(name) ?? "").split(/\s+/).filter((word) => word !== "");
}

/** What one slice against one server did. */
interface Slice {
  calls: number;
  failures: number;
  seconds: number;
  cpuUs: number;
  /** The share of the vCPUs' time the host took during the slice (`stealShare`). */
  steal: number;
}

/** Pairs whose two slices both lost less than this to the host count as quiet (see the last line printed). */
const QUIET_STEAL = 0.02;

/** The CPU µs so far of a server and its runners (a runner that exited meanwhile is left out of both readings). */
async function cpuUsOf(server: ServerProcess): Promise<Map<number, number>> {
  const cpu = new Map<number, number>();
  for (const pid of (await processKinds(server.pid)).keys()) {
    try {
      const { userUs, systemUs } = processCpuSplitUs(pid);
      cpu.set(pid, userUs + systemUs);
    } catch {
      // exited between listing and reading
    }
  }
  return cpu;
}

/** `CLIENTS` closed-loop clients calling `workload` on `server` for `ms`. */
async function slice(server: ServerProcess, workload: Workload, ms: number): Promise<Slice> {
  let calls = 0;
  let failures = 0;
  const before = await cpuUsOf(server);
  const machineBefore = machineCpuUs();
  const started = performance.now();
  const deadline = started + ms;
  const callers = await Promise.all(Array.from({ length: CLIENTS }, () => openCaller(server.url)));
  try {
    await Promise.all(callers.map(async (caller) => {
      while (performance.now() < deadline) {
        if ((await caller.call(workload)).status === "success") calls++;
        else failures++;
      }
    }));
  } finally {
    for (const caller of callers) caller.close();
  }
  const seconds = (performance.now() - started) / 1000;
  const steal = stealShare(machineBefore, machineCpuUs());
  const after = await cpuUsOf(server);
  let cpuUs = 0;
  for (const [pid, us] of after) cpuUs += us - (before.get(pid) ?? 0);
  return { calls, failures, seconds, cpuUs, steal };
}

async function startServer(
  spawn: typeof spawnServer,
  app: Awaited<ReturnType<typeof createConvexApp>>,
  extraArgs: string[],
) {
  const server = await spawn({ extraArgs });
  await deployApp(app, server);
  await seed(server.url);
  return server;
}

function totals(slices: Slice[]): { perSecond: number; cpuUsPerCall: number; failures: number } {
  const calls = slices.reduce((sum, s) => sum + s.calls, 0);
  const seconds = slices.reduce((sum, s) => sum + s.seconds, 0);
  const cpuUs = slices.reduce((sum, s) => sum + s.cpuUs, 0);
  return {
    perSecond: calls / seconds,
    cpuUsPerCall: cpuUs / calls,
    failures: slices.reduce((n, s) => n + s.failures, 0),
  };
}

async function main(): Promise<void> {
  if (BASELINE_TREE === undefined && BEFORE_ARGS.length + AFTER_ARGS.length === 0) {
    throw new Error("set BASELINE_TREE to the older checkout to compare with, or BEFORE_ARGS / AFTER_ARGS");
  }
  const workload = WORKLOADS.find((each) => each.name === WORKLOAD);
  if (workload === undefined) throw new Error(`unknown WORKLOAD ${WORKLOAD}`);
  const app = await createConvexApp(APP);
  const baselineSpawn = BASELINE_TREE === undefined
    ? spawnServer
    : (await import(`file://${BASELINE_TREE}/tests/helpers/convex_app.ts`)).spawnServer as typeof spawnServer;
  try {
    const slices: Slice[][] = [[], []];
    const pairRatios = { perSecond: [] as number[], cpu: [] as number[] };
    const quietRatios = { perSecond: [] as number[], cpu: [] as number[] };
    const machineBefore = machineCpuUs();
    let pair = 0;
    // Two halves, each with fresh servers, started in the opposite order: the server started second ran faster, by
    // 2–9 % in A/A runs of 20 pairs here (BASELINE_TREE = this tree), and the halves cancel that out.
    for (const startOrder of [[0, 1], [1, 0]]) {
      const servers = await startServers(startOrder, [
        () => startServer(baselineSpawn, app, BEFORE_ARGS),
        () => startServer(spawnServer, app, AFTER_ARGS),
      ]);
      try {
        for (const server of servers) await slice(server, workload, 1_000); // warm-up, not counted
        for (const halfEnd = pair === 0 ? Math.ceil(PAIRS / 2) : PAIRS; pair < halfEnd; pair++) {
          // A then B, then B then A: a drift within a pair weighs on both the same over two pairs.
          const order = pair % 2 === 0 ? [0, 1] : [1, 0];
          const got: Slice[] = [];
          for (const side of order) got[side] = await slice(servers[side], workload, SLICE_MS);
          for (const side of [0, 1]) slices[side].push(got[side]);
          const rate = (s: Slice) => s.calls / s.seconds;
          const ratios = [pairRatios];
          if (got[0].steal < QUIET_STEAL && got[1].steal < QUIET_STEAL) ratios.push(quietRatios);
          for (const into of ratios) {
            into.perSecond.push(rate(got[1]) / rate(got[0]));
            into.cpu.push((got[1].cpuUs / got[1].calls) / (got[0].cpuUs / got[0].calls));
          }
        }
      } finally {
        for (const server of servers) await server.close().catch(() => {});
      }
    }
    const hostSteal = stealShare(machineBefore, machineCpuUs());
    const [before, after] = slices.map(totals);
    const spread = (values: number[]) =>
      `median ${median(values).toFixed(3)}, ${Math.min(...values).toFixed(3)}–${Math.max(...values).toFixed(3)}`;
    console.log(
      `call_path_ab: ${WORKLOAD}, ${CLIENTS} clients, ${PAIRS} pairs of ${SLICE_MS} ms slices, ` +
        `${navigator.hardwareConcurrency} cores; the host took ${(hostSteal * 100).toFixed(1)} % of their time ` +
        `(steal: past a few %, expect a wide spread of pair ratios)`,
    );
    console.log(
      `call_path_ab: before ${before.perSecond.toFixed(0)} calls/s, ${before.cpuUsPerCall.toFixed(0)} µs CPU/call; ` +
        `after ${after.perSecond.toFixed(0)} calls/s, ${after.cpuUsPerCall.toFixed(0)} µs CPU/call` +
        (before.failures + after.failures > 0
          ? `; FAILED calls: ${before.failures} before, ${after.failures} after`
          : ""),
    );
    console.log(
      `call_path_ab: after/before calls/s ${(after.perSecond / before.perSecond).toFixed(3)} (pairs: ${
        spread(pairRatios.perSecond)
      }); CPU/call ${(after.cpuUsPerCall / before.cpuUsPerCall).toFixed(3)} (pairs: ${spread(pairRatios.cpu)})`,
    );
    // A burst of steal slows the slice it falls in and skews that pair: the quiet pairs alone are the cleaner reading.
    console.log(
      `call_path_ab: quiet pairs (host steal under ${QUIET_STEAL * 100} % in both slices): ` +
        `${quietRatios.perSecond.length} of ${PAIRS}` +
        (quietRatios.perSecond.length === 0
          ? ""
          : `; calls/s ${spread(quietRatios.perSecond)}; CPU/call ${spread(quietRatios.cpu)}`),
    );
  } finally {
    await app.dispose();
  }
}

/** Starts the before (0) and after (1) servers one after the other in `order`; returns them as [before, after]. */
async function startServers(
  order: number[],
  starts: (() => Promise<ServerProcess>)[],
): Promise<ServerProcess[]> {
  const servers: ServerProcess[] = [];
  try {
    for (const side of order) servers[side] = await starts[side]();
  } catch (error) {
    for (const server of servers) await server?.close().catch(() => {});
    throw error;
  }
  return servers;
}

await main();
