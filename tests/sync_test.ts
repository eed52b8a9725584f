/** WebSocket sync (convex-compat.md §2) with the official `ConvexClient` and raw protocol frames. */
import { ConvexClient, ConvexHttpClient } from "convex/browser";
import { anyApi } from "convex/server";
import { assert, assertEquals } from "./helpers/assert.ts";
import { withServer } from "./helpers/sync_app.ts";
import { stopBundler } from "./helpers/runtime_app.ts";
import { encodeBase64, timestampToBase64 } from "../src/values/mod.ts";
import { ReadRangeIndex } from "../src/subscriptions/mod.ts";
import { RawSocket } from "./helpers/raw_socket.ts";

const api = anyApi;

/** Resolves with the first value `predicate` accepts from a subscription. */
function nextMatching<T>(
  client: ConvexClient,
  ref: unknown,
  args: Record<string, unknown>,
  predicate: (value: T) => boolean,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no matching update within 10 s")), 10_000);
    const unsubscribe = client.onUpdate(ref as never, args as never, (value: unknown) => {
      if (predicate(value as T)) {
        clearTimeout(timer);
        unsubscribe();
        resolve(value as T);
      }
    });
  });
}

/** A raw protocol socket that collects server messages. */

Deno.test({
  name: "sync: ConvexClient subscriptions update after writes from another client; mutations resolve when visible",
  async fn() {
    await withServer(async (server) => {
      const watcher = new ConvexClient(server.url);
      const writer = new ConvexClient(server.url);
      try {
        assertEquals(await watcher.query(api.messages.list, { channel: "a" }), []);
        const seen = nextMatching<string[]>(watcher, api.messages.list, { channel: "a" }, (v) => v.length === 2);
        const untouched: unknown[] = [];
        watcher.onUpdate(api.messages.list, { channel: "other" }, (v) => untouched.push(v));
        await writer.mutation(api.messages.send, { channel: "a", body: "one" });
        await writer.mutation(api.messages.send, { channel: "a", body: "two" });
        assertEquals(await seen, ["one", "two"]);
        // Read-your-writes: once `await mutation()` resolves, the writer's own subscription shows it.
        let latest: string[] = [];
        writer.onUpdate(api.messages.list, { channel: "b" }, (v: string[]) => latest = v);
        for (let i = 0; i < 5; i++) {
          await writer.mutation(api.messages.send, { channel: "b", body: `m${i}` });
          assertEquals(latest.length, i + 1);
        }
        assertEquals(untouched, [[]]);
        assertEquals(await writer.action(api.messages.shout, { text: "x" }), "X 7");
      } finally {
        await watcher.close();
        await writer.close();
      }
    });
  },
});

Deno.test({
  name: "sync: errors reach subscribers as ConvexError; http writes update ws subscribers",
  async fn() {
    await withServer(async (server) => {
      const client = new ConvexClient(server.url);
      try {
        const failure = await new Promise<Error>((resolve) => {
          client.onUpdate(api.messages.fails, {}, () => {}, (error) => resolve(error));
        });
        assertEquals((failure as Error & { data: unknown }).data, { code: "BAD", n: 3n });
        const seen = nextMatching<number>(client, api.messages.count, {}, (n) => n === 1);
        await new ConvexHttpClient(server.url).mutation(api.messages.send, { channel: "h", body: "x" });
        assertEquals(await seen, 1);
      } finally {
        await client.close();
      }
    });
  },
});

Deno.test({
  name: "sync: raw protocol: version continuity, idempotent mutations, bad versions, future timestamps, bad frames",
  async fn() {
    await withServer(async (server) => {
      const raw = new RawSocket(server.url);
      await raw.opened;
      const sessionId = crypto.randomUUID();
      raw.connect({ sessionId });
      raw.send({
        type: "ModifyQuerySet",
        baseVersion: 0,
        newVersion: 1,
        modifications: [{ type: "Add", queryId: 0, udfPath: "messages:count", args: [{}] }],
      });
      raw.send({ type: "ModifyQuerySet", baseVersion: 1, newVersion: 2, modifications: [] });
      raw.send({ type: "Mutation", requestId: 0, udfPath: "messages:send", args: [{ channel: "r", body: "1" }] });
      await raw.until(() => raw.ofType("MutationResponse").length === 1, "mutation response");
      const response = raw.ofType("MutationResponse")[0];
      assertEquals(response.success, true);
      await raw.until(
        () =>
          raw.ofType("Transition").some((t) =>
            (t.endVersion as { ts: string }).ts >= "" && t.modifications &&
            (t.modifications as { value?: unknown }[]).some((m) => m.value === 1)
          ),
        "transition with the write",
      );
      // Continuity: each Transition starts where the previous ended.
      const transitions = raw.ofType("Transition");
      let previous = { querySet: 0, identity: 0, ts: "AAAAAAAAAAA=" };
      for (const t of transitions) {
        assertEquals(t.startVersion, previous);
        previous = t.endVersion as typeof previous;
      }
      assertEquals(previous.querySet, 2);
      // The MutationResponse came before a Transition at or past its ts.
      const responseIndex = raw.messages.indexOf(response);
      const after = raw.messages.slice(responseIndex).filter((m) => m.type === "Transition");
      assert(after.length > 0);
      raw.socket.close();

      // Reconnect with the same session: the mutation is not run again.
      const again = new RawSocket(server.url);
      await again.opened;
      again.connect({ sessionId, connectionCount: 1, maxObservedTimestamp: response.ts });
      again.send({
        type: "ModifyQuerySet",
        baseVersion: 0,
        newVersion: 1,
        modifications: [
          { type: "Add", queryId: 0, udfPath: "messages:count", args: [{}] },
        ],
      });
      again.send({ type: "Mutation", requestId: 0, udfPath: "messages:send", args: [{ channel: "r", body: "1" }] });
      await again.until(() => again.ofType("MutationResponse").length === 1, "replayed response");
      assertEquals(again.ofType("MutationResponse")[0], response);
      await again.until(() => again.ofType("Transition").length >= 1, "transition");
      assertEquals((again.ofType("Transition")[0].modifications as { value: unknown }[])[0].value, 1);
      again.socket.close();

      const cases: [string, (s: RawSocket) => void, string][] = [
        ["bad base version", (s) => {
          s.connect();
          s.send({ type: "ModifyQuerySet", baseVersion: 5, newVersion: 6, modifications: [] });
        }, "BaseVersionMismatch"],
        ["no Connect first", (s) => s.send({ type: "Event", eventType: "x", event: {} }), "Connect"],
        ["malformed JSON", (s) => s.send("{nope"), "not valid JSON"],
        ["unknown type", (s) => s.send({ type: "Teleport" }), "Unknown message type"],
        ["oversized frame", (s) => {
          s.connect();
          s.send({ type: "Mutation", requestId: 0, udfPath: "messages:send", args: [{ body: "x".repeat(17e6) }] });
        }, "larger than the limit"],
      ];
      for (const [what, act, expected] of cases) {
        const s = new RawSocket(server.url);
        await s.opened;
        act(s);
        await s.until(() => s.closed !== null, `${what}: close`);
        const fatal = s.ofType("FatalError")[0];
        assert(fatal && String(fatal.error).includes(expected), `${what}: ${JSON.stringify(s.messages)}`);
      }
      const future = new RawSocket(server.url);
      await future.opened;
      future.connect({ maxObservedTimestamp: timestampToBase64(server.backend.database.latestTs + 1_000_000_000n) });
      await future.until(() => future.closed !== null, "future timestamp close");
      assert(future.closed!.reason.includes("ahead of the server"), future.closed!.reason);

      // The server still serves.
      const fine = new ConvexHttpClient(server.url);
      assertEquals(await fine.query(api.messages.count, {}), 1);
    });
    await stopBundler();
  },
});

Deno.test("sync: the read-range index finds exactly the ranges holding a written key", () => {
  const index = new ReadRangeIndex<string>();
  const key = (...bytes: number[]) => new Uint8Array(bytes);
  const b64 = (...bytes: number[]) => encodeBase64(key(...bytes));
  index.add("point", [{ indexId: 1, lowKey: b64(5), highKey: b64(5, 0) }]);
  index.add("range", [{ indexId: 1, lowKey: b64(2), highKey: b64(8) }]);
  index.add("open", [{ indexId: 1, lowKey: b64(7), highKey: null }]);
  index.add("other", [{ indexId: 2, lowKey: b64(), highKey: null }]);
  index.add("unknown", null);
  const hits = (indexId: number, ...keys: Uint8Array[]) => [...index.affected(new Map([[indexId, keys]]))].sort();
  assertEquals(hits(1, key(5)), ["point", "range", "unknown"]);
  assertEquals(hits(1, key(5, 0)), ["range", "unknown"]);
  assertEquals(hits(1, key(1)), ["unknown"]);
  assertEquals(hits(1, key(8)), ["open", "unknown"]);
  assertEquals(hits(1, key(7, 255)), ["open", "range", "unknown"]);
  assertEquals(hits(2, key(0)), ["other", "unknown"]);
  index.remove("range");
  index.remove("unknown");
  assertEquals(hits(1, key(5)), ["point"]);
  // Many ranges: a probe finds its one hit among 10,000.
  const many = new ReadRangeIndex<number>();
  for (let i = 0; i < 10_000; i++) {
    many.add(i, [{ indexId: 9, lowKey: b64(i >> 8, i & 255), highKey: b64(i >> 8, i & 255, 0) }]);
  }
  assertEquals([...many.affected(new Map([[9, [key(3, 7)]]]))], [3 * 256 + 7]);
});
