/**
 * Search benchmark (issue 18), every figure against a baseline measured in the same run:
 *  1. text search: p50 of two-term queries (first page of 10) through a query transaction, answered by the in-memory
 *     index vs by the table scan it replaces, over 30,000 documents of 50 words (Zipf over 10,000 words; the scan
 *     cannot go past 32,000: the read limit), then the index alone over 100,000;
 *  2. writes at 1,000 documents/s with the index maintained: after every commit a search for the word the commit
 *     introduced must find it (the index is current), and query p50 under that load;
 *  3. restart: building the index from the table vs only reading the table;
 *  4. vector search: top-10 over 100,000 vectors of 768 dimensions (clustered), p50 of the index vs exact search,
 *     recall@10 against exact, and memory per vector.
 * Run: deno run -A --v8-flags=--expose-gc scripts/bench/search_bench.ts [--docs N] [--vectors N] [--noise X]
 *   [--text-only | --vector-only]
 */
import { openDatabase } from "../../src/database/mod.ts";
import type { Database, DatabaseSyscalls } from "../../src/database/mod.ts";
import { openPersistence } from "../../src/persistence/mod.ts";
import { SearchService } from "../../src/search/mod.ts";
import { VectorIndex } from "../../src/search/vector_index.ts";
import { normalized } from "../../src/search/vector_index.ts";

function flag(name: string, fallback: number): number {
  const at = Deno.args.indexOf(name);
  return at === -1 ? fallback : Number(Deno.args[at + 1]);
}

const DOCUMENTS = flag("--docs", 100_000);
const VECTORS = flag("--vectors", 100_000);
const WORDS_PER_DOCUMENT = 50;
const VOCABULARY = 10_000;
const DIMENSIONS = 768;
/** Spread of a vector around its topic centre (centres are uniform in [-1, 1]): larger overlaps topics more. */
const NOISE = flag("--noise", 0.6);
const INDEX = "docs.search_body";

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** mulberry32, seeded: the same corpus every run. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = seeded(18);
const words = Array.from({ length: VOCABULARY }, (_, i) => `w${i.toString(36)}x`);
/** Zipf(1) sampling by inverse CDF over precomputed cumulative weights. */
const cumulative = (() => {
  const out = new Float64Array(VOCABULARY);
  let sum = 0;
  for (let i = 0; i < VOCABULARY; i++) out[i] = sum += 1 / (i + 1);
  for (let i = 0; i < VOCABULARY; i++) out[i] /= sum;
  return out;
})();
function zipfWord(): string {
  const r = random();
  let low = 0;
  let high = VOCABULARY - 1;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (cumulative[mid] < r) low = mid + 1;
    else high = mid;
  }
  return words[low];
}
function body(): string {
  return Array.from({ length: WORDS_PER_DOCUMENT }, zipfWord).join(" ");
}

async function declareIndex(db: Database): Promise<void> {
  await db.createTable("docs");
  await db.updateCatalog((catalog) => ({
    ...catalog,
    tables: catalog.tables.map((table) =>
      table.name === "docs"
        ? {
          ...table,
          searchIndexes: [{
            name: INDEX,
            searchField: "body",
            filterFields: ["tag"],
            indexId: -(table.tableNumber * 100),
          }],
        }
        : table
    ),
  }));
}

async function insertBatch(db: Database, bodies: string[]): Promise<void> {
  const tx = db.begin("mutation");
  for (const text of bodies) {
    await tx.syscall("1.0/insert", JSON.stringify({ table: "docs", value: { body: text, tag: "t" } }));
  }
  await db.commit(tx.outcome());
}

/** Runs a search transaction; returns its result count and time. */
async function search(db: Database, text: string): Promise<{ count: number; ms: number }> {
  const started = performance.now();
  const tx: DatabaseSyscalls = db.begin("query");
  const query = {
    source: { type: "Search", indexName: INDEX, filters: [{ type: "Search", fieldPath: "body", value: text }] },
    operators: [],
  };
  const { queryId } = JSON.parse(await tx.syscall("1.0/queryStream", JSON.stringify({ query, version: "1.48.0" })));
  // A page of 10 results, as a search box shows.
  const page = JSON.parse(await tx.syscall("1.0/queryStreamNext", JSON.stringify({ queryId, batchSize: 10 })));
  return { count: page.values.length, ms: performance.now() - started };
}

function twoTermQueries(count: number): string[] {
  // Words of rank 10..2,000: common enough to have long postings, rare enough to discriminate.
  return Array.from({ length: count }, () => {
    const a = words[10 + Math.floor(random() * 1990)];
    const b = words[10 + Math.floor(random() * 1990)];
    return `${a} ${b}`;
  });
}

/** Loads documents until the table holds `total`. */
async function loadTo(db: Database, from: number, total: number): Promise<void> {
  for (let done = from; done < total; done += 1000) {
    await insertBatch(db, Array.from({ length: Math.min(1000, total - done) }, body));
  }
}

/** p50 of `queries` through query transactions. */
async function p50(db: Database, queries: string[]): Promise<{ ms: number; counts: number[] }> {
  for (const text of queries.slice(0, 2)) await search(db, text); // warm up
  const results = [];
  for (const text of queries) results.push(await search(db, text));
  return { ms: median(results.map((r) => r.ms)), counts: results.map((r) => r.count) };
}

async function textBench(dir: string): Promise<void> {
  const db = await openDatabase(await openPersistence({ kind: "sqlite", path: `${dir}/search.sqlite3` }));
  await declareIndex(db);
  // Today's scan reads the whole table in one transaction, so it cannot search past the 32,000-document read limit:
  // the baseline is measured at 30,000 documents, where both work.
  const SCAN_DOCUMENTS = Math.min(30_000, DOCUMENTS);
  const loadStarted = performance.now();
  await loadTo(db, 0, SCAN_DOCUMENTS);
  const queries = twoTermQueries(31);
  let service = await SearchService.open(db);
  const indexSmall = await p50(db, queries);
  service.close();
  const scanSmall = await p50(db, queries.slice(0, 5));
  if (scanSmall.counts.some((count, i) => count !== indexSmall.counts[i])) throw new Error("index and scan disagree");
  console.log(
    `text two-term p50 over ${SCAN_DOCUMENTS} docs: index ${indexSmall.ms.toFixed(2)} ms vs today's scan ` +
      `${scanSmall.ms.toFixed(0)} ms = ${(scanSmall.ms / indexSmall.ms).toFixed(0)}x faster ` +
      `(the scan fails past 32,000 documents: read limit)`,
  );
  await loadTo(db, SCAN_DOCUMENTS, DOCUMENTS);
  console.log(
    `load: ${DOCUMENTS} documents of ${WORDS_PER_DOCUMENT} words in ` +
      `${((performance.now() - loadStarted) / 1000).toFixed(1)} s`,
  );

  // 3. restart: reading the table only (baseline) vs building the index from it.
  const readStarted = performance.now();
  let read = 0;
  let resumeAfter: Uint8Array | undefined;
  const snapshot = db.readSnapshot();
  for (;;) {
    const page = await snapshot.scan("docs.by_creation_time", { limit: 2000, ...(resumeAfter ? { resumeAfter } : {}) });
    read += page.length;
    if (page.length < 2000) break;
    resumeAfter = page[page.length - 1].key;
  }
  const readMs = performance.now() - readStarted;
  const buildStarted = performance.now();
  service = await SearchService.open(db);
  const buildMs = performance.now() - buildStarted;
  const stats = service.stats()[0];
  console.log(
    `restart: index build ${buildMs.toFixed(0)} ms vs reading the table ${readMs.toFixed(0)} ms (${read} docs) ` +
      `= ${(buildMs / readMs).toFixed(2)}x; index ~${(stats.sizeBytes / 2 ** 20).toFixed(0)} MiB ` +
      `(${(stats.sizeBytes / stats.documents).toFixed(0)} B/doc)`,
  );

  // 1. two-term query p50 over the whole corpus.
  const indexLarge = await p50(db, queries);
  console.log(
    `text two-term p50 over ${DOCUMENTS} docs: index ${indexLarge.ms.toFixed(2)} ms ` +
      `(${(indexLarge.ms / indexSmall.ms).toFixed(1)}x its time at ${SCAN_DOCUMENTS}); ` +
      `answered by the index: ${service.answeredTextSearches}/${queries.length + 2}`,
  );

  // 2. writes at 1,000 documents/s: a commit of 10 documents every 10 ms (not waiting for the previous one: group
  // commit), each followed by a search for the word it introduced, which must find it (the index is current).
  const writeSeconds = 5;
  let commits = 0;
  let current = 0;
  const underLoad: Promise<number>[] = [];
  const commitTimes: number[] = [];
  const inFlight = new Set<Promise<void>>();
  const started = performance.now();
  for (let k = 0; performance.now() - started < writeSeconds * 1000; k++) {
    const wait = started + k * 10 - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    if (inFlight.size >= 32) await Promise.race(inFlight);
    const marker = `fresh${k}z`;
    const commitStarted = performance.now();
    const write = insertBatch(db, Array.from({ length: 10 }, (_, i) => (i === 0 ? `${marker} ${body()}` : body())))
      .then(async () => {
        commitTimes.push(performance.now() - commitStarted);
        commits++;
        if ((await search(db, marker)).count === 1) current++;
      });
    inFlight.add(write);
    write.finally(() => inFlight.delete(write));
    if (k % 10 === 0) underLoad.push(search(db, twoTermQueries(1)[0]).then((r) => r.ms));
  }
  await Promise.all(inFlight);
  const rate = (commits * 10) / ((performance.now() - started) / 1000);
  console.log(
    `writes: ${rate.toFixed(0)} docs/s sustained (target 1,000); index current after ${current}/${commits} commits; ` +
      `commit of 10 docs p50 ${median(commitTimes).toFixed(2)} ms; two-term query p50 under load ` +
      `${median(await Promise.all(underLoad)).toFixed(2)} ms (vs ${indexLarge.ms.toFixed(2)} ms idle)`,
  );
  service.close();
  await db.close();
}

/** Embeddings cluster by topic: 256 random centres; each vector (document or query) a centre plus noise. */
const centres = Array.from({ length: 256 }, () => Float32Array.from({ length: DIMENSIONS }, () => random() * 2 - 1));
function vectorCorpus(count: number): Float32Array[] {
  return Array.from({ length: count }, () => {
    const centre = centres[Math.floor(random() * centres.length)];
    return Float32Array.from(centre, (x) => x + (random() * 2 - 1) * NOISE);
  });
}

async function vectorBench(): Promise<void> {
  const corpus = vectorCorpus(VECTORS);
  const index = new VectorIndex({
    name: "docs.by_embedding",
    vectorField: "embedding",
    dimensions: DIMENSIONS,
    filterFields: [],
  });
  // With --v8-flags=--expose-gc the heap figures are taken after a full collection (else they are noisier).
  const collect = (globalThis as { gc?: () => void }).gc ?? (() => {});
  collect();
  const heapBefore = Deno.memoryUsage().heapUsed + Deno.memoryUsage().external;
  const loadStarted = performance.now();
  corpus.forEach((vector, i) => {
    // As a commit delivers it: the document's JSON text.
    index.apply(`id${i}`, `{"_id":"id${i}","_creationTime":${i},"embedding":[${Array.from(vector).join(",")}]}`);
  });
  const loadMs = performance.now() - loadStarted;
  const clusterStarted = performance.now();
  await index.buildClusters(() => Promise.resolve());
  const clusterMs = performance.now() - clusterStarted;
  collect();
  const heapAfter = Deno.memoryUsage().heapUsed + Deno.memoryUsage().external;
  const queries = vectorCorpus(30);
  const exactTimes: number[] = [];
  const exactResults = queries.map((vector) => {
    const t0 = performance.now();
    const results = index.searchExact(normalized(vector)!, 10, null);
    exactTimes.push(performance.now() - t0);
    return results;
  });
  const times: number[] = [];
  let hits = 0;
  queries.forEach((vector, q) => {
    const t0 = performance.now();
    const results = index.search(normalized(vector)!, 10, null);
    times.push(performance.now() - t0);
    const exact = new Set(exactResults[q].map((r) => r._id));
    hits += results.filter((r) => exact.has(r._id)).length;
  });
  console.log(
    `vector top-10 over ${VECTORS}x${DIMENSIONS}: p50 ${median(times).toFixed(2)} ms vs exact ${
      median(exactTimes).toFixed(2)
    } ms ` +
      `(${(median(exactTimes) / median(times)).toFixed(1)}x); recall@10 ${
        (hits / (queries.length * 10)).toFixed(3)
      }; ` +
      `memory ${((heapAfter - heapBefore) / VECTORS).toFixed(0)} B/vector measured (index reports ` +
      `${(index.sizeBytes / VECTORS).toFixed(0)}; raw float32 ${DIMENSIONS * 4}); load ${
        (loadMs / 1000).toFixed(1)
      } s, ` +
      `clusters built in ${(clusterMs / 1000).toFixed(1)} s`,
  );
}

const dir = await Deno.makeTempDir({ prefix: "denvex-search-bench-" });
try {
  if (!Deno.args.includes("--vector-only")) await textBench(dir);
  if (!Deno.args.includes("--text-only")) await vectorBench();
} finally {
  await Deno.remove(dir, { recursive: true });
}
