/**
 * Memory comes back after clients leave (issue 14): 10,000 distinct subscriptions, then every subscriber leaves; the
 * query cache keeps only its bounded set of unsubscribed results, and none once a cycle invalidates them.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./helpers/assert.ts";
import type { ReadRange } from "../src/database/mod.ts";
import { openStorage } from "../src/server/storage.ts";
import { type QueryEntry, type QueryRun, type QuerySpec, SubscriptionManager } from "../src/subscriptions/mod.ts";
import { encodeBase64 } from "../src/values/mod.ts";

const SUBSCRIPTIONS = 10_000;
const KEPT_UNSUBSCRIBED = 1_000;

function readSetOf(n: number): ReadRange[] {
  const low = new TextEncoder().encode(`key-${n}`);
  const high = new TextEncoder().encode(`key-${n}~`);
  return [{ indexId: 3, lowKey: encodeBase64(low), highKey: encodeBase64(high) }];
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert(condition(), `timed out waiting until ${what}`);
}

Deno.test("footprint: the query cache gives back what 10,000 departed subscriptions held", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "denvex-footprint-subs-" });
  const database = await openStorage({ kind: "sqlite", path: join(dataDir, "denvex.sqlite3") });
  const run = (spec: QuerySpec): Promise<QueryRun> => {
    const n = (spec.args as { n: number }).n;
    return Promise.resolve({ ok: true, valueJson: JSON.stringify({ n }), logLines: [], readSet: readSetOf(n) });
  };
  const manager = new SubscriptionManager<string>({
    database,
    run,
    onAdvance: () => {},
    maxUnsubscribedEntries: KEPT_UNSUBSCRIBED,
  });
  const spec = (n: number): QuerySpec => ({
    path: "items:list",
    args: { n },
    identityJson: null,
    allowInternal: false,
  });
  try {
    const entries: [QueryEntry<string>, string][] = [];
    await Promise.all(Array.from({ length: SUBSCRIPTIONS }, async (_, n) => {
      entries.push([await manager.subscribe(spec(n), `client-${n}`), `client-${n}`]);
    }));
    assertEquals(manager.size, SUBSCRIPTIONS);
    const held = manager.retainedBytes.total;
    assert(held > 0);

    for (const [entry, subscriber] of entries) manager.unsubscribe(entry, subscriber);
    assertEquals(manager.size, KEPT_UNSUBSCRIBED, "only the bounded set of unsubscribed results is kept");
    assertEquals(manager.retainedBytes.total, manager.retainedBytes.unsubscribed);
    assert(manager.retainedBytes.total <= held / 5, JSON.stringify(manager.retainedBytes));

    // A cycle that touches them drops the rest: nothing is left behind (entries, bytes, read ranges).
    manager.invalidateAll();
    await until(() => manager.current && manager.size === 0, "the unsubscribed results were dropped");
    assertEquals(manager.retainedBytes, { total: 0, unsubscribed: 0 });
    // And the manager still serves: a new subscription runs and is cached again.
    const again = await manager.subscribe(spec(1), "client-again");
    assertEquals(again.result.valueJson, '{"n":1}');
    assertEquals(manager.size, 1);
  } finally {
    await manager.close();
    await database.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});
