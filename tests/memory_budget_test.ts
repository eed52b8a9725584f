/**
 * Memory bounded by budgets (denvex issue 9, items 1, 3, 4, 17), against the real server process so an out-of-memory
 * death shows: distinct large-argument queries and subscriptions from anonymous callers keep the server's memory
 * bounded; the query cache keeps to its byte budget and refuses subscriptions past it; args nested too deep are a 400;
 * admin endpoints check the key before decompressing a body, and decompression is capped; HTTP-action 404 and 500
 * answer JSON `{code, message}`.
 */
import { join } from "node:path";
import { brotliCompressSync, constants as zlib } from "node:zlib";
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { createConvexApp, DEPLOY_ARGS, runConvexCli, type ServerProcess, spawnServer } from "./helpers/convex_app.ts";
import {
  holdLargeSubscriptions,
  MEMORY_APP,
  postLargeQueries,
  readProcessMemory,
  RssSampler,
} from "./helpers/memory_load.ts";
import { RawSocket } from "./helpers/raw_socket.ts";
import type { ReadRange } from "../src/database/mod.ts";
import { openStorage } from "../src/server/storage.ts";
import {
  QueryCacheFullError,
  type QueryRun,
  type QuerySpec,
  ReadRangeIndex,
  SubscriptionManager,
} from "../src/subscriptions/mod.ts";
import { MAX_PUSH_JSON_BYTES } from "../src/http/mod.ts";
import { MutationLog } from "../src/sync/mod.ts";
import type { MutationReply } from "../src/sync/mutation_log.ts";
import { encodeBase64 } from "../src/values/mod.ts";

const MIB = 1024 * 1024;

const HTTP_APP: Record<string, string> = {
  "http.ts": `
import { httpRouter } from "convex/server";
import { httpAction } from "./_generated/server";
const http = httpRouter();
http.route({ path: "/throw", method: "GET", handler: httpAction(async () => { throw new Error("handler exploded"); }) });
export default http;
`,
};

async function withDeployedServer(fn: (server: ServerProcess) => Promise<void>): Promise<void> {
  const server = await spawnServer();
  const app = await createConvexApp({ ...MEMORY_APP, ...HTTP_APP });
  try {
    const deployed = await runConvexCli(app, DEPLOY_ARGS, server);
    assertEquals(deployed.code, 0, deployed.stdout + deployed.stderr);
    await fn(server);
  } finally {
    await app.dispose();
    await server.close();
  }
}

function nested(depth: number): unknown {
  let value: unknown = "leaf";
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
}

function postQuery(url: string, path: string, args: unknown): Promise<Response> {
  return fetch(`${url}/api/query`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ path, args, format: "json" }),
  });
}

/** A brotli body that inflates to `size` bytes of JSON (a bomb: a few KiB on the wire). */
function brotliBomb(size: number): Uint8Array<ArrayBuffer> {
  const json = new TextEncoder().encode(`{"pad":"${" ".repeat(size - 10)}"}`);
  return new Uint8Array(brotliCompressSync(json, { params: { [zlib.BROTLI_PARAM_QUALITY]: 5 } }));
}

Deno.test({
  name: "memory: large-argument queries and subscriptions, deep args, admin bombs and HTTP-action errors",
  async fn(t) {
    await withDeployedServer(async (server) => {
      await t.step("anonymous 1 MiB-argument queries and subscriptions keep the server's RSS bounded", async () => {
        const idle = readProcessMemory(server.pid)!.rssBytes;
        const sampler = new RssSampler(server.pid);
        try {
          // Each of these kept ~120 MB in the read-range index before (37 of them killed the server).
          // Every call is answered: a result, or (on a loaded machine) the function's own time-limit error.
          const http = await postLargeQueries(server.url, { n: 16, argBytes: MIB, concurrency: 2 });
          assertEquals((http.ok ?? 0) + (http["function error"] ?? 0), 16, JSON.stringify(http));
          const load = await holdLargeSubscriptions(server.url, { n: 16, argBytes: MIB, sockets: 2 });
          assertEquals((load.outcomes.ok ?? 0) + (load.outcomes.QueryFailed ?? 0), 16, JSON.stringify(load.outcomes));
          assert(!sampler.exited, "the server process died");
          load.close();
        } finally {
          sampler.stop();
        }
        const growth = Math.max(sampler.maxRssBytes, readProcessMemory(server.pid)!.peakRssBytes) - idle;
        // 32 MiB of arguments in all: retained memory is a small multiple of it (plus garbage not yet collected).
        assert(growth < 640 * MIB, `the server's RSS grew by ${Math.round(growth / MIB)} MiB`);
        assertEquals(await (await postQuery(server.url, "items:byKey", { k: "small" })).json(), {
          status: "success",
          value: 0,
          logLines: [],
        });
      });

      await t.step("args nested 10,000 levels are a 400 JSON error over HTTP and a FatalError over sync", async () => {
        const deep = await postQuery(server.url, "items:echo", { value: nested(10_000) });
        assertEquals(deep.status, 400);
        assertEquals((await deep.json()).code, "ArgsTooDeeplyNested");
        const fine = await postQuery(server.url, "items:echo", { value: nested(40) });
        assertEquals(await fine.json(), { status: "success", value: "ok", logLines: [] });
        const socket = new RawSocket(server.url);
        await socket.opened;
        socket.connect();
        socket.send({
          type: "ModifyQuerySet",
          baseVersion: 0,
          newVersion: 1,
          modifications: [{ type: "Add", queryId: 0, udfPath: "items:echo", args: [{ value: nested(10_000) }] }],
        });
        await socket.until(() => socket.closed !== null, "the socket to close");
        const fatal = socket.ofType("FatalError")[0] as { error: string } | undefined;
        assert(fatal?.error.includes("nested"), `FatalError: ${JSON.stringify(socket.messages)}`);
      });

      await t.step("admin endpoints refuse a bad key before decompressing; decompression is capped", async () => {
        // Past the decompression cap: before, the server inflated it (and answered 413) whatever the key.
        const bomb = brotliBomb(MAX_PUSH_JSON_BYTES + MIB);
        assert(bomb.length < 64 * 1024, `bomb of ${bomb.length} bytes`);
        const before = readProcessMemory(server.pid)!.peakRssBytes;
        const send = (headers: Record<string, string>, body: Uint8Array<ArrayBuffer>) =>
          fetch(`${server.url}/api/deploy2/start_push`, {
            method: "POST",
            headers: { "Content-Type": "application/json", "Content-Encoding": "br", ...headers },
            body,
          });
        const statuses: number[] = [];
        for (let i = 0; i < 12; i++) {
          const noKey = await send({}, bomb);
          const wrongKey = await send({ Authorization: "Convex denvex-test|wrong" }, bomb);
          statuses.push(noKey.status, wrongKey.status);
          assertEquals((await noKey.json()).code, "MissingAdminKey");
          assertEquals((await wrongKey.json()).code, "BadAdminKey");
        }
        assertEquals(new Set(statuses), new Set([403]));
        const growth = readProcessMemory(server.pid)!.peakRssBytes - before;
        assert(growth < 64 * MIB, `24 unauthenticated bombs raised the peak RSS by ${Math.round(growth / MIB)} MiB`);
        // With the right key the body is decompressed, but never past the cap.
        const over = await send({ Authorization: `Convex ${server.adminKey}` }, bomb);
        assertEquals(over.status, 413);
        assertEquals((await over.json()).code, "PayloadTooLarge");
      });

      await t.step(
        "HTTP actions: an unrouted path answers JSON {code, message}, a throwing handler {code, trace}",
        async () => {
          for (const base of [server.siteUrl, `${server.url}/http`]) {
            const missing = await fetch(`${base}/nowhere`);
            assertEquals(missing.status, 404);
            assertEquals(missing.headers.get("content-type"), "application/json");
            assertEquals(await missing.json(), { code: "NotFound", message: "No HttpAction routed for /nowhere" });
            const thrown = await fetch(`${base}/throw`);
            assertEquals(thrown.status, 500);
            // As Convex answers a throwing HTTP action: 500 {code, trace}, the request-id framed message and its trace.
            const body = await thrown.json() as { code: string; trace: string };
            assertMatch(body.code, /^\[Request ID: [0-9a-f]+\] Server Error: Uncaught Error: handler exploded/);
            assert(body.trace.includes("handler exploded"), body.trace);
          }
        },
      );
    });
  },
});

/** A read set of one index range whose two ends are `sizeBytes`-byte keys (what `q.eq("k", <big string>)` reads). */
function largeReadSet(seed: number, sizeBytes: number): ReadRange[] {
  const low = new Uint8Array(sizeBytes).fill(0x61);
  low[0] = seed & 0xff;
  low[1] = seed >> 8;
  const high = low.slice();
  high[sizeBytes - 1]++;
  return [{ indexId: 7, lowKey: encodeBase64(low), highKey: encodeBase64(high) }];
}

Deno.test("memory: the read-range index retains about one byte per key byte", () => {
  const index = new ReadRangeIndex<number>();
  for (let i = 0; i < 8; i++) index.add(i, largeReadSet(i, MIB));
  // Two 1 MiB ends per range: the old hex rope kept ~120 MB per range.
  assert(index.retainedBytes <= 8 * 2 * MIB * 1.05, `index retains ${index.retainedBytes} bytes`);
  assertEquals([...index.affected(new Map([[7, [new Uint8Array(16)]]]))], []);
  const hit = new Uint8Array(MIB).fill(0x61);
  hit[0] = 3;
  hit[1] = 0;
  assertEquals([...index.affected(new Map([[7, [hit]]]))], [3]);
  index.remove(3);
  assertEquals([...index.affected(new Map([[7, [hit]]]))], []);
  assert(index.retainedBytes <= 7 * 2 * MIB * 1.05);
});

Deno.test("memory: the query cache keeps to its byte budget and refuses subscriptions past it", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "denvex-memory-" });
  const database = await openStorage({ kind: "sqlite", path: join(dataDir, "denvex.sqlite3") });
  const maxCacheBytes = 24 * MIB;
  const maxUnsubscribedBytes = 8 * MIB;
  const run = (spec: QuerySpec): Promise<QueryRun> => {
    const seed = Number((spec.args as { seed: number }).seed);
    return Promise.resolve({ ok: true, valueJson: "0", logLines: [], readSet: largeReadSet(seed, MIB) });
  };
  const manager = new SubscriptionManager<string>({
    database,
    run,
    onAdvance: () => {},
    maxCacheBytes,
    maxUnsubscribedBytes,
  });
  const spec = (seed: number): QuerySpec => ({
    path: "items:byKey",
    args: { seed, k: "x".repeat(MIB) },
    identityJson: null,
    allowInternal: false,
  });
  try {
    // HTTP callers' results (no subscribers) stay within the unsubscribed budget.
    // (Each twice: a result is cached on its query's second offer.)
    for (let seed = 0; seed < 40; seed++) {
      manager.offer(spec(seed % 20), manager.watermark, await run(spec(seed % 20)));
    }
    assert(manager.retainedBytes.unsubscribed > 0, "offered results are cached");
    assert(manager.retainedBytes.unsubscribed <= maxUnsubscribedBytes, JSON.stringify(manager.retainedBytes));
    // Subscriptions: admitted while they fit, then refused with a clear error; never past the budget.
    let refused = 0;
    let admitted = 0;
    for (let seed = 100; seed < 120; seed++) {
      try {
        await manager.subscribe(spec(seed), `client-${seed}`);
        admitted++;
      } catch (error) {
        assert(error instanceof QueryCacheFullError, String(error));
        assert(error.message.startsWith("TooManyConcurrentRequests"));
        refused++;
      }
      assert(manager.retainedBytes.total <= maxCacheBytes, JSON.stringify(manager.retainedBytes));
    }
    assert(admitted >= 4 && refused >= 1, `admitted ${admitted}, refused ${refused}`);
  } finally {
    await manager.close();
    await database.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("memory: remembered mutation replies keep to their byte budget, the newest kept", async () => {
  const log = new MutationLog<MutationReply>(1_000, 4 * MIB);
  for (let i = 0; i < 10; i++) {
    await log.run("session", i, () => Promise.resolve({ text: "x".repeat(MIB), commitTs: null }));
  }
  assert(log.retainedBytes <= 4 * MIB, `${log.retainedBytes} bytes remembered`);
  let reran = false;
  const replay = await log.run("session", 9, () => {
    reran = true;
    return Promise.resolve({ text: "again", commitTs: null });
  });
  assert(!reran && replay.text.length === MIB, "the newest reply is still remembered");
});
