/**
 * Snapshot export and import rates (denvex issue 16) through the official CLI against the real server: `DOCUMENTS`
 * small documents imported from one `.jsonl` file (`npx convex import --table`), then, after a restart (so the peak
 * RSS is the export's own), exported (`npx convex export`). Printed per direction: documents/s, MB/s of JSON, and the
 * server's peak RSS (VmHWM); the export's time also as a ratio to a baseline measured in the same run: deflating the
 * same JSON lines in this process with `CompressionStream`, the work an export cannot avoid.
 *
 *   deno run -A scripts/bench/snapshot_bench.ts        (env DOCUMENTS, default 100000; the figure is 1000000)
 */
import { join } from "node:path";
import { createConvexApp, runConvexCli, spawnServer } from "../../tests/helpers/convex_app.ts";
import { readProcessMemory } from "../../tests/helpers/memory_load.ts";

const DOCUMENTS = Number(Deno.env.get("DOCUMENTS") ?? 100_000);
const MIB = 1024 * 1024;

function documentLine(i: number): string {
  return JSON.stringify({ n: i, name: `user ${i}`, score: i * 0.5, active: i % 2 === 0 }) + "\n";
}

async function deflateBaselineMs(path: string): Promise<number> {
  const started = performance.now();
  using file = await Deno.open(path, { read: true });
  for await (const _ of file.readable.pipeThrough(new CompressionStream("deflate-raw"))) { /* drain */ }
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
  if (imported.code !== 0) throw new Error(`import failed:\n${imported.stdout}\n${imported.stderr}`);
  const importPeak = readProcessMemory(server.pid)?.peakRssBytes ?? NaN;
  await server.close();

  server = await spawnServer({ dataDir, adminKey });
  const zip = join(work, "export.zip");
  const [exported, exportMs] = await timed(() => runConvexCli(app, ["export", "--path", zip], server));
  if (exported.code !== 0) throw new Error(`export failed:\n${exported.stdout}\n${exported.stderr}`);
  const exportPeak = readProcessMemory(server.pid)?.peakRssBytes ?? NaN;
  await server.close();
  const baselineMs = await deflateBaselineMs(jsonl);

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
    `baseline (deflate the JSON in-process): ${baselineMs.toFixed(0)} ms; export / baseline = ${
      (exportMs / baselineMs).toFixed(1)
    }x`,
  );
} finally {
  await app.dispose();
  await Deno.remove(work, { recursive: true });
}
