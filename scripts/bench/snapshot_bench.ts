/**
 * Snapshot export and import rates (denvex issue 16) through the official CLI against the real server: `DOCUMENTS`
 * small documents imported from one `.jsonl` file (`npx convex import --table`), then, after a restart (so the peak
 * RSS is the export's own), exported (`npx convex export`). Printed per direction: documents/s, MB/s of JSON, and the
 * server's peak RSS (VmHWM); each time also as a ratio to a baseline measured in the same run: for the import, the
 * same rows inserted into a bare node:sqlite database; for the export, deflating the same JSON lines with
 * `CompressionStream`, the work an export cannot avoid. An import this large is staged (src/snapshot/import_staged.ts),
 * so its peak RSS should not grow with the document count.
 *
 *   deno run -A scripts/bench/snapshot_bench.ts        (env DOCUMENTS, default 1000000, the figure)
 */
import { join } from "node:path";
import { type ConvexApp, createConvexApp, spawnServer } from "../../tests/helpers/convex_app.ts";
import { readProcessMemory } from "../../tests/helpers/memory_load.ts";

const DOCUMENTS = Number(Deno.env.get("DOCUMENTS") ?? 1_000_000);
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

function documentLine(i: number): string {
  return JSON.stringify({ n: i, name: `user ${i}`, score: i * 0.5, active: i % 2 === 0 }) + "\n";
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
  const text = await Deno.readTextFile(path);
  db.exec("BEGIN");
  for (const line of text.split("\n")) {
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

const work = await Deno.makeTempDir({ prefix: "denvex-snapshot-bench-" });
const app = await createConvexApp({});
const dataDir = join(work, "data");
await Deno.mkdir(dataDir);
const adminKey = `denvex-bench|${crypto.randomUUID().replaceAll("-", "")}`;
try {
  const jsonl = join(work, "documents.jsonl");
  {
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
  const [imported, importMs] = await timed(() =>
    runConvexCli(app, ["import", "--table", "items", "--yes", jsonl], server)
  );
  if (imported.code !== 0) throw new Error(`import failed:\n${imported.stdout.slice(-2000)}\n${imported.stderr}`);
  const importPeak = readProcessMemory(server.pid)?.peakRssBytes ?? NaN;
  await server.close();

  server = await spawnServer({ dataDir, adminKey });
  const zip = join(work, "export.zip");
  const [exported, exportMs] = await timed(() => runConvexCli(app, ["export", "--path", zip], server));
  if (exported.code !== 0) throw new Error(`export failed:\n${exported.stdout}\n${exported.stderr}`);
  const exportPeak = readProcessMemory(server.pid)?.peakRssBytes ?? NaN;
  await server.close();
  const baselineMs = await deflateBaselineMs(jsonl);
  const importBaselineMs = await sqliteBaselineMs(jsonl, work);

  const rate = (ms: number) =>
    `${Math.round(DOCUMENTS / (ms / 1000))} docs/s, ${(jsonBytes / MIB / (ms / 1000)).toFixed(1)} MB/s`;
  console.log(`${DOCUMENTS} documents, ${(jsonBytes / MIB).toFixed(1)} MiB of JSON lines`);
  console.log(
    `import (CLI, end to end): ${(importMs / 1000).toFixed(1)} s, ${rate(importMs)}, peak RSS ${
      (importPeak / MIB).toFixed(0)
    } MiB`,
  );
  console.log(
    `export (CLI, end to end): ${(exportMs / 1000).toFixed(1)} s, ${rate(exportMs)}, peak RSS ${
      (exportPeak / MIB).toFixed(0)
    } MiB, ` +
      `ZIP ${((await Deno.stat(zip)).size / MIB).toFixed(1)} MiB`,
  );
  console.log(
    `baseline (the same rows into bare node:sqlite, 5,000 per transaction): ${importBaselineMs.toFixed(0)} ms; ` +
      `import / baseline = ${(importMs / importBaselineMs).toFixed(1)}x`,
  );
  console.log(
    `baseline (deflate the JSON in-process): ${baselineMs.toFixed(0)} ms; export / baseline = ${
      (exportMs / baselineMs).toFixed(1)
    }x`,
  );
} finally {
  await app.dispose();
  await Deno.remove(work, { recursive: true });
}
