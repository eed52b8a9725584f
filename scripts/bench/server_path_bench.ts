/**
 * The server's own CPU per function call (issue 14), without runners or sockets: the real backend (SQLite, the
 * call-path bench's app deployed by the official CLI) and the real API app behind the server's request observer,
 * called in-process (`handler(new Request(...))`) with the runner pool's `execute` replaced by a replay of a result
 * the real runner produced for the same query. What is left is exactly the server's share: routing, body read, JSON
 * decode, args validation, executor, query cache and read-set index, result conversion, metrics, response. Against a
 * bare handler called the same way (JSON body in, `Response.json` out), measured in the same run.
 *
 *   deno run -A scripts/bench/server_path_bench.ts      (env CALLS (default 20000), CONCURRENCY (32), ROUNDS (3),
 *                                                        REAL_POOL=1 to also call through the real runners)
 *
 * With env BASELINE_TREE=<dir> (a copy of an older checkout with a `node_modules` link, as for call_path_bench), it
 * measures that tree's server code and this one's in alternating child processes (PAIRS of them, default 2) and
 * prints each pair's steady-state figures and their ratio: before and after in one run.
 *
 * Run it under `--cpu-prof` for a profile free of the scheduling noise a multi-process run has.
 */
import type { ExecuteRequest, ExecutionResult } from "../../src/runtime/mod.ts";
import { ITEMS_FUNCTIONS_TS, ITEMS_SCHEMA_TS } from "./items_app.ts";

type ConvexAppHelpers = typeof import("../../tests/helpers/convex_app.ts");
type HttpModule = typeof import("../../src/http/mod.ts");
type ObserveModule = typeof import("../../src/server/observe.ts");
type LogModule = typeof import("../../src/server/log.ts");

/** This checkout's root. */
const THIS_TREE = new URL("../../", import.meta.url).pathname;
const PAIRS = Number(Deno.env.get("PAIRS") ?? 2);

const CALLS = Number(Deno.env.get("CALLS") ?? 20_000);
const CONCURRENCY = Number(Deno.env.get("CONCURRENCY") ?? 32);
const ROUNDS = Number(Deno.env.get("ROUNDS") ?? 3);
/** Also run the calls through the real runner pool (env REAL_POOL=1): the server's side of the transport. */
const REAL_POOL = Deno.env.get("REAL_POOL") === "1";

const APP: Record<string, string> = {
  "schema.ts": ITEMS_SCHEMA_TS,
  "bench.ts": ITEMS_FUNCTIONS_TS + `
export const seed = mutation({
  args: {},
  handler: async (ctx) => {
    for (let j = 0; j < 100; j++) await ctx.db.insert("items", { k: "k" + (j % 10), n: j });
  },
});
`,
};

type Handler = (request: Request) => Response | Promise<Response>;

/** CPU µs of this process so far (user + system, 10 ms ticks). */
function cpuUs(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

/** Calls `handler` `CALLS` times, `CONCURRENCY` at once; µs of CPU and wall time per call. */
async function drive(handler: Handler, url: string, body: (i: number) => string) {
  let next = 0;
  const cpuBefore = cpuUs();
  const started = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < CALLS) {
      const i = next++;
      const text = body(i);
      // A declared length, as every HTTP client sends for a JSON body.
      const headers = {
        "Content-Type": "application/json",
        "Content-Length": String(new TextEncoder().encode(text).length),
      };
      const response = await handler(new Request(url, { method: "POST", headers, body: text }));
      const result = await response.json();
      if (result.status !== "success") throw new Error(`call failed: ${JSON.stringify(result)}`);
    }
  }));
  return { wallUs: (performance.now() - started) * 1000 / CALLS, cpuUs: (cpuUs() - cpuBefore) / CALLS };
}

/** One round's figures (µs per call). */
interface RoundFigures {
  bareCpuUs: number;
  replayedCpuUs: number;
}

/** Measures the server code of the checkout at `tree`; returns each round's figures. */
async function measureTree(tree: string): Promise<RoundFigures[]> {
  const root = new URL(`file://${tree.endsWith("/") ? tree : `${tree}/`}`);
  const { createConvexApp, deployApp, startTestDeployment } = await import(
    new URL("tests/helpers/convex_app.ts", root).href
  ) as ConvexAppHelpers;
  const { createApiApp } = await import(new URL("src/http/mod.ts", root).href) as HttpModule;
  const { observeRequests } = await import(new URL("src/server/observe.ts", root).href) as ObserveModule;
  const { openServerLog } = await import(new URL("src/server/log.ts", root).href) as LogModule;
  const figures: RoundFigures[] = [];
  const app = await createConvexApp(APP);
  const deployment = await startTestDeployment({ functionRoutes: true });
  try {
    await deployApp(app, deployment);
    const backend = deployment.backend;
    const api = createApiApp({ version: "bench", instanceName: "bench", adminKey: deployment.adminKey, backend });
    const handler = observeRequests(api.fetch, { origin: "api", log: openServerLog("text"), metricsAdminKey: "x" });
    const serve: Handler = (request) =>
      handler(request, {
        remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 },
        completed: Promise.resolve(),
      });
    const seedBody = JSON.stringify({ path: "bench:seed", args: {}, format: "json" });
    const seeded = await (await serve(new Request("http://x/api/mutation", { method: "POST", body: seedBody }))).json();
    if (seeded.status !== "success") throw new Error(`seed failed: ${JSON.stringify(seeded)}`);
    // One real run of the query: its result is what the replaying pool answers from then on.
    const pool = backend.pool;
    const realExecute = pool.execute.bind(pool);
    let recorded: ExecutionResult | null = null;
    pool.execute = async (request: ExecuteRequest) => {
      const result = await realExecute(request);
      recorded ??= result;
      return result;
    };
    const queryBody = (i: number) =>
      JSON.stringify({ path: "bench:list", args: { k: "k3", nonce: i }, format: "json" });
    const first = await (await serve(new Request("http://x/api/query", { method: "POST", body: queryBody(-1) })))
      .json();
    if (first.status !== "success" || recorded === null) throw new Error(`the query failed: ${JSON.stringify(first)}`);
    const replay: ExecutionResult = recorded;
    const readSetJson = JSON.stringify(replay.outcome?.readSet ?? []);
    console.log(
      `server_path_bench: ${CALLS} calls × ${ROUNDS} rounds, ${CONCURRENCY} at once; the query returns ` +
        `${replay.resultJson?.length} bytes, reads ${replay.outcome?.readSet.length} ranges`,
    );
    const replaying = async (request: ExecuteRequest) => {
      await Promise.resolve();
      // A fresh read set per call, as a runner's decoded answer would be.
      const outcome = replay.outcome && { ...replay.outcome, readSet: JSON.parse(readSetJson) };
      return { ...replay, outcome, snapshotTs: request.snapshotTs };
    };
    pool.execute = replaying;
    const bare: Handler = async (request) => {
      const { args } = await request.json();
      return Response.json({ status: "success", value: { echo: args.k }, logLines: [] });
    };
    for (let round = 1; round <= ROUNDS; round++) {
      const baseline = await drive(bare, "http://x/api/query", queryBody);
      const query = await drive(serve, "http://x/api/query", queryBody);
      figures.push({ bareCpuUs: baseline.cpuUs, replayedCpuUs: query.cpuUs });
      console.log(
        `round ${round}: bare ${baseline.cpuUs.toFixed(1)} µs CPU/call (wall ${baseline.wallUs.toFixed(1)}); ` +
          `denvex query (pool replayed) ${query.cpuUs.toFixed(1)} µs CPU/call (wall ${query.wallUs.toFixed(1)}) = ` +
          `${(query.cpuUs - baseline.cpuUs).toFixed(1)} µs more than bare`,
      );
      if (REAL_POOL) {
        // The same calls through the real runners: the difference is the server's side of the runner transport.
        pool.execute = realExecute;
        const real = await drive(serve, "http://x/api/query", (i) => queryBody(i + round * CALLS));
        pool.execute = replaying;
        console.log(
          `round ${round}: denvex query (real runners) ${real.cpuUs.toFixed(1)} µs CPU/call in this process (wall ` +
            `${real.wallUs.toFixed(1)}) = ${(real.cpuUs - query.cpuUs).toFixed(1)} µs for the runner transport`,
        );
      }
    }
  } finally {
    await deployment.close();
    await app.dispose();
  }
  return figures;
}

/** Runs this script on `tree` in a child process; its last round's figures (the steady state). */
async function measureInChild(tree: string): Promise<RoundFigures> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "--tree", tree],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const text = new TextDecoder().decode(output.stdout);
  const line = text.split("\n").find((l) => l.startsWith("FIGURES "));
  if (!output.success || line === undefined) throw new Error(`the measurement of ${tree} failed:\n${text}`);
  const rounds = JSON.parse(line.slice("FIGURES ".length)) as RoundFigures[];
  return rounds[rounds.length - 1];
}

async function compareWithBaseline(baselineTree: string): Promise<void> {
  console.log(`server_path_bench: ${baselineTree} (before) against ${THIS_TREE} (after), ${PAIRS} pairs`);
  for (let pair = 1; pair <= PAIRS; pair++) {
    const before = await measureInChild(baselineTree);
    const after = await measureInChild(THIS_TREE);
    const above = (figures: RoundFigures) => figures.replayedCpuUs - figures.bareCpuUs;
    console.log(
      `pair ${pair}: before ${before.replayedCpuUs.toFixed(1)} µs CPU/call (${above(before).toFixed(1)} above bare), ` +
        `after ${after.replayedCpuUs.toFixed(1)} µs (${above(after).toFixed(1)} above bare) = ` +
        `${(after.replayedCpuUs / before.replayedCpuUs).toFixed(2)}× the CPU, ` +
        `${(above(after) / above(before)).toFixed(2)}× above bare`,
    );
  }
}

const baselineTree = Deno.env.get("BASELINE_TREE");
if (Deno.args[0] === "--tree") console.log(`FIGURES ${JSON.stringify(await measureTree(Deno.args[1]))}`);
else if (baselineTree !== undefined) await compareWithBaseline(baselineTree);
else await measureTree(THIS_TREE);
