/**
 * Network guard benchmark: what the action network policy costs, against baselines measured in the same run.
 *
 *   deno run -A --unstable-worker-options scripts/bench/net_guard_bench.ts
 *
 * 1. starting a worker that loads the guard (worker/net_guard.ts: node:net, node:dgram, the listen refusals) vs. a
 *    worker that loads only node:async_hooks, as the user-code worker does anyway;
 * 2. one `fetch` of a local server through the guarded fetch (checks, manual redirect handling) vs. the plain fetch.
 */
import { HostChecker, resolveActionNetPolicy } from "../../src/runtime/net_policy/mod.ts";
import { guardedFetch } from "../../src/runtime/worker/net_guard_fetch.ts";

const WORKER_ROUNDS = 15;
const FETCH_ROUNDS = 500;

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function row(what: string, valueMs: number, baselineMs: number): void {
  const fmt = (ms: number) => `${ms.toFixed(3)} ms`;
  console.log(
    `${what.padEnd(44)} ${fmt(valueMs).padStart(12)}   baseline ${fmt(baselineMs).padStart(12)}   ×${
      (valueMs / baselineMs).toFixed(2)
    }`,
  );
}

async function workerStartMs(url: URL): Promise<number> {
  const start = performance.now();
  const worker = new Worker(url, { type: "module" });
  await new Promise((resolve) => {
    worker.onmessage = resolve;
    worker.postMessage("ping");
  });
  const elapsed = performance.now() - start;
  worker.terminate();
  return elapsed;
}

async function fetchMs(rounds: number, run: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 20; i++) await run();
  const samples: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const start = performance.now();
    await run();
    samples.push(performance.now() - start);
  }
  return median(samples);
}

const dir = await Deno.makeTempDir({ prefix: "denvex-net-guard-bench-" });
const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => new Response("ok"));
try {
  const guardUrl = new URL("../../src/runtime/worker/net_guard.ts", import.meta.url).href;
  const answer = 'self.onmessage = () => postMessage("pong");\n';
  await Deno.writeTextFile(`${dir}/guard.ts`, `import ${JSON.stringify(guardUrl)};\n${answer}`);
  await Deno.writeTextFile(`${dir}/plain.ts`, `import "node:async_hooks";\n${answer}`);
  const plain: number[] = [];
  const guarded: number[] = [];
  for (let i = 0; i < WORKER_ROUNDS; i++) {
    plain.push(await workerStartMs(new URL(`file://${dir}/plain.ts`)));
    guarded.push(await workerStartMs(new URL(`file://${dir}/guard.ts`)));
  }
  row("worker start with the network guard", median(guarded), median(plain));

  const policy = await resolveActionNetPolicy({ allowHosts: ["127.0.0.1"], database: null, serverPorts: [] });
  const fetchGuarded = guardedFetch(new HostChecker(policy), fetch, () => undefined);
  const url = `http://127.0.0.1:${server.addr.port}/`;
  const baseline = await fetchMs(FETCH_ROUNDS, async () => await (await fetch(url)).text());
  const checked = await fetchMs(FETCH_ROUNDS, async () => await (await fetchGuarded(url)).text());
  row("fetch of a local server through the guard", checked, baseline);
} finally {
  await server.shutdown();
  await Deno.remove(dir, { recursive: true });
}
