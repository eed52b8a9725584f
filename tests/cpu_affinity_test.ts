/**
 * Transaction runners pinned to one CPU each (src/runtime/cpu_affinity.ts, issue 14): the CPU list parser, pinning
 * real processes with the real `taskset`, and a real RunnerPool whose runners end up pinned (or not, when told not to
 * or when the program is missing), answering calls either way.
 */
import { assert, assertEquals, assertThrows, waitFor } from "./helpers/assert.ts";
import { startAppPool } from "./helpers/app_pool.ts";
import { CpuAffinity, parseCpuList, TASKSET } from "../src/runtime/cpu_affinity.ts";
import { parseCommandLine } from "../src/server/config.ts";
import { spawnServer } from "./helpers/convex_app.ts";
import { commandLineOf, descendantPids } from "./helpers/server_child.ts";

/** The CPUs process `pid` may run on, from /proc. */
function allowedCpusOf(pid: number): number[] {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const line = status.split("\n").find((entry) => entry.startsWith("Cpus_allowed_list:"))!;
  return parseCpuList(line.slice(line.indexOf(":") + 1))!;
}

/** The CPUs thread `tid` may run on, or null when it has exited since its task directory was listed. */
function allowedCpusOfThread(tid: number): number[] | null {
  try {
    return allowedCpusOf(tid);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/** Every live thread of `pid` allowed exactly `cpus` (short-lived helper threads may end while they are read). */
function threadsAllowed(pid: number, cpus: number[]): boolean {
  return [...Deno.readDirSync(`/proc/${pid}/task`)].every((task) => {
    const allowed = allowedCpusOfThread(Number(task.name));
    return allowed === null || JSON.stringify(allowed) === JSON.stringify(cpus);
  });
}

const cpusHere = Deno.build.os === "linux" ? allowedCpusOf(Deno.pid) : [];

Deno.test("cpu affinity: CPU lists parse as Linux prints them; anything else is refused", () => {
  assertEquals(parseCpuList("0"), [0]);
  assertEquals(parseCpuList(" 0,1\n"), [0, 1]);
  assertEquals(parseCpuList("0-3,8,10-11"), [0, 1, 2, 3, 8, 10, 11]);
  assertEquals(parseCpuList("3,1-2,2"), [1, 2, 3]);
  for (const bad of ["", "a", "1-", "3-1", "1,,2", "0-99999999", "-1"]) assertEquals(parseCpuList(bad), null, bad);
});

Deno.test({
  name: "cpu affinity: real processes pinned with taskset, spread over the allowed CPUs, released when they exit",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const affinity = await CpuAffinity.detect();
    if (cpusHere.length < 2) return assertEquals(affinity, null, "one CPU: nothing to gain, no pinning");
    assert(affinity !== null, "taskset is part of util-linux, installed on every Debian machine");
    assertEquals([...affinity.cpus], cpusHere);
    const children = [0, 1].map(() => new Deno.Command("sleep", { args: ["30"] }).spawn());
    try {
      const pinned = await Promise.all(children.map((child) => affinity.pin(child.pid)));
      assert(pinned[0] !== null && pinned[1] !== null && pinned[0] !== pinned[1], `spread: ${pinned}`);
      for (const [i, child] of children.entries()) assertEquals(allowedCpusOf(child.pid), [pinned[i]!]);
      affinity.release(children[0].pid);
      assertEquals(affinity.load().get(pinned[0]!), 0);
      // A process that is gone cannot be pinned: no CPU is counted for it.
      assertEquals(await affinity.pin(999_999_999), null);
      assertEquals([...affinity.load().values()].reduce((a, b) => a + b, 0), 1);
    } finally {
      for (const child of children) child.kill();
      await Promise.all(children.map((child) => child.status));
    }
    assertEquals(await CpuAffinity.detect("/nonexistent/taskset"), null);
  },
});

Deno.test({
  name: "cpu affinity: a pool's transaction runner is pinned when asked to, and unpinned by default or without taskset",
  ignore: Deno.build.os !== "linux" || cpusHere.length < 2,
  fn: async () => {
    for (const program of [TASKSET, undefined, null, "/nonexistent/taskset"]) {
      const app = await startAppPool({
        pool: {
          queryRunners: 1,
          minActionRunners: 0,
          ...(program === undefined ? {} : { cpuAffinityProgram: program }),
        },
      });
      try {
        const result = await app.execute("query", "messages.js", "hello", { name: "cpu" });
        assert(result.ok, `the runner answers (${program}): ${result.ok ? "" : result.errorMessage}`);
        const [pid] = app.pool.runnerPids();
        if (program === TASKSET) {
          await waitFor("the runner pinned", () => Promise.resolve(allowedCpusOf(pid)), (cpus) => cpus.length === 1);
          const [cpu] = allowedCpusOf(pid);
          assert(cpusHere.includes(cpu));
          // Its worker thread, started after the pinning or before, shares the CPU.
          assert(threadsAllowed(pid, [cpu]), "every thread of the runner on its CPU");
          // The pool's own process (the server's, here this test's) has a CPU of its own.
          const [serverCpu] = allowedCpusOf(Deno.pid);
          assert(threadsAllowed(Deno.pid, [serverCpu]) && serverCpu !== cpu, `server ${serverCpu}, runner ${cpu}`);
        } else {
          await new Promise((resolve) => setTimeout(resolve, 200));
          assertEquals(allowedCpusOf(pid), cpusHere, `unpinned (${program})`);
        }
      } finally {
        await app.close();
      }
      assert(threadsAllowed(Deno.pid, cpusHere), `every CPU allowed again once the pool closed (${program})`);
    }
  },
});

Deno.test({
  name: "cpu affinity: quick calls keep to one runner per CPU besides the server's; a call that runs long gets one " +
    "more runner for the calls behind it, which leaves once it is over",
  ignore: Deno.build.os !== "linux" || cpusHere.length < 2,
  fn: async () => {
    const preferred = cpusHere.length - 1;
    /** Long enough that a fresh runner (spawn, worker, first call) starts well within half of it on a busy machine. */
    const SPIN_LIMIT_MS = 6_000;
    const app = await startAppPool({
      pool: { queryRunners: cpusHere.length, minActionRunners: 0, maxActionRunners: 1, cpuAffinityProgram: TASKSET },
    });
    const hello = (name: string) => app.execute("query", "messages.js", "hello", { name });
    try {
      await waitFor("the server pinned", () => Promise.resolve(allowedCpusOf(Deno.pid)), (cpus) => cpus.length === 1);
      for (let i = 0; i < 5; i++) assert((await hello(`warm ${i}`)).ok);
      const [serverCpu] = allowedCpusOf(Deno.pid);
      const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => hello(`burst ${i}`)));
      assert(burst.every((result) => result.ok), "the burst is answered");
      assertEquals(app.pool.runnerPids().length, preferred, "no runner beyond one per CPU besides the server's");
      for (const pid of app.pool.runnerPids()) assert(!allowedCpusOf(pid).includes(serverCpu), "off the server's CPU");
      // `spin` runs until its time limit; the call after it must not wait that long.
      const long = app.execute("query", "messages.js", "spin", {}, { timeLimitMs: SPIN_LIMIT_MS });
      await new Promise((resolve) => setTimeout(resolve, 50));
      const started = performance.now();
      const quick = await hello("quick");
      const waitedMs = performance.now() - started;
      assert(quick.ok, "answered");
      assert(
        waitedMs < SPIN_LIMIT_MS / 2,
        `answered by another runner in ${waitedMs.toFixed(0)} ms, not after the long call`,
      );
      assertEquals(app.pool.runnerPids().length, preferred + 1, "one runner more while the call runs long");
      const ended = await long;
      assert(!ended.ok && (ended.errorMessage ?? "").includes("timed out"), "the long call ends at its limit");
      await waitFor("back to the preferred runners", async () => {
        await hello("after");
        return app.pool.runnerPids().length;
      }, (count) => count === preferred);
      for (const pid of app.pool.runnerPids()) {
        await waitFor(
          "off the server's CPU",
          () => Promise.resolve(allowedCpusOf(pid)),
          (cpus) => !cpus.includes(serverCpu),
        );
      }
    } finally {
      await app.close();
    }
  },
});

Deno.test("cpu affinity: the server pins runners unless --no-pin-runners; --pin-runners is still accepted", () => {
  const pinOf = (...args: string[]) =>
    (parseCommandLine(args, () => undefined) as { config: { pinRunners: boolean } }).config.pinRunners;
  assertEquals(pinOf(), true);
  assertEquals(pinOf("--pin-runners"), true);
  assertEquals(pinOf("--no-pin-runners"), false);
  assertThrows(() => pinOf("--pin-runners", "--no-pin-runners"), Error, "contradict");
});

/** The runner processes of the server `serverPid` (transaction and action runners). */
async function runnersOf(serverPid: number): Promise<number[]> {
  const pids = await descendantPids(serverPid);
  const lines = await Promise.all(pids.map(async (pid) => [pid, await commandLineOf(pid)] as const));
  return lines.filter(([, line]) => / runner /.test(`${line} `)).map(([pid]) => pid);
}

/** The runners of `serverPid` pinned to one CPU (only transaction runners ever are). */
async function pinnedRunnersOf(serverPid: number): Promise<number[]> {
  return (await runnersOf(serverPid)).filter((pid) => allowedCpusOf(pid).length === 1);
}

Deno.test({
  name: "cpu affinity: the real server (scoped permissions) pins its transaction runner by default",
  ignore: Deno.build.os !== "linux" || cpusHere.length < 2,
  fn: async () => {
    const server = await spawnServer();
    try {
      const pinned = await waitFor("a pinned runner", () => pinnedRunnersOf(server.pid), (pids) => pids.length > 0);
      assertEquals(pinned.length, 1, "the warm transaction runner, pinned (action runners stay unpinned)");
      const [serverCpu] = await waitFor(
        "the server pinned",
        () => Promise.resolve(allowedCpusOf(server.pid)),
        (cpus) => cpus.length === 1,
      );
      assert(threadsAllowed(server.pid, [serverCpu]), "every thread of the server on its CPU");
      assert(!allowedCpusOf(pinned[0]).includes(serverCpu), "the runner on another CPU than the server");
    } finally {
      await server.close();
    }
  },
});

Deno.test({
  name: "cpu affinity: the real server started with --no-pin-runners leaves its runners free to move",
  ignore: Deno.build.os !== "linux" || cpusHere.length < 2,
  fn: async () => {
    const server = await spawnServer({ extraArgs: ["--no-pin-runners"] });
    try {
      // The warm transaction runner starts with the server; a pinning would follow its spawn within milliseconds.
      const runners = await waitFor("the runners", () => runnersOf(server.pid), (pids) => pids.length > 0);
      await new Promise((resolve) => setTimeout(resolve, 500));
      assertEquals(await pinnedRunnersOf(server.pid), [], `no runner pinned among ${runners}`);
    } finally {
      await server.close();
    }
  },
});
