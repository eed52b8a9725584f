/**
 * Operators' view: `/metrics` (Prometheus text, admin key required) with counters that move as an app is used, and
 * `--log-format json` lines that carry the request ID of a failing call. The server is started the way a user starts
 * it (`deno task start --data <temp dir>`), the app deployed with the official CLI and called with ConvexHttpClient.
 */
import { ConvexClient, ConvexHttpClient } from "convex/browser";
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { createConvexApp, DEPLOY_ARGS, runConvexCli } from "./helpers/convex_app.ts";
import { Counter, MAX_SERIES_PER_METRIC, MetricsRegistry } from "../src/metrics/mod.ts";

const ROOT = new URL("..", import.meta.url);
const ADMIN_KEY = `denvex|${"5a".repeat(32)}`;

// ---------------------------------------------------------------------------------------------------------------
// The registry

Deno.test("registry: Prometheus text for counters, histograms and gauges, with escaped labels", () => {
  const registry = new MetricsRegistry();
  const requests = registry.counter("t_requests_total", "Requests", ["path"]);
  requests.inc({ path: '/a"b\\c' });
  requests.inc({ path: '/a"b\\c' }, 2);
  const latency = registry.histogram("t_seconds", "Latency", [], [0.1, 1]);
  latency.observe(0.05);
  latency.observe(0.5);
  latency.observe(5);
  registry.gauge("t_live", "Live things", () => [[{ kind: "x" }, 7]]);
  registry.gauge("t_broken", "Its owner is gone", () => {
    throw new Error("closed");
  });
  const text = registry.render();
  assertStringIncludes(text, "# TYPE t_requests_total counter\n");
  assertStringIncludes(text, 't_requests_total{path="/a\\"b\\\\c"} 3\n');
  assertStringIncludes(
    text,
    't_seconds_bucket{le="0.1"} 1\nt_seconds_bucket{le="1"} 2\nt_seconds_bucket{le="+Inf"} 3\n',
  );
  assertStringIncludes(text, "t_seconds_sum 5.55\nt_seconds_count 3\n");
  assertStringIncludes(text, 't_live{kind="x"} 7\n');
  assert(!text.includes("t_broken"), "a gauge whose owner throws is left out");
  assert(text.endsWith("\n"));
});

Deno.test("registry: label sets past the limit fold into one _other series", () => {
  const registry = new MetricsRegistry();
  const counter: Counter = registry.counter("t_paths_total", "Paths", ["path"]);
  for (let i = 0; i < MAX_SERIES_PER_METRIC + 100; i++) counter.inc({ path: `/p/${i}` });
  const lines = registry.render().split("\n").filter((line) => line.startsWith("t_paths_total{"));
  assertEquals(lines.length, MAX_SERIES_PER_METRIC + 1);
  assertStringIncludes(registry.render(), 't_paths_total{path="_other"} 100\n');
});

// ---------------------------------------------------------------------------------------------------------------
// A server started by `deno task start`

/** `deno task start <args>` with its output collected as lines. */
function startTask(args: string[], env: Record<string, string>) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "start", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", DENVEX_ADMIN_KEY: ADMIN_KEY, ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stdout = "";
  let stderr = "";
  const pump = async (stream: ReadableStream<Uint8Array<ArrayBuffer>>, onText: (text: string) => void) => {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) onText(text);
  };
  const pumps = Promise.all([pump(child.stdout, (t) => stdout += t), pump(child.stderr, (t) => stderr += t)]);
  return {
    stdout: () => stdout,
    stderr: () => stderr,
    /** Resolves with the exit code once the process has exited by itself. */
    async exited(): Promise<number> {
      const { code } = await child.status;
      await pumps;
      return code;
    },
    async stop(): Promise<number> {
      try {
        child.kill("SIGTERM");
      } catch { /* already exited */ }
      return await this.exited();
    },
  };
}

/** Polls `read` until it returns a value other than undefined; fails with `describe()` after `timeoutMs`. */
async function until<T>(read: () => T | undefined, timeoutMs: number, describe: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out; ${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The JSON objects among `text`'s lines; every non-empty line must be one. */
function jsonLines(text: string): Record<string, unknown>[] {
  return text.split("\n").filter((line) => line.trim() !== "").map((line) => {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new Error(`not a JSON line: ${line}`);
    }
  });
}

/** The value of the series `name{labels}` (labels as written, in order) in a scrape; 0 when absent. */
function sample(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

async function scrape(apiUrl: string, authorization?: string): Promise<Response> {
  return await fetch(`${apiUrl}/metrics`, authorization ? { headers: { authorization } } : {});
}

const APP = {
  "messages.ts": `
import { action, mutation, query } from "./_generated/server";
import { v } from "convex/values";
export const add = mutation({ args: { text: v.string() }, handler: async (ctx, { text }) => ctx.db.insert("messages", { text }) });
export const list = query({ args: {}, handler: async (ctx) => ctx.db.query("messages").collect() });
export const shout = action({ args: { text: v.string() }, handler: async (_ctx, { text }) => text.toUpperCase() });
export const fail = mutation({ args: {}, handler: async () => { throw new Error("metrics test failure"); } });
`,
};

Deno.test("deno task start --data <temp> --log-format json: /metrics moves, JSON lines carry the failing call's request ID", async () => {
  const parent = await Deno.makeTempDir({ prefix: "denvex-metrics-test-" });
  const dataDir = `${parent}/some where/data`;
  const server = startTask(["--data", dataDir, "--port", "0", "--site-port", "0", "--log-format", "json"], {});
  const app = await createConvexApp(APP);
  try {
    const started = await until(
      () => jsonLines(server.stdout()).find((line) => line.msg === "server started"),
      30_000,
      () => `no start line:\n${server.stdout()}\n${server.stderr()}`,
    );
    const apiUrl = started.apiUrl as string;
    assertEquals(started.dataDir, dataDir);

    // Admin only, constant-time checked.
    assertEquals((await scrape(apiUrl)).status, 401);
    assertEquals((await scrape(apiUrl, "Bearer denvex|wrong")).status, 403);
    const before = await (await scrape(apiUrl, `Bearer ${ADMIN_KEY}`)).text();
    assertStringIncludes(before, "# TYPE denvex_function_executions_total counter");
    assert(sample(before, 'denvex_process_memory_bytes{kind="rss"}') > 0, before);
    assertStringIncludes(before, "denvex_websocket_sessions 0");

    const deployed = await runConvexCli(app, DEPLOY_ARGS, {
      url: apiUrl,
      adminKey: ADMIN_KEY,
    });
    assertEquals(deployed.code, 0, deployed.stderr);
    const client = new ConvexHttpClient(apiUrl);
    // deno-lint-ignore no-explicit-any
    const api = { add: "messages:add", list: "messages:list", fail: "messages:fail", shout: "messages:shout" } as any;
    await client.mutation(api.add, { text: "one" });
    await client.mutation(api.add, { text: "two" });
    assertEquals((await client.query(api.list, {})).length, 2);
    assertEquals(await client.action(api.shout, { text: "hi" }), "HI");
    const failure = await client.mutation(api.fail, {}).then(() => null, (error: Error) => error);
    assert(failure !== null, "the failing mutation failed");
    assertStringIncludes(failure.message, "metrics test failure");

    const after = await (await scrape(apiUrl, "Convex " + ADMIN_KEY)).text();
    const executions = (outcome: string) =>
      sample(after, `denvex_function_executions_total{udf_type="mutation",outcome="${outcome}"}`) -
      sample(before, `denvex_function_executions_total{udf_type="mutation",outcome="${outcome}"}`);
    assert(executions("ok") >= 2, after);
    assert(executions("error") >= 1, after);
    assert(sample(after, 'denvex_function_execution_duration_seconds_count{udf_type="query"}') >= 1, after);
    assert(sample(after, 'denvex_function_executions_total{udf_type="action",outcome="ok"}') >= 1, after);
    assert(sample(after, "denvex_commit_batch_size_count") - sample(before, "denvex_commit_batch_size_count") >= 2);
    assert(sample(after, "denvex_commit_duration_seconds_count") >= 2, after);
    const mutationRequests =
      sample(after, 'denvex_http_requests_total{origin="api",endpoint="/api/mutation",method="POST",status="2xx"}') +
      sample(after, 'denvex_http_requests_total{origin="api",endpoint="/api/mutation",method="POST",status="4xx"}') +
      sample(after, 'denvex_http_requests_total{origin="api",endpoint="/api/mutation",method="POST",status="5xx"}');
    assert(mutationRequests >= 3, after);
    assert(sample(after, 'denvex_database_size_bytes{file="main"}') > 0, after);
    assert(/denvex_runners\{kind="transaction",state="idle"\} \d+/.test(after), after);
    assert(/\ndenvex_scheduler_due_jobs \d+\n/.test(after), after);
    assert(/\ndenvex_retention_window_seconds [\d.e+-]+\n/.test(after), after);

    // The failing call's log line: its request ID is the one the client's error names, when the error names one.
    const failed = await until(
      () =>
        jsonLines(server.stdout()).find((line) =>
          line.msg === "function executed" && line.function === "messages:fail" && line.ok === false
        ),
      5_000,
      () => server.stdout(),
    );
    assertEquals(failed.level, "error");
    assert(typeof failed.requestId === "string" && failed.requestId.length > 0, JSON.stringify(failed));
    assertStringIncludes(String(failed.error), "metrics test failure");
    assertEquals(failed.requestId, /\[Request ID: ([^\]]+)\]/.exec(failure.message)?.[1], failure.message);
    // The same over the WebSocket (ConvexClient), the path browser apps use.
    const live = new ConvexClient(apiUrl);
    try {
      const liveFailure = await live.mutation(api.fail, {}).then(() => null, (error: Error) => error);
      const liveId = /\[Request ID: ([^\]]+)\]/.exec(liveFailure?.message ?? "")?.[1];
      assert(liveId !== undefined, String(liveFailure));
      const liveLine = await until(
        () => jsonLines(server.stdout()).find((line) => line.msg === "function executed" && line.requestId === liveId),
        5_000,
        () => server.stdout(),
      );
      assertEquals(liveLine.function, "messages:fail");
    } finally {
      await live.close();
    }
    const requestLines = jsonLines(server.stdout()).filter((line) => line.msg === "http request");
    assert(requestLines.some((line) => line.path === "/api/mutation" && typeof line.status === "number"));
    // No secret reaches the log.
    assert(!server.stdout().includes(ADMIN_KEY.split("|")[1]), "the admin key is never logged");
  } finally {
    const code = await server.stop();
    await app.dispose();
    assertEquals(code, 0, server.stderr());
    // Shutdown lines are JSON too.
    assert(jsonLines(server.stdout()).some((line) => line.msg === "stopped"), server.stdout());
    await Deno.remove(parent, { recursive: true });
  }
});

Deno.test("DISABLE_METRICS_ENDPOINT=1 turns /metrics off", async () => {
  const parent = await Deno.makeTempDir({ prefix: "denvex-metrics-off-" });
  const server = startTask(["--data", `${parent}/data`, "--port", "0", "--site-port", "0"], {
    DISABLE_METRICS_ENDPOINT: "1",
  });
  try {
    const apiUrl = await until(
      () => /API: +(http:\/\/\S+)/.exec(server.stdout())?.[1],
      30_000,
      () => server.stdout() + server.stderr(),
    );
    assertEquals((await scrape(apiUrl, `Bearer ${ADMIN_KEY}`)).status, 404);
  } finally {
    assertEquals(await server.stop(), 0, server.stderr());
    await Deno.remove(parent, { recursive: true });
  }
});

Deno.test("--log-format json: a failed start is a JSON line too", async () => {
  const parent = await Deno.makeTempDir({ prefix: "denvex-metrics-busy-" });
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const server = startTask(
      ["--data", `${parent}/data`, "--port", `${busy.addr.port}`, "--site-port", "0", "--log-format", "json"],
      {},
    );
    await until(
      () => server.stdout().includes("already in use") ? true : undefined,
      30_000,
      () => server.stdout() + server.stderr(),
    );
    // The server exits by itself after printing the failure; stopping it at once raced that exit (143 on a loaded
    // machine). It is stopped only if it has not exited within the bound.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const code = await Promise.race([
      server.exited(),
      new Promise<number>((resolve) => timer = setTimeout(() => resolve(server.stop()), 30_000)),
    ]);
    clearTimeout(timer);
    assertEquals(code, 1, server.stderr());
    const failure = jsonLines(server.stdout()).find((line) => String(line.msg).includes("already in use"));
    assertEquals(failure?.level, "error", server.stdout());
  } finally {
    busy.close();
    await Deno.remove(parent, { recursive: true });
  }
});
