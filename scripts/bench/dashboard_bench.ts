/**
 * The dashboard's costs.
 *
 * First load: the real server (`main.ts serve` with the start task's grants) on a fresh data directory, the page and
 * both assets fetched the moment it answers `/version` (the bundle is then still being built in the background, so
 * this is the worst case a person can see), against the same first load after a restart, with the bundle cached in
 * the data directory. The server's RSS before and after each first visit (the build runs in a child process, so it
 * must not grow). In this process: a build in a child process against a build in a worker of this process (the
 * previous design), in wall time and in this process's RSS growth.
 *
 * Documents: a page from a 100,000-document table (the first page and one 1,000 pages in, which must cost the same:
 * pages resume from a key, never skip rows) against a raw `node:sqlite` read of 50 rows by primary key with
 * JSON.parse, in the same run.
 */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildDashboardAssets, bundleInWorker } from "../../src/dashboard/bundle.ts";
import { bundleInChild } from "../../src/dashboard/build_child.ts";
import { documentPage } from "../../src/dashboard/data_api.ts";
import { openStorage } from "../../src/server/storage.ts";
import { grantsFor, serverRunArgs } from "../../src/server/launcher.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SERVER_ROUNDS = 3;
const START_TIMEOUT_MS = 60_000;
const MIB = 1024 * 1024;
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

/** The server's resident memory, from /proc (bytes). */
async function rssBytes(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/** A server on `dataDir`, answering `/version`. */
async function startServer(dataDir: string): Promise<{ url: string; pid: number; stop: () => Promise<void> }> {
  const port = freePort();
  const args = ["serve", "--data", dataDir, "--port", `${port}`, "--site-port", "0", "--host", "127.0.0.1"];
  const child = new Deno.Command(Deno.execPath(), {
    args: serverRunArgs(grantsFor(["--data", dataDir]), args),
    cwd: ROOT,
    env: { NO_COLOR: "1", DENVEX_ADMIN_KEY: "" },
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const stop = async () => {
    child.kill("SIGTERM");
    await child.status;
  };
  const url = `http://127.0.0.1:${port}`;
  const started = performance.now();
  for (;;) {
    if (performance.now() - started > START_TIMEOUT_MS) {
      await stop();
      throw new Error(`the server did not answer within ${START_TIMEOUT_MS} ms`);
    }
    const ok = await fetch(`${url}/version`).then((r) => r.body?.cancel().then(() => r.ok), () => false);
    if (ok) return { url, pid: child.pid, stop };
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** What a browser's first visit fetches: the page and both assets (compressed), in milliseconds. */
async function firstVisitMs(url: string): Promise<number> {
  const started = performance.now();
  const page = await fetch(`${url}/dashboard`);
  if (!page.ok) throw new Error(`GET /dashboard: ${page.status}`);
  await page.arrayBuffer();
  await Promise.all(["app.js", "app.css"].map(async (name) => {
    const response = await fetch(`${url}/dashboard/assets/${name}`, { headers: { "Accept-Encoding": "gzip" } });
    if (!response.ok) throw new Error(`GET ${name}: ${response.status} ${await response.text()}`);
    await response.arrayBuffer();
  }));
  return performance.now() - started;
}

/** One first visit: its time and the server's RSS just before and a moment after it. */
async function measuredVisit(
  server: { url: string; pid: number },
): Promise<{ ms: number; before: number; after: number }> {
  const before = await rssBytes(server.pid);
  const ms = await firstVisitMs(server.url);
  await new Promise((resolve) => setTimeout(resolve, 500));
  return { ms, before, after: await rssBytes(server.pid) };
}

/** Fresh data directory (visit at once, build still running) against a restart on it (bundle cached). */
async function firstLoadBench(): Promise<void> {
  const fresh: { ms: number; before: number; after: number }[] = [];
  const cached: { ms: number; before: number; after: number }[] = [];
  for (let round = 0; round < SERVER_ROUNDS; round++) {
    const dataDir = await Deno.makeTempDir({ prefix: "denvex-dashboard-bench-data-" });
    try {
      let server = await startServer(dataDir);
      try {
        fresh.push(await measuredVisit(server));
      } finally {
        await server.stop();
      }
      server = await startServer(dataDir);
      try {
        cached.push(await measuredVisit(server));
      } finally {
        await server.stop();
      }
    } finally {
      await Deno.remove(dataDir, { recursive: true });
    }
  }
  const ms = (runs: { ms: number }[]) => median(runs.map((run) => run.ms));
  const mb = (bytes: number) => `${(bytes / MIB).toFixed(0)} MB`;
  console.log(
    `first load, fresh data dir, opened the moment the server answers: ${ms(fresh).toFixed(0)} ms = ` +
      `${(ms(fresh) / ms(cached)).toFixed(1)}× a restart's first load with the bundle cached ` +
      `(${ms(cached).toFixed(0)} ms) (medians of ${SERVER_ROUNDS}; runs ${fresh.map((r) => r.ms.toFixed(0))})`,
  );
  for (const [name, runs] of [["fresh data dir", fresh], ["bundle cached", cached]] as const) {
    const before = median(runs.map((run) => run.before));
    const after = median(runs.map((run) => run.after));
    console.log(
      `server RSS around the first visit (${name}): ${mb(before)} before, ${mb(after)} after = ` +
        `${(after / before).toFixed(2)}× (${after >= before ? "+" : ""}${((after - before) / MIB).toFixed(1)} MB)`,
    );
  }
}

/** A build in a child process against one in a worker of this process (the previous design). */
async function bundlerBench(): Promise<void> {
  const rssBefore = Deno.memoryUsage().rss;
  const child = [];
  for (let i = 0; i < 3; i++) child.push((await buildDashboardAssets(() => bundleInChild())).buildMs);
  const rssAfterChild = Deno.memoryUsage().rss;
  const worker = [];
  let assets = null;
  for (let i = 0; i < 3; i++) {
    assets = await buildDashboardAssets(bundleInWorker);
    worker.push(assets.buildMs);
  }
  const rssAfterWorker = Deno.memoryUsage().rss;
  const childMs = median(child);
  const workerMs = median(worker);
  console.log(
    `build in a child process: ${childMs.toFixed(0)} ms = ${(childMs / workerMs).toFixed(2)}× a build in a worker of ` +
      `this process (${workerMs.toFixed(0)} ms)`,
  );
  console.log(
    `this process's RSS growth: 3 child builds +${((rssAfterChild - rssBefore) / MIB).toFixed(1)} MB, ` +
      `3 worker builds +${((rssAfterWorker - rssAfterChild) / MIB).toFixed(1)} MB`,
  );
  console.log(
    `assets: app.js ${assets!.js.length} B (${assets!.jsGzip.length} B gzip), app.css ${assets!.css.length} B`,
  );
}

const dir = await Deno.makeTempDir({ prefix: "denvex-dashboard-bench-" });
const database = await openStorage({ kind: "sqlite", path: join(dir, "db.sqlite3") });
try {
  await firstLoadBench();
  await bundlerBench();

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
