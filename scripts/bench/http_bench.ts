/**
 * HTTP function API throughput: a small query over `POST /api/query` (keep-alive, 32 concurrent callers) against a
 * bare `Deno.serve` JSON handler measured in the same run. Goal: ≥ 0.5× the baseline.
 */
import { startTestServer } from "../../tests/helpers/sync_app.ts";
import { stopBundler } from "../../tests/helpers/runtime_app.ts";

const DURATION_MS = 3_000;
const CONCURRENCY = 32;

async function throughput(url: string, body: string): Promise<number> {
  let done = 0;
  const deadline = performance.now() + DURATION_MS;
  const worker = async () => {
    while (performance.now() < deadline) {
      const response = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body });
      await response.arrayBuffer();
      done++;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return done / (DURATION_MS / 1000);
}

const body = JSON.stringify({ path: "messages:hello", args: [{ name: "bench" }], format: "convex_encoded_json" });
const bare = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
  const parsed = await request.json();
  return Response.json({ status: "success", value: `hello ${parsed.args[0].name}`, logLines: [] });
});
const server = await startTestServer();
try {
  await throughput(`${server.url}/api/query`, body); // warm-up (runners, JIT)
  const baseline = await throughput(`http://127.0.0.1:${bare.addr.port}/`, body);
  const api = await throughput(`${server.url}/api/query`, body);
  console.log(`http_bench: bare Deno.serve JSON handler ${baseline.toFixed(0)} req/s`);
  console.log(
    `http_bench: POST /api/query (small query) ${api.toFixed(0)} req/s = ${
      (api / baseline).toFixed(2)
    }× baseline (goal ≥ 0.5×)`,
  );
} finally {
  await server.close();
  await bare.shutdown();
  await stopBundler();
}
