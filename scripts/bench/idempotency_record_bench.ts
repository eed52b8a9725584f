/**
 * What the durable idempotency record (src/functions/idempotency.ts) adds to a mutation's commit (issue 14: sync
 * mutations cost more server CPU than HTTP ones). One SQLite database, commits made one after another through the
 * real committer; per commit, wall time and this process's CPU (the WAL fsync thread included). The baseline is the
 * same commit without the record, measured in the same run, alternating rounds so machine noise hits both. A first
 * send (the common case: a socket's first connection) only records; a re-send looks the key up before it runs.
 *
 *   deno run -A scripts/bench/idempotency_record_bench.ts      (env COMMITS, default 2000 per round; ROUNDS, default 3)
 */
import process from "node:process";
import { openStorage } from "../../src/server/storage.ts";
import { findResult, recordResult, resultKey } from "../../src/functions/idempotency.ts";
import type { Database } from "../../src/database/mod.ts";

const COMMITS = Number(Deno.env.get("COMMITS") ?? 2_000);
const ROUNDS = Number(Deno.env.get("ROUNDS") ?? 3);
/** A typical mutation result: a new document's ID. */
const RESULT_JSON = '"j57d1wec15knkxypd0zv4ntf8k6ddssx"';

let nextKey = 0;

/**
 * How a commit is made: without a key; as a mutation's first send (the result recorded in the commit); as a re-send
 * after a reconnect (looked up first, then recorded).
 */
type Mode = "plain" | "first" | "resend";
const MODES: Mode[] = ["plain", "first", "resend"];

/** Commits `COMMITS` one-document inserts the way `mode` says; µs per commit (wall, CPU). */
async function round(database: Database, mode: Mode): Promise<{ wallUs: number; cpuUs: number }> {
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  for (let i = 0; i < COMMITS; i++) {
    const key = mode === "plain" ? null : resultKey(`session\u0000${nextKey++}`, "owner");
    if (key !== null && mode === "resend") await findResult(database, key);
    const tx = database.beginSystemTransaction();
    await tx.insert("items", { k: "key", n: i });
    const outcome = tx.outcome();
    if (key !== null) await recordResult(database, outcome, key, RESULT_JSON);
    await database.commit(outcome);
  }
  const cpu = process.cpuUsage(cpuBefore);
  return { wallUs: (performance.now() - started) * 1000 / COMMITS, cpuUs: (cpu.user + cpu.system) / COMMITS };
}

const dir = await Deno.makeTempDir({ prefix: "denvex-idem-bench-" });
const database = await openStorage({ kind: "sqlite", path: `${dir}/denvex.sqlite3` });
try {
  await database.createTable("items");
  for (const mode of MODES) await round(database, mode); // warm-up
  const totals = { plain: { wallUs: 0, cpuUs: 0 }, first: { wallUs: 0, cpuUs: 0 }, resend: { wallUs: 0, cpuUs: 0 } };
  for (let r = 0; r < ROUNDS; r++) {
    for (const mode of MODES) {
      const result = await round(database, mode);
      totals[mode].wallUs += result.wallUs / ROUNDS;
      totals[mode].cpuUs += result.cpuUs / ROUNDS;
    }
  }
  const { plain } = totals;
  console.log(`idempotency_record_bench: ${ROUNDS} rounds × ${COMMITS} sequential commits, SQLite`);
  console.log(`  insert only:              ${plain.wallUs.toFixed(0)} µs/commit, CPU ${plain.cpuUs.toFixed(0)} µs`);
  for (const mode of ["first", "resend"] as const) {
    const { wallUs, cpuUs } = totals[mode];
    const label = mode === "first" ? "insert + result (first send):" : "insert + result (re-send):   ";
    console.log(
      `  ${label} ${wallUs.toFixed(0)} µs/commit, CPU ${cpuUs.toFixed(0)} µs ` +
        `(+${(cpuUs - plain.cpuUs).toFixed(0)} µs CPU, ${(cpuUs / plain.cpuUs).toFixed(2)}× baseline)`,
    );
  }
} finally {
  await database.close();
  await Deno.remove(dir, { recursive: true });
}
