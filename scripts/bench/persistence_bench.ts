/**
 * Persistence benchmark: the same workload on SQLite, PostgreSQL and MySQL/MariaDB in one run, each figure also as a
 * ratio against SQLite (the embedded default) measured in the same run:
 *  1. insert transactions per second: one document and one index entry per `commit()`, each durable on return;
 *  2. the same inserts with group commit: GROUP_BATCHES transactions per `commit()` call;
 *  3. point-read latency: `getDocument` at a snapshot, one at a time (median and p99).
 * Databases come from DENVEX_TEST_PG_URL and DENVEX_TEST_MYSQL_URL (defaults: the local servers), each in a fresh
 * schema / database dropped afterwards. Run: deno task bench persistence.
 */
import { freshMysql, freshPostgres, freshSqlite } from "../../tests/helpers/databases.ts";
import { type CommitBatch, openPersistence, type Persistence } from "../../src/persistence/mod.ts";

const SINGLE_INSERTS = 1_000;
const GROUP_BATCHES = 100;
const GROUP_CALLS = 20;
const READS = 5_000;

interface Figures {
  insertsPerSecond: number;
  groupedInsertsPerSecond: number;
  readMedianUs: number;
  readP99Us: number;
}

function percentile(values: number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))];
}

const encoder = new TextEncoder();

function insertBatch(ts: bigint, n: number): CommitBatch {
  const id = `doc${String(n).padStart(8, "0")}`;
  return {
    ts,
    documents: [{ id, tableNumber: 1, ts, json: JSON.stringify({ _id: id, n, body: "hello world" }), prevTs: null }],
    indexEntries: [{ indexId: 1, key: encoder.encode(id), documentId: id, deleted: false }],
  };
}

async function measure(persistence: Persistence): Promise<Figures> {
  let ts = (await persistence.maxTs()) + 1n;
  let n = 0;
  const singleStart = performance.now();
  for (let i = 0; i < SINGLE_INSERTS; i++) await persistence.commit([insertBatch(ts++, n++)]);
  const insertsPerSecond = SINGLE_INSERTS / ((performance.now() - singleStart) / 1000);

  const groupStart = performance.now();
  for (let call = 0; call < GROUP_CALLS; call++) {
    const batches = Array.from({ length: GROUP_BATCHES }, () => insertBatch(ts++, n++));
    await persistence.commit(batches);
  }
  const groupedInsertsPerSecond = (GROUP_CALLS * GROUP_BATCHES) / ((performance.now() - groupStart) / 1000);

  const snapshotTs = ts - 1n;
  const readUs: number[] = [];
  for (let i = 0; i < READS; i++) {
    const id = `doc${String(i % n).padStart(8, "0")}`;
    const t0 = performance.now();
    const document = await persistence.getDocument(id, snapshotTs);
    readUs.push((performance.now() - t0) * 1000);
    if (document === null) throw new Error(`missing ${id}`);
  }
  return {
    insertsPerSecond,
    groupedInsertsPerSecond,
    readMedianUs: percentile(readUs, 0.5),
    readP99Us: percentile(readUs, 0.99),
  };
}

async function run(
  name: string,
  fresh: () => Promise<
    Parameters<typeof openPersistence>[0] & {
      cleanup(): Promise<void>;
    }
  >,
): Promise<[string, Figures]> {
  const location = await fresh();
  try {
    const persistence = await openPersistence(location);
    try {
      return [name, await measure(persistence)];
    } finally {
      await persistence.close();
    }
  } finally {
    await location.cleanup();
  }
}

const results = [
  await run("sqlite", freshSqlite),
  await run("postgres", freshPostgres),
  await run("mysql", freshMysql),
];
const baseline = results[0][1];
const ratio = (value: number, base: number) => `${(value / base).toFixed(2)}x`;
console.log(
  `persistence: ${SINGLE_INSERTS} single-insert commits, ${GROUP_CALLS} x ${GROUP_BATCHES}-transaction group ` +
    `commits, ${READS} point reads; ratios against SQLite`,
);
for (const [name, figures] of results) {
  console.log(
    `${name.padEnd(9)} inserts ${figures.insertsPerSecond.toFixed(0).padStart(6)} tx/s ` +
      `(${ratio(figures.insertsPerSecond, baseline.insertsPerSecond)}), ` +
      `group commit ${figures.groupedInsertsPerSecond.toFixed(0).padStart(6)} tx/s ` +
      `(${ratio(figures.groupedInsertsPerSecond, baseline.groupedInsertsPerSecond)}), ` +
      `point read median ${figures.readMedianUs.toFixed(0).padStart(4)} µs ` +
      `(${ratio(figures.readMedianUs, baseline.readMedianUs)}), p99 ${figures.readP99Us.toFixed(0)} µs`,
  );
}
