/**
 * Memory load for tests and benchmarks: an app whose public query looks up its string argument in an index (so the
 * argument ends up in the query's read set, cache key and subscription), unauthenticated callers that send it many
 * distinct large arguments over HTTP and WebSocket, and the server process's resident memory read from `/proc`.
 */

/** The app: `items:byKey` reads the `by_k` index range of its argument. */
export const MEMORY_APP: Record<string, string> = {
  "schema.ts": `
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
export default defineSchema({ items: defineTable({ k: v.string() }).index("by_k", ["k"]) });
`,
  "items.ts": `
import { query } from "./_generated/server";
import { v } from "convex/values";
export const byKey = query({
  args: { k: v.string() },
  handler: async (ctx, { k }) => (await ctx.db.query("items").withIndex("by_k", (q) => q.eq("k", k)).collect()).length,
});
export const echo = query({ args: { value: v.any() }, handler: async () => "ok" });
`,
};

/** Resident memory of a process (Linux `/proc/<pid>/status`), in bytes. */
export interface ProcessMemory {
  /** Resident set size now (`VmRSS`). */
  rssBytes: number;
  /** Peak resident set size since the process started (`VmHWM`). */
  peakRssBytes: number;
}

/** Reads `pid`'s memory, or null once the process is gone. */
export function readProcessMemory(pid: number): ProcessMemory | null {
  let status: string;
  try {
    status = Deno.readTextFileSync(`/proc/${pid}/status`);
  } catch {
    return null;
  }
  const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) * 1024;
  return { rssBytes: kib("VmRSS"), peakRssBytes: kib("VmHWM") };
}

/** A distinct string argument of exactly `sizeBytes` ASCII bytes. */
export function largeArgument(index: number, sizeBytes: number): string {
  const prefix = `${index}:`;
  return prefix + "x".repeat(Math.max(0, sizeBytes - prefix.length));
}

/** Outcomes of a load, counted by kind (`ok`, `http 429`, `QueryFailed`, `socket closed`, ...). */
export type Outcomes = Record<string, number>;

function count(outcomes: Outcomes, kind: string): void {
  outcomes[kind] = (outcomes[kind] ?? 0) + 1;
}

/** Runs `task(i)` for i in [0, n) with at most `concurrency` in flight. */
async function forEachBounded(n: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
}

/** How long one query may take before it counts as lost (a stalled server shows as timeouts, not as a hang). */
const REQUEST_TIMEOUT_MS = 60_000;

/** `n` unauthenticated `POST /api/query` of `items:byKey` with distinct `argBytes`-byte arguments. */
export async function postLargeQueries(
  url: string,
  options: { n: number; argBytes: number; concurrency: number; offset?: number },
): Promise<Outcomes> {
  const outcomes: Outcomes = {};
  await forEachBounded(options.n, options.concurrency, async (i) => {
    const k = largeArgument((options.offset ?? 0) + i, options.argBytes);
    try {
      const response = await fetch(`${url}/api/query`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ path: "items:byKey", args: { k }, format: "json" }),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const body = await response.json() as { status?: string };
      if (response.status !== 200) count(outcomes, `http ${response.status}`);
      // The function ran and failed (e.g. its 1 s limit on a machine under load): an answer, not a server fault.
      else count(outcomes, body.status === "success" ? "ok" : "function error");
    } catch (error) {
      count(outcomes, error instanceof DOMException && error.name === "TimeoutError" ? "timeout" : "connection failed");
    }
  });
  return outcomes;
}

/** Open sync sockets holding subscriptions; `close()` ends them. */
export interface SubscriptionLoad {
  outcomes: Outcomes;
  close(): void;
}

/**
 * Opens `sockets` sync connections and subscribes `n` distinct `items:byKey` queries with `argBytes`-byte arguments,
 * spread over them, one query at a time per socket (each waits for its result or failure). The subscriptions stay
 * live until `close()`.
 */
export async function holdLargeSubscriptions(
  url: string,
  options: { n: number; argBytes: number; sockets: number; offset?: number; path?: string; argName?: string },
): Promise<SubscriptionLoad> {
  const outcomes: Outcomes = {};
  const opened: WebSocket[] = [];
  const perSocket = Math.ceil(options.n / options.sockets);
  await Promise.all(Array.from({ length: options.sockets }, async (_, s) => {
    const first = s * perSocket;
    const last = Math.min(options.n, first + perSocket);
    if (first >= last) return;
    const socket = new SubscriptionSocket(url);
    opened.push(socket.socket);
    await socket.opened;
    for (let i = first; i < last; i++) {
      const k = largeArgument((options.offset ?? 0) + 1_000_000 + i, options.argBytes);
      count(outcomes, await socket.add(i, options.path ?? "items:byKey", { [options.argName ?? "k"]: k }));
      if (socket.closed) {
        count(outcomes, "socket closed");
        return;
      }
    }
  }));
  return {
    outcomes,
    close() {
      for (const socket of opened) socket.close();
    },
  };
}

/** How long one subscription may take to answer before it counts as lost. */
const SUBSCRIBE_TIMEOUT_MS = 60_000;

/** A raw sync socket that adds queries one at a time. */
class SubscriptionSocket {
  readonly socket: WebSocket;
  readonly opened: Promise<void>;
  closed = false;
  #version = 0;
  #waiting: { queryId: number; resolve(kind: string): void } | null = null;

  constructor(url: string) {
    this.socket = new WebSocket(url.replace("http", "ws") + "/api/1.48.0/sync");
    this.opened = new Promise((resolve, reject) => {
      this.socket.onopen = () => {
        this.socket.send(JSON.stringify({ type: "Connect", sessionId: crypto.randomUUID(), connectionCount: 0 }));
        resolve();
      };
      this.socket.onerror = () => reject(new Error("the sync socket failed"));
    });
    this.socket.onmessage = (event) => this.#onMessage(String(event.data));
    this.socket.onclose = () => {
      this.closed = true;
      this.#waiting?.resolve("socket closed");
    };
  }

  #onMessage(text: string): void {
    const message = JSON.parse(text) as { type: string; modifications?: { type: string; queryId: number }[] };
    if (message.type !== "Transition" || !this.#waiting) return;
    for (const modification of message.modifications ?? []) {
      if (modification.queryId !== this.#waiting.queryId) continue;
      this.#waiting.resolve(modification.type === "QueryUpdated" ? "ok" : modification.type);
    }
  }

  /** Adds one query; resolves with its outcome (`ok`, `QueryFailed`, `socket closed`, `timeout`). */
  add(queryId: number, udfPath: string, args: Record<string, unknown>): Promise<string> {
    if (this.closed) return Promise.resolve("socket closed");
    return new Promise((resolve) => {
      const timer = setTimeout(() => done("timeout"), SUBSCRIBE_TIMEOUT_MS);
      const done = (kind: string) => {
        clearTimeout(timer);
        this.#waiting = null;
        resolve(kind);
      };
      this.#waiting = { queryId, resolve: done };
      const baseVersion = this.#version++;
      this.socket.send(JSON.stringify({
        type: "ModifyQuerySet",
        baseVersion,
        newVersion: this.#version,
        modifications: [{ type: "Add", queryId, udfPath, args: [args] }],
      }));
    });
  }
}

/** Samples a process's RSS every `intervalMs` and keeps the largest value seen. */
export class RssSampler {
  readonly #pid: number;
  readonly #timer: ReturnType<typeof setInterval>;
  maxRssBytes = 0;
  /** Set when a sample found the process gone. */
  exited = false;

  constructor(pid: number, intervalMs = 50) {
    this.#pid = pid;
    this.#timer = setInterval(() => this.sample(), intervalMs);
  }

  /** Takes one sample now. */
  sample(): ProcessMemory | null {
    const memory = readProcessMemory(this.#pid);
    if (memory === null) this.exited = true;
    else if (memory.rssBytes > this.maxRssBytes) this.maxRssBytes = memory.rssBytes;
    return memory;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
