/**
 * Function runtime benchmark: what the process boundary and the sandbox cost, against baselines measured in the same
 * run on the same machine.
 *
 *   deno run -A scripts/bench/runtime_bench.ts
 *
 * 1. a trivial query through the pool vs. calling its `invokeQuery` directly in this process;
 * 2. one `ctx.db.get` syscall from user code vs. one `host.syscall("1.0/get")` on an in-process transaction;
 * 2b. a query with 10 and with 100 `ctx.db.get` issued together (`Promise.all`, batched) vs. the same gets one by one;
 * 3. `collect()` of 1,000 documents vs. the same scan on an in-process transaction;
 * 4. the CPU a runner spends per call, by thread (its main thread, its user-code worker, V8's helper threads), read
 *    from /proc for a `Runner` driven in this process, for a query without syscalls, a `take(10)` query and an insert;
 *    baseline: the same database work on an in-process transaction. With env `BASELINE_TREE=<dir>` (a copy of an older
 *    checkout), that tree's `Runner` is measured too, in alternating rounds: before and after in one run;
 * 5. the same through a RunnerPool of real runner processes (2 runners, 32 calls in flight), `take(10)` queries: CPU
 *    per call of the runner processes by thread, and calls/s; with `BASELINE_TREE`, that tree's pool too.
 *
 *   deno run -A scripts/bench/runtime_bench.ts      (env ONLY=cpu: section 4 only; CPU_CALLS, CPU_ROUNDS)
 */
import { APP_FILES, bundleApp, openDeployedApp, stopBundler, writeApp } from "../../tests/helpers/runtime_app.ts";
import { type ExecuteRequest, NO_REQUEST_METADATA, RunnerPool } from "../../src/runtime/mod.ts";
import { modulesRoot } from "../../src/runtime/module_writer.ts";
import type { FromRunnerMessage, ToRunnerMessage } from "../../src/runtime/runner_protocol.ts";
import type { Database, TransactionOutcome } from "../../src/database/mod.ts";

const ROUNDS = 200;
const ONLY_CPU = Deno.env.get("ONLY") === "cpu";
/** Calls per measurement of section 4, and alternating rounds (each measures every runner once). */
const CPU_CALLS = Number(Deno.env.get("CPU_CALLS") ?? 2_000);
const CPU_ROUNDS = Number(Deno.env.get("CPU_ROUNDS") ?? 2);
/** Section 5's pool: runners, and calls kept in flight (as many as the HTTP benchmark's clients). */
const POOL_RUNNERS = 2;
const POOL_IN_FLIGHT = 32;
/** Section 4's functions, next to the app of the other sections. */
const CPU_MODULE = `
import { query, mutation } from "./_generated/server";
import { v } from "convex/values";
export const trivial = query({ args: { nonce: v.number() }, handler: async () => null });
export const take10 = query({ args: { nonce: v.number() }, handler: (ctx) => ctx.db.query("messages").take(10) });
export const add = mutation({ args: { body: v.string() }, handler: (ctx, args) => ctx.db.insert("messages", args) });
export const getTogether = query({
  args: { id: v.string(), times: v.number() },
  handler: async (ctx, { id, times }) =>
    (await Promise.all(Array.from({ length: times }, () => ctx.db.get(id as any)))).filter((d) => d !== null).length,
});
`;
const GETS_PER_QUERY = 1_000;
const DOCUMENTS = 1_000;

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function timeMs(rounds: number, run: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < Math.min(20, rounds); i++) await run(); // warm up
  const samples: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const start = performance.now();
    await run();
    samples.push(performance.now() - start);
  }
  return median(samples);
}

function row(what: string, valueMs: number, baselineMs: number, unit: "ms" | "µs" = "ms"): void {
  const scale = unit === "µs" ? 1000 : 1;
  const fmt = (ms: number) => `${(ms * scale).toFixed(unit === "µs" ? 1 : 3)} ${unit}`;
  console.log(
    `${what.padEnd(50)} ${fmt(valueMs).padStart(12)}   baseline ${fmt(baselineMs).padStart(12)}   ×${
      (valueMs / baselineMs).toFixed(1)
    }`,
  );
}

const dir = await Deno.makeTempDir({ prefix: "denvex-runtime-bench-" });
try {
  const modules = await bundleApp(await writeApp(dir, { ...APP_FILES, "cpu.ts": CPU_MODULE }));
  await stopBundler();
  const { dataDir, persistence, database, deploymentDir } = await openDeployedApp(dir, modules);
  const pool = new RunnerPool({
    dataDir,
    location: persistence.location,
    queryRunners: 1,
    minActionRunners: 0,
    onCall: () => Promise.reject(new Error("no calls in this benchmark")),
    createTable: (name) => database.createTable(name),
  });
  await pool.ready();
  const call = (
    udfType: "query" | "mutation",
    exportName: string,
    args: Record<string, unknown>,
    modulePath = "messages.js",
  ) => {
    const request: ExecuteRequest = {
      udfType,
      modulePath,
      exportName,
      argsJson: JSON.stringify([args]),
      snapshotTs: database.latestTs,
      catalog: database.catalog,
      identityJson: null,
      env: {},
      requestId: "bench",
      deploymentDir,
    };
    return pool.execute(request).then((result) => {
      if (!result.ok) throw new Error(result.errorMessage);
      return result;
    });
  };

  // Seed DOCUMENTS documents.
  const seeded = await call("mutation", "sendMany", { count: DOCUMENTS });
  await database.commit(seeded.outcome!);
  const firstId = (JSON.parse((await call("query", "list", {})).resultJson!) as { _id: string }[])[0]._id;

  console.log(`runtime benchmark (medians; ${navigator.hardwareConcurrency} cores)\n`);
  if (ONLY_CPU) {
    await runnerCpuSection(database, persistence.location, dataDir, deploymentDir);
    await poolCpuSection(database, persistence.location, dataDir, deploymentDir);
    Deno.exit(0);
  }

  // 1. Trivial query: pool round trip vs. a direct call in this process.
  const { convexGlobal } = directGlobal();
  Object.defineProperty(globalThis, "Convex", { value: convexGlobal, configurable: true });
  const direct = await import(`file://${deploymentDir}/messages.js`);
  const directMs = await timeMs(ROUNDS * 5, () => direct.hello.invokeQuery('[{"name":"x"}]'));
  const poolMs = await timeMs(ROUNDS, () => call("query", "hello", { name: "x" }));
  row("trivial query: pool vs direct call", poolMs, directMs);

  // 2. Per-syscall cost: (N gets − 0 gets) / N through the pool vs. host.syscall on an in-process transaction.
  const zeroMs = await timeMs(ROUNDS / 4, () => call("query", "getMany", { id: firstId, times: 0 }));
  const manyMs = await timeMs(ROUNDS / 4, () => call("query", "getMany", { id: firstId, times: GETS_PER_QUERY }));
  const getArgs = JSON.stringify({ id: firstId, isSystem: false, version: "1.48.0" });
  const directGetsMs = await timeMs(ROUNDS / 4, async () => {
    const host = database.begin("query");
    for (let i = 0; i < GETS_PER_QUERY; i++) await host.syscall("1.0/get", getArgs);
  });
  row(
    "one ctx.db.get: user code vs host.syscall",
    (manyMs - zeroMs) / GETS_PER_QUERY,
    directGetsMs / GETS_PER_QUERY,
    "µs",
  );

  // 2b. Gets issued together (`Promise.all`) cross to the runner's main thread as batches (issue 14): a query's time
  // with N gets together vs. the same N one by one (each its own crossing).
  for (const gets of [10, 100]) {
    const oneByOneMs = await timeMs(ROUNDS, () => call("query", "getMany", { id: firstId, times: gets }));
    const togetherMs = await timeMs(ROUNDS, () => call("query", "getTogether", { id: firstId, times: gets }, "cpu.js"));
    row(`query with ${gets} ctx.db.get: together vs one by one`, togetherMs, oneByOneMs);
  }

  // 3. collect() of DOCUMENTS documents vs. the same scan on the engine.
  const collectMs = await timeMs(ROUNDS / 4, () => call("query", "list", {}));
  const streamArgs = JSON.stringify({
    query: { source: { type: "FullTableScan", tableName: "messages", order: null }, operators: [] },
    version: "1.48.0",
  });
  const directScanMs = await timeMs(ROUNDS / 4, async () => {
    const host = database.begin("query");
    const { queryId } = JSON.parse(await host.syscall("1.0/queryStream", streamArgs));
    for (;;) {
      const batch = JSON.parse(await host.syscall("1.0/queryStreamNext", JSON.stringify({ queryId, batchSize: 256 })));
      if (batch.done) break;
    }
  });
  row(`collect() of ${DOCUMENTS} documents: pool vs engine`, collectMs, directScanMs);

  console.log("\ngoals: one syscall < 50 µs, collect of 1,000 documents < 20 ms");
  await pool.close();
  await runnerCpuSection(database, persistence.location, dataDir, deploymentDir);
  await poolCpuSection(database, persistence.location, dataDir, deploymentDir);
  await persistence.close();
} finally {
  await Deno.remove(dir, { recursive: true });
}

/** A `Convex` global for the direct call: the trivial query makes no syscalls. */
function directGlobal() {
  const unused = () => {
    throw new Error("no syscalls expected");
  };
  return { convexGlobal: { syscall: unused, asyncSyscall: unused, jsSyscall: unused } };
}

// ---------------------------------------------------------------------------------------------------------------
// 4. Runner CPU per call, by thread.

/**
 * CPU ns so far of each thread of the processes `pids` (default: this one), summed by kind: main threads, user-code
 * workers, V8 helpers.
 */
function threadCpuNs(pids: number[] = [Deno.pid]): Map<string, number> {
  const byKind = new Map<string, number>();
  for (const pid of pids) {
    for (const entry of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        const name = Deno.readTextFileSync(`/proc/${pid}/task/${entry.name}/comm`).trim();
        // schedstat's first field: time on a CPU, in ns (finer than stat's clock ticks).
        const ns = Number(Deno.readTextFileSync(`/proc/${pid}/task/${entry.name}/schedstat`).split(" ")[0]);
        const kind = entry.name === String(pid) ? "main" : name.startsWith("worker-") ? "worker" : "other";
        byKind.set(kind, (byKind.get(kind) ?? 0) + ns);
      } catch {
        // The thread ended meanwhile.
      }
    }
  }
  return byKind;
}

/** µs per call by thread kind while `calls` runs of `run` complete. */
async function cpuPerCall(calls: number, run: (i: number) => Promise<unknown>): Promise<Map<string, number>> {
  for (let i = 0; i < Math.min(200, calls); i++) await run(i); // warm up
  const before = threadCpuNs();
  for (let i = 0; i < calls; i++) await run(i);
  const after = threadCpuNs();
  const perCall = new Map<string, number>();
  for (const [kind, ns] of after) perCall.set(kind, (ns - (before.get(kind) ?? 0)) / 1000 / calls);
  return perCall;
}

/** A `Runner` (of this tree or `tree`) driven in this process, one call at a time, as the pool drives a runner. */
async function inProcessRunner(tree: string | null, database: Database, location: unknown, dataDir: string) {
  const runnerUrl = tree === null
    ? new URL("../../src/runtime/runner.ts", import.meta.url)
    : `file://${tree}/src/runtime/runner.ts`;
  const { Runner } = await import(runnerUrl.toString());
  let answer: PromiseWithResolvers<FromRunnerMessage> | null = null;
  let idle: PromiseWithResolvers<void> | null = null;
  // deno-lint-ignore prefer-const
  let runner: { handle(message: ToRunnerMessage): void; start(): Promise<void> };
  runner = new Runner(
    { type: "init", kind: "transaction", location, modulesDir: modulesRoot(dataDir), allowNet: false },
    (message: FromRunnerMessage) => {
      if (message.type === "idle") idle?.resolve();
      else if (message.type === "result") {
        answer?.resolve(message);
        // An answer marked idle stands for the idle message (RunnerResultMessage.idle).
        if (message.idle === true) idle?.resolve();
      }
      return Promise.resolve();
    },
  );
  await runner.start();
  let executionId = 0;
  let catalogVersion: number | null = null;
  return async (
    udfType: "query" | "mutation",
    modulePath: string,
    exportName: string,
    args: unknown,
    deploymentDir: string,
  ) => {
    answer = Promise.withResolvers();
    idle = Promise.withResolvers();
    const catalog = database.catalog;
    runner.handle({
      type: "execute",
      executionId: `cpu-${executionId++}`,
      udfType,
      modulePath,
      exportName,
      argsJson: JSON.stringify([args]),
      snapshotTs: database.latestTs.toString(),
      catalog: catalog.version === catalogVersion ? null : catalog,
      catalogVersion: catalog.version,
      identityJson: null,
      journal: null,
      env: {},
      requestId: "bench",
      deploymentDir,
      timeLimitMs: 1_000,
      metadata: { deploymentName: "bench", request: NO_REQUEST_METADATA },
    });
    catalogVersion = catalog.version;
    const result = await answer.promise;
    await idle.promise;
    if (result.type !== "result" || !result.ok) throw new Error(`call failed: ${JSON.stringify(result)}`);
    return result.outcome;
  };
}

function cpuText(perCall: Map<string, number>): string {
  const total = [...perCall.values()].reduce((sum, us) => sum + us, 0);
  const part = (kind: string) => (perCall.get(kind) ?? 0).toFixed(0);
  return `${total.toFixed(0).padStart(5)} µs (main ${part("main")}, worker ${part("worker")}, V8 helpers ${
    part("other")
  })`;
}

async function runnerCpuSection(database: Database, location: unknown, dataDir: string, deploymentDir: string) {
  const baselineTree = Deno.env.get("BASELINE_TREE") ?? null;
  console.log(`\nrunner CPU per call, by thread (${CPU_CALLS} calls, one at a time, ${CPU_ROUNDS} rounds)`);
  const runners: [string, Awaited<ReturnType<typeof inProcessRunner>>][] = [];
  if (baselineTree !== null) runners.push(["before", await inProcessRunner(baselineTree, database, location, dataDir)]);
  runners.push([baselineTree === null ? "runner" : "after", await inProcessRunner(null, database, location, dataDir)]);
  const commit = (outcome: TransactionOutcome | undefined) => database.commit(outcome!);
  // The database work alone, on this thread: the floor a runner's CPU is compared with.
  const take10Args = JSON.stringify({
    query: { source: { type: "FullTableScan", tableName: "messages", order: null }, operators: [{ limit: 10 }] },
    version: "1.48.0",
  });
  const engine = {
    take10: async () => {
      const host = database.begin("query");
      const { queryId } = JSON.parse(await host.syscall("1.0/queryStream", take10Args));
      await host.syscall("1.0/queryStreamNext", JSON.stringify({ queryId, batchSize: 10 }));
    },
    insert: async (i: number) => {
      const host = database.begin("mutation");
      await host.syscall("1.0/insert", JSON.stringify({ table: "messages", value: { body: `e${i}` } }));
      await commit(host.outcome());
    },
  };
  for (let round = 0; round < CPU_ROUNDS; round++) {
    for (const [label, call] of runners) {
      const trivial = await cpuPerCall(
        CPU_CALLS,
        (i) => call("query", "cpu.js", "trivial", { nonce: i }, deploymentDir),
      );
      const take10 = await cpuPerCall(CPU_CALLS, (i) => call("query", "cpu.js", "take10", { nonce: i }, deploymentDir));
      const insert = await cpuPerCall(
        CPU_CALLS,
        async (i) => await commit(await call("mutation", "cpu.js", "add", { body: `r${i}` }, deploymentDir)),
      );
      console.log(`  ${label.padEnd(7)} trivial query ${cpuText(trivial)}`);
      console.log(`  ${label.padEnd(7)} take(10)      ${cpuText(take10)}`);
      console.log(`  ${label.padEnd(7)} insert        ${cpuText(insert)} (commit included)`);
    }
    const engineTake10 = await cpuPerCall(CPU_CALLS, engine.take10);
    const engineInsert = await cpuPerCall(CPU_CALLS, engine.insert);
    console.log(`  engine  take(10)      ${cpuText(engineTake10)}   insert ${cpuText(engineInsert)}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 5. Runner processes' CPU per call through a pool.

async function poolCpuSection(database: Database, location: unknown, dataDir: string, deploymentDir: string) {
  const baselineTree = Deno.env.get("BASELINE_TREE") ?? null;
  const trees: [string, string | null][] = baselineTree === null
    ? [["pool", null]]
    : [["before", baselineTree], ["after", null]];
  console.log(
    `\nrunner processes' CPU per take(10) query through a pool (${POOL_RUNNERS} runners, ${POOL_IN_FLIGHT} in flight, ` +
      `${CPU_CALLS} calls, ${CPU_ROUNDS} rounds)`,
  );
  for (let round = 0; round < CPU_ROUNDS; round++) {
    for (const [label, tree] of trees) {
      const mod = tree === null ? "../../src/runtime/mod.ts" : `file://${tree}/src/runtime/mod.ts`;
      const { RunnerPool: Pool } = await import(mod) as { RunnerPool: typeof RunnerPool };
      const pool = new Pool({
        dataDir,
        location: location as never,
        queryRunners: POOL_RUNNERS,
        minActionRunners: 0,
        onCall: () => Promise.reject(new Error("no calls in this benchmark")),
        createTable: (name) => database.createTable(name),
      });
      await pool.ready();
      const call = (i: number) =>
        pool.execute({
          udfType: "query",
          modulePath: "cpu.js",
          exportName: "take10",
          argsJson: JSON.stringify([{ nonce: i }]),
          snapshotTs: database.latestTs,
          catalog: database.catalog,
          identityJson: null,
          env: {},
          requestId: "bench",
          deploymentDir,
        }).then((result) => {
          if (!result.ok) throw new Error(result.errorMessage);
        });
      const drive = async (calls: number) => {
        let next = 0;
        await Promise.all(Array.from({ length: POOL_IN_FLIGHT }, async () => {
          while (next < calls) await call(next++);
        }));
      };
      await drive(300); // warm up
      const pids = pool.runnerPids();
      const before = threadCpuNs(pids);
      const started = performance.now();
      await drive(CPU_CALLS);
      const perSecond = CPU_CALLS / (performance.now() - started) * 1000;
      const after = threadCpuNs(pids);
      const perCall = new Map<string, number>();
      for (const [kind, ns] of after) perCall.set(kind, (ns - (before.get(kind) ?? 0)) / 1000 / CPU_CALLS);
      console.log(`  ${label.padEnd(7)} take(10)      ${cpuText(perCall)}, ${perSecond.toFixed(0)} calls/s`);
      await pool.close();
    }
  }
}
