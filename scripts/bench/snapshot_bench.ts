/**
 * Snapshot export and import rates (denvex issue 16) through the official CLI against the real server: `DOCUMENTS`
 * small documents imported from one `.jsonl` file (`npx convex import --table`), then, after a restart (so the peak
 * RSS is the export's own), exported (`npx convex export`). Printed per direction: documents/s, MB/s of JSON, and the
 * server's peak RSS (VmHWM); each time also as a ratio to a baseline measured in the same run: for the import, the
 * same rows inserted into a bare node:sqlite database; for the export, deflating the same JSON lines with
 * `CompressionStream`, the work an export cannot avoid. An import this large is staged (src/snapshot/import_staged.ts),
 * so its peak RSS should not grow with the document count.
 *
 * With `DOCUMENT_BYTES` each document carries an incompressible text field that brings its JSON line to about that
 * size: `DOCUMENTS=1000000 DOCUMENT_BYTES=1000` is the 1 GB database, whose export must hold under 200 MB.
 *
 *   deno run -A scripts/bench/snapshot_bench.ts        (env DOCUMENTS, default 1000000, the figure;
 *                                                       env DOCUMENT_BYTES, default 0: small documents)
 */
import { join } from "node:path";
import { type ConvexApp, createConvexApp, spawnServer } from "../../tests/helpers/convex_app.ts";
import { readProcessMemory } from "../../tests/helpers/memory_load.ts";

const DOCUMENTS = Number(Deno.env.get("DOCUMENTS") ?? 1_000_000);
/** 0: small documents (~80 bytes); else about this many bytes of JSON per document. */
const DOCUMENT_BYTES = Number(Deno.env.get("DOCUMENT_BYTES") ?? 0);
/** The bound on an export's memory. */
const EXPORT_RSS_LIMIT_BYTES = 200 * 1024 * 1024;
const MIB = 1024 * 1024;
/** The tests' CLI helper stops a command at 2 minutes; a million documents on a busy machine can take longer. */
const CLI_TIMEOUT_MS = 30 * 60 * 1000;

/** `npx convex <args>` against the server, with the bench's own time limit. */
async function runConvexCli(app: ConvexApp, args: string[], server: { url: string; adminKey: string }) {
  const output = await new Deno.Command("node", {
    args: [join(app.dir, "node_modules/convex/bin/main.js"), ...args],
    cwd: app.dir,
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: app.dir,
      CONVEX_SELF_HOSTED_URL: server.url,
      CONVEX_SELF_HOSTED_ADMIN_KEY: server.adminKey,
      CI: "1",
      NO_COLOR: "1",
    },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(CLI_TIMEOUT_MS),
  }).output();
  const decoder = new TextDecoder();
  return { code: output.code, stdout: decoder.decode(output.stdout), stderr: decoder.decode(output.stderr) };
}

const PAD_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789 ";

function documentLine(i: number): string {
  const fields: Record<string, unknown> = { n: i, name: `user ${i}`, score: i * 0.5, active: i % 2 === 0 };
  if (DOCUMENT_BYTES > 0) fields.text = padText(i, DOCUMENT_BYTES - 80);
  return JSON.stringify(fields) + "\n";
}

/** `length` characters that do not compress much (xorshift over a 37-letter alphabet), different per document. */
function padText(seed: number, length: number): string {
  let state = (seed * 2_654_435_761) >>> 0 || 1;
  const chars = new Array<string>(Math.max(0, length));
  for (let i = 0; i < chars.length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    chars[i] = PAD_ALPHABET[(state >>> 0) % PAD_ALPHABET.length];
  }
  return chars.join("");
}

/** The lines of the file at `path`, read as a stream (a 1 GB file is never one string). */
async function* fileLines(path: string): AsyncGenerator<string> {
  using file = await Deno.open(path, { read: true });
  let rest = "";
  for await (const text of file.readable.pipeThrough(new TextDecoderStream())) {
    const lines = (rest + text).split("\n");
    rest = lines.pop()!;
    yield* lines;
  }
  if (rest !== "") yield rest;
}

async function deflateBaselineMs(path: string): Promise<number> {
  const started = performance.now();
  using file = await Deno.open(path, { read: true });
  for await (const _ of file.readable.pipeThrough(new CompressionStream("deflate-raw"))) { /* drain */ }
  return performance.now() - started;
}

/**
 * The import's floor: the same documents inserted into a bare node:sqlite table (WAL, synchronous=FULL, like the
 * server's) in transactions of the staged import's chunk size, one row each plus two index rows.
 */
async function sqliteBaselineMs(path: string, dir: string): Promise<number> {
  const { DatabaseSync } = await import("node:sqlite");
  const db = new DatabaseSync(join(dir, "baseline.sqlite3"));
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;");
  db.exec("CREATE TABLE documents (id TEXT, ts INTEGER, json TEXT, PRIMARY KEY (id, ts))");
  db.exec("CREATE TABLE indexes (index_id INTEGER, key BLOB, ts INTEGER, id TEXT, PRIMARY KEY (index_id, key, ts))");
  const insertDocument = db.prepare("INSERT INTO documents VALUES (?, ?, ?)");
  const insertIndex = db.prepare("INSERT INTO indexes VALUES (?, ?, ?, ?)");
  const started = performance.now();
  let inTransaction = 0;
  let n = 0;
  db.exec("BEGIN");
  for await (const line of fileLines(path)) {
    if (line === "") continue;
    const id = crypto.randomUUID();
    const json = JSON.stringify({ ...JSON.parse(line), _id: id, _creationTime: n });
    insertDocument.run(id, n, json);
    insertIndex.run(1, new TextEncoder().encode(id), n, id);
    insertIndex.run(2, new TextEncoder().encode(String(n).padStart(12, "0") + id), n, id);
    n++;
    if (++inTransaction === 5_000) {
      db.exec("COMMIT; BEGIN");
      inTransaction = 0;
    }
  }
  db.exec("COMMIT");
  db.close();
  return performance.now() - started;
}

async function timed<T>(run: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const value = await run();
  return [value, performance.now() - started];
}

/** A folder kept between runs: a database built there once is reused (the import is skipped), to rerun exports. */
const KEEP_DIR = Deno.env.get("BENCH_KEEP_DIR");
const work = KEEP_DIR ?? await Deno.makeTempDir({ prefix: "denvex-snapshot-bench-" });
const app = await createConvexApp({});
const dataDir = join(work, "data");
await Deno.mkdir(dataDir, { recursive: true });
const adminKey = KEEP_DIR ? "denvex-bench|kept" : `denvex-bench|${crypto.randomUUID().replaceAll("-", "")}`;
const built = join(work, "built");
const reused = KEEP_DIR !== undefined && await Deno.stat(built).then(() => true, () => false);
try {
  const jsonl = join(work, "documents.jsonl");
  if (!reused) {
    using file = await Deno.open(jsonl, { write: true, create: true });
    const writer = file.writable.getWriter();
    const encoder = new TextEncoder();
    for (let i = 0; i < DOCUMENTS; i += 10_000) {
      const lines = [];
      for (let j = i; j < Math.min(i + 10_000, DOCUMENTS); j++) lines.push(documentLine(j));
      await writer.write(encoder.encode(lines.join("")));
    }
    await writer.close();
  }
  const jsonBytes = (await Deno.stat(jsonl)).size;

  let server = await spawnServer({ dataDir, adminKey });
  let [importMs, importPeak] = [NaN, NaN];
  if (!reused) {
    let imported;
    [imported, importMs] = await timed(() => runConvexCli(app, ["import", "--table", "items", "--yes", jsonl], server));
    if (imported.code !== 0) throw new Error(`import failed:\n${imported.stdout.slice(-2000)}\n${imported.stderr}`);
    importPeak = readProcessMemory(server.pid)?.peakRssBytes ?? NaN;
    if (KEEP_DIR) await Deno.writeTextFile(built, "");
  }
  await server.close();

  server = await spawnServer({ dataDir, adminKey });
  // What a started, idle server holds: the export's own memory is the peak above this.
  const idleRss = readProcessMemory(server.pid)?.rssBytes ?? NaN;
  const zip = join(work, "export.zip");
  await Deno.remove(zip).catch(() => {}); // a kept folder's previous run
  const [exported, exportMs] = await timed(() => runConvexCli(app, ["export", "--path", zip], server));
  if (exported.code !== 0) throw new Error(`export failed:\n${exported.stdout}\n${exported.stderr}`);
  const exportPeak = readProcessMemory(server.pid)?.peakRssBytes ?? NaN;
  await server.close();
  const baselineMs = await deflateBaselineMs(jsonl);
  // Without an import there is nothing to compare this baseline to.
  const importBaselineMs = reused ? NaN : await sqliteBaselineMs(jsonl, work);

  const rate = (ms: number) =>
    `${Math.round(DOCUMENTS / (ms / 1000))} docs/s, ${(jsonBytes / MIB / (ms / 1000)).toFixed(1)} MB/s`;
  console.log(`${DOCUMENTS} documents, ${(jsonBytes / MIB).toFixed(1)} MiB of JSON lines`);
  if (reused) console.log("import: skipped (the database of BENCH_KEEP_DIR is reused)");
  else {
    console.log(
      `import (CLI, end to end): ${(importMs / 1000).toFixed(1)} s, ${rate(importMs)}, peak RSS ${
        (importPeak / MIB).toFixed(0)
      } MiB`,
    );
  }
  console.log(
    `export (CLI, end to end): ${(exportMs / 1000).toFixed(1)} s, ${rate(exportMs)}, peak RSS ${
      (exportPeak / MIB).toFixed(0)
    } MiB, ` +
      `ZIP ${((await Deno.stat(zip)).size / MIB).toFixed(1)} MiB`,
  );
  if (!reused) {
    console.log(
      `baseline (the same rows into bare node:sqlite, 5,000 per transaction): ${importBaselineMs.toFixed(0)} ms; ` +
        `import / baseline = ${(importMs / importBaselineMs).toFixed(1)}x`,
    );
  }
  console.log(
    `baseline (deflate the JSON in-process): ${baselineMs.toFixed(0)} ms; export / baseline = ${
      (exportMs / baselineMs).toFixed(1)
    }x`,
  );
  console.log(
    `export peak RSS ${(exportPeak / MIB).toFixed(0)} MiB (idle server ${(idleRss / MIB).toFixed(0)} MiB) for ${
      (jsonBytes / MIB).toFixed(0)
    } MiB of JSON: ` +
      `${exportPeak <= EXPORT_RSS_LIMIT_BYTES ? "within" : "OVER"} the issue's 200 MB bound`,
  );
} finally {
  await app.dispose();
  if (!KEEP_DIR) await Deno.remove(work, { recursive: true });
}
