/**
 * Durable mutation idempotency: a mutation sent again with the same key — concurrently, or after the server closed
 * and reopened its data — returns the first result and commit ts and runs once.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { ADMIN_KEY, bundledModules, messageCount, withTestBackend } from "./helpers/sync_app.ts";
import { addIndex } from "./helpers/engine.ts";
import { openBackend } from "../src/server/backend.ts";
import { openStorage } from "../src/server/storage.ts";
import { stopBundler } from "./helpers/runtime_app.ts";
import { idempotencyOwner, sweepResults } from "../src/functions/mod.ts";
import { legacyRecordId, resultKey } from "../src/functions/idempotency.ts";

Deno.test({
  name: "idempotency: a repeated mutation key returns the first result, also after a restart",
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "denvex-idem-" });
    const location = { kind: "sqlite" as const, path: `${dataDir}/denvex.sqlite3` };
    const urls = { cloudUrl: "http://127.0.0.1:1", siteUrl: "http://127.0.0.1:2" };
    const open = async () => {
      const database = await openStorage(location);
      const backend = await openBackend({ database, location, dataDir, adminKey: ADMIN_KEY, instanceName: "t", urls });
      return { database, backend };
    };
    const send = (
      backend: Awaited<ReturnType<typeof open>>["backend"],
      key: string,
      body: string,
      idempotencyKeyIsFresh = false,
    ) =>
      backend.executor.call({
        path: "messages:send",
        args: { channel: "c", body },
        expectedType: "mutation",
        identityJson: null,
        allowInternal: false,
        idempotencyKey: key,
        idempotencyKeyIsFresh,
      });
    const count = (backend: Awaited<ReturnType<typeof open>>["backend"]) => messageCount(backend);
    try {
      let { database, backend } = await open();
      await backend.deployments.activate(await backend.deployments.prepare(await bundledModules(), {}));
      await database.createTable("messages");
      await addIndex(database, "messages", "by_channel", ["channel"]);

      const first = await send(backend, "session-1\u00000", "one");
      assert(first.ok, first.ok ? "" : first.errorMessage);
      const repeat = await send(backend, "session-1\u00000", "one");
      assert(repeat.ok);
      assertEquals(repeat.valueJson, first.valueJson, "the repeat returns the first result (the same new ID)");
      assertEquals(repeat.ts, first.ts, "and the first commit ts");
      assertEquals(await count(backend), 1);
      // A repeat whose sender wrongly claims the key is fresh (no look before running) still commits nothing: the read
      // inside the commit finds the first result.
      const claimedFresh = await send(backend, "session-1\u00000", "one", true);
      assert(claimedFresh.ok, claimedFresh.ok ? "" : claimedFresh.errorMessage);
      assertEquals(claimedFresh.valueJson, first.valueJson);
      assertEquals(claimedFresh.ts, first.ts);
      assertEquals(await count(backend), 1);

      // Two concurrent sends of one new key commit once.
      const [a, b] = await Promise.all([
        send(backend, "session-1\u00001", "two"),
        send(backend, "session-1\u00001", "two"),
      ]);
      assert(a.ok && b.ok);
      assertEquals(a.valueJson, b.valueJson);
      assertEquals(await count(backend), 2);

      // A different key is a different mutation.
      assert((await send(backend, "session-2\u00000", "three")).ok);
      assertEquals(await count(backend), 3);

      await backend.close();
      await database.close();
      ({ database, backend } = await open());
      const afterRestart = await send(backend, "session-1\u00000", "one");
      assert(afterRestart.ok);
      assertEquals(afterRestart.valueJson, first.valueJson);
      assertEquals(afterRestart.ts, first.ts);
      assertEquals(await count(backend), 3, "nothing ran twice across the restart");
      // Retention: a sweep with zero retention deletes every record; the key then runs as a new mutation.
      assertEquals(await sweepResults(database, 0), 3);
      assertEquals(await sweepResults(database, 0), 0);
      assert((await send(backend, "session-1\u00000", "one")).ok);
      assertEquals(await count(backend), 4);
      await backend.close();
      await database.close();
    } finally {
      await stopBundler();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

Deno.test({
  name: "idempotency: a result recorded as a _mutation_results document (before keyed rows) is still found and swept",
  async fn() {
    await withTestBackend(async ({ database, backend }) => {
      // What a server from before keyed rows wrote for a mutation of key `legacy-session\0 0`, run by nobody.
      const key = "legacy-session\u00000";
      const recordId = legacyRecordId(resultKey(key, idempotencyOwner(null, false)));
      const { ts: legacyTs } = await database.runSystemTransaction(async (tx) => {
        await tx.insert("_mutation_results", { _id: recordId, _creationTime: Date.now(), result: '"legacy result"' });
      });
      const send = (idempotencyKey: string) =>
        backend.executor.call({
          path: "messages:send",
          args: { channel: "c", body: "legacy" },
          expectedType: "mutation",
          identityJson: null,
          allowInternal: false,
          idempotencyKey,
        });
      const resent = await send(key);
      assert(resent.ok, resent.ok ? "" : resent.errorMessage);
      assertEquals(resent.valueJson, '"legacy result"', "the re-send is answered from the old record");
      assertEquals(resent.ts, legacyTs);
      assertEquals(await messageCount(backend), 0, "and did not run");
      // A new key is recorded as a keyed row; the sweep deletes both kinds.
      assert((await send("legacy-session\u00001")).ok);
      assertEquals(await messageCount(backend), 1);
      assertEquals(await sweepResults(database, 0), 1, "the keyed row first");
      assertEquals(await sweepResults(database, 0), 1, "then the old document");
      assertEquals(await sweepResults(database, 0), 0);
      assert((await send(key)).ok, "once swept, the key runs as a new mutation");
      assertEquals(await messageCount(backend), 2);
    });
    await stopBundler();
  },
});
