/**
 * Keeps each transaction runner on one CPU (Linux, through util-linux's `taskset`; issue 14).
 *
 * A transaction runner's two threads take turns and never run at once: the main thread hands a call to the worker and
 * waits, the worker waits while the main thread answers its syscall, the worker hands back the result, and so on, five
 * or more hand-offs per call. When the two threads sit on different CPUs, every hand-off wakes the other CPU. Measured
 * on a 2-vCPU VM, a futex round trip between two threads cost 53–57 µs of wall time and ~19 µs of CPU on each side (16
 * of it in the kernel), against 5.8 µs and ~3 µs per side with both threads on one CPU. Pinning a runner (all its
 * threads) to one CPU keeps its hand-offs there; the scheduler still moves the server and everything else around it.
 * Runners are spread over the CPUs the server may use, fewest runners first.
 *
 * On by default in the server (`--no-pin-runners` turns it off). A pinned runner cannot move off a CPU the server or
 * another runner keeps busy, and when pinning was added that cost more than it saved: 32 clients got 1,171 queries/s
 * instead of 1,287. Since then a busy runner holds the next call (pool.ts), so it seldom waits for the server to hand
 * it one (our reading of why), and the balance turned. In an interleaved A/B (scripts/bench/call_path_ab.ts, 20 pairs
 * of 1 s slices, 2 vCPUs), pinned against unpinned: queries at 32 clients 1.11× the calls/s and 0.92× the CPU per
 * call, inserts 1.14× and 0.84×, read-modify-write 1.06× and 0.90×, a call that does nothing 1.00× and 0.95×; queries
 * at 4 clients 1.13× and 0.90×, at 1 client 1.23× and 0.85×; on PostgreSQL, queries 1.10× and 0.92×, inserts 1.10×
 * and 0.86×.
 *
 * The server pins itself too (`pinServer`, every thread, one CPU), and the pool then prefers one runner per other CPU
 * (pool.ts): with two runners on two CPUs, the server's threads and a runner's took turns on each CPU, and every switch
 * between two processes costs both their caches. The same A/B, one runner on its own CPU and the server on the other
 * against two runners and an unpinned server: queries 1.03× the calls/s at 0.84× the CPU per call, inserts 1.07× and
 * 0.95× (20 pairs each); a throwaway version that never started a second runner gave queries 1.05–1.11× at 0.81–0.84×.
 *
 * Under a query load the runner's CPU is the busy one (0.96–0.99) and the server's is half idle, yet using that half
 * loses: a second transaction runner pinned beside the server (the pool's preferred count raised to the CPU count)
 * gave 0.61× the queries per second at 1.58× the CPU per call (call_path_ab, 20 pairs); keeping only the server's main
 * thread pinned, its checkpointer, fsync and V8 helper threads free to move, cost inserts about a third (3 alternating
 * runs). Processes or threads that hand off to each other across CPUs pay the cross-CPU wake-ups above.
 *
 * Best effort: where `taskset` is missing, not allowed or not Linux, the server and runners run unpinned.
 *
 * Private to `src/runtime`: other folders use its `mod.ts`.
 */

/** The program that sets a process's CPU affinity (util-linux). */
export const TASKSET = "taskset";
/** Most CPUs a list may name (a corrupt list must not allocate without bound). */
const MAX_CPUS = 4096;

/**
 * The CPUs of a Linux CPU list (`0-3,8,10-11`, as `taskset -c -p` prints it), ascending; null when `text` is not
 * one.
 */
export function parseCpuList(text: string): number[] | null {
  const cpus = new Set<number>();
  for (const part of text.trim().split(",")) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (match === null) return null;
    const first = Number(match[1]);
    const last = match[2] === undefined ? first : Number(match[2]);
    if (last < first || last - first + cpus.size >= MAX_CPUS) return null;
    for (let cpu = first; cpu <= last; cpu++) cpus.add(cpu);
  }
  return cpus.size === 0 ? null : [...cpus].sort((a, b) => a - b);
}

/** Runs `taskset` with `args`; its standard output, or null when it could not run or failed. */
async function runTaskset(program: string, args: string[]): Promise<string | null> {
  try {
    const output = await new Deno.Command(program, { args, stdin: "null", stdout: "piped", stderr: "null" }).output();
    return output.success ? new TextDecoder().decode(output.stdout) : null;
  } catch {
    return null; // not installed, or no permission to run it
  }
}

/** Spreads processes over CPUs and pins each to one. */
export class CpuAffinity {
  readonly cpus: readonly number[];
  readonly #program: string;
  /** Pinned processes by pid, and the CPU each was given. */
  readonly #pinned = new Map<number, number>();

  private constructor(cpus: number[], program: string) {
    if (cpus.length === 0) throw new Error("invariant: a CPU affinity needs CPUs");
    this.cpus = cpus;
    this.#program = program;
  }

  /**
   * The CPUs this process may run on, when pinning can work and pays: Linux, `program` runs, and at least two CPUs
   * (with one, every thread shares it already). Null otherwise.
   */
  static async detect(program = TASKSET): Promise<CpuAffinity | null> {
    if (Deno.build.os !== "linux") return null;
    // "pid 123's current affinity list: 0,1"
    const output = await runTaskset(program, ["-c", "-p", String(Deno.pid)]);
    const cpus = output === null ? null : parseCpuList(output.slice(output.lastIndexOf(":") + 1));
    return cpus !== null && cpus.length >= 2 ? new CpuAffinity(cpus, program) : null;
  }

  /**
   * Pins every thread of the server (this process) to one CPU and counts it there, so that runners go to the other
   * CPUs first (see the module comment). The CPU is `cpus[pid % n]`: several servers on one machine spread out rather
   * than all take the first. Returns that CPU, or null.
   */
  async pinServer(pid = Deno.pid): Promise<number | null> {
    const cpu = this.cpus[pid % this.cpus.length];
    const output = await runTaskset(this.#program, ["-a", "-c", "-p", String(cpu), String(pid)]);
    if (output?.includes("new affinity list") !== true) return null;
    this.#pinned.set(pid, cpu);
    return cpu;
  }

  /** Lets every thread of the server run on all its CPUs again (the pool closed), if `pinServer` pinned it. */
  async unpinServer(pid = Deno.pid): Promise<void> {
    if (!this.#pinned.has(pid)) return;
    this.#pinned.delete(pid);
    await runTaskset(this.#program, ["-a", "-c", "-p", this.cpus.join(","), String(pid)]);
  }

  /** Whether process `pid` is pinned to a CPU that another pinned process (a runner, the server) shares. */
  sharesCpu(pid: number): boolean {
    const cpu = this.#pinned.get(pid);
    if (cpu === undefined) return false;
    let count = 0;
    for (const pinnedCpu of this.#pinned.values()) if (pinnedCpu === cpu) count++;
    return count > 1;
  }

  /** Whether some CPU has no pinned process. */
  hasFreeCpu(): boolean {
    return [...this.load().values()].includes(0);
  }

  /** Pins process `pid` again, to the CPU with the fewest other pinned processes. Returns that CPU, or null. */
  repin(pid: number): Promise<number | null> {
    this.release(pid);
    return this.pin(pid);
  }

  /** Pins every thread of process `pid` to the CPU with the fewest pinned processes. Returns that CPU, or null. */
  async pin(pid: number): Promise<number | null> {
    const cpu = this.#leastUsedCpu();
    this.#pinned.set(pid, cpu);
    // -a: all its threads (those it starts later inherit the affinity of the thread that starts them).
    // It prints each thread's new list; with -a it also exits 0, silently, for a process that is gone.
    const output = await runTaskset(this.#program, ["-a", "-c", "-p", String(cpu), String(pid)]);
    if (output?.includes("new affinity list") === true) return cpu;
    this.#pinned.delete(pid);
    return null;
  }

  /** Forgets process `pid` (it exited), so its CPU counts one process fewer. */
  release(pid: number): void {
    this.#pinned.delete(pid);
  }

  /** How many pinned processes each CPU holds. */
  load(): Map<number, number> {
    const counts = new Map(this.cpus.map((cpu) => [cpu, 0]));
    for (const cpu of this.#pinned.values()) counts.set(cpu, counts.get(cpu)! + 1);
    return counts;
  }

  #leastUsedCpu(): number {
    let best = this.cpus[0];
    let bestCount = Infinity;
    for (const [cpu, count] of this.load()) {
      if (count < bestCount) [best, bestCount] = [cpu, count];
    }
    return best;
  }
}
