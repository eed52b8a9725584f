/**
 * File storage throughput: a 256 MiB upload (`POST /api/storage/upload`) and download (`GET /api/storage/<id>`)
 * through the real HTTP routes, against a plain file copy (`Deno.copyFile`) of the same size on the same disk,
 * measured in the same run and printed as ratios; plus a bare `Deno.serve` handler that streams the same body to a file
 * (and a file back), to show which part of the cost is the HTTP stack itself.
 */
import { join } from "node:path";
import { Hono } from "hono";
import { storageRoutes } from "../../src/http/storage_routes.ts";
import { openStorage } from "../../src/server/storage.ts";
import { StorageService } from "../../src/storage/mod.ts";

const SIZE_BYTES = 256 * 1024 * 1024;
const CHUNK_BYTES = 256 * 1024;

const dir = await Deno.makeTempDir({ prefix: "denvex-storage-bench-" });
const database = await openStorage({ kind: "sqlite", path: join(dir, "db.sqlite3") });
let cloudUrl = "";
const storage = await StorageService.open({ database, dataDir: dir, adminKey: "bench|key", cloudUrl: () => cloudUrl });
const app = new Hono().route("/api", storageRoutes(storage));
const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.fetch);
cloudUrl = `http://127.0.0.1:${server.addr.port}`;

function body(): ReadableStream<Uint8Array> {
  const chunk = crypto.getRandomValues(new Uint8Array(65_536));
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= SIZE_BYTES) return controller.close();
      const part = new Uint8Array(CHUNK_BYTES);
      for (let i = 0; i < CHUNK_BYTES; i += chunk.length) part.set(chunk, i);
      sent += CHUNK_BYTES;
      controller.enqueue(part);
    },
  });
}

try {
  // Baseline: write the source file, then time a plain copy of it (and an fsync, as uploads do).
  const source = join(dir, "source.bin");
  const file = await Deno.open(source, { write: true, create: true });
  for await (const part of body()) await file.write(part);
  file.close();
  let started = performance.now();
  await Deno.copyFile(source, join(dir, "copy.bin"));
  const copied = await Deno.open(join(dir, "copy.bin"), { write: true });
  await copied.sync();
  copied.close();
  const copyMs = performance.now() - started;

  // The client sends from memory (a streamed request body makes fetch itself the bottleneck).
  const payload = await Deno.readFile(source);
  started = performance.now();
  const response = await fetch(await storage.generateUploadUrl(), {
    method: "POST",
    body: payload,
    headers: { "Content-Type": "application/octet-stream" },
  });
  const { storageId } = await response.json() as { storageId: string };
  const uploadMs = performance.now() - started;

  started = performance.now();
  let received = 0;
  for await (const part of (await fetch(storage.fileUrl(storageId))).body!) received += part.length;
  const downloadMs = performance.now() - started;
  if (received !== SIZE_BYTES) throw new Error(`downloaded ${received} bytes`);

  // The HTTP stack's own ceiling: a bare handler streaming the body to a file (no hashing, no fsync, no routing).
  const bare = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    if (request.method === "GET") return new Response((await Deno.open(source)).readable);
    const out = await Deno.open(join(dir, "bare.bin"), { write: true, create: true, truncate: true });
    for await (const part of request.body!) await out.write(part);
    out.close();
    return new Response("ok");
  });
  started = performance.now();
  await (await fetch(`http://127.0.0.1:${bare.addr.port}/`, { method: "POST", body: payload })).text();
  const bareUploadMs = performance.now() - started;
  started = performance.now();
  let bareReceived = 0;
  for await (const part of (await fetch(`http://127.0.0.1:${bare.addr.port}/`)).body!) bareReceived += part.length;
  const bareDownloadMs = performance.now() - started;
  await bare.shutdown();
  if (bareReceived !== SIZE_BYTES) throw new Error(`bare download got ${bareReceived} bytes`);

  const mibPerS = (ms: number) => (SIZE_BYTES / 1024 / 1024 / (ms / 1000)).toFixed(0);
  console.log(`storage (${SIZE_BYTES / 1024 / 1024} MiB):`);
  console.log(`  plain file copy + fsync: ${copyMs.toFixed(0)} ms (${mibPerS(copyMs)} MiB/s)`);
  console.log(
    `  upload (HTTP, sha256, fsync): ${uploadMs.toFixed(0)} ms (${mibPerS(uploadMs)} MiB/s), ` +
      `${(copyMs / uploadMs).toFixed(2)}x the copy's throughput`,
  );
  console.log(
    `  download (HTTP): ${downloadMs.toFixed(0)} ms (${mibPerS(downloadMs)} MiB/s), ` +
      `${(copyMs / downloadMs).toFixed(2)}x the copy's throughput`,
  );
  console.log(
    `  bare Deno.serve upload to a file: ${bareUploadMs.toFixed(0)} ms (${mibPerS(bareUploadMs)} MiB/s); ` +
      `denvex upload ${(bareUploadMs / uploadMs).toFixed(2)}x its throughput`,
  );
  console.log(
    `  bare Deno.serve download of a file: ${bareDownloadMs.toFixed(0)} ms (${mibPerS(bareDownloadMs)} MiB/s); ` +
      `denvex download ${(bareDownloadMs / downloadMs).toFixed(2)}x its throughput`,
  );
} finally {
  await server.shutdown();
  await database.close();
  await Deno.remove(dir, { recursive: true });
}
