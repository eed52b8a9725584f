/**
 * What one hand-off between two threads costs (issue 14): the main thread and a worker take turns through
 * `Atomics.wait`/`notify`, as a runner's two threads do on every syscall, `ROUND_TRIPS` times. Measured twice, each in
 * its own process: with both threads free to run on any CPU, and (Linux, util-linux's `taskset`) with both on CPU 0.
 * Prints wall time and CPU per round trip by thread, user and kernel, and the ratio of the two runs.
 *
 *   deno run -A scripts/bench/handoff_bench.ts      (env ROUND_TRIPS, default 50,000)
 */
const ROUND_TRIPS = Number(Deno.env.get("ROUND_TRIPS") ?? 50_000);
/** /proc/<pid>/task/<tid>/stat counts CPU in clock ticks of 10 ms (USER_HZ 100). */
const TICK_US = 10_000;

interface Result {
  wallUs: number;
  /** µs per round trip by thread (main, worker), user and kernel. */
  threads: Record<string, { userUs: number; systemUs: number }>;
}

/** CPU so far of this process's main thread and its worker thread, from /proc. */
function threadTimes(): Record<string, { userUs: number; systemUs: number }> {
  const times: Record<string, { userUs: number; systemUs: number }> = {};
  for (const task of Deno.readDirSync("/proc/self/task")) {
    const name = Deno.readTextFileSync(`/proc/self/task/${task.name}/comm`).trim();
    const kind = task.name === String(Deno.pid) ? "main" : name.startsWith("worker-") ? "worker" : null;
    if (kind === null) continue;
    const stat = Deno.readTextFileSync(`/proc/self/task/${task.name}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    times[kind] = { userUs: Number(fields[11]) * TICK_US, systemUs: Number(fields[12]) * TICK_US };
  }
  return times;
}

/** The worker: answers every turn the main thread hands it, until told to stop. */
const WORKER_SOURCE = `
  self.onmessage = ({ data }) => {
    const state = new Int32Array(data);
    self.postMessage("ready");
    for (;;) {
      for (let seen = Atomics.load(state, 0); seen !== 1; seen = Atomics.load(state, 0)) Atomics.wait(state, 0, seen);
      if (Atomics.load(state, 1) === 1) return;
      Atomics.store(state, 0, 0);
      Atomics.notify(state, 0);
    }
  };
`;

async function measure(): Promise<Result> {
  const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
  const worker = new Worker(url, { type: "module" });
  const state = new Int32Array(new SharedArrayBuffer(8));
  const ready = new Promise((resolve) => worker.onmessage = resolve);
  worker.postMessage(state.buffer);
  await ready;
  const roundTrip = () => {
    Atomics.store(state, 0, 1);
    Atomics.notify(state, 0);
    for (let seen = Atomics.load(state, 0); seen !== 0; seen = Atomics.load(state, 0)) Atomics.wait(state, 0, seen);
  };
  for (let i = 0; i < 2_000; i++) roundTrip(); // warm up (and the worker is running)
  const before = threadTimes();
  const started = performance.now();
  for (let i = 0; i < ROUND_TRIPS; i++) roundTrip();
  const wallUs = (performance.now() - started) * 1000 / ROUND_TRIPS;
  const after = threadTimes();
  Atomics.store(state, 1, 1);
  Atomics.store(state, 0, 1);
  Atomics.notify(state, 0);
  worker.terminate();
  const threads: Result["threads"] = {};
  for (const kind of Object.keys(after)) {
    threads[kind] = {
      userUs: (after[kind].userUs - (before[kind]?.userUs ?? 0)) / ROUND_TRIPS,
      systemUs: (after[kind].systemUs - (before[kind]?.systemUs ?? 0)) / ROUND_TRIPS,
    };
  }
  return { wallUs, threads };
}

/** Runs this script in measuring mode, under `prefix` (e.g. taskset), and returns its result. */
async function child(prefix: string[]): Promise<Result | null> {
  const args = [...prefix, Deno.execPath(), "run", "-A", new URL(import.meta.url).pathname, "--measure"];
  try {
    const output = await new Deno.Command(args[0], { args: args.slice(1), stderr: "inherit" }).output();
    return output.success ? JSON.parse(new TextDecoder().decode(output.stdout)) as Result : null;
  } catch {
    return null; // taskset missing
  }
}

function describe(label: string, result: Result): string {
  const threads = Object.entries(result.threads).map(([kind, { userUs, systemUs }]) =>
    `${kind} ${(userUs + systemUs).toFixed(1)} (kernel ${systemUs.toFixed(1)})`
  );
  return `${label.padEnd(26)} ${result.wallUs.toFixed(1).padStart(6)} µs wall, CPU µs: ${threads.join(", ")}`;
}

function cpuOf(result: Result): number {
  return Object.values(result.threads).reduce((sum, { userUs, systemUs }) => sum + userUs + systemUs, 0);
}

if (Deno.args[0] === "--measure") {
  console.log(JSON.stringify(await measure()));
} else {
  console.log(`handoff_bench: ${ROUND_TRIPS} round trips between the main thread and a worker, per round trip`);
  const free = await child([]);
  const oneCpu = Deno.build.os === "linux" ? await child(["taskset", "-c", "0"]) : null;
  if (free === null) throw new Error("the measuring run failed");
  console.log(`handoff_bench: ${describe("threads on any CPU", free)}`);
  if (oneCpu === null) console.log("handoff_bench: (no taskset here: no run with both threads on one CPU)");
  else {
    console.log(`handoff_bench: ${describe("both threads on CPU 0", oneCpu)}`);
    console.log(
      `handoff_bench: any CPU / one CPU: wall ×${(free.wallUs / oneCpu.wallUs).toFixed(1)}, CPU ×${
        (cpuOf(free) / cpuOf(oneCpu)).toFixed(1)
      }`,
    );
  }
}
