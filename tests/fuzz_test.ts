/**
 * A seeded, bounded fuzz test of the real server process (issue 9, "what must hold"): a small app deployed with the
 * official CLI, then {@link HTTP_REQUESTS} mutated and random requests over every HTTP endpoint (function API, admin
 * and push API, storage, HTTP actions on both origins, `/version`, the sync endpoint) and {@link WS_SESSIONS} WebSocket
 * sessions of the sync protocol with malformed, mistyped, out-of-order and binary frames.
 *
 * It holds the server to: no response with status >= 500, no hang, every error response JSON `{code, message}`, no
 * sync socket closed as an internal error, the process alive and answering afterwards, and its memory back near where
 * it started. The seed is printed; `DENVEX_FUZZ_SEED=<n>` replays another one. A failure lists every broken rule
 * grouped by endpoint, with the seed and case index of a few examples each (a case is regenerated from those alone).
 */
import { assert } from "./helpers/assert.ts";
import { spawnServer } from "./helpers/convex_app.ts";
import { deployFuzzApp, type FuzzTarget, residentBytes } from "./helpers/fuzz_app.ts";
import { makeBombs } from "./helpers/fuzz_bombs.ts";
import { Findings, isErrorJson } from "./helpers/fuzz_findings.ts";
import { runHttpFuzz } from "./helpers/fuzz_http.ts";
import { type RawOutcome, sendRaw } from "./helpers/fuzz_raw_http.ts";
import { RawWs } from "./helpers/fuzz_raw_ws.ts";
import { BROKEN_HANDSHAKES } from "./helpers/fuzz_ws_cases.ts";
import { fuzzSeed } from "./helpers/fuzz_rng.ts";
import { runWsFuzz } from "./helpers/fuzz_ws.ts";

/** HTTP requests per run. */
const HTTP_REQUESTS = 2_000;
/** Requests in flight at once (a handful of clients; the machine has 2 cores shared with everything else). */
const HTTP_CONCURRENCY = 6;
/** Time each phase may take before the rest of its cases are skipped (a healthy server needs ~15 s and ~5 s). */
const PHASE_BUDGET_MS = 90_000;
/** WebSocket sessions per run. */
const WS_SESSIONS = 300;
/** Sessions open at once. */
const WS_CONCURRENCY = 10;
const MIB = 1024 * 1024;
/**
 * How far the server's RSS may stay above its start once the fuzz is over and it had up to {@link MAX_SETTLE_MS} to
 * settle: a bound on memory the process keeps, not the leak detector (that is {@link MAX_HEAP_GROWTH_BYTES}). What the
 * fuzz sends is transient (bombs expand to 150+ MiB, arguments reach 1 MiB), but V8 and the allocator give the pages
 * back lazily or not at all: on a loaded machine 4 of 8 runs (the session-start tree and today's alike) kept 280–306 MiB
 * after 60 s from a 95 MiB start while the live V8 heap was back at 23 MiB (20 MiB at start). A leak of the kind issue 9
 * found (~120 MB kept per 1 MB argument) still overshoots at once.
 */
const MAX_RSS_GROWTH_BYTES = 256 * MIB;
/**
 * How far the server's V8 heap may stay above its start after the fuzz: caches of a few MiB, plus garbage no full
 * collection has swept yet. With the server's 4 MiB young generation (src/server/launcher.ts) short-lived request
 * objects reach the old space, and an idle server runs no mark-compact: four CI runs ended 28–52 MiB from an 18 MiB start,
 * and 21 MiB from 15 when the server collected right before reading (the same seed). A leak of the kind issue 9 found
 * (~120 MB per 1 MB argument) still overshoots at once.
 */
const MAX_HEAP_GROWTH_BYTES = 64 * MIB;
/**
 * Longest wait for the RSS to come back under the bound. V8's memory reducer shrinks the heap on idle, ~15-20 s after
 * the load on a quiet machine, later on a busy one: with other test processes on both cores it was still at 280 MiB
 * after 25 s in a run whose heap had fallen to 15 MiB (the same timing as the code before; measured with
 * `Deno.memoryUsage()` logged by the server).
 */
const MAX_SETTLE_MS = 60_000;
const SETTLE_POLL_MS = 500;
const RSS_SAMPLE_MS = 100;

async function versionAnswers(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/version`, { signal: AbortSignal.timeout(5_000) });
    await response.body?.cancel();
    return response.status === 200;
  } catch {
    return false;
  }
}

/** Reads the server's RSS every {@link RSS_SAMPLE_MS} until stopped; returns the peak. */
function sampleRss(pid: number, startRss: number): { stop(): number } {
  let peak = startRss;
  const timer = setInterval(() => peak = Math.max(peak, residentBytes(pid) ?? 0), RSS_SAMPLE_MS);
  return {
    stop() {
      clearInterval(timer);
      return peak;
    },
  };
}

/** Polls the RSS until it is under `limitBytes` or {@link MAX_SETTLE_MS} passed; returns the last reading. */
/** The server's live V8 heap (`heap_used` of `denvex_process_memory_bytes` on /metrics), in bytes. */
async function heapUsedBytes(url: string, adminKey: string): Promise<number> {
  const response = await fetch(`${url}/metrics`, { headers: { Authorization: `Bearer ${adminKey}` } });
  const text = await response.text();
  assert(response.status === 200, `/metrics: ${response.status} ${text.slice(0, 200)}`);
  const match = text.match(/^denvex_process_memory_bytes\{kind="heap_used"\} (\d+(?:\.\d+)?(?:e\+\d+)?)$/m);
  assert(match !== null, "/metrics reports the server's heap_used");
  return Number(match[1]);
}

async function settledRss(pid: number, limitBytes: number): Promise<{ rss: number; waitedMs: number }> {
  const started = performance.now();
  let rss = residentBytes(pid) ?? Infinity;
  while (rss >= limitBytes && performance.now() - started < MAX_SETTLE_MS) {
    await new Promise((resolve) => setTimeout(resolve, SETTLE_POLL_MS));
    rss = residentBytes(pid) ?? Infinity;
  }
  return { rss, waitedMs: Math.round(performance.now() - started) };
}

/** Runs both fuzz phases and logs their counts. */
async function fuzz(target: FuzzTarget, seed: number, findings: Findings): Promise<void> {
  const bombs = makeBombs();
  const http = await runHttpFuzz({
    target,
    seed,
    count: HTTP_REQUESTS,
    concurrency: HTTP_CONCURRENCY,
    budgetMs: PHASE_BUDGET_MS,
    bombs,
    findings,
  });
  console.log(
    `http: ${http.requests} requests in ${Math.round(http.elapsedMs)} ms, by status: ` +
      JSON.stringify(Object.fromEntries([...http.byStatus].sort())),
  );
  const ws = await runWsFuzz({
    target,
    seed,
    count: WS_SESSIONS,
    concurrency: WS_CONCURRENCY,
    budgetMs: PHASE_BUDGET_MS,
    findings,
  });
  console.log(
    `sync: ${ws.sessions} sessions in ${Math.round(ws.elapsedMs)} ms, outcomes: ` +
      JSON.stringify(Object.fromEntries([...ws.byOutcome].sort())),
  );
}

/** Asserts that `outcome` is an answer with a 4xx status and a JSON `{code, message}` body. */
function assertClientError(outcome: RawOutcome, what: string): void {
  assert("response" in outcome, `${what}: no answer (${JSON.stringify(outcome)})`);
  const { status, body } = outcome.response;
  const text = new TextDecoder().decode(body);
  assert(status >= 400 && status < 500 && isErrorJson(text), `${what}: ${status} ${text}`);
}

Deno.test({
  name: "fuzz: every HTTP endpoint and the sync protocol survive seeded garbage (no 5xx, JSON errors, no crash, " +
    "memory back)",
  async fn(t) {
    const seed = fuzzSeed();
    console.log(`fuzz seed ${seed} (DENVEX_FUZZ_SEED=${seed} replays this run)`);
    const server = await spawnServer();
    try {
      const target = await deployFuzzApp(server);

      // Findings of earlier runs, pinned down one by one (the seeded fuzz below may draw them or not).
      await t.step("a WebSocket upgrade with broken headers is a 400 JSON error, not a 500", async () => {
        for (const headers of BROKEN_HANDSHAKES) {
          const refused = await RawWs.open(target.apiPort, "/api/1.48.0/sync", headers);
          assert(!(refused instanceof RawWs), `upgraded despite ${JSON.stringify(headers)}`);
          assert(refused.status === 400 && isErrorJson(refused.body), `${refused.status} ${refused.body}`);
        }
      });
      await t.step("a request body that ends before its Content-Length is a 4xx JSON error, not a 500", async () => {
        const body = new TextEncoder().encode('{"path":"messages:count","args":{}}');
        const admin: [string, string] = ["Authorization", `Convex ${target.adminKey}`];
        const cases: [string, [string, string][]][] = [
          [`/api/storage/upload?token=${target.uploadToken}`, [["Content-Type", "text/plain"]]],
          ["/api/deploy2/start_push", [admin]],
          ["/api/update_environment_variables", [admin]],
          ["/api/query", [["Content-Type", "application/json"]]],
          ["/http/echo", [["Content-Type", "application/octet-stream"]]],
        ];
        for (const [path, headers] of cases) {
          const outcome = await sendRaw(target.apiPort, {
            method: "POST",
            target: path,
            headers,
            body,
            framing: "truncated",
          });
          assertClientError(outcome, `POST ${path.split("?")[0]}`);
        }
      });

      await t.step("a malformed percent-escape in an /api/run path is a 400 JSON error, not a 500", async () => {
        const body = new TextEncoder().encode("{}");
        for (const path of ["/api/run/messages/%ff%fe", "/api/run/%E0%A4%A/count", "/api/run/messages/%"]) {
          const outcome = await sendRaw(target.apiPort, { method: "POST", target: path, headers: [], body });
          assertClientError(outcome, `POST ${path}`);
        }
      });

      await t.step("an unsatisfiable Range on a download is a 416 JSON error with Content-Range", async () => {
        const outcome = await sendRaw(target.apiPort, {
          method: "GET",
          target: `/api/storage/${target.storageId}`,
          headers: [["Range", "bytes=100-"]],
        });
        assert("response" in outcome && outcome.response.status === 416, JSON.stringify(outcome));
        assert(outcome.response.headers.get("content-range") === "bytes */9", "Content-Range of the 9-byte file");
        assert(isErrorJson(new TextDecoder().decode(outcome.response.body)), "a JSON {code, message} body");
      });

      await t.step(`seeded fuzz: ${HTTP_REQUESTS} HTTP requests, ${WS_SESSIONS} sync sessions`, async () => {
        const startRss = residentBytes(server.pid);
        assert(startRss !== null, "the server is running");
        const startHeap = await heapUsedBytes(server.url, target.adminKey);
        const sampler = sampleRss(server.pid, startRss);
        const findings = new Findings();
        let peakRss: number;
        try {
          await fuzz(target, seed, findings);
        } finally {
          peakRss = sampler.stop();
        }
        const alive = residentBytes(server.pid) !== null && await versionAnswers(server.url);
        const end = await settledRss(server.pid, startRss + MAX_RSS_GROWTH_BYTES);
        const endHeap = await heapUsedBytes(server.url, target.adminKey);
        console.log(
          `server RSS: start ${(startRss / MIB).toFixed(0)} MiB, peak ${(peakRss / MIB).toFixed(0)} MiB, ` +
            `${(end.rss / MIB).toFixed(0)} MiB after ${end.waitedMs} ms of settling; ` +
            `V8 heap used: start ${(startHeap / MIB).toFixed(0)} MiB, end ${(endHeap / MIB).toFixed(0)} MiB`,
        );
        if (findings.count > 0) console.log(`fuzz findings (seed ${seed}):\n${findings.report()}`);
        assert(alive, "the server process died or stopped answering /version during the fuzz");
        assert(findings.count === 0, `${findings.count} fuzz findings (seed ${seed}), see the log above`);
        assert(
          endHeap < startHeap + MAX_HEAP_GROWTH_BYTES,
          `the server's live V8 heap grew from ${startHeap} to ${endHeap} bytes (limit +${MAX_HEAP_GROWTH_BYTES})`,
        );
        assert(
          end.rss < startRss + MAX_RSS_GROWTH_BYTES,
          `server RSS grew from ${startRss} to ${end.rss} bytes (limit +${MAX_RSS_GROWTH_BYTES})`,
        );
      });
    } finally {
      await server.close();
    }
  },
});
