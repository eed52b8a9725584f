/**
 * Function runtime benchmark: what the process boundary and the sandbox cost, against baselines measured in the same
 * run on the same machine.
 *
 *   deno run -A scripts/bench/runtime_bench.ts
 *
 * 1. a trivial query through the pool vs. calling its `invokeQuery` directly in this process;
 * 2. one `ctx.db.get` syscall from user code vs. one `host.syscall("1.0/get")` on an in-process transaction;
 * 3. `collect()` of 1,000 documents vs. the same scan on an in-process transaction.
 */
import { bundleApp, stopBundler, writeApp } from "../../tests/helpers/runtime_app.ts";
import { type ExecuteRequest, RunnerPool, writeDeploymentModules } from "../../src/runtime/mod.ts";
import { openPersistence } from "../../src/persistence/mod.ts";
import { openDatabase } from "../../src/database/mod.ts";

const ROUNDS = 200;
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
    `${what.padEnd(44)} ${fmt(valueMs).padStart(12)}   baseline ${fmt(baselineMs).padStart(12)}   ×${
      (valueMs / baselineMs).toFixed(1)
    }`,
  );
}

const dir = await Deno.makeTempDir({ prefix: "denvex-runtime-bench-" });
try {
  const modules = await bundleApp(await writeApp(dir));
  await stopBundler();
  const dataDir = `${dir}/data`;
  await Deno.mkdir(dataDir);
  const persistence = await openPersistence({ kind: "sqlite", path: `${dataDir}/db.sqlite` });
  const database = await openDatabase(persistence);
  const { deploymentDir } = await writeDeploymentModules(dataDir, modules);
  const pool = new RunnerPool({
    dataDir,
    location: persistence.location,
    queryRunners: 1,
    minActionRunners: 0,
    onCall: () => Promise.reject(new Error("no calls in this benchmark")),
    createTable: (name) => database.createTable(name),
  });
  await pool.ready();
  const call = (udfType: "query" | "mutation", exportName: string, args: Record<string, unknown>) => {
    const request: ExecuteRequest = {
      udfType,
      modulePath: "messages.js",
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
