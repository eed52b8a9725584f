/**
 * Where the server's CPU per function call goes (issue 14): starts the real server (`main.ts serve`, SQLite) under
 * V8's sampling profiler (`--cpu-prof`), deploys the call-path bench's app, drives one workload with `CLIENTS`
 * closed-loop HTTP clients for `DURATION_MS`, stops the server (which writes its profile) and prints self time per
 * function and per source file, in µs per call, with the GC share.
 *
 *   deno run -A scripts/bench/call_path_profile.ts [query|insert|noop|ws|convexhttp] [more deno flags for the server...]
 *
 * `ws` is the insert sent over the sync protocol by the official `ConvexClient` (one per client); `convexhttp`, the same
 * insert through the official `ConvexHttpClient`.
 *
 * env DURATION_MS (default 6000), CLIENTS (32), TOP (rows shown, 45), PROFILE_DIR (keep the .cpuprofile there).
 * Or analyse an existing profile: `deno run -A scripts/bench/call_path_profile.ts --read <file.cpuprofile> <calls>`.
 */
import { createConvexApp } from "../../tests/helpers/convex_app.ts";
import { serveCommandArgs } from "../../tests/helpers/server_child.ts";
import { callFunction, deployAndSeed, itemsApp } from "./items_app.ts";
import { ConvexClient, ConvexHttpClient } from "convex/browser";

const DURATION_MS = Number(Deno.env.get("DURATION_MS") ?? 6_000);
const CLIENTS = Number(Deno.env.get("CLIENTS") ?? 32);
const TOP = Number(Deno.env.get("TOP") ?? 45);
const REPO = new URL("../../", import.meta.url).pathname;

const APP = itemsApp(`"k" + (j % 1000)`);

/** One node of a `.cpuprofile`. */
interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  /** CLOCK_MONOTONIC µs (Linux), the clock of /proc/uptime. */
  startTime: number;
}

/** A time window on CLOCK_MONOTONIC, in µs. */
interface Window {
  fromUs: number;
  toUs: number;
}

/** Seconds since boot (CLOCK_BOOTTIME, equal to V8's CLOCK_MONOTONIC on a machine that never suspended) in µs. */
function uptimeUs(): number {
  return Number(Deno.readTextFileSync("/proc/uptime").split(" ")[0]) * 1e6;
}

/** Stages of a call, matched in order against "<function> <file>:<line>" of the nearest denvex function. */
const STAGES: [string, RegExp][] = [
  ["idle", /^\(outside denvex\) \(idle\)/],
  ["GC", /garbage collector/],
  ["body read + JSON decode", /(readBodyText|readChunkedBodyText|readJsonBody|parseCallBody|parseArgs|holdBodyBytes) /],
  ["response encoding", /(sendResult|udfResponse|toCleanJson|mayHoldSpecialValues|op_http_set_response)/],
  [
    "routing + middleware (Hono, limits, CORS)",
    /(hono|src\/http\/limits\.ts|src\/http\/cors\.ts|function_routes\.ts:(2|3))/,
  ],
  ["query cache + read-set index", /src\/subscriptions\//],
  ["executor + args validation", /(src\/functions\/executor\.ts|src\/values\/|component_calls)/],
  ["metrics, request log, execution log", /(src\/server\/observe\.ts|src\/metrics\/|execution_log)/],
  ["runner transport (pool, framing, pipe writes)", /(src\/runtime\/|op_write_all)/],
  ["web streams (runner stdout, or a streamed request body)", /06_streams/],
  ["(program): V8 and Deno outside any JS function", /\(program\)/],
  ["this benchmark's own code", /scripts\/bench\//],
  ["commit (database, persistence)", /(src\/database\/|src\/persistence\/)/],
  ["Deno HTTP glue", /ext:deno_(http|fetch|web)/],
];

/** Self time (µs) per node id, of the samples inside `window` (all without one). */
function selfTimes(profile: Profile, window?: Window): Map<number, number> {
  const self = new Map<number, number>();
  let atUs = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    atUs += profile.timeDeltas[i];
    if (window && (atUs < window.fromUs || atUs > window.toUs)) continue;
    // A sample's delta is the time since the previous one: it belongs to the stack sampled now.
    const deltaUs = profile.timeDeltas[i + 1] ?? 0;
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + deltaUs);
  }
  return self;
}

function shortUrl(url: string): string {
  return url.replace(`file://${REPO}`, "").replace(/^.*node_modules\/\.deno\//, "npm:").replace(/^ext:/, "ext:");
}

/** Prints self time per function, per file and inclusive time of the denvex functions, as µs per call. */
export function report(profile: Profile, calls: number, window?: Window): void {
  const self = selfTimes(profile, window);
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const totalUs = [...self.values()].reduce((a, b) => a + b, 0);
  const idleUs = [...self].filter(([id]) => byId.get(id)!.callFrame.functionName === "(idle)")
    .reduce((a, [, us]) => a + us, 0);
  const perCall = (us: number) => (us / calls).toFixed(1).padStart(7);
  console.log(`profile: ${(totalUs / 1e6).toFixed(2)} s sampled, ${(idleUs / 1e6).toFixed(2)} s idle, ${calls} calls`);
  console.log(`busy: ${perCall(totalUs - idleUs)} µs/call`);
  const sum = (key: (node: ProfileNode) => string) => {
    const sums = new Map<string, number>();
    for (const [id, us] of self) {
      const k = key(byId.get(id)!);
      sums.set(k, (sums.get(k) ?? 0) + us);
    }
    return [...sums].sort((a, b) => b[1] - a[1]);
  };
  console.log("\nself time by file (µs/call):");
  for (const [file, us] of sum((node) => shortUrl(node.callFrame.url) || node.callFrame.functionName).slice(0, TOP)) {
    console.log(`${perCall(us)}  ${file}`);
  }
  console.log("\nself time by function (µs/call):");
  const fnKey = (node: ProfileNode) =>
    `${node.callFrame.functionName || "(anon)"} ${shortUrl(node.callFrame.url)}:${node.callFrame.lineNumber + 1}`;
  for (const [fn, us] of sum(fnKey).slice(0, TOP)) console.log(`${perCall(us)}  ${fn}`);
  // Inclusive time: every function on a sampled stack gets the sample once.
  const inclusive = new Map<string, number>();
  for (const [id, us] of self) {
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const key = fnKey(byId.get(at)!);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + us);
    }
  }
  // Each sample to the nearest denvex function on its stack: a breakdown that sums to the busy time.
  const owners = new Map<string, number>();
  for (const [id, us] of self) {
    let owner: string | undefined;
    for (let at: number | undefined = id; at !== undefined && owner === undefined; at = parent.get(at)) {
      if (byId.get(at)!.callFrame.url.startsWith(`file://${REPO}src/`)) owner = fnKey(byId.get(at)!);
    }
    const top = byId.get(id)!.callFrame;
    const key = owner ?? `(outside denvex) ${top.functionName || "(anon)"} ${shortUrl(top.url)}`;
    owners.set(key, (owners.get(key) ?? 0) + us);
  }
  console.log("\nself time, attributed to the nearest denvex function on the stack (µs/call):");
  for (const [fn, us] of [...owners].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`${perCall(us)}  ${fn}`);
  const stages = new Map<string, number>();
  for (const [owner, us] of owners) {
    const stage = STAGES.find(([, pattern]) => pattern.test(owner))?.[0] ?? "other";
    stages.set(stage, (stages.get(stage) ?? 0) + us);
  }
  console.log("\nby stage (µs/call; wall time of the samples, so preemption counts where the thread resumed):");
  for (const [stage, us] of [...stages].sort((a, b) => b[1] - a[1])) console.log(`${perCall(us)}  ${stage}`);
  console.log("\ninclusive time, denvex code (µs/call):");
  const ours = [...inclusive].filter(([key]) => / src\//.test(key)).sort((a, b) => b[1] - a[1]);
  for (const [fn, us] of ours.slice(0, TOP)) console.log(`${perCall(us)}  ${fn}`);
}

async function spawnProfiledServer(dataDir: string, profileDir: string, extraFlags: string[]) {
  const adminKey = `denvex-bench|${crypto.randomUUID().replaceAll("-", "")}`;
  const args = await serveCommandArgs(dataDir, ["--port=0", "--site-port=0", "--host=127.0.0.1", `--data=${dataDir}`]);
  // `run` first, then the profiler's flags: they apply to the server process only (runners are its children).
  args.splice(1, 0, "--cpu-prof", `--cpu-prof-dir=${profileDir}`, ...extraFlags);
  args.splice(args.indexOf("--allow-write=" + dataDir), 1, `--allow-write=${dataDir},${profileDir}`);
  const child = new Deno.Command(Deno.execPath(), {
    args,
    env: { DENVEX_ADMIN_KEY: adminKey },
    cwd: REPO,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let banner = "";
  while (!/HTTP actions: +http:\/\/\S+/.test(banner)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the server did not start:\n${banner}`);
    banner += value;
  }
  (async () => {
    while (!(await reader.read()).done) { /* discard */ }
  })().catch(() => {});
  return { url: /API: +(http:\/\/\S+)/.exec(banner)![1], adminKey, child };
}

/** CPU µs of a process so far (user + system; /proc counts in 10 ms ticks). */
function processCpuUs(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

/**
 * The main thread's scheduler counters (`/proc/<pid>/task/<pid>/schedstat`): time on a CPU, time runnable but
 * waiting for one (the profiler counts that wall time against whatever frame the thread resumes in), time slices.
 */
function mainThreadSchedule(pid: number): { runUs: number; waitUs: number; slices: number } {
  const [runNs, waitNs, slices] = Deno.readTextFileSync(`/proc/${pid}/task/${pid}/schedstat`).trim().split(" ");
  return { runUs: Number(runNs) / 1000, waitUs: Number(waitNs) / 1000, slices: Number(slices) };
}

/** CPU µs per thread name (threads of one name summed; the main thread is "main"). */
function threadCpuUs(pid: number): Map<string, number> {
  const sums = new Map<string, number>();
  for (const entry of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/task/${entry.name}/stat`);
      const name = entry.name === String(pid) ? "main" : stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      sums.set(name, (sums.get(name) ?? 0) + (Number(fields[11]) + Number(fields[12])) * 10_000);
      sums.set(`${name} (system)`, (sums.get(`${name} (system)`) ?? 0) + Number(fields[12]) * 10_000);
    } catch { /* the thread ended */ }
  }
  return sums;
}

async function main(workload: string, extraFlags: string[]): Promise<void> {
  const app = await createConvexApp(APP);
  const dataDir = await Deno.makeTempDir({ prefix: "denvex-prof-data-" });
  const profileDir = Deno.env.get("PROFILE_DIR") ?? await Deno.makeTempDir({ prefix: "denvex-prof-" });
  await Deno.mkdir(profileDir, { recursive: true });
  const before = new Set([...Deno.readDirSync(profileDir)].map((entry) => entry.name));
  const server = await spawnProfiledServer(dataDir, profileDir, extraFlags);
  let calls = 0;
  let window: Window | undefined;
  let processUsPerCall = 0;
  let mainThread = { runUs: 0, waitUs: 0, slices: 0 };
  const threadUsPerCall = new Map<string, number>();
  let closeSockets = () => Promise.resolve([] as void[]);
  try {
    await deployAndSeed(app, server, 10_000);
    let next = 0;
    // "ws": the insert over the sync protocol, one official ConvexClient per closed-loop client.
    const sockets = workload === "ws"
      ? Array.from({ length: CLIENTS }, () => new ConvexClient(server.url, { unsavedChangesWarning: false }))
      : [];
    closeSockets = () => Promise.all(sockets.map((socket) => socket.close()));
    // "convexhttp": the same insert through the official ConvexHttpClient, the HTTP side of the ws comparison.
    const httpClients = workload === "convexhttp"
      ? Array.from({ length: CLIENTS }, () => new ConvexHttpClient(server.url))
      : [];
    const call = (client: number) =>
      workload === "ws"
        // deno-lint-ignore no-explicit-any
        ? sockets[client].mutation("bench:add" as any, { k: `k${next % 1000}`, n: next++ })
        : workload === "convexhttp"
        // deno-lint-ignore no-explicit-any
        ? httpClients[client].mutation("bench:add" as any, { k: `k${next % 1000}`, n: next++ })
        : workload === "insert"
        ? callFunction(server.url, "mutation", "bench:add", { k: `k${next % 1000}`, n: next++ })
        : workload === "noop"
        ? callFunction(server.url, "query", "bench:noop", { nonce: next++ })
        : callFunction(server.url, "query", "bench:list", { k: `k${(next * 7919) % 1000}`, nonce: next++ });
    // A warm-up, then the measured window (only its samples are counted).
    const drive = async (ms: number) => {
      const deadline = performance.now() + ms;
      let done = 0;
      await Promise.all(Array.from({ length: CLIENTS }, async (_, client) => {
        while (performance.now() < deadline) {
          await call(client);
          done++;
        }
      }));
      return done;
    };
    await drive(1_000);
    const fromUs = uptimeUs();
    const cpuBeforeUs = processCpuUs(server.child.pid);
    const schedBefore = mainThreadSchedule(server.child.pid);
    const threadsBefore = threadCpuUs(server.child.pid);
    calls = await drive(DURATION_MS);
    window = { fromUs, toUs: uptimeUs() };
    processUsPerCall = (processCpuUs(server.child.pid) - cpuBeforeUs) / calls;
    const schedAfter = mainThreadSchedule(server.child.pid);
    for (const [name, us] of threadCpuUs(server.child.pid)) {
      threadUsPerCall.set(name, (us - (threadsBefore.get(name) ?? 0)) / calls);
    }
    mainThread = {
      runUs: (schedAfter.runUs - schedBefore.runUs) / calls,
      waitUs: (schedAfter.waitUs - schedBefore.waitUs) / calls,
      slices: (schedAfter.slices - schedBefore.slices) / calls,
    };
  } finally {
    await closeSockets();
    server.child.kill("SIGTERM");
    await server.child.status;
    await app.dispose();
    await Deno.remove(dataDir, { recursive: true });
  }
  // The main thread's profile: the server's worker threads (the SQLite checkpointer) write theirs beside it.
  const written = [...Deno.readDirSync(profileDir)].map((entry) => entry.name)
    .filter((name) => name.endsWith(".cpuprofile") && !before.has(name) && !/\.worker-\d+\./.test(name));
  if (written.length === 0) throw new Error(`no main-thread profile written in ${profileDir}`);
  console.log(
    `${workload}: ${calls} calls, ${CLIENTS} clients, ${DURATION_MS} ms; profile ${profileDir}/${written[0]}`,
  );
  console.log(`server process CPU (all threads, /proc): ${processUsPerCall.toFixed(0)} µs/call`);
  console.log(
    `server main thread (schedstat): on CPU ${mainThread.runUs.toFixed(0)} µs/call, runnable but waiting for a CPU ` +
      `${mainThread.waitUs.toFixed(0)} µs/call, ${mainThread.slices.toFixed(2)} time slices/call`,
  );
  const threads = [...threadUsPerCall].filter(([, us]) => us > 0).sort((a, b) => b[1] - a[1]);
  console.log(`server threads (/proc, µs/call): ${threads.map(([name, us]) => `${name} ${us.toFixed(0)}`).join(", ")}`);
  report(JSON.parse(await Deno.readTextFile(`${profileDir}/${written[0]}`)), calls, window);
}

if (Deno.args[0] === "--read") report(JSON.parse(await Deno.readTextFile(Deno.args[1])), Number(Deno.args[2]));
else await main(Deno.args[0] ?? "query", Deno.args.slice(1));
