/**
 * Runs the HTTP fuzz cases against the server and checks every answer: no 5xx, no hang, no dropped connection for a
 * well-framed request, and every 4xx a JSON `{code, message}`.
 */
import type { FuzzTarget } from "./fuzz_app.ts";
import type { Bombs } from "./fuzz_bombs.ts";
import { type Finding, type Findings, isErrorJson, preview } from "./fuzz_findings.ts";
import { type HttpCase, httpCase } from "./fuzz_http_cases.ts";
import { type RawOutcome, sendRaw } from "./fuzz_raw_http.ts";

/**
 * Statuses Deno's HTTP server itself answers, with an empty body and no content type, to a request it cannot parse
 * (bad request line or header, header block or URI too large) before any of our code sees it. Those cannot be JSON.
 */
const PROTOCOL_REFUSALS = new Set([400, 413, 414, 431]);

/** Counts of one run, for the test's log. */
export interface HttpFuzzStats {
  requests: number;
  byStatus: Map<string, number>;
  elapsedMs: number;
}

function describeRequest(seed: number, test: HttpCase): string {
  const { request } = test;
  const headers = request.headers.map(([name, value]) => `${name}: ${preview(value, 60)}`).join("; ");
  const body = request.body ?? new Uint8Array();
  const bodyText = String.fromCharCode(...body.subarray(0, 120));
  return `seed=${seed} case=${test.index} [${test.label}]\n` +
    `${preview(request.method)} ${preview(request.target, 160)} (${test.origin} port, framing ${request.framing})\n` +
    `headers: ${
      headers.length > 300 ? headers.slice(0, 300) + "…" : headers || "(none)"
    }\nbody (${body.length} bytes): ${preview(bodyText, 120)}`;
}

/** The finding for one outcome, or null if the server behaved. */
export function checkHttpOutcome(seed: number, test: HttpCase, outcome: RawOutcome): Finding | null {
  // HTTP actions answer for the deployed app on both origins: one group for all their routes.
  const endpoint = /^(site: |api: \/http )/.test(test.label) ? "HTTP action" : test.label.split(" +")[0];
  const fail = (rule: string, what: string, answer = what): Finding => ({
    rule,
    group: `${rule}: ${endpoint} → ${what}`,
    example: `${describeRequest(seed, test)}\n→ ${answer}`,
  });
  if ("noResponse" in outcome) {
    if (outcome.noResponse === "timeout") return fail("hung (no answer in time)", "timeout");
    return test.mayDrop ? null : fail("connection dropped without an answer", outcome.noResponse);
  }
  const { status, headers, body } = outcome.response;
  const text = new TextDecoder().decode(body);
  const contentType = headers.get("content-type") ?? "";
  const answer = `${status} ${contentType} ${preview(text, 200)}`;
  if (status >= 500) return fail("status >= 500", `${status}`, answer);
  if (status < 400) return null;
  if (body.length === 0 && contentType === "" && PROTOCOL_REFUSALS.has(status)) return null;
  if (test.request.method === "HEAD") {
    return contentType.includes("json") ? null : fail("error is not JSON {code, message}", `${status} ${contentType}`);
  }
  return isErrorJson(text) ? null : fail("error is not JSON {code, message}", `${status} ${contentType}`, answer);
}

/** Sends cases `0..count-1` of `seed`, `concurrency` at a time, and records what broke in `findings`. */
export async function runHttpFuzz(options: {
  target: FuzzTarget;
  seed: number;
  count: number;
  concurrency: number;
  /** Time the run may take; cases not started by then are reported as a finding. */
  budgetMs: number;
  bombs: Bombs;
  findings: Findings;
}): Promise<HttpFuzzStats> {
  const { target, seed, count, concurrency, bombs, findings } = options;
  const byStatus = new Map<string, number>();
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < count && performance.now() - started < options.budgetMs) {
      const test = httpCase(seed, next++, target, bombs);
      const port = test.origin === "api" ? target.apiPort : target.sitePort;
      const outcome = await sendRaw(port, test.request);
      const key = "noResponse" in outcome ? outcome.noResponse : String(outcome.response.status);
      byStatus.set(key, (byStatus.get(key) ?? 0) + 1);
      const finding = checkHttpOutcome(seed, test, outcome);
      if (finding) findings.add(finding);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (next < count) {
    // A server that answers slowly or not at all must fail the test in bounded time, not stall the suite.
    findings.add({
      rule: "out of time",
      group: `out of time: ${count - next} of ${count} requests not run within ${options.budgetMs} ms`,
      example: "see the hung cases above",
    });
  }
  return { requests: count, byStatus, elapsedMs: performance.now() - started };
}
