/**
 * Crash safety of the real server process: an app deployed with the official CLI takes a load of concurrent HTTP
 * mutations, the server is killed with SIGKILL in the middle of it and restarted on the same data (data directory, and
 * the same PostgreSQL schema for the PostgreSQL variant). Every acknowledged insert must be there, a snapshot read at a
 * timestamp observed before the crash must still show what was acknowledged before it, and timestamps never go back:
 * the first commit after the restart is later than every timestamp the old process handed out.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { createConvexApp, deployApp, type ServerProcess, spawnServer } from "./helpers/convex_app.ts";
import { freshMysql, freshPostgres } from "./helpers/databases.ts";

const LOAD = `
import { mutation, query } from "./_generated/server";
import { v } from "convex/values";
export const send = mutation({
  args: { tag: v.string() },
  handler: async (ctx, { tag }) => await ctx.db.insert("load", { tag }),
});
export const ids = query({
  args: {},
  handler: async (ctx) => (await ctx.db.query("load").collect()).map((doc) => ({ id: doc._id, tag: doc.tag })),
});
export const count = query({ args: {}, handler: async (ctx) => (await ctx.db.query("load").collect()).length });
`;

/** Concurrent HTTP clients of the write load. */
const WRITERS = 16;
/** The kill lands once this many inserts were acknowledged (the other writers are mid-request then). */
const ACKS_BEFORE_KILL = 250;

interface Row {
  id: string;
  tag: string;
}

/** A sync-protocol timestamp: base64 of an unsigned 64-bit little-endian integer. */
function decodeTs(text: string): bigint {
  const bytes = Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
  assertEquals(bytes.length, 8, `a timestamp is 8 bytes: ${text}`);
  return new DataView(bytes.buffer).getBigUint64(0, true);
}

function encodeTs(ts: bigint): string {
  const view = new DataView(new ArrayBuffer(8));
  view.setBigUint64(0, ts, true);
  return btoa(String.fromCharCode(...new Uint8Array(view.buffer)));
}

async function post(server: ServerProcess, route: string, body: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(`${server.url}/api/${route}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`${route}: HTTP ${response.status} ${text}`);
  return JSON.parse(text);
}

/** Runs a function over `/api/<kind>` (or `/api/query_at_ts` with `ts`) and returns its value; failures throw. */
async function run<T>(server: ServerProcess, kind: string, path: string, args: unknown, ts?: bigint): Promise<T> {
  const body = await post(server, ts === undefined ? kind : "query_at_ts", {
    path,
    args,
    format: "convex_encoded_json",
    ...(ts === undefined ? {} : { ts: encodeTs(ts) }),
  });
  if (body.status !== "success") throw new Error(`${path} failed: ${JSON.stringify(body)}`);
  return body.value as T;
}

async function queryTs(server: ServerProcess): Promise<bigint> {
  const body = await post(server, "query_ts", {});
  return decodeTs(body.ts as string);
}

async function deploy(app: Awaited<ReturnType<typeof createConvexApp>>, server: ServerProcess): Promise<void> {
  await deployApp(app, server);
}

/** What the load saw before and around the kill. */
interface LoadOutcome {
  /** Every acknowledged insert: ID → tag (including responses that arrived while the kill landed). */
  acknowledged: Map<string, string>;
  /** The largest `query_ts` answer the old process gave. */
  maxSeenTs: bigint;
  /** A `query_ts` answer, and the inserts acknowledged before it was asked for. */
  checkpoint: { ts: bigint; acknowledged: Set<string> };
  /** Requests that failed because the server was gone. */
  cutOff: number;
}

/** Runs the write load against `server`, kills it with SIGKILL after {@link ACKS_BEFORE_KILL} acknowledgements. */
async function loadAndKill(server: ServerProcess): Promise<LoadOutcome> {
  const acknowledged = new Map<string, string>();
  let maxSeenTs = 0n;
  let checkpoint: LoadOutcome["checkpoint"] | undefined;
  let triggered = false;
  let killing = false;
  let cutOff = 0;
  const killed = Promise.withResolvers<void>();

  const observeTs = async () => {
    const ts = await queryTs(server);
    if (ts > maxSeenTs) maxSeenTs = ts;
    return ts;
  };
  const trigger = async () => {
    // The checkpoint: every insert acknowledged so far committed at or before the ts the server reports next.
    const before = new Set(acknowledged.keys());
    const ts = await observeTs();
    checkpoint = { ts, acknowledged: before };
    // Let more of the load run past the checkpoint, then kill mid-request.
    while (acknowledged.size < before.size + 40 && !killing) await new Promise((resolve) => setTimeout(resolve, 1));
    await observeTs();
    // From here on, a failed request is one the kill cut off.
    killing = true;
    await server.kill();
    killed.resolve();
  };

  const writer = async (w: number) => {
    for (let n = 0; !killing; n++) {
      const tag = `w${w}-${n}`;
      try {
        const id = await run<string>(server, "mutation", "load:send", { tag });
        assertEquals(typeof id, "string", "send returns the new ID");
        acknowledged.set(id, tag);
      } catch (error) {
        if (killing) {
          cutOff++;
          return;
        }
        throw error;
      }
      if (acknowledged.size >= ACKS_BEFORE_KILL && !triggered) {
        triggered = true;
        trigger().catch(killed.reject);
      }
    }
  };
  // A timestamp poller: every answer is a timestamp the old process issued.
  const poller = async () => {
    while (!killing) {
      try {
        await observeTs();
      } catch (error) {
        if (!killing) throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  const writers = Array.from({ length: WRITERS }, (_, w) => writer(w));
  const running = Promise.all([...writers, poller()]);
  // A failing writer must not leave the test waiting for a kill that never comes.
  running.catch((error) => killed.reject(error));
  const deadline = setTimeout(() => killed.reject(new Error("the load never reached the kill")), 40_000);
  try {
    await killed.promise;
  } finally {
    clearTimeout(deadline);
    killing = true;
  }
  await running;
  return { acknowledged, maxSeenTs, checkpoint: checkpoint!, cutOff };
}

for (const variant of ["sqlite", "postgres", "mysql"] as const) {
  Deno.test({
    name: `server crash[${variant}]: kill -9 during a write load, restart on the same data, nothing acknowledged lost`,
    async fn() {
      // A missing PostgreSQL server fails here: this test never skips.
      const pg = variant === "postgres" ? await freshPostgres() : variant === "mysql" ? await freshMysql() : undefined;
      const dataDir = await Deno.makeTempDir({ prefix: "denvex-crash-" });
      const adminKey = `denvex-test|${crypto.randomUUID().replaceAll("-", "")}`;
      const app = await createConvexApp({ "load.ts": LOAD });
      const servers: ServerProcess[] = [];
      const start = async () => {
        const server = await spawnServer({
          dataDir,
          adminKey,
          db: pg !== undefined && pg.kind !== "sqlite" ? pg.url : undefined,
        });
        servers.push(server);
        return server;
      };
      try {
        const first = await start();
        await deploy(app, first);
        // The table does not exist until the first insert: reading it returns nothing (no error).
        assertEquals(await run<number>(first, "query", "load:count", {}), 0);
        const beforeLoad = await queryTs(first);

        const { acknowledged, maxSeenTs, checkpoint, cutOff } = await loadAndKill(first);
        assert(acknowledged.size >= ACKS_BEFORE_KILL, `${acknowledged.size} inserts acknowledged`);
        assert(cutOff > 0, "the kill landed while requests were in flight");
        assert(maxSeenTs > beforeLoad, "the load advanced the timestamp");
        assert(checkpoint.ts <= maxSeenTs);

        const second = await start();
        assert(
          (await queryTs(second)) >= maxSeenTs,
          "after the restart, the latest timestamp is not behind any the old process reported",
        );

        // Every acknowledged insert is there, once.
        const rows = await run<Row[]>(second, "query", "load:ids", {});
        const present = new Map(rows.map((row) => [row.id, row.tag]));
        assertEquals(present.size, rows.length, "document IDs are unique");
        assertEquals(new Set(rows.map((row) => row.tag)).size, rows.length, "each insert ran at most once");
        const missing = [...acknowledged].filter(([id, tag]) => present.get(id) !== tag);
        assertEquals(missing, [], `${missing.length} of ${acknowledged.size} acknowledged inserts are missing`);
        assert(rows.length <= acknowledged.size + WRITERS, "at most one unacknowledged insert per writer committed");
        assertEquals(await run<number>(second, "query", "load:count", {}), rows.length);

        // A snapshot at a pre-crash timestamp still holds what was acknowledged before it.
        const atCheckpoint = await run<Row[]>(second, "query", "load:ids", {}, checkpoint.ts);
        const atCheckpointIds = new Set(atCheckpoint.map((row) => row.id));
        const lateAtCheckpoint = [...checkpoint.acknowledged].filter((id) => !atCheckpointIds.has(id));
        assertEquals(lateAtCheckpoint, [], "inserts acknowledged before a query_ts answer are visible at that ts");

        // New commits get timestamps above every one handed out before the crash.
        const after = await run<string>(second, "mutation", "load:send", { tag: "after-restart" });
        const afterTs = await queryTs(second);
        assert(afterTs > maxSeenTs, `a new commit's ts (${afterTs}) is above every pre-crash ts (${maxSeenTs})`);
        const atAfter = await run<Row[]>(second, "query", "load:ids", {}, afterTs);
        assert(atAfter.some((row) => row.id === after), "the new insert is visible at the new ts");
        const atMaxSeen = await run<Row[]>(second, "query", "load:ids", {}, maxSeenTs);
        assert(!atMaxSeen.some((row) => row.id === after), "the new insert is not visible at any pre-crash ts");
        assertEquals(atAfter.length, rows.length + 1);
      } finally {
        for (const server of servers) await server.kill();
        await app.dispose();
        await Deno.remove(dataDir, { recursive: true }).catch(() => {});
        await pg?.cleanup();
      }
    },
  });
}
