/**
 * The dashboard's costs: a page of documents from a 100,000-document table (the first page and one 1,000 pages in,
 * which must cost the same: pages resume from a key, never skip rows) against a raw `node:sqlite` read of 50 rows by
 * primary key with JSON.parse, in the same run; and bundling the client at run time in a fresh worker against compiling
 * esbuild's wasm alone, and a restart's read of the bundle cached in the data directory against a build.
 */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { AssetCache, buildDashboardAssets } from "../../src/dashboard/bundle.ts";
import { ESBUILD_WASM } from "../../src/dashboard/_esbuild.ts";
import { documentPage } from "../../src/dashboard/data_api.ts";
import { openStorage } from "../../src/server/storage.ts";

const DOCUMENTS = 100_000;
const INSERT_BATCH = 5_000;
const PAGE = 50;
const DEEP_PAGES = 1_000;
const RUNS = 200;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function timeMs(runs: number, fn: () => Promise<unknown> | unknown): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await fn();
    samples.push(performance.now() - started);
  }
  return median(samples);
}

const dir = await Deno.makeTempDir({ prefix: "denvex-dashboard-bench-" });
const database = await openStorage({ kind: "sqlite", path: join(dir, "db.sqlite3") });
try {
  // --- bundling: a fresh worker each time (compile the wasm, start esbuild, build), against compiling the wasm alone
  // (the floor of any fresh build), and a restart's read of the cached bundle from the data directory ---
  const builds: number[] = [];
  let assets = await buildDashboardAssets();
  for (let i = 0; i < 3; i++) {
    assets = await buildDashboardAssets();
    builds.push(assets.buildMs);
  }
  const buildMs = median(builds);
  const compileMs = await timeMs(3, () => WebAssembly.compile(ESBUILD_WASM as Uint8Array<ArrayBuffer>));
  await new AssetCache(dir).get(); // builds and stores
  const cachedMs = await timeMs(5, async () => (await new AssetCache(dir).get()).buildMs);
  console.log(
    `bundle in a fresh worker: ${buildMs.toFixed(0)} ms = ${(buildMs / compileMs).toFixed(1)}× compiling esbuild's ` +
      `wasm alone (${compileMs.toFixed(0)} ms)`,
  );
  console.log(
    `restart with the bundle cached in the data directory: ${cachedMs.toFixed(1)} ms = ` +
      `${(cachedMs / buildMs).toFixed(3)}× a build`,
  );
  console.log(`assets: app.js ${assets.js.length} B (${assets.jsGzip.length} B gzip), app.css ${assets.css.length} B`);

  // --- a page of a 100k-document table ---
  const seed = new Uint8Array(64);
  for (let from = 0; from < DOCUMENTS; from += INSERT_BATCH) {
    await database.runSystemTransaction(async (tx) => {
      for (let n = from; n < from + INSERT_BATCH; n++) {
        await tx.insert("items", { n, tag: n % 2 === 0 ? "even" : "odd", blob: seed.buffer, nested: { a: [n] } });
      }
    }, { label: "bench: seed" });
  }
  const request = {
    componentPath: "",
    table: "items",
    index: "by_creation_time",
    order: "asc" as const,
    cursor: null as string | null,
    limit: PAGE,
    filterField: null,
    filterValue: null,
  };
  const firstMs = await timeMs(RUNS, () => documentPage(database, request));
  let cursor: string | null = null;
  const started = performance.now();
  for (let page = 0; page < DEEP_PAGES; page++) {
    cursor = (await documentPage(database, { ...request, cursor })).cursor;
  }
  const walkMs = performance.now() - started;
  const deepMs = await timeMs(RUNS, () => documentPage(database, { ...request, cursor }));

  // Baseline: the same number of rows straight from node:sqlite by primary key, parsed.
  const raw = new DatabaseSync(join(dir, "raw.sqlite3"));
  raw.exec("PRAGMA journal_mode=WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, json TEXT NOT NULL)");
  const insert = raw.prepare("INSERT INTO t (id, json) VALUES (?, ?)");
  raw.exec("BEGIN");
  for (let n = 0; n < DOCUMENTS; n++) {
    insert.run(
      n,
      JSON.stringify({ n, tag: n % 2 === 0 ? "even" : "odd", blob: { $bytes: "AAAA" }, nested: { a: [n] } }),
    );
  }
  raw.exec("COMMIT");
  const select = raw.prepare("SELECT json FROM t WHERE id > ? ORDER BY id LIMIT ?");
  const rawMs = await timeMs(
    RUNS,
    () => select.all(PAGE * DEEP_PAGES, PAGE).map((row) => JSON.parse(row.json as string)),
  );
  raw.close();

  console.log(
    `page of ${PAGE} from ${DOCUMENTS} documents, first page: ${firstMs.toFixed(3)} ms = ` +
      `${(firstMs / rawMs).toFixed(1)}× raw node:sqlite (${rawMs.toFixed(3)} ms)`,
  );
  console.log(
    `page ${DEEP_PAGES} (${PAGE * DEEP_PAGES} documents in): ${deepMs.toFixed(3)} ms = ` +
      `${(deepMs / firstMs).toFixed(2)}× the first page, ${(deepMs / rawMs).toFixed(1)}× raw node:sqlite`,
  );
  console.log(`walking ${DEEP_PAGES} pages: ${walkMs.toFixed(0)} ms (${(walkMs / DEEP_PAGES).toFixed(3)} ms a page)`);
} finally {
  await database.close();
  await Deno.remove(dir, { recursive: true });
}
