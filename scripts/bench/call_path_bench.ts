/**
 * The call path (issue 14): what a function call costs beyond the work it does. The real server (`main.ts serve`,
 * SQLite) with a small app deployed by the official CLI and 10,000 documents, driven by `CLIENTS` closed-loop HTTP
 * clients (keep-alive connections of the lean client in http_load.ts; env HTTP_CLIENT=fetch for `fetch`); against a
 * bare `Deno.serve` handler doing the same node:sqlite work (WAL, synchronous=FULL, writes group-committed), measured
 * in the same run, each in its own process. The `ws` workload compares the official clients: `ConvexClient` (sync
 * protocol) against `ConvexHttpClient` (HTTP), both calling the insert mutation, in interleaved slices. Per workload:
 * calls/s, p50/p99, the ratio to the bare handler, CPU µs per call read from /proc (server and runners separately, and
 * by thread: main thread, user-code worker, V8's and Tokio's helpers), and context switches per call per process kind
 * (blocked: hand-offs between threads and processes; preempted). Memory: RSS and PSS per process kind, idle and after
 * the load. The `noop` workload, a query that does nothing, shows what the call path alone costs.
 *
 *   deno run -A scripts/bench/call_path_bench.ts      (env DURATION_MS, CLIENTS, ONLY=query,insert,rmw,join,noop,ws,one,
 *                                                      CLIENT_CPU=any|server|runner)
 *
 * With env BASELINE_TREE=<dir> (a copy of an older checkout, e.g. `git archive HEAD | tar -x -C <dir>` plus a
 * `node_modules` link), the same workloads run first against a server started from that tree: before and after in one
 * run, each against its own bare-handler measurement. Env ROUNDS=n (default 1) alternates before and after n times,
 * each round with fresh servers, and ends with the medians of each workload's calls/s, CPU per call and ratio to the
 * bare handler: on a machine whose speed drifts by 10–20 % within minutes, one round cannot tell a small change from
 * noise.
 *
 * Env SERVER_DENO_FLAGS adds `deno run` flags to the server process (space-separated), e.g.
 * `SERVER_DENO_FLAGS=--v8-flags=--max-semi-space-size=4`.
 */
import { createConvexApp, deployApp, type ServerProcess, spawnServer } from "../../tests/helpers/convex_app.ts";
import {
  commandLineOf,
  type ContextSwitches,
  descendantPids,
  processContextSwitches,
  processCpuSplitUs,
} from "../../tests/helpers/server_child.ts";
import { ConvexClient, ConvexHttpClient } from "convex/browser";
import { ITEMS_FUNCTIONS_TS } from "./items_app.ts";
import { KeepAliveClient } from "./http_load.ts";

const DURATION_MS = Number(Deno.env.get("DURATION_MS") ?? 4_000);
/**
 * Load on each fresh server before the measured runs, so they see its steady state: 6–8 s into its first load, V8
 * optimizes the whole call path at once (issue 14: ~370 ms of TurboFan work in the transaction runner alone, on the one
 * CPU it is pinned to, and at the same moment in the server), and the calls in flight then wait up to ~50 ms more. A
 * server goes through it once (runners live on; one that comes up for a burst goes through it again). Its p50 and p99
 * are printed apart as the cold start. Env COLD_START_MS; 0 skips it.
 */
const COLD_START_MS = Number(Deno.env.get("COLD_START_MS") ?? 10_000);
const CLIENTS = Number(Deno.env.get("CLIENTS") ?? 32);
const ONLY = (Deno.env.get("ONLY") ?? "query,insert,rmw,join,noop,ws,one").split(",");
const SERVER_DENO_FLAGS = (Deno.env.get("SERVER_DENO_FLAGS") ?? "").split(" ").filter((flag) => flag !== "");
const ROUNDS = Number(Deno.env.get("ROUNDS") ?? 1);
/** Where the bench's clients run: `any`, `server` or `runner` (see `placeClients`). */
const CLIENT_CPU = Deno.env.get("CLIENT_CPU") ?? "any";
if (!["any", "server", "runner"].includes(CLIENT_CPU)) throw new Error(`CLIENT_CPU must be any, server or runner`);
/** The benches' HTTP client: `lean` (http_load.ts, the default) or `fetch`. */
const HTTP_CLIENT = Deno.env.get("HTTP_CLIENT") ?? "lean";
/** Documents seeded: KEYS groups of GROUP_SIZE under one index key each, so `take(10)` reads exactly ten. */
const KEYS = 1_000;
const GROUP_SIZE = 10;
const COUNTERS = 1_000;
const SEED_BATCH = 1_000;

export const APP: Record<string, string> = {
  "schema.ts": `
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
export default defineSchema({
  items: defineTable({ k: v.string(), n: v.number() }).index("by_k", ["k"]),
  counters: defineTable({ i: v.number(), value: v.number() }).index("by_i", ["i"]),
});
`,
  "bench.ts": ITEMS_FUNCTIONS_TS + `
export const bump = mutation({
  args: { i: v.number() },
  handler: async (ctx, { i }) => {
    const counter = await ctx.db.query("counters").withIndex("by_i", (q) => q.eq("i", i)).unique();
    if (counter === null) throw new Error("no counter " + i);
    await ctx.db.patch(counter._id, { value: counter.value + 1 });
    return counter.value + 1;
  },
});
/** The ten items of one key, then each of them again by id, the gets issued together (a join's usual shape). */
export const join = query({
  args: { k: v.string(), nonce: v.number() },
  handler: async (ctx, { k }) => {
    const items = await ctx.db.query("items").withIndex("by_k", (q) => q.eq("k", k)).take(10);
    return await Promise.all(items.map((item) => ctx.db.get(item._id)));
  },
});
export const seed = mutation({
  args: { from: v.number(), count: v.number(), counters: v.boolean() },
  handler: async (ctx, { from, count, counters }) => {
    for (let j = from; j < from + count; j++) {
      if (counters) await ctx.db.insert("counters", { i: j, value: 0 });
      else await ctx.db.insert("items", { k: "k" + (j % ${KEYS}), n: j });
    }
  },
});
`,
};

/** One workload: the function call and its bare equivalent. */
export interface Workload {
  name: string;
  kind: "query" | "mutation";
  path: string;
  args(i: number): Record<string, unknown>;
}

export const WORKLOADS: Workload[] = [
  {
    name: "query",
    kind: "query",
    path: "bench:list",
    args: (i) => ({ k: `k${(i * 7919) % KEYS}`, nonce: i }),
  },
  { name: "insert", kind: "mutation", path: "bench:add", args: (i) => ({ k: `k${i % KEYS}`, n: i }) },
  { name: "rmw", kind: "mutation", path: "bench:bump", args: (i) => ({ i: (i * 7919) % COUNTERS }) },
  // An index read, then ten point reads issued together (batched into one crossing, issue 14).
  { name: "join", kind: "query", path: "bench:join", args: (i) => ({ k: `k${(i * 7919) % KEYS}`, nonce: i }) },
  // No work at all: what the call path alone costs (HTTP, the pool, the runner process and its sandboxed worker).
  { name: "noop", kind: "query", path: "bench:noop", args: (i) => ({ nonce: i }) },
];

// ---------------------------------------------------------------------------------------------------------------
// The bare handler (runs in its own process: `call_path_bench.ts --bare <db file>`).

/** The bare handler's database: the bench's documents as JSON rows, its statements, and group-committed writes. */
export interface BareDatabase {
  /** The JSON texts of the first ten items under key `k`. */
  listItems(k: string): string[];
  /** The same ten items, read again one by one by id (`join`). */
  joinItems(k: string): string[];
  /** Inserts an item (its document's JSON), group-committed; resolves with its row id once durable. */
  insertItem(k: string, json: string): Promise<string>;
  /** Adds one to a counter, group-committed; resolves with its new value once durable. */
  bumpCounter(i: number): Promise<number>;
}

/** Creates and seeds the bare handler's database at `dbPath` (WAL, synchronous=FULL, as denvex's). */
export async function openBareDatabase(dbPath: string): Promise<BareDatabase> {
  const { DatabaseSync } = await import("node:sqlite");
  const db = new DatabaseSync(dbPath);
  db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
    CREATE TABLE items (id INTEGER PRIMARY KEY, k TEXT NOT NULL, json TEXT NOT NULL);
    CREATE INDEX items_k ON items (k, id);
    CREATE TABLE counters (i INTEGER PRIMARY KEY, json TEXT NOT NULL);`);
  const insertItem = db.prepare("INSERT INTO items (k, json) VALUES (?, ?)");
  const selectItems = db.prepare("SELECT json FROM items WHERE k = ? ORDER BY id LIMIT 10");
  const selectItemIds = db.prepare("SELECT id FROM items WHERE k = ? ORDER BY id LIMIT 10");
  const selectItem = db.prepare("SELECT json FROM items WHERE id = ?");
  const selectCounter = db.prepare("SELECT json FROM counters WHERE i = ?");
  const updateCounter = db.prepare("UPDATE counters SET json = ? WHERE i = ?");
  db.exec("BEGIN");
  for (let j = 0; j < KEYS * GROUP_SIZE; j++) {
    insertItem.run(`k${j % KEYS}`, JSON.stringify({ k: `k${j % KEYS}`, n: j, _creationTime: Date.now() }));
  }
  const insertCounter = db.prepare("INSERT INTO counters (i, json) VALUES (?, ?)");
  for (let i = 0; i < COUNTERS; i++) insertCounter.run(i, JSON.stringify({ i, value: 0 }));
  db.exec("COMMIT");
  // Group commit: writes that arrive in one turn of the event loop go in one transaction (one fsync per group).
  let pending: { run: () => unknown; resolve: (value: unknown) => void }[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    const group = pending;
    pending = [];
    db.exec("BEGIN");
    const results = group.map((write) => write.run());
    db.exec("COMMIT");
    group.forEach((write, index) => write.resolve(results[index]));
  };
  const write = <T>(run: () => T) =>
    new Promise<T>((resolve) => {
      pending.push({ run, resolve: resolve as (value: unknown) => void });
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });
  return {
    listItems: (k) => (selectItems.all(k) as { json: string }[]).map((row) => row.json),
    joinItems: (k) =>
      (selectItemIds.all(k) as { id: number }[]).map((row) => (selectItem.get(row.id) as { json: string }).json),
    insertItem: (k, json) => write(() => String(insertItem.run(k, json).lastInsertRowid)),
    bumpCounter: (i) =>
      write(() => {
        const counter = JSON.parse((selectCounter.get(i) as { json: string }).json);
        counter.value++;
        updateCounter.run(JSON.stringify(counter), i);
        return counter.value as number;
      }),
  };
}

async function serveBare(dbPath: string): Promise<void> {
  const db = await openBareDatabase(dbPath);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    const { path, args } = await request.json() as { path: string; args: Record<string, unknown> };
    let value: unknown;
    if (path === "bench:noop") {
      value = null;
    } else if (path === "bench:list") {
      value = db.listItems(args.k as string).map((json) => JSON.parse(json));
    } else if (path === "bench:join") {
      value = db.joinItems(args.k as string).map((json) => JSON.parse(json));
    } else if (path === "bench:add") {
      value = await db.insertItem(args.k as string, JSON.stringify({ ...args, _creationTime: Date.now() }));
    } else {
      value = await db.bumpCounter(args.i as number);
    }
    return Response.json({ status: "success", value, logLines: [] });
  });
  console.log(`port ${server.addr.port}`);
}

/** A helper HTTP server in its own process. */
export interface HelperServer {
  url: string;
  pid: number;
  close(): Promise<void>;
}

function spawnBare(): Promise<HelperServer> {
  return spawnHelperServer(new URL(import.meta.url).pathname, ["--bare"]);
}

/**
 * Starts `deno run -A <script> <args…> <fresh temp dir>/bare.sqlite3` and waits until it prints `port <n>`. Closing it
 * stops the process and removes the folder.
 */
export async function spawnHelperServer(script: string, args: string[]): Promise<HelperServer> {
  const dir = await Deno.makeTempDir({ prefix: "denvex-bare-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...args, `${dir}/bare.sqlite3`],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/port \d+/.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the bare server did not start");
    text += value;
  }
  (async () => {
    while (!(await reader.read()).done) { /* discard */ }
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${/port (\d+)/.exec(text)![1]}`,
    pid: child.pid,
    async close() {
      child.kill("SIGTERM");
      await child.status;
      await Deno.remove(dir, { recursive: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Measuring.

/** The processes of one side: the server (or bare handler) and its runners, by kind. */
export async function processKinds(rootPid: number, rootKind = "server"): Promise<Map<number, string>> {
  const kinds = new Map<number, string>([[rootPid, rootKind]]);
  for (const pid of await descendantPids(rootPid)) {
    const command = await commandLineOf(pid);
    if (command.includes("node_runner") || command.includes("node-runner")) kinds.set(pid, "node runner");
    else if (/ runner( |$)/.test(command)) {
      kinds.set(pid, / --allow-net( |$)|--deny-net/.test(command) ? "action runner" : "transaction runner");
    } else kinds.set(pid, "other");
  }
  return kinds;
}

/**
 * The machine's CPU time so far, all cores, from /proc/stat's first line (user nice system idle iowait irq softirq
 * steal guest guest_nice): busy is user, nice, system, irq and softirq (guest time is already in user); steal is time
 * the vCPUs were ready to run and the host ran something else, which no process's figures include. On a VM whose host
 * is busy, steal is what moves these benchmarks' figures from run to run (4–26 % of the CPU time in one call_path_ab
 * run here), so both report it.
 */
export function machineCpuUs(): MachineCpu {
  const ticks = Deno.readTextFileSync("/proc/stat").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal = 0] = ticks;
  const busy = user + nice + system + irq + softirq;
  return { busyUs: busy * 10_000, stealUs: steal * 10_000, totalUs: (busy + idle + iowait + steal) * 10_000 };
}

/** A `machineCpuUs` reading: busy, stolen, and all CPU time so far (busy, idle, iowait and steal), all cores. */
export interface MachineCpu {
  busyUs: number;
  stealUs: number;
  totalUs: number;
}

/**
 * The share of the vCPUs' time the host took between two `machineCpuUs` readings, of the machine's CPU time between
 * them as /proc/stat counts it (every online CPU, whatever this process's affinity).
 */
export function stealShare(before: MachineCpu, after: MachineCpu): number {
  const totalUs = after.totalUs - before.totalUs;
  return totalUs > 0 ? (after.stealUs - before.stealUs) / totalUs : 0;
}

/** The threads a process's CPU is split into: its main thread, user-code workers (runners) and the rest (V8, Tokio). */
type ThreadKind = "main" | "worker" | "helpers";
const THREAD_KINDS: ThreadKind[] = ["main", "worker", "helpers"];

/** CPU µs (and the kernel's part of it), its split by thread, and context switches so far, summed per kind. */
type Counters = { cpuUs: number; systemUs: number; threadUs: Record<ThreadKind, number> } & ContextSwitches;
const NO_COUNTS: Counters = {
  cpuUs: 0,
  systemUs: 0,
  threadUs: { main: 0, worker: 0, helpers: 0 },
  voluntary: 0,
  involuntary: 0,
};

/** On-CPU µs so far of process `pid`'s live threads by kind (schedstat; a thread that ended is not counted). */
function threadCpuUs(pid: number): Record<ThreadKind, number> {
  const us: Record<ThreadKind, number> = { main: 0, worker: 0, helpers: 0 };
  try {
    for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        const name = Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/comm`).trim();
        const ns = Number(Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/schedstat`).split(" ")[0]);
        const kind = task.name === String(pid) ? "main" : name.startsWith("worker-") ? "worker" : "helpers";
        us[kind] += ns / 1000;
      } catch {
        // The thread ended between listing and reading.
      }
    }
  } catch {
    // The process exited.
  }
  return us;
}

/** Each process's counters so far. */
function countersByPid(kinds: Map<number, string>): Map<number, Counters> {
  const counters = new Map<number, Counters>();
  for (const pid of kinds.keys()) {
    const switches = processContextSwitches(pid);
    const { userUs, systemUs } = processCpuSplitUs(pid);
    counters.set(pid, { cpuUs: userUs + systemUs, systemUs, threadUs: threadCpuUs(pid), ...switches });
  }
  return counters;
}

/** What a run costs per call, measured between `startMeter` and its `stop`. */
type CallCosts = Pick<
  Run,
  | "cpuUsPerCall"
  | "systemUsPerCall"
  | "threadUsPerCall"
  | "switchesPerCall"
  | "machineUsPerCall"
  | "hostSteal"
  | "replacedProcesses"
>;

/**
 * Starts counting the CPU and context switches of the processes `processesOf` lists, by kind, and the machine's busy
 * CPU. Per process: a runner started during the run counts from zero; one that exited during it is left out (what it
 * used before exiting can no longer be read) and counted in `replacedProcesses`, so the figures are a floor then.
 */
async function startMeter(processesOf: ProcessesOf): Promise<{ stop(calls: number): Promise<CallCosts> }> {
  const before = countersByPid(await processesOf());
  const machineBefore = machineCpuUs();
  return {
    async stop(calls) {
      const machineAfter = machineCpuUs();
      const machineUsPerCall = (machineAfter.busyUs - machineBefore.busyUs) / calls;
      const hostSteal = stealShare(machineBefore, machineAfter);
      const kinds = await processesOf();
      const after = countersByPid(kinds);
      const cpuUsPerCall = new Map<string, number>();
      const systemUsPerCall = new Map<string, number>();
      const threadUsPerCall = new Map<string, Record<ThreadKind, number>>();
      const switchesPerCall = new Map<string, ContextSwitches>();
      for (const [pid, counters] of after) {
        const kind = kinds.get(pid)!;
        const start = before.get(pid) ?? NO_COUNTS;
        const add = (map: Map<string, number>, value: number) => map.set(kind, (map.get(kind) ?? 0) + value / calls);
        add(cpuUsPerCall, counters.cpuUs - start.cpuUs);
        add(systemUsPerCall, counters.systemUs - start.systemUs);
        const threads = threadUsPerCall.get(kind) ?? { main: 0, worker: 0, helpers: 0 };
        for (const thread of THREAD_KINDS) {
          threads[thread] += (counters.threadUs[thread] - start.threadUs[thread]) / calls;
        }
        threadUsPerCall.set(kind, threads);
        const switches = switchesPerCall.get(kind) ?? { voluntary: 0, involuntary: 0 };
        switchesPerCall.set(kind, {
          voluntary: switches.voluntary + (counters.voluntary - start.voluntary) / calls,
          involuntary: switches.involuntary + (counters.involuntary - start.involuntary) / calls,
        });
      }
      const replacedProcesses = [...before.keys()].filter((pid) => !after.has(pid)).length;
      return {
        cpuUsPerCall,
        systemUsPerCall,
        threadUsPerCall,
        switchesPerCall,
        machineUsPerCall,
        hostSteal,
        replacedProcesses,
      };
    },
  };
}

/**
 * The CPUs each process may run on (`Cpus_allowed_list`): the server and its transaction runner each pin to one
 * (src/runtime/cpu_affinity.ts), which one by the server's pid. Printed because on this 2-vCPU machine the layout
 * splits a fresh server's throughput in two (issue 14, a throwaway probe of 6 fresh servers, 8 s of query load each:
 * 2,419–2,461/s with the server on CPU 0 and the runner on CPU 1, 1,347–1,810/s the other way round; once 2,287/s
 * the other way round, with the bench's own main thread beside the server): compare runs of the same layout.
 */
function cpuLayoutText(kinds: Map<number, string>): string {
  const parts: string[] = [];
  for (const [pid, kind] of kinds) {
    const cpus = allowedCpus(pid);
    if (cpus !== null) parts.push(`${kind} ${cpus}`); // else it exited meanwhile
  }
  return `CPUs: ${parts.join(", ")}`;
}

/** The CPUs process `pid` may run on (`Cpus_allowed_list`), or null once it is gone. */
function allowedCpus(pid: number): string | null {
  try {
    return /^Cpus_allowed_list:\s*(\S+)/m.exec(Deno.readTextFileSync(`/proc/${pid}/status`))?.[1] ?? null;
  } catch {
    return null;
  }
}

/** The CPUs the bench started with, restored after each server's runs when CLIENT_CPU pinned it. */
const BENCH_CPUS = allowedCpus(Deno.pid);

/** Pins every thread of the bench process (its clients, the bare handler's are another process) to `cpus`. */
async function pinBench(cpus: string): Promise<void> {
  const output = await new Deno.Command("taskset", {
    args: ["-a", "-c", "-p", cpus, String(Deno.pid)],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!output.success) throw new Error(`taskset: ${new TextDecoder().decode(output.stderr)}`);
}

/**
 * Where the clients run, by env CLIENT_CPU: `any` (default; the scheduler decides, as before), `server` (the CPU the
 * server is pinned to) or `runner` (the transaction runner's). The clients take CPU on a 2-core machine wherever they
 * run; beside the transaction runner, whose CPU is the busy one under queries, that is throughput lost (issue 14, a
 * throwaway probe: 0.55–0.74× the queries/s of the same server with the clients beside the server). Production clients
 * run elsewhere. Returns the CPUs the bench was pinned to, or null.
 */
async function placeClients(kinds: Map<number, string>): Promise<string | null> {
  if (CLIENT_CPU === "any") return null;
  const wanted = CLIENT_CPU === "server" ? "server" : "transaction runner";
  const pid = [...kinds].find(([, kind]) => kind === wanted)?.[0];
  const cpus = pid === undefined ? null : allowedCpus(pid);
  if (cpus === null) throw new Error(`CLIENT_CPU=${CLIENT_CPU}: no ${wanted} process to place the clients beside`);
  await pinBench(cpus);
  return cpus;
}

function memoryOf(pid: number): { rssKib: number; pssKib: number } {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/smaps_rollup`);
    const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0);
    return { rssKib: kib("Rss"), pssKib: kib("Pss") };
  } catch {
    return { rssKib: 0, pssKib: 0 };
  }
}

function memoryLine(label: string, kinds: Map<number, string>): string {
  const byKind = new Map<string, { n: number; rssKib: number; pssKib: number }>();
  let rssKib = 0, pssKib = 0;
  for (const [pid, kind] of kinds) {
    const memory = memoryOf(pid);
    const sum = byKind.get(kind) ?? { n: 0, rssKib: 0, pssKib: 0 };
    byKind.set(kind, { n: sum.n + 1, rssKib: sum.rssKib + memory.rssKib, pssKib: sum.pssKib + memory.pssKib });
    rssKib += memory.rssKib;
    pssKib += memory.pssKib;
  }
  const mib = (kib: number) => (kib / 1024).toFixed(0);
  const parts = [...byKind].map(([kind, sum]) =>
    `${kind}${sum.n > 1 ? ` ×${sum.n}` : ""} ${mib(sum.rssKib)}/${mib(sum.pssKib)}`
  );
  return `memory ${label}: total RSS ${mib(rssKib)} MiB, PSS ${mib(pssKib)} MiB (RSS/PSS MiB: ${parts.join(", ")})`;
}

export interface Run {
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  failures: number;
  calls: number;
  cpuUsPerCall: Map<string, number>;
  /**
   * `cpuUsPerCall` by thread, from each thread's on-CPU time (schedstat): where in a process the CPU goes, e.g. a
   * runner's main thread (socket, database) against its user-code worker. Threads that ended during the run are not
   * counted.
   */
  threadUsPerCall: Map<string, Record<ThreadKind, number>>;
  /** The kernel's part of `cpuUsPerCall` (system calls, and the wake-ups of each hand-off between threads). */
  systemUsPerCall: Map<string, number>;
  /**
   * Context switches per call by process kind: how often its threads blocked (hand-offs between threads and processes)
   * and how often they were preempted.
   */
  switchesPerCall: Map<string, ContextSwitches>;
  /** The whole machine's busy CPU per call, the benchmark's own clients included (steal not counted). */
  machineUsPerCall: number;
  /** The share of the vCPUs' time their host took during the run (see `machineCpuUs`). */
  hostSteal: number;
  /** Processes that exited during the run (see `startMeter`): their CPU is not in the figures. */
  replacedProcesses: number;
}

function percentile(sorted: number[], fraction: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))];
}

let nextArg = 0;

/**
 * The processes whose CPU a run counts, listed after its warm-up: a runner the pool spawns for the load (its second
 * transaction runner) is counted too.
 */
export type ProcessesOf = () => Promise<Map<number, string>>;

/** Convex's answer to an HTTP function call: `status`, and `errorMessage` when it failed. */
export interface CallAnswer {
  status: string;
  errorMessage?: string;
}

/** The body of one call of `workload`, with a fresh argument. */
function callBody(workload: Workload): string {
  return JSON.stringify({ path: workload.path, args: workload.args(nextArg++), format: "json" });
}

/** One call of `workload` with `fetch` (a new request each time; see `openCaller` for the benches' own client). */
export async function callOverHttp(url: string, workload: Workload): Promise<CallAnswer> {
  const init = { method: "POST", headers: { "Content-Type": "application/json" }, body: callBody(workload) };
  const response = await fetch(`${url}/api/${workload.kind}`, init);
  return await response.json() as CallAnswer;
}

/** One closed-loop client: calls a workload over its own connection, one call at a time. */
export interface Caller {
  call(workload: Workload): Promise<CallAnswer>;
  close(): void;
}

/**
 * One closed-loop client's caller: its own keep-alive connection through the lean client of http_load.ts (why not
 * `fetch`: see there), or `fetch` with env HTTP_CLIENT=fetch, as these benches measured before.
 */
export async function openCaller(url: string): Promise<Caller> {
  if (HTTP_CLIENT === "fetch") return { call: (workload) => callOverHttp(url, workload), close: () => {} };
  const client = await KeepAliveClient.connect(url);
  return {
    async call(workload) {
      const response = await client.postJson(`/api/${workload.kind}`, callBody(workload));
      return JSON.parse(response.body) as CallAnswer;
    },
    close: () => client.close(),
  };
}

/** `clients` closed-loop HTTP clients calling `workload` for `durationMs` (after a warm-up of up to 1 s). */
export async function drive(
  url: string,
  workload: Workload,
  clients: number,
  processesOf: ProcessesOf,
  durationMs = DURATION_MS,
): Promise<Run> {
  const callers = await Promise.all(Array.from({ length: clients }, () => openCaller(url)));
  try {
    return await driveCallers(callers, workload, processesOf, durationMs);
  } finally {
    for (const caller of callers) caller.close();
  }
}

/** `drive`'s closed loops over callers already open. */
async function driveCallers(
  callers: Caller[],
  workload: Workload,
  processesOf: ProcessesOf,
  durationMs: number,
): Promise<Run> {
  const latencies: number[] = [];
  let failures = 0;
  const call = async (caller: Caller) => {
    const started = performance.now();
    const result = await caller.call(workload);
    if (result.status !== "success") {
      if (failures++ === 0) console.error(`  ${workload.name} failed: ${result.errorMessage}`);
    } else latencies.push(performance.now() - started);
  };
  const warmupDeadline = performance.now() + Math.min(1_000, durationMs / 4);
  await Promise.all(callers.map(async (caller) => {
    while (performance.now() < warmupDeadline) await call(caller);
  }));
  latencies.length = 0;
  failures = 0;
  const meter = await startMeter(processesOf);
  const started = performance.now();
  const deadline = started + durationMs;
  await Promise.all(callers.map(async (caller) => {
    while (performance.now() < deadline) await call(caller);
  }));
  const seconds = (performance.now() - started) / 1000;
  const calls = latencies.length + failures;
  return runOf(latencies, seconds, failures, await meter.stop(calls));
}

/** A run's figures from its successful calls' latencies (sorted here), its length and its costs. */
function runOf(latencies: number[], seconds: number, failures: number, costs: CallCosts): Run {
  latencies.sort((a, b) => a - b);
  return {
    perSecond: latencies.length / seconds,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    failures,
    calls: latencies.length + failures,
    ...costs,
  };
}

export function cpuText(run: Run): string {
  const total = [...run.cpuUsPerCall.values()].reduce((a, b) => a + b, 0);
  const parts = [...run.cpuUsPerCall].filter(([, us]) => us > 0).map(([kind, us]) =>
    `${kind} ${us.toFixed(0)} (kernel ${(run.systemUsPerCall.get(kind) ?? 0).toFixed(0)})`
  );
  const replaced = run.replacedProcesses === 0
    ? ""
    : `; ${run.replacedProcesses} process(es) exited during the run, their CPU not counted`;
  const steal = run.hostSteal >= 0.005 ? `, host steal ${(run.hostSteal * 100).toFixed(0)} %` : "";
  return `CPU ${total.toFixed(0)} µs/call (${parts.join(", ") || "—"}; machine ${
    run.machineUsPerCall.toFixed(0)
  }${steal}${replaced})`;
}

/** CPU per call by thread of each kind that ran any: `kind main/worker/helpers`. */
export function threadsText(run: Run): string {
  const parts = [...run.threadUsPerCall].filter(([kind]) => (run.cpuUsPerCall.get(kind) ?? 0) > 0).map((
    [kind, us],
  ) =>
    `${kind} ${THREAD_KINDS.filter((thread) => us[thread] >= 0.5).map((t) => `${t} ${us[t].toFixed(0)}`).join(" ")}`
  );
  return parts.length === 0 ? "" : `; threads µs/call: ${parts.join(", ")}`;
}

/**
 * CPUs each process kind kept busy (CPU per call × calls/s). Runners and the server are pinned to CPUs of their own
 * (src/runtime/cpu_affinity.ts), so a kind near 1.0 is the one whose CPU bounds the calls/s: on 2 vCPUs, the
 * transaction runner's for queries (issue 14).
 */
function busyText(run: Run): string {
  const parts = [...run.cpuUsPerCall].filter(([, us]) => us * run.perSecond >= 10_000)
    .map(([kind, us]) => `${kind} ${(us * run.perSecond / 1e6).toFixed(2)}`);
  return parts.length === 0 ? "" : `; CPUs busy: ${parts.join(", ")}`;
}

/** Context switches per call of the kinds that have any: blocked + preempted. */
function switchesText(run: Run): string {
  const parts = [...run.switchesPerCall].filter(([, { voluntary, involuntary }]) => voluntary + involuntary >= 0.05)
    .map(([kind, { voluntary, involuntary }]) => `${kind} ${voluntary.toFixed(1)}+${involuntary.toFixed(1)}`);
  return parts.length === 0 ? "" : `; switches/call, blocked+preempted: ${parts.join(", ")}`;
}

export function runText(run: Run): string {
  return `${run.perSecond.toFixed(0)}/s, p50 ${run.p50Ms.toFixed(1)} ms, p99 ${run.p99Ms.toFixed(1)} ms, ${
    cpuText(run)
  }${busyText(run)}${threadsText(run)}${switchesText(run)}` +
    (run.failures > 0 ? `, ${run.failures} FAILED` : "");
}

/** An official client's mutation call: `ConvexClient`'s (WebSocket) and `ConvexHttpClient`'s (HTTP) alike. */
interface OfficialClient {
  // deno-lint-ignore no-explicit-any
  mutation(path: any, args: Record<string, unknown>): Promise<unknown>;
}

/** Slices of the official clients' comparison: each protocol's share of the time, in turns of this length. */
const OFFICIAL_CLIENT_SLICE_MS = 1_000;

/** The merged costs of several metered slices, each weighted by its calls. */
function mergeCosts(parts: { calls: number; costs: CallCosts }[]): CallCosts {
  const calls = parts.reduce((sum, part) => sum + part.calls, 0);
  const weighted = (value: (costs: CallCosts) => number) =>
    parts.reduce((sum, part) => sum + value(part.costs) * part.calls, 0) / calls;
  const kinds = new Set(parts.flatMap((part) => [...part.costs.cpuUsPerCall.keys()]));
  const byKind = <T>(map: (costs: CallCosts) => Map<string, T>, merge: (values: (T | undefined)[]) => T) =>
    new Map([...kinds].map((kind) => [kind, merge(parts.map((part) => map(part.costs).get(kind)))]));
  const mean = (values: (number | undefined)[]) =>
    values.reduce<number>((sum, value, i) => sum + (value ?? 0) * parts[i].calls, 0) / calls;
  return {
    cpuUsPerCall: byKind((costs) => costs.cpuUsPerCall, mean),
    systemUsPerCall: byKind((costs) => costs.systemUsPerCall, mean),
    threadUsPerCall: byKind((costs) => costs.threadUsPerCall, (values) => ({
      main: mean(values.map((value) => value?.main)),
      worker: mean(values.map((value) => value?.worker)),
      helpers: mean(values.map((value) => value?.helpers)),
    })),
    switchesPerCall: byKind((costs) => costs.switchesPerCall, (values) => ({
      voluntary: mean(values.map((value) => value?.voluntary)),
      involuntary: mean(values.map((value) => value?.involuntary)),
    })),
    machineUsPerCall: weighted((costs) => costs.machineUsPerCall),
    hostSteal: weighted((costs) => costs.hostSteal),
    replacedProcesses: parts.reduce((sum, part) => sum + part.costs.replacedProcesses, 0),
  };
}

/**
 * The insert through the official clients, `CLIENTS` of each, all connected throughout: `ConvexHttpClient` (HTTP)
 * and `ConvexClient` (sync protocol) take turns in slices of OFFICIAL_CLIENT_SLICE_MS (ABBA order) until each has had
 * DURATION_MS, so a machine whose speed drifts within minutes (issue 14) slows both alike. Both use their own
 * `fetch`/WebSocket machinery, so the two differ in the protocol, not in how lean the client is. Returns each
 * protocol's totals and the ratio of the WebSocket slice to the HTTP slice of each pair.
 */
async function compareOfficialClients(
  url: string,
  processesOf: ProcessesOf,
): Promise<{ http: Run; ws: Run; pairRatios: number[] }> {
  const ws = Array.from({ length: CLIENTS }, () => new ConvexClient(url, { unsavedChangesWarning: false }));
  const http = Array.from({ length: CLIENTS }, () => new ConvexHttpClient(url));
  const insert = WORKLOADS[1];
  let failures = 0;
  const slice = async (protocol: "ws" | "http", ms: number, latencies: number[]) => {
    const clients: OfficialClient[] = protocol === "ws" ? ws : http;
    let calls = 0;
    const deadline = performance.now() + ms;
    await Promise.all(clients.map(async (client) => {
      while (performance.now() < deadline) {
        const started = performance.now();
        try {
          await client.mutation(insert.path, insert.args(nextArg++));
          latencies.push(performance.now() - started);
          calls++;
        } catch (error) {
          if (failures++ === 0) console.error(`  ${protocol} insert failed: ${error}`);
        }
      }
    }));
    return calls;
  };
  try {
    await slice("ws", 1_000, []);
    await slice("http", 1_000, []);
    failures = 0;
    const newSide = () => ({
      latencies: [] as number[],
      seconds: 0,
      parts: [] as { calls: number; costs: CallCosts }[],
    });
    const sides = { ws: newSide(), http: newSide() };
    const pairs = Math.max(2, Math.round(DURATION_MS / OFFICIAL_CLIENT_SLICE_MS));
    const pairRatios: number[] = [];
    for (let pair = 0; pair < pairs; pair++) {
      const order: ("ws" | "http")[] = pair % 2 === 0 ? ["http", "ws"] : ["ws", "http"];
      const perSecond = { ws: 0, http: 0 };
      for (const protocol of order) {
        const side = sides[protocol];
        const meter = await startMeter(processesOf);
        const started = performance.now();
        const calls = await slice(protocol, OFFICIAL_CLIENT_SLICE_MS, side.latencies);
        const seconds = (performance.now() - started) / 1000;
        side.seconds += seconds;
        side.parts.push({ calls, costs: await meter.stop(calls) });
        perSecond[protocol] = calls / seconds;
      }
      pairRatios.push(perSecond.ws / perSecond.http);
    }
    const sideRun = (side: ReturnType<typeof newSide>) =>
      runOf(side.latencies, side.seconds, failures, mergeCosts(side.parts));
    return { http: sideRun(sides.http), ws: sideRun(sides.ws), pairRatios };
  } finally {
    await Promise.all(ws.map((client) => client.close()));
  }
}

/** Group commits so far, from the server's `/metrics`: how many, the transactions in them, their durable time. */
interface CommitStats {
  groups: number;
  transactions: number;
  seconds: number;
}

async function commitStats(server: ServerProcess): Promise<CommitStats> {
  const response = await fetch(`${server.url}/metrics`, { headers: { Authorization: `Bearer ${server.adminKey}` } });
  const text = await response.text();
  const sample = (name: string) => Number(new RegExp(`^${name}(?:\\{\\})? (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
  return {
    groups: sample("denvex_commit_batch_size_count"),
    transactions: sample("denvex_commit_batch_size_sum"),
    seconds: sample("denvex_commit_duration_seconds_sum"),
  };
}

/** The group commits between two samples (warm-up included): average size and time to durable. */
function commitText(before: CommitStats, after: CommitStats): string {
  const groups = after.groups - before.groups;
  if (!(groups > 0)) return "";
  const size = (after.transactions - before.transactions) / groups;
  const ms = (after.seconds - before.seconds) * 1000 / groups;
  return `; commit groups: ${size.toFixed(1)} transactions, ${ms.toFixed(2)} ms each`;
}

export async function seed(url: string): Promise<void> {
  const post = async (args: Record<string, unknown>) => {
    const response = await fetch(`${url}/api/mutation`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ path: "bench:seed", args, format: "json" }),
    });
    const result = await response.json();
    if (result.status !== "success") throw new Error(`seed failed: ${result.errorMessage}`);
  };
  for (let from = 0; from < KEYS * GROUP_SIZE; from += SEED_BATCH) {
    await post({ from, count: SEED_BATCH, counters: false });
  }
  await post({ from: 0, count: COUNTERS, counters: true });
}

async function main(): Promise<void> {
  console.log(
    `call_path_bench: ${navigator.hardwareConcurrency} cores, ${CLIENTS} clients, ${DURATION_MS} ms each` +
      (SERVER_DENO_FLAGS.length > 0 ? `, server flags ${SERVER_DENO_FLAGS.join(" ")}` : ""),
  );
  const baselineTree = Deno.env.get("BASELINE_TREE");
  const app = await createConvexApp(APP);
  const bare = await spawnBare();
  const results: RoundResult[] = [];
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      const suffix = ROUNDS > 1 ? ` ${round}` : "";
      if (baselineTree !== undefined) {
        const helpers = await import(`file://${baselineTree}/tests/helpers/convex_app.ts`);
        const runs = await measure(`before${suffix}`, app, bare, helpers.spawnServer as typeof spawnServer);
        results.push({ tree: "before", runs });
      }
      const label = baselineTree === undefined ? (ROUNDS > 1 ? `round${suffix}` : "") : `after${suffix}`;
      results.push({
        tree: baselineTree === undefined ? "" : "after",
        runs: await measure(label, app, bare, spawnServer),
      });
    }
    if (ROUNDS > 1) printMedians(results);
    printGoals(results);
  } finally {
    await bare.close();
    await app.dispose();
  }
}

/** One round's runs of one tree: per workload, denvex's run and the bare handler's. */
interface RoundResult {
  tree: string;
  runs: Map<string, { run: Run; bare: Run }>;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** The key of the WebSocket insert in a round's runs; its `bare` is the insert over HTTP of the same moment. */
const WS_WORKLOAD = "ws";

/** Issue 14's goals, each with the median over the rounds of one tree (the last one: the tree being measured). */
function printGoals(results: RoundResult[]): void {
  const tree = results.at(-1)?.tree ?? "";
  const runs = results.filter((result) => result.tree === tree).map((result) => result.runs);
  const cpu = (run: Run) => [...run.cpuUsPerCall.values()].reduce((a, b) => a + b, 0);
  const of = (workload: string, value: (pair: { run: Run; bare: Run }) => number) => {
    const values = runs.map((each) => each.get(workload)).filter((pair) => pair !== undefined).map(value);
    return values.length === 0 ? null : median(values);
  };
  const goals: [string, number | null, "≥" | "<", number, string][] = [
    ["query/bare", of("query", (p) => p.run.perSecond / p.bare.perSecond), "≥", 0.4, "×"],
    ["insert/bare", of("insert", (p) => p.run.perSecond / p.bare.perSecond), "≥", 0.3, "×"],
    ["query p99", of("query", (p) => p.run.p99Ms), "<", 25, " ms"],
    ["insert p99", of("insert", (p) => p.run.p99Ms), "<", 25, " ms"],
    ["query CPU", of("query", (p) => cpu(p.run)), "<", 400, " µs"],
    ["insert CPU", of("insert", (p) => cpu(p.run)), "<", 500, " µs"],
    ["WebSocket/HTTP insert", of(WS_WORKLOAD, (p) => p.run.perSecond / p.bare.perSecond), "≥", 1, "×"],
  ];
  const lines = goals.filter(([, value]) => value !== null).map(([name, value, sense, goal, unit]) => {
    const met = sense === "≥" ? value! >= goal : value! < goal;
    const shown = unit === "×" ? value!.toFixed(2) : value!.toFixed(unit === " ms" ? 1 : 0);
    return `${name} ${shown}${unit} (goal ${sense} ${goal}${unit}: ${met ? "met" : "MISSED"})`;
  });
  const over = runs.length > 1 ? ` (medians of ${runs.length} rounds)` : "";
  console.log(`call_path_bench goals${over}: ${lines.join("; ")}`);
}

/** Per tree and workload, the medians over the rounds (see ROUNDS). */
function printMedians(results: RoundResult[]): void {
  const trees = [...new Set(results.map((result) => result.tree))];
  const workloads = [...new Set(results.flatMap((result) => [...result.runs.keys()]))]
    .filter((workload) => workload !== WS_WORKLOAD);
  for (const workload of workloads) {
    for (const tree of trees) {
      const pairs = results.filter((result) => result.tree === tree).map((result) => result.runs.get(workload)!);
      const cpu = (run: Run) => [...run.cpuUsPerCall.values()].reduce((a, b) => a + b, 0);
      const tag = tree === "" ? "" : ` [${tree}]`;
      console.log(
        `call_path_bench median of ${pairs.length}${tag}: ${workload.padEnd(6)} ` +
          `${median(pairs.map((p) => p.run.perSecond)).toFixed(0)}/s, ` +
          `p99 ${median(pairs.map((p) => p.run.p99Ms)).toFixed(1)} ms, ` +
          `CPU ${median(pairs.map((p) => cpu(p.run))).toFixed(0)} µs/call, ` +
          `${median(pairs.map((p) => p.run.perSecond / p.bare.perSecond)).toFixed(3)}× bare`,
      );
    }
  }
}

/** Starts a server with `spawn`, deploys and seeds the app, and runs the workloads against it and the bare handler. */
async function measure(
  label: string,
  app: Awaited<ReturnType<typeof createConvexApp>>,
  bare: { url: string; pid: number },
  spawn: typeof spawnServer,
): Promise<Map<string, { run: Run; bare: Run }>> {
  const runs = new Map<string, { run: Run; bare: Run }>();
  const server = await spawn({ denoFlags: SERVER_DENO_FLAGS });
  const tag = label === "" ? "call_path_bench:" : `call_path_bench [${label}]:`;
  let clientCpus: string | null = null;
  try {
    await deployApp(app, server);
    await seed(server.url);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const kinds = () => processKinds(server.pid);
    const bareKinds = () => processKinds(bare.pid, "bare");
    const idleKinds = await kinds();
    console.log(`${tag} ${memoryLine("idle (10,000 documents)", idleKinds)}`);
    console.log(`${tag} ${cpuLayoutText(idleKinds)}`);
    clientCpus = await placeClients(idleKinds);
    if (clientCpus !== null) {
      console.log(`${tag} the bench's clients pinned to CPU ${clientCpus} (CLIENT_CPU=${CLIENT_CPU})`);
    }
    const first = WORKLOADS.find((workload) => ONLY.includes(workload.name)) ?? WORKLOADS[1];
    if (COLD_START_MS > 0) {
      const cold = await drive(server.url, first, CLIENTS, kinds, COLD_START_MS);
      console.log(
        `${tag} cold start (the first ${COLD_START_MS / 1000} s of ${first.name} load): ${
          cold.perSecond.toFixed(0)
        }/s, ` +
          `p50 ${cold.p50Ms.toFixed(1)} ms, p99 ${cold.p99Ms.toFixed(1)} ms`,
      );
    }
    for (const workload of WORKLOADS) {
      if (!ONLY.includes(workload.name)) continue;
      const baseline = await drive(bare.url, workload, CLIENTS, bareKinds);
      const commitsBefore = await commitStats(server);
      const run = await drive(server.url, workload, CLIENTS, kinds);
      const groups = commitText(commitsBefore, await commitStats(server));
      runs.set(workload.name, { run, bare: baseline });
      console.log(`${tag} ${workload.name.padEnd(6)} bare   ${runText(baseline)}`);
      console.log(
        `${tag} ${workload.name.padEnd(6)} denvex ${runText(run)} = ${
          (run.perSecond / baseline.perSecond).toFixed(2)
        }× bare${groups}`,
      );
    }
    if (ONLY.includes("ws")) {
      const commitsBefore = await commitStats(server);
      const { http, ws, pairRatios } = await compareOfficialClients(server.url, kinds);
      const groups = commitText(commitsBefore, await commitStats(server));
      console.log(`${tag} insert, ConvexHttpClient ${runText(http)}`);
      console.log(
        `${tag} insert, ConvexClient     ${runText(ws)} = ${(ws.perSecond / http.perSecond).toFixed(2)}× HTTP ` +
          `(slice pairs: median ${median(pairRatios).toFixed(2)}×, ${
            pairRatios.map((ratio) => ratio.toFixed(2)).join(" ")
          })${groups}`,
      );
      // Its baseline is the insert over HTTP, in the slices interleaved with its own (see printGoals).
      runs.set(WS_WORKLOAD, { run: ws, bare: http });
    }
    if (ONLY.includes("one")) {
      for (const workload of WORKLOADS) {
        const baseline = await drive(bare.url, workload, 1, bareKinds);
        const run = await drive(server.url, workload, 1, kinds);
        console.log(
          `${tag} one client ${workload.name.padEnd(6)} denvex p50 ${run.p50Ms.toFixed(2)} ms, ` +
            `${cpuText(run)}; bare p50 ${baseline.p50Ms.toFixed(2)} ms`,
        );
      }
    }
    console.log(`${tag} ${memoryLine("after the load", await processKinds(server.pid))}`);
  } finally {
    if (clientCpus !== null && BENCH_CPUS !== null) await pinBench(BENCH_CPUS);
    await server.close().catch(() => {});
  }
  return runs;
}

if (import.meta.main) {
  if (Deno.args[0] === "--bare") await serveBare(Deno.args[1]);
  else await main();
}
