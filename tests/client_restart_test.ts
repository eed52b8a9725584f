/**
 * The official `ConvexClient` across server restarts (convex-compat.md §2.5–2.6): the real server process is killed
 * (SIGKILL) or stopped (SIGTERM) while mutations are in flight and started again on the same port and data. The
 * client must reconnect by itself, every awaited mutation must resolve, each mutation must have run exactly once
 * (a mutation the server never saw is re-sent and runs; one that committed but whose answer was lost is re-sent and
 * must not run again: the idempotency record is durable), and the subscription must end up showing all of them.
 *
 * The "committed, answer lost" case is forced with a TCP proxy between the client and the server that swallows
 * everything the server sends on the current connection, so the server commits mutations the client never hears of.
 */
import { ConvexClient } from "convex/browser";
import { anyApi } from "convex/server";
import { assert, assertEquals } from "./helpers/assert.ts";
import {
  type ConvexApp,
  createConvexApp,
  DEPLOY_ARGS,
  freePort,
  runConvexCli,
  type ServerProcess,
  spawnServer,
} from "./helpers/convex_app.ts";

const api = anyApi;

const SCHEMA = `
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
export default defineSchema({ tagged: defineTable({ tag: v.string(), x: v.number() }) });
`;

const TAGGED = `
import { mutation, query } from "./_generated/server";
import { v } from "convex/values";
export const add = mutation({
  args: { tag: v.string(), spin: v.number() },
  handler: async (ctx, { tag, spin }) => {
    // A little CPU work, so a burst of mutations is still being worked through when the server goes down.
    let x = 0;
    for (let i = 0; i < spin; i++) x = (x * 31 + i) % 1000003;
    return await ctx.db.insert("tagged", { tag, x });
  },
});
export const all = query({
  args: {},
  handler: async (ctx) => (await ctx.db.query("tagged").collect()).map((doc) => ({ id: doc._id, tag: doc.tag })),
});
`;

/** Loop iterations of one `add` (a few milliseconds of work). */
const SPIN = 300_000;
/** How long a restart may take to be noticed, reconnected and worked through by the client. */
const SETTLE_TIMEOUT_MS = 20_000;

interface Row {
  id: string;
  tag: string;
}

/** Rejects with a message naming `what` unless `promise` settles within `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = SETTLE_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** All rows, read over the HTTP API straight from the server (not through any client). */
async function rowsOnServer(server: ServerProcess): Promise<Row[]> {
  const response = await fetch(`${server.url}/api/query`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ path: "tagged:all", args: {}, format: "convex_encoded_json" }),
  });
  const body = await response.json();
  if (response.status !== 200 || body.status !== "success") throw new Error(`tagged:all: ${JSON.stringify(body)}`);
  return body.value as Row[];
}

/** Checks exactly-once: every tag in `results` is in `rows` once, under the ID its mutation returned, and no more. */
function assertExactlyOnce(rows: Row[], results: Map<string, string>, where: string): void {
  const byTag = new Map<string, Row[]>();
  for (const row of rows) byTag.set(row.tag, [...byTag.get(row.tag) ?? [], row]);
  const duplicated = [...byTag].filter(([, found]) => found.length > 1).map(([tag]) => tag);
  assertEquals(duplicated, [], `${where}: mutations that ran more than once`);
  const lost = [...results.keys()].filter((tag) => !byTag.has(tag));
  assertEquals(lost, [], `${where}: mutations whose effect is missing`);
  const wrongId = [...results].filter(([tag, id]) => byTag.get(tag)![0].id !== id).map(([tag]) => tag);
  assertEquals(wrongId, [], `${where}: mutations that resolved with an ID other than their document's`);
  assertEquals(rows.length, results.size, `${where}: no documents but the mutations'`);
}

/**
 * A TCP proxy in front of the server. `muteCurrentConnections()` makes it drop, from then on, everything the server
 * sends on the connections open at that moment (the client still reaches the server); new connections are forwarded
 * both ways. When either side closes, the proxy closes the other.
 */
class MutingProxy {
  readonly #listener: Deno.TcpListener;
  readonly #targetPort: number;
  readonly #open = new Set<Deno.Conn>();
  readonly #muted = new Set<Deno.Conn>();
  readonly #accepting: Promise<void>;

  constructor(targetPort: number) {
    this.#targetPort = targetPort;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#accepting = this.#accept();
  }

  get url(): string {
    return `http://127.0.0.1:${this.#listener.addr.port}`;
  }

  muteCurrentConnections(): void {
    for (const conn of this.#open) this.#muted.add(conn);
  }

  async close(): Promise<void> {
    this.#listener.close();
    for (const conn of this.#open) closeQuietly(conn);
    await this.#accepting;
  }

  async #accept(): Promise<void> {
    try {
      for await (const client of this.#listener) this.#serve(client).catch(() => {});
    } catch { /* listener closed */ }
  }

  async #serve(client: Deno.Conn): Promise<void> {
    let upstream: Deno.Conn;
    try {
      upstream = await Deno.connect({ hostname: "127.0.0.1", port: this.#targetPort });
    } catch {
      closeQuietly(client); // the server is down: the client sees a failed connection and retries later
      return;
    }
    this.#open.add(client);
    try {
      await Promise.race([pump(client, upstream, () => false), pump(upstream, client, () => this.#muted.has(client))]);
    } finally {
      closeQuietly(client);
      closeQuietly(upstream);
      this.#open.delete(client);
      this.#muted.delete(client);
    }
  }
}

/** Copies bytes from `from` to `to` (dropping them while `drop()` says so) until either side fails or ends. */
async function pump(from: Deno.Conn, to: Deno.Conn, drop: () => boolean): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await from.read(buffer);
      if (n === null) return;
      if (drop()) continue;
      for (let written = 0; written < n;) written += await to.write(buffer.subarray(written, n));
    }
  } catch { /* a side closed */ }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* already closed */ }
}

/**
 * A client subscribed to `tagged:all`, remembering the latest value and every mutation result. Its checks look at
 * the rows of the tags it sent (or adopted from another session).
 */
class Session {
  readonly client: ConvexClient;
  latest: Row[] | undefined;
  /** The first error the subscription reported, if any. */
  error: Error | undefined;
  /** Tags this session answers for. */
  readonly tags = new Set<string>();
  /** tag → the ID its mutation resolved with. */
  readonly results = new Map<string, string>();
  readonly #unsubscribe: () => void;

  constructor(url: string) {
    this.client = new ConvexClient(url);
    this.#unsubscribe = this.client.onUpdate(
      api.tagged.all,
      {},
      (value: Row[]) => this.latest = value,
      (error) => this.error ??= error,
    );
  }

  /** Sends `add(tag)` without waiting; the returned promise records the result. */
  add(tag: string): Promise<string> {
    this.tags.add(tag);
    return this.client.mutation(api.tagged.add, { tag, spin: SPIN }).then((id: string) => {
      this.results.set(tag, id);
      return id;
    });
  }

  /** Takes over the mutations of `other`, so this session's checks cover them too. */
  adopt(other: Session): void {
    for (const tag of other.tags) this.tags.add(tag);
    for (const [tag, id] of other.results) this.results.set(tag, id);
  }

  /** Waits until the subscription shows every mutation resolved so far, then checks each is there exactly once. */
  async settled(where: string): Promise<void> {
    await until(`${where}: the subscription to show all ${this.results.size} mutations`, () => {
      if (this.error) throw new Error(`${where}: the subscription failed: ${this.error.message}`);
      return this.latest !== undefined &&
        [...this.results.keys()].every((tag) => this.latest!.some((row) => row.tag === tag));
    });
    const mine = this.latest!.filter((row) => this.tags.has(row.tag));
    assertExactlyOnce(mine, this.results, `${where} (subscription)`);
  }

  async close(): Promise<void> {
    this.#unsubscribe();
    await this.client.close();
  }
}

Deno.test({
  name: "client restart: ConvexClient reconnects to a restarted server; in-flight mutations run exactly once",
  async fn(t) {
    const dataDir = await Deno.makeTempDir({ prefix: "denvex-restart-" });
    const adminKey = `denvex-test|${crypto.randomUUID().replaceAll("-", "")}`;
    const port = freePort();
    let sitePort = freePort();
    while (sitePort === port) sitePort = freePort();
    let server: ServerProcess | undefined;
    const start = async () => {
      server = await spawnServer({ dataDir, adminKey, port, sitePort });
      assertEquals(new URL(server.url).port, `${port}`, "the server listens on the port it was given");
      return server;
    };
    let app: ConvexApp | undefined;
    let session: Session | undefined;
    let proxy: MutingProxy | undefined;
    let proxied: Session | undefined;
    try {
      app = await createConvexApp({ "schema.ts": SCHEMA, "tagged.ts": TAGGED });
      const deployed = await runConvexCli(app, DEPLOY_ARGS, await start());
      assert(deployed.code === 0, `deploy failed:\n${deployed.stdout}\n${deployed.stderr}`);
      const s = session = new Session(server!.url);

      await t.step("mutations resolve and the subscription follows", async () => {
        for (let i = 0; i < 3; i++) await within(s.add(`warmup-${i}`), 10_000, "a warm-up mutation");
        await s.settled("warm-up");
      });

      /** Fires `count` mutations, stops the server the way `stop` does after `acksFirst` resolved, restarts it. */
      const restartMidFlight = async (phase: string, count: number, acksFirst: number, stop: () => Promise<void>) => {
        let resolved = 0;
        const reached = Promise.withResolvers<void>();
        const pending = Array.from({ length: count }, (_, i) =>
          s.add(`${phase}-${i}`).finally(() => {
            if (++resolved === acksFirst) reached.resolve();
          }));
        const settledAll = Promise.allSettled(pending);
        await within(reached.promise, 10_000, `${phase}: ${acksFirst} acknowledgements`);
        // The signal goes out synchronously here, right after the acknowledgement that reached the count.
        const resolvedAtStop = resolved;
        await stop();
        assert(resolvedAtStop < count, `${phase}: the stop landed with mutations in flight (${resolvedAtStop} done)`);
        await start();
        const outcomes = await within(settledAll, SETTLE_TIMEOUT_MS, `${phase}: every mutation resolves`);
        const failed = outcomes.filter((outcome) => outcome.status === "rejected");
        assertEquals(failed, [], `${phase}: mutations that failed`);
        await s.settled(phase);
        assertExactlyOnce(await rowsOnServer(server!), s.results, `${phase} (server)`);
      };

      // 60 mutations, of which the stop follows the third acknowledgement. With 20, a loaded CI machine once acknowledged
      // all of them at once (one Transition covers every commit up to the watermark): the stop then found none in flight.
      await t.step("kill -9 with mutations in flight", async () => {
        await restartMidFlight("sigkill", 60, 3, () => server!.kill());
      });

      await t.step("SIGTERM with mutations in flight", async () => {
        await restartMidFlight("sigterm", 60, 3, () => server!.close());
      });

      await t.step("mutations that committed but whose answers were lost do not run again", async () => {
        const p = proxy = new MutingProxy(port);
        const c = proxied = new Session(p.url);
        await within(c.add("proxied-warmup"), 10_000, "a mutation through the proxy");
        await c.settled("proxied warm-up");
        p.muteCurrentConnections();
        const tags = Array.from({ length: 5 }, (_, i) => `lost-answer-${i}`);
        const pending = Promise.allSettled(tags.map((tag) => c.add(tag)));
        // The server commits all of them; the client hears nothing.
        await until("the server to commit the muted mutations", async () => {
          const rows = await rowsOnServer(server!);
          return tags.every((tag) => rows.some((row) => row.tag === tag));
        });
        assertEquals(c.results.size, 1, "no answer reached the client");
        await server!.kill();
        await start();
        const outcomes = await within(pending, SETTLE_TIMEOUT_MS, "the re-sent mutations resolve");
        assertEquals(outcomes.filter((outcome) => outcome.status === "rejected"), [], "re-sent mutations that failed");
        const rows = await rowsOnServer(server!);
        assertExactlyOnce(rows.filter((row) => c.tags.has(row.tag)), c.results, "lost answers (server)");
        await c.settled("lost answers");
        // The whole table: every mutation of both clients, each exactly once; the first client's view agrees.
        s.adopt(c);
        assertExactlyOnce(rows, s.results, "all mutations (server)");
        await s.settled("first client after the proxied phase");
        assertEquals(s.latest!.length, rows.length, "the first client's subscription shows the whole table");
      });
    } finally {
      await proxied?.close().catch(() => {});
      await session?.close().catch(() => {});
      await proxy?.close().catch(() => {});
      await server?.kill();
      await app?.dispose();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
});
