/**
 * The query cache's keys and admission (issue 14): equal calls share a key and different calls never do, short keys
 * are their own text and long ones a digest; an HTTP result is cached on its query's second offer, not its first; a
 * re-run that returns the same result keeps its digest (watchers are not told), a different one changes it.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./helpers/assert.ts";
import { openStorage } from "../src/server/storage.ts";
import {
  MAX_PLAIN_KEY_CHARS,
  queryKey,
  type QueryRun,
  type QuerySpec,
  SubscriptionManager,
} from "../src/subscriptions/mod.ts";

const spec = (args: Record<string, unknown>, more: Partial<QuerySpec> = {}): QuerySpec => ({
  path: "items:list",
  args: args as QuerySpec["args"],
  identityJson: null,
  allowInternal: false,
  ...more,
});

Deno.test("query keys: canonical, distinct, plain when short and a digest when long", () => {
  assertEquals(queryKey(spec({ a: 1, b: 2 })), queryKey(spec({ b: 2, a: 1 })), "key order does not matter");
  assertEquals(queryKey(spec({}, { path: "items" })), queryKey(spec({}, { path: "items.js:default" })));
  const variants = [
    spec({ a: 1 }),
    spec({ a: "1" }),
    spec({ a: 1 }, { identityJson: '{"subject":"u1"}' }),
    spec({ a: 1 }, { identityJson: '{"subject":"u2"}' }),
    spec({ a: 1 }, { allowInternal: true }),
    spec({ a: 1 }, { journal: "j1" }),
    spec({ a: 1 }, { componentPath: "counter" }),
    spec({ a: 1 }, { path: "items:other" }),
    spec({ a: "x".repeat(MAX_PLAIN_KEY_CHARS) }),
    spec({ a: "x".repeat(MAX_PLAIN_KEY_CHARS + 1) }),
  ];
  assertEquals(new Set(variants.map(queryKey)).size, variants.length);
  const short = queryKey(spec({ a: 1 }));
  assert(short.startsWith("=") && short.includes('{"a":1}'), short);
  const long = queryKey(spec({ a: "x".repeat(MAX_PLAIN_KEY_CHARS) }));
  assertEquals(long.length, 44, "a SHA-256 digest in base64");
  assert(!long.startsWith("="), "digests and plain keys never meet");
});

Deno.test("query cache: an HTTP result is cached on its query's second offer; re-runs keep or change the digest", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "denvex-query-cache-" });
  const database = await openStorage({ kind: "sqlite", path: join(dataDir, "denvex.sqlite3") });
  let value = "1";
  const run = (): Promise<QueryRun> =>
    Promise.resolve({ ok: true, valueJson: value, logLines: ["[LOG] ran"], readSet: null });
  const changedKeys: string[][] = [];
  const manager = new SubscriptionManager<string>({
    database,
    run,
    onAdvance: (_ts, changed) => changedKeys.push(changed.map((entry) => entry.key)),
  });
  try {
    const once = spec({ n: 1 });
    manager.offer(once, manager.watermark, await run());
    assertEquals(manager.lookup(once), null, "a query offered once is not cached");
    manager.offer(once, manager.watermark, await run());
    assertEquals(manager.lookup(once)?.result.valueJson, "1", "offered again, it is");
    assertEquals(manager.size, 1);

    const watched = spec({ n: 2 });
    const entry = await manager.subscribe(watched, "client");
    const digest = entry.hash;
    // A deploy re-runs every subscribed query: the same result keeps its digest and is not reported as changed.
    manager.invalidateAll();
    await until(() => manager.current && changedKeys.length === 1);
    assertEquals(changedKeys[0], []);
    assertEquals(entry.hash, digest);
    value = "2";
    manager.invalidateAll();
    await until(() => manager.current && changedKeys.length === 2);
    assertEquals(changedKeys[1], [entry.key]);
    assert(entry.hash !== digest, "a different result has a different digest");
    assertEquals(entry.result.valueJson, "2");
  } finally {
    await manager.close();
    await database.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert(condition(), "timed out");
}
