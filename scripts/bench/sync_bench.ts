/**
 * Sync fan-out and scale, each figure against a baseline measured in the same run:
 * 1. 500 sockets subscribed to one query, held by 4 separate processes; p99 write→update latency (goal < 50 ms,
 *    issue 14) vs 1 socket, over writes that follow `WARM_UP_WRITES` unmeasured ones. Against the real server
 *    (`main.ts serve` in its own process, the app deployed by the official CLI), so the server's event loop is its own,
 *    as in production; parts 2 and 3 use an in-process server, whose memory part 3 reads. The first writes after the
 *    watcher processes start are slow, mostly on the client side: each process's code is not compiled yet and spreads
 *    its arrivals over 20–40 ms, where later writes take 5–15 ms, while the server's 500 sends take ~2 ms either way
 *    (measured once, with a throwaway hook on `WebSocket.prototype.send`). With 500 arrivals per write, one such write
 *    alone sets the p99 of 20, so theirs is printed apart.
 * 2. 10,000 live subscriptions to distinct queries, a write touching one: commit→update latency vs 1 subscription
 *    (goal within 1.5×). Needs read sets from the executor (see src/sync/services.ts `readSetOf`).
 * 3. 10,000 idle sockets: heap + RSS per connection (client ends included, so an upper bound; goal < 50 KB).
 */
import { ConvexHttpClient } from "convex/browser";
import { anyApi } from "convex/server";
import { startTestServer, SYNC_APP_FILES, type TestServer } from "../../tests/helpers/sync_app.ts";
import { createConvexApp, deployApp, spawnServer } from "../../tests/helpers/convex_app.ts";
import { stopBundler } from "../../tests/helpers/runtime_app.ts";
import { spawnFanOut, wallMs } from "./fanout_process.ts";

const api = anyApi;

/** A raw sync socket that records when each value of query 0.. arrives. */
class Watcher {
  readonly socket: WebSocket;
  readonly opened: Promise<void>;
  onValue: (queryId: number, value: unknown) => void = () => {};
  constructor(url: string) {
    this.socket = new WebSocket(url.replace("http", "ws") + "/api/1.48.0/sync");
    this.opened = new Promise((resolve) => this.socket.onopen = () => resolve());
    this.socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type !== "Transition") return;
      for (const m of message.modifications) if (m.type === "QueryUpdated") this.onValue(m.queryId, m.value);
    };
  }
  subscribe(queries: { udfPath: string; args: Record<string, unknown> }[]): void {
    this.socket.send(
      JSON.stringify({ type: "Connect", sessionId: crypto.randomUUID(), connectionCount: 0, clientTs: 0 }),
    );
    this.socket.send(JSON.stringify({
      type: "ModifyQuerySet",
      baseVersion: 0,
      newVersion: 1,
      modifications: queries.map((q, queryId) => ({ type: "Add", queryId, udfPath: q.udfPath, args: [q.args] })),
    }));
  }
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

/** Processes the fan-out's watchers are spread over (each holds its share of the sockets). */
const FAN_OUT_PROCESSES = 4;
/** Writes before the measured ones, once the watchers hold their first value (see the module comment). */
const WARM_UP_WRITES = 5;

/**
 * `n` raw-protocol watchers of `messages:count`, held by separate processes (fanout_process.ts) so that this
 * process's own event loop is not what is measured; the write→update latency of every watcher over `writes` writes
 * (from just before the mutation is sent to the arrival of the new value at that socket, in wall-clock ms).
 */
async function fanOut(url: string, n: number, writes: number): Promise<{ cold: number[]; warm: number[] }> {
  const processes = Math.min(FAN_OUT_PROCESSES, n);
  const fanOuts = await Promise.all(
    Array.from({ length: processes }, (_, p) => spawnFanOut(url, Math.floor((n + p) / processes))),
  );
  const client = new ConvexHttpClient(url);
  let count = await client.query(api.messages.count, {}) as number;
  const cold: number[] = [];
  const warm: number[] = [];
  for (let i = 0; i < WARM_UP_WRITES + writes; i++) {
    const target = ++count;
    const arrivals = fanOuts.map((f) => f.arrivals(target));
    const startedMs = wallMs();
    await client.mutation(api.messages.send, { channel: "fan", body: String(i) });
    const latencies = i < WARM_UP_WRITES ? cold : warm;
    for (const times of await Promise.all(arrivals)) for (const t of times) latencies.push(t - startedMs);
  }
  await Promise.all(fanOuts.map((f) => f.leave()));
  if (warm.length !== n * writes) throw new Error(`${warm.length} arrivals, expected ${n * writes}`);
  return { cold, warm };
}

/** `n` distinct subscriptions (channels c0..) on 10 sockets; latency of one write to c0 reaching its subscriber. */
async function distinct(server: TestServer, n: number, writes: number): Promise<number[]> {
  const sockets = Math.min(10, n);
  const perSocket = Math.ceil(n / sockets);
  const watchers = Array.from({ length: sockets }, () => new Watcher(server.url));
  await Promise.all(watchers.map((w) => w.opened));
  let ready = 0;
  const allReady = new Promise<void>((resolve) => {
    watchers.forEach((w, s) => {
      const seen = new Set<number>();
      w.onValue = (id) => {
        if (seen.has(id)) return;
        seen.add(id);
        if (seen.size === Math.min(perSocket, n - s * perSocket) && ++ready === sockets) resolve();
      };
    });
  });
  const channelPrefix = `d${n}-`;
  watchers.forEach((w, s) =>
    w.subscribe(
      Array.from({ length: Math.min(perSocket, n - s * perSocket) }, (_, i) => ({
        udfPath: "messages:list",
        args: { channel: `${channelPrefix}${s * perSocket + i}` },
      })),
    )
  );
  await allReady;
  const client = new ConvexHttpClient(server.url);
  const latencies: number[] = [];
  for (let i = 0; i < writes; i++) {
    const got = new Promise<void>((resolve) => watchers[0].onValue = (id) => id === 0 && resolve());
    const startedMs = performance.now();
    await client.mutation(api.messages.send, { channel: `${channelPrefix}0`, body: String(i) });
    await got;
    latencies.push(performance.now() - startedMs);
  }
  for (const w of watchers) w.socket.close();
  return latencies;
}

/**
 * Opens `n` idle sync sockets from a separate client process (so the client ends neither share this process's
 * descriptor limit nor count in its memory) and reports this server process's heap and RSS growth per connection.
 */
/** How long the client process keeps its sockets open after they are all connected. */
const HOLD_MS = 3_000;

async function idleMemory(server: TestServer, n: number): Promise<{ heapKb: number; rssKb: number }> {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const before = Deno.memoryUsage();
  const clientSource = `
    const url = ${JSON.stringify(server.url.replace("http", "ws") + "/api/1.48.0/sync")};
    const sockets = [];
    for (let i = 0; i < ${n}; i += 500) {
      const batch = Array.from({ length: Math.min(500, ${n} - i) }, () => new WebSocket(url));
      await Promise.all(batch.map((s) => new Promise((resolve, reject) => { s.onopen = resolve; s.onerror = reject; })));
      for (const s of batch) {
        s.send(JSON.stringify({ type: "Connect", sessionId: crypto.randomUUID(), connectionCount: 0, clientTs: 0 }));
        sockets.push(s);
      }
    }
    console.log("ready");
    // Hold the sockets while the parent measures, then exit (closing them).
    await new Promise((resolve) => setTimeout(resolve, ${HOLD_MS}));
    Deno.exit(0); // open sockets would keep the process alive
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", clientSource],
    cwd: Deno.makeTempDirSync({ prefix: "denvex-idle-client-" }),
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let output = "";
  while (!output.includes("ready")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the socket client exited early: ${output}`);
    output += value;
  }
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  gc?.();
  const after = Deno.memoryUsage();
  await child.status;
  reader.releaseLock();
  return { heapKb: (after.heapUsed - before.heapUsed) / n / 1024, rssKb: (after.rss - before.rss) / n / 1024 };
}

/** Part 1 on the real server: one process of its own, the sync app deployed by the official CLI. */
async function fanOutOnRealServer(): Promise<void> {
  const app = await createConvexApp(SYNC_APP_FILES);
  const server = await spawnServer();
  try {
    await deployApp(app, server);
    const single = await fanOut(server.url, 1, 20);
    const many = await fanOut(server.url, 500, 20);
    const p99 = (latencies: number[]) => percentile(latencies, 0.99);
    console.log(
      `sync_bench: 1 subscriber p99 write→update ${p99(single.warm).toFixed(1)} ms; 500 subscribers p99 ` +
        `${p99(many.warm).toFixed(1)} ms = ${(p99(many.warm) / p99(single.warm)).toFixed(2)}× (goal < 50 ms); ` +
        `the ${WARM_UP_WRITES} writes before, while the watcher processes warm up: 1 subscriber p99 ` +
        `${p99(single.cold).toFixed(1)} ms, 500 subscribers p99 ${p99(many.cold).toFixed(1)} ms`,
    );
  } finally {
    await server.close();
    await app.dispose();
  }
}

await fanOutOnRealServer();
const server = await startTestServer();
try {
  const one = await distinct(server, 1, 10);
  const distinctCount = Number(Deno.env.get("DISTINCT_SUBSCRIPTIONS") ?? 10_000);
  const lots = await distinct(server, distinctCount, 10);
  console.log(
    `sync_bench: 1 subscription median commit→update ${
      percentile(one, 0.5).toFixed(1)
    } ms; ${distinctCount} distinct ` +
      `subscriptions ${percentile(lots, 0.5).toFixed(1)} ms = ${
        (percentile(lots, 0.5) / percentile(one, 0.5)).toFixed(2)
      }× ` +
      `(goal ≤ 1.5×)`,
  );
  const idle = Number(Deno.env.get("IDLE_SOCKETS") ?? 10_000);
  const memory = await idleMemory(server, idle);
  console.log(
    `sync_bench: ${idle} idle sockets: ${memory.heapKb.toFixed(1)} KB heap and ${memory.rssKb.toFixed(1)} KB RSS per ` +
      `connection in the server process (goal < 50 KB)`,
  );
} finally {
  await server.close();
  await stopBundler();
}
