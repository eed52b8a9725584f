/**
 * Inserts under live subscriptions (issue 14: "with 10,000 live subscriptions, insert throughput stays within 0.7× of
 * what it is with none"). The real server (`main.ts serve`, SQLite), an app deployed by the official CLI, `DOCUMENTS`
 * documents under distinct index keys; `CLIENTS` closed-loop HTTP clients insert for `DURATION_MS` per phase:
 *
 *   1. none: no subscription live;
 *   2. untouched: `SUBSCRIPTIONS` distinct live subscriptions (raw sync protocol, held by a separate process so the
 *      client side is not measured), each reading one key of the same index; every insert lands between their ranges
 *      and hits none of them: what having them live costs a commit;
 *   3. hitting one: the same subscriptions, every insert lands in one of their ranges: one re-run and one pushed update
 *      per insert;
 *   4. none again, after the subscribers left (the documents grew; shows the drift between 1 and 2).
 *
 * Each phase prints inserts/s, p50/p99, CPU µs per insert (server and runners, from /proc) and its ratio to phase 1.
 *
 *   deno run -A scripts/bench/subscriptions_insert_bench.ts   (env SUBSCRIPTIONS, SOCKETS, CLIENTS, DURATION_MS,
 *                                                              SERVER_DENO_FLAGS: more `deno run` flags for the server)
 *
 * With env PROFILE_DIR, the server runs with its inspector open and each phase also writes a CPU profile of the server
 * (`<PROFILE_DIR>/<phase>.cpuprofile`) and prints its self time by function and file.
 */
import { createConvexApp, freePort, spawnServer } from "../../tests/helpers/convex_app.ts";
import { descendantPids, processCpuUs } from "../../tests/helpers/server_child.ts";
import { spawnSubscriber } from "./subscriber_process.ts";
import { connectProfiler, type ServerProfiler } from "./subscriptions_server_profile.ts";
import { deployAndSeed, itemsApp } from "./items_app.ts";

const SUBSCRIPTIONS = Number(Deno.env.get("SUBSCRIPTIONS") ?? 10_000);
const SOCKETS = Number(Deno.env.get("SOCKETS") ?? 100);
const CLIENTS = Number(Deno.env.get("CLIENTS") ?? 32);
const DURATION_MS = Number(Deno.env.get("DURATION_MS") ?? 5_000);
const SERVER_DENO_FLAGS = (Deno.env.get("SERVER_DENO_FLAGS") ?? "").split(" ").filter((flag) => flag !== "");
const PROFILE_DIR = Deno.env.get("PROFILE_DIR");
/** One document per subscribed key, so every subscription reads one. */
const DOCUMENTS = SUBSCRIPTIONS;
const WARMUP_MS = 1_000;
/** The goal: inserts with the subscriptions live ≥ this × inserts with none. */
const GOAL_RATIO = 0.7;

const APP = itemsApp(`"s" + j`);

/** Where phase `name`'s `i`-th insert lands: between the subscribed keys (`s<j>-new`), or on one (`s<j>`). */
type KeyOf = (i: number) => string;
const BETWEEN_SUBSCRIBED: KeyOf = (i) => `s${i % SUBSCRIPTIONS}-new`;
const ON_SUBSCRIBED: KeyOf = (i) => `s${(i * 7919) % SUBSCRIPTIONS}`;

interface Phase {
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  failures: number;
  serverCpuUs: number;
  runnersCpuUs: number;
}

async function cpuSnapshot(serverPid: number): Promise<{ server: number; runners: Map<number, number> }> {
  const runners = new Map<number, number>();
  for (const pid of await descendantPids(serverPid)) runners.set(pid, processCpuUs(pid));
  return { server: processCpuUs(serverPid), runners };
}

let nextArg = 0;

async function insert(url: string, keyOf: KeyOf): Promise<boolean> {
  const i = nextArg++;
  const response = await fetch(`${url}/api/mutation`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ path: "bench:add", args: { k: keyOf(i), n: i }, format: "json" }),
  });
  const result = await response.json() as { status: string; errorMessage?: string };
  if (result.status !== "success") console.error(`  insert failed: ${result.errorMessage}`);
  return result.status === "success";
}

/** Where a phase's server profile goes, when profiling. */
interface Profiling {
  profiler: ServerProfiler;
  name: string;
}

/** `CLIENTS` closed-loop clients inserting for WARMUP_MS (not counted), then DURATION_MS. */
async function drive(url: string, serverPid: number, keyOf: KeyOf, profiling: Profiling | null): Promise<Phase> {
  const loop = (deadline: number, onDone: (ms: number, ok: boolean) => void) =>
    Promise.all(Array.from({ length: CLIENTS }, async () => {
      while (performance.now() < deadline) {
        const started = performance.now();
        const ok = await insert(url, keyOf);
        onDone(performance.now() - started, ok);
      }
    }));
  await loop(performance.now() + WARMUP_MS, () => {});
  const latencies: number[] = [];
  let failures = 0;
  await profiling?.profiler.start();
  const before = await cpuSnapshot(serverPid);
  const started = performance.now();
  await loop(started + DURATION_MS, (ms, ok) => ok ? latencies.push(ms) : failures++);
  const seconds = (performance.now() - started) / 1000;
  const after = await cpuSnapshot(serverPid);
  if (profiling) {
    console.log(`server profile, ${profiling.name}:\n${await profiling.profiler.stop(PROFILE_DIR!, profiling.name)}`);
  }
  let runnersUs = 0;
  for (const [pid, us] of after.runners) runnersUs += us - (before.runners.get(pid) ?? 0);
  const calls = latencies.length + failures;
  latencies.sort((a, b) => a - b);
  const at = (fraction: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * fraction))];
  return {
    perSecond: latencies.length / seconds,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    failures,
    serverCpuUs: (after.server - before.server) / calls,
    runnersCpuUs: runnersUs / calls,
  };
}

/** CPU per insert of server and runners together. */
const cpuPerInsertUs = (phase: Phase) => phase.serverCpuUs + phase.runnersCpuUs;

/** The machine's 1-minute load average (others' work shares the cores). */
function loadAverage(): string {
  return Deno.readTextFileSync("/proc/loadavg").split(" ")[0];
}

function phaseLine(label: string, phase: Phase, none: Phase | null, extra = ""): string {
  // On a shared machine the CPU ratio (none's CPU per insert / this phase's) is steadier than the throughput ratio.
  const ratio = none === null
    ? ""
    : ` = ${(phase.perSecond / none.perSecond).toFixed(2)}× none (CPU: ${
      (cpuPerInsertUs(none) / cpuPerInsertUs(phase)).toFixed(2)
    }×)`;
  return `subscriptions_insert_bench: ${label.padEnd(34)} ${phase.perSecond.toFixed(0)}/s${ratio}, ` +
    `p50 ${phase.p50Ms.toFixed(1)} ms, p99 ${phase.p99Ms.toFixed(1)} ms, CPU µs/insert server ` +
    `${phase.serverCpuUs.toFixed(0)}, runners ${phase.runnersCpuUs.toFixed(0)}` +
    (phase.failures > 0 ? `, ${phase.failures} FAILED` : "") + extra + `; load ${loadAverage()}`;
}

async function main(): Promise<void> {
  console.log(
    `subscriptions_insert_bench: ${navigator.hardwareConcurrency} cores, ${CLIENTS} clients, ${DURATION_MS} ms ` +
      `per phase, ${SUBSCRIPTIONS} subscriptions on ${SOCKETS} sockets` +
      (SERVER_DENO_FLAGS.length > 0 ? `, server flags ${SERVER_DENO_FLAGS.join(" ")}` : ""),
  );
  const app = await createConvexApp(APP);
  const inspectPort = PROFILE_DIR === undefined ? null : freePort();
  const server = await spawnServer({
    denoFlags: [...SERVER_DENO_FLAGS, ...(inspectPort === null ? [] : [`--inspect=127.0.0.1:${inspectPort}`])],
  });
  const profiler = inspectPort === null ? null : await connectProfiler(inspectPort);
  const profiling = (name: string) => profiler === null ? null : { profiler, name };
  try {
    await deployAndSeed(app, server, DOCUMENTS);
    const none = await drive(server.url, server.pid, BETWEEN_SUBSCRIBED, profiling("none"));
    console.log(phaseLine("none live", none, null));
    const subscribeStarted = performance.now();
    const subscriber = await spawnSubscriber(server.url, {
      udfPath: "bench:list",
      count: SUBSCRIPTIONS,
      sockets: SOCKETS,
      keyPrefix: "s",
      keyModulo: SUBSCRIPTIONS,
      nonceBase: 0,
    });
    console.log(
      `subscriptions_insert_bench: ${SUBSCRIPTIONS} subscriptions live in ` +
        `${((performance.now() - subscribeStarted) / 1000).toFixed(1)} s` +
        (subscriber.failed > 0 ? `, ${subscriber.failed} FAILED` : ""),
    );
    try {
      const untouched = await drive(server.url, server.pid, BETWEEN_SUBSCRIBED, profiling("live-none-hit"));
      const pushedUntouched = await subscriber.updates();
      console.log(phaseLine(`${SUBSCRIPTIONS} live, none hit`, untouched, none, `; ${pushedUntouched} updates pushed`));
      const hitting = await drive(server.url, server.pid, ON_SUBSCRIBED, profiling("live-each-hits-one"));
      const pushed = await subscriber.updates() - pushedUntouched;
      console.log(
        phaseLine(`${SUBSCRIPTIONS} live, each insert hits one`, hitting, none, `; ${pushed} updates pushed`),
      );
      const ratio = untouched.perSecond / none.perSecond;
      console.log(
        `subscriptions_insert_bench: goal inserts with ${SUBSCRIPTIONS} live ≥ ${GOAL_RATIO}× none: ` +
          `${ratio.toFixed(2)}× (none hit), ${(hitting.perSecond / none.perSecond).toFixed(2)}× (each hits one): ` +
          (ratio >= GOAL_RATIO ? "met" : "MISSED"),
      );
    } finally {
      await subscriber.leave();
    }
    const again = await drive(server.url, server.pid, BETWEEN_SUBSCRIBED, profiling("none-again"));
    console.log(phaseLine("none live again (after they left)", again, none));
  } finally {
    profiler?.close();
    await server.close().catch(() => {});
    await app.dispose();
  }
}

await main();
