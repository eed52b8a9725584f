/**
 * Storage engine benchmark (SQLite), each figure against a raw node:sqlite baseline measured in the same run:
 *  1. single-document insert transactions per second through the engine (concurrent writers, group commit)
 *     vs raw autocommit inserts with the same durability (WAL, synchronous=FULL);
 *  2. point reads at a snapshot vs raw point reads by primary key;
 *  3. a 1,000-document index range scan vs the raw equivalent.
 * Run: deno task bench (or deno run -A scripts/bench/engine_bench.ts).
 */
import { DatabaseSync } from "node:sqlite";
import { openDatabase } from "../../src/database/mod.ts";
import { openPersistence } from "../../src/persistence/mod.ts";

const INSERTS = 4_000;
const WRITERS = 64;
const READS = 20_000;
const SCANS = 50;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function rawBaseline(dir: string) {
  const db = new DatabaseSync(`${dir}/raw.sqlite3`);
  db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
  db.exec("CREATE TABLE docs (id TEXT PRIMARY KEY, json TEXT NOT NULL, n INTEGER)");
  db.exec("CREATE INDEX docs_n ON docs (n, id)");
  const insert = db.prepare("INSERT INTO docs (id, json, n) VALUES (?, ?, ?)");
  const start = performance.now();
  for (let i = 0; i < INSERTS; i++) insert.run(`id${i}`, JSON.stringify({ n: i, body: "hello world" }), i);
  const insertsPerSecond = INSERTS / ((performance.now() - start) / 1000);
  const select = db.prepare("SELECT json FROM docs WHERE id = ?");
  const readStart = performance.now();
  for (let i = 0; i < READS; i++) JSON.parse((select.get(`id${i % INSERTS}`) as { json: string }).json);
  const readUs = ((performance.now() - readStart) * 1000) / READS;
  const scan = db.prepare("SELECT json FROM docs WHERE n >= ? AND n < ? ORDER BY n, id");
  const scanTimes: number[] = [];
  for (let i = 0; i < SCANS; i++) {
    const t0 = performance.now();
    const rows = scan.all(1000, 2000) as { json: string }[];
    for (const row of rows) JSON.parse(row.json);
    scanTimes.push(performance.now() - t0);
    if (rows.length !== 1000) throw new Error("raw scan returned the wrong count");
  }
  db.close();
  return { insertsPerSecond, readUs, scanMs: median(scanTimes) };
}

async function engine(dir: string) {
  const db = await openDatabase(await openPersistence({ kind: "sqlite", path: `${dir}/engine.sqlite3` }));
  // Create the table and its index first so the timed loop measures only inserts.
  const setup = db.begin("mutation");
  await setup.syscall("1.0/insert", JSON.stringify({ table: "docs", value: { n: -1, body: "setup" } }));
  await db.commit(setup.outcome());
  const indexId = db.nextIndexId();
  await db.updateCatalog((catalog) => ({
    ...catalog,
    tables: catalog.tables.map((t) =>
      t.name === "docs"
        ? { ...t, indexes: [...t.indexes, { indexId, name: "docs.by_n", fields: ["n"], ready: false }] }
        : t
    ),
  }));
  await db.backfillIndex(indexId);

  const ids: string[] = [];
  let next = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: WRITERS }, async () => {
    while (next < INSERTS) {
      const n = next++;
      const tx = db.begin("mutation");
      const { _id } = JSON.parse(
        await tx.syscall("1.0/insert", JSON.stringify({ table: "docs", value: { n, body: "hello world" } })),
      );
      await db.commit(tx.outcome());
      ids.push(_id);
    }
  }));
  const insertsPerSecond = INSERTS / ((performance.now() - start) / 1000);

  const READS_PER_QUERY = 1_000;
  let reader = db.begin("query");
  const readStart = performance.now();
  for (let i = 0; i < READS; i++) {
    if (i % READS_PER_QUERY === 0) reader = db.begin("query");
    JSON.parse(await reader.syscall("1.0/get", JSON.stringify({ id: ids[i % ids.length], isSystem: false })));
  }
  const readUs = ((performance.now() - readStart) * 1000) / READS;

  const scanTimes: number[] = [];
  for (let i = 0; i < SCANS; i++) {
    const tx = db.begin("query");
    const t0 = performance.now();
    const query = {
      source: {
        type: "IndexRange",
        indexName: "docs.by_n",
        range: [{ type: "Gte", fieldPath: "n", value: 1000 }, { type: "Lt", fieldPath: "n", value: 2000 }],
        order: "asc",
      },
      operators: [],
    };
    const { queryId } = JSON.parse(await tx.syscall("1.0/queryStream", JSON.stringify({ query })));
    let count = 0;
    for (;;) {
      const batch = JSON.parse(await tx.syscall("1.0/queryStreamNext", JSON.stringify({ queryId, batchSize: 1024 })));
      count += batch.values.length;
      if (batch.done) break;
    }
    scanTimes.push(performance.now() - t0);
    if (count !== 1000) throw new Error(`engine scan returned ${count} documents`);
  }
  await db.close();
  return { insertsPerSecond, readUs, scanMs: median(scanTimes) };
}

const dir = await Deno.makeTempDir({ prefix: "denvex-bench-" });
try {
  const raw = rawBaseline(dir);
  const ours = await engine(dir);
  const line = (label: string, value: string, baseline: string, ratio: number, goal: string) =>
    console.log(
      `${label.padEnd(44)} ${value.padStart(12)}  raw ${baseline.padStart(12)}  ratio ${ratio.toFixed(2)}  (${goal})`,
    );
  console.log(`engine benchmark (SQLite, ${WRITERS} concurrent writers, ${INSERTS} inserts)`);
  line(
    "insert transactions/s (engine vs autocommit)",
    ours.insertsPerSecond.toFixed(0),
    raw.insertsPerSecond.toFixed(0),
    ours.insertsPerSecond / raw.insertsPerSecond,
    "goal ≥ 0.5×",
  );
  line(
    "point read µs (snapshot vs raw PK)",
    ours.readUs.toFixed(2),
    raw.readUs.toFixed(2),
    ours.readUs / raw.readUs,
    "goal ≤ 3×",
  );
  line(
    "1,000-document index range scan ms",
    ours.scanMs.toFixed(2),
    raw.scanMs.toFixed(2),
    ours.scanMs / raw.scanMs,
    "lower is better",
  );
} finally {
  await Deno.remove(dir, { recursive: true });
}
