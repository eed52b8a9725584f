/**
 * Runs the WebSocket fuzz sessions and checks them: a refused handshake is a 4xx JSON error; every message the server
 * sends is a JSON object of a sync-protocol type; no socket is closed as an internal error; clean sessions get every
 * answer they are owed (mutation and action responses, a Transition to their final query set) in time.
 */
import type { FuzzTarget } from "./fuzz_app.ts";
import { type Finding, type Findings, isErrorJson, preview } from "./fuzz_findings.ts";
import { OPCODE, RawWs } from "./fuzz_raw_ws.ts";
import { type WsCase, wsCase } from "./fuzz_ws_cases.ts";

/** Message types the server may send (convex-compat.md §2.3). */
const SERVER_MESSAGE_TYPES = new Set([
  "Transition",
  "TransitionChunk",
  "MutationResponse",
  "ActionResponse",
  "AuthError",
  "FatalError",
  "Ping",
]);
/** Quiet time after each batch before the next (lets the server answer or close first). */
const BATCH_QUIET_MS = 30;
/** Most time a batch may wait for quiet. */
const BATCH_MAX_MS = 2_000;
/** How long a clean session may take to receive everything it is owed. */
const CLEAN_SESSION_TIMEOUT_MS = 15_000;
/**
 * The one deliberate `InternalServerError` close: a client that observed a timestamp ahead of the server
 * (session.ts refuses to serve it older data).
 */
const DELIBERATE_INTERNAL_CLOSE = /client has observed timestamp/;

/** Counts of one run. */
export interface WsFuzzStats {
  sessions: number;
  byOutcome: Map<string, number>;
  elapsedMs: number;
}

function describe(seed: number, test: WsCase): string {
  const notes = test.batches.map((batch) => batch.note).join(", ");
  const violation = test.frameViolation ? " (breaks RFC 6455 framing)" : "";
  return `seed=${seed} session=${test.index} [${test.kind}]${violation} ${test.path} ${
    test.handshake ? `headers ${JSON.stringify(test.handshake)}` : ""
  }\nsent: ${notes || "(nothing)"}`;
}

function parsed(texts: string[]): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const text of texts) {
    try {
      const value = JSON.parse(text);
      if (value !== null && typeof value === "object") out.push(value);
    } catch { /* reported by the caller */ }
  }
  return out;
}

/** What a clean session is still owed, or null when it has it all. */
function missing(test: WsCase, ws: RawWs): string | null {
  const expect = test.expect!;
  const messages = parsed(ws.texts);
  const got = (type: string, requestId: number) =>
    messages.some((m) => m.type === type && m.requestId === requestId && m.success === true);
  const owed: string[] = [];
  for (const id of expect.mutationIds) if (!got("MutationResponse", id)) owed.push(`MutationResponse ${id}`);
  for (const id of expect.actionIds) if (!got("ActionResponse", id)) owed.push(`ActionResponse ${id}`);
  if (expect.querySet > 0) {
    const reached = messages.some((m) =>
      m.type === "Transition" && (m.endVersion as { querySet?: number })?.querySet === expect.querySet
    );
    if (!reached) owed.push(`Transition to querySet ${expect.querySet}`);
  }
  return owed.length === 0 ? null : owed.join(", ");
}

/** What the server sent on `ws`, in short: messages, then the close frame. */
function received(ws: RawWs): string {
  const texts = ws.texts.map((text) => preview(text, 160)).join("\n  ");
  const close = ws.closeFrame
    ? `close ${ws.closeFrame.code} ${ws.closeFrame.reason}`
    : ws.ended
    ? "TCP closed"
    : "open";
  return `received:\n  ${texts || "(nothing)"}\n  ${close}`;
}

/** Runs one session; returns its outcome label and any findings. */
async function runSession(seed: number, test: WsCase, target: FuzzTarget): Promise<[string, Finding[]]> {
  const findings: Finding[] = [];
  const fail = (rule: string, what: string, detail = what): void => {
    findings.push({
      rule,
      group: `${rule}: ${test.kind} session → ${what}`,
      example: `${describe(seed, test)}\n→ ${detail}`,
    });
  };
  const opened = await RawWs.open(target.apiPort, test.path, test.handshake);
  if (!(opened instanceof RawWs)) {
    if (opened.status >= 500 || opened.status === 0) fail("handshake failed", `${opened.status} ${opened.body}`);
    else if (opened.status >= 400 && !isErrorJson(opened.body)) {
      fail("error is not JSON {code, message}", `${opened.status} ${opened.contentType} ${preview(opened.body)}`);
    }
    return [`handshake ${opened.status}`, findings];
  }
  const ws = opened;
  try {
    for (const batch of test.batches) {
      if (ws.ended || ws.closeFrame) break;
      await ws.send(batch.frames);
      await ws.settle(BATCH_QUIET_MS, BATCH_MAX_MS);
    }
    if (test.kind === "clean") {
      await ws.settle(CLEAN_SESSION_TIMEOUT_MS, CLEAN_SESSION_TIMEOUT_MS, () => missing(test, ws) === null);
      const owed = missing(test, ws);
      if (owed !== null) fail("clean session not answered", `missing ${owed}`, received(ws));
    }
    for (const text of ws.texts) {
      let type: unknown;
      try {
        type = JSON.parse(text)?.type;
      } catch {
        type = undefined;
      }
      if (!SERVER_MESSAGE_TYPES.has(type as string)) fail("server sent a non-protocol message", preview(text, 120));
    }
    if (ws.binaryCount > 0) fail("server sent a binary message", `${ws.binaryCount}`);
    const close = ws.closeFrame;
    if (close && /^InternalServerError/.test(close.reason) && !DELIBERATE_INTERNAL_CLOSE.test(close.reason)) {
      fail("socket closed as an internal error", `${close.code} ${close.reason}`);
    }
    // Only a clean session must never be dropped: after a FatalError the server closes on purpose, and when a fuzz
    // session keeps writing meanwhile the TCP reset can overtake the FatalError and the close frame on the way.
    if (test.kind === "clean" && !close && ws.ended) {
      fail("socket dropped without a close frame", "TCP closed", received(ws));
    }
    if (!ws.ended && !close) {
      // Say goodbye properly; the server must answer a close frame with its own.
      await ws.send([{ opcode: OPCODE.close, payload: new Uint8Array([0x03, 0xe8]) }]);
      await ws.settle(1_000, 1_000, () => ws.closeFrame !== null);
    }
    const fatal = parsed(ws.texts).find((m) => m.type === "FatalError");
    return [close ? `closed ${close.code}${fatal ? " (FatalError)" : ""}` : "open", findings];
  } finally {
    await ws.close();
  }
}

/** Runs sessions `0..count-1` of `seed`, `concurrency` at a time, recording what broke in `findings`. */
export async function runWsFuzz(options: {
  target: FuzzTarget;
  seed: number;
  count: number;
  concurrency: number;
  /** Time the run may take; cases not started by then are reported as a finding. */
  budgetMs: number;
  findings: Findings;
}): Promise<WsFuzzStats> {
  const { target, seed, count, concurrency, findings } = options;
  const byOutcome = new Map<string, number>();
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < count && performance.now() - started < options.budgetMs) {
      const test = wsCase(seed, next++, target);
      const [outcome, found] = await runSession(seed, test, target);
      byOutcome.set(outcome, (byOutcome.get(outcome) ?? 0) + 1);
      for (const finding of found) findings.add(finding);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (next < count) {
    // A server that answers slowly or not at all must fail the test in bounded time, not stall the suite.
    findings.add({
      rule: "out of time",
      group: `out of time: ${count - next} of ${count} sessions not run within ${options.budgetMs} ms`,
      example: "see the hung cases above",
    });
  }
  return { sessions: count, byOutcome, elapsedMs: performance.now() - started };
}
