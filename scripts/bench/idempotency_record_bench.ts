/**
 * What the durable idempotency record (src/functions/idempotency.ts) adds to a mutation's commit (issue 14: sync
 * mutations cost more server CPU than HTTP ones). One SQLite database, commits made one after another through the
 * real committer; per commit, wall time and this process's CPU (the WAL fsync thread included). The baseline is the
 * same commit without the record, measured in the same run, alternating rounds so machine noise hits both.
 *
 *   deno run -A scripts/bench/idempotency_record_bench.ts      (env COMMITS, default 2000 per round; ROUNDS, default 3)
 */
import process from "node:process";
import { openStorage } from "../../src/server/storage.ts";
import { findResult, recordResult, resultRecordId } from "../../src/functions/idempotency.ts";
import type { Database } from "../../src/database/mod.ts";

const COMMITS = Number(Deno.env.get("COMMITS") ?? 2_000);
const ROUNDS = Number(Deno.env.get("ROUNDS") ?? 3);
/** A typical mutation result: a new document's ID. */
const RESULT_JSON = '"j57d1wec15knkxypd0zv4ntf8k6ddssx"';

let nextKey = 0;

/** Commits `COMMITS` one-document inserts, with or without the idempotency work; µs per commit (wall, CPU). */
async function round(database: Database, withRecord: boolean): Promise<{ wallUs: number; cpuUs: number }> {
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  for (let i = 0; i < COMMITS; i++) {
    const recordId = withRecord ? await resultRecordId(`session\u0000${nextKey++}`, "owner") : null;
    if (recordId !== null) await findResult(database, recordId);
    await database.runSystemTransaction(async (tx) => {
      await tx.insert("items", { k: "key", n: i });
      if (recordId !== null) await recordResult(tx, recordId, RESULT_JSON);
    }, { label: "bench" });
  }
  const cpu = process.cpuUsage(cpuBefore);
  return { wallUs: (performance.now() - started) * 1000 / COMMITS, cpuUs: (cpu.user + cpu.system) / COMMITS };
}

const dir = await Deno.makeTempDir({ prefix: "denvex-idem-bench-" });
const database = await openStorage({ kind: "sqlite", path: `${dir}/denvex.sqlite3` });
try {
  await database.createTable("items");
  await round(database, false); // warm-up
  await round(database, true);
  const totals = { plain: { wallUs: 0, cpuUs: 0 }, record: { wallUs: 0, cpuUs: 0 } };
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, withRecord] of [["plain", false], ["record", true]] as const) {
      const result = await round(database, withRecord);
      totals[name].wallUs += result.wallUs / ROUNDS;
      totals[name].cpuUs += result.cpuUs / ROUNDS;
    }
  }
  const { plain, record } = totals;
  console.log(`idempotency_record_bench: ${ROUNDS} rounds × ${COMMITS} sequential commits, SQLite`);
  console.log(`  insert only:              ${plain.wallUs.toFixed(0)} µs/commit, CPU ${plain.cpuUs.toFixed(0)} µs`);
  console.log(
    `  insert + idempotency:     ${record.wallUs.toFixed(0)} µs/commit, CPU ${record.cpuUs.toFixed(0)} µs ` +
      `(+${(record.cpuUs - plain.cpuUs).toFixed(0)} µs CPU, ${(record.cpuUs / plain.cpuUs).toFixed(2)}× baseline)`,
  );
} finally {
  await database.close();
  await Deno.remove(dir, { recursive: true });
}
