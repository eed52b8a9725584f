/**
 * Exactly once without the sync session's mutation log: an execution of an idempotency key whose snapshot already
 * holds another execution's committed record (the record landed between its `findResult` look-up and its runner
 * starting) returns that record's result and commits nothing of its own.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { messageCount, withTestBackend } from "./helpers/sync_app.ts";
import { stopBundler } from "./helpers/runtime_app.ts";
import { FunctionExecutor } from "../src/functions/mod.ts";
import type { CallRequest } from "../src/functions/mod.ts";
import type { ExecuteRequest, RunnerPool } from "../src/runtime/mod.ts";

Deno.test({
  name: "idempotency race: a key committed between the look-up and the snapshot commits once",
  async fn() {
    await withTestBackend(async ({ database, backend }) => {
      // A second executor on the same database and runners whose runs wait at a gate before a runner starts them
      // (the point where a mutation's snapshot is taken): the window between the look-up and the snapshot, held open.
      const gate = Promise.withResolvers<void>();
      const reachedGate = Promise.withResolvers<void>();
      const gatedPool = {
        execute: async (request: ExecuteRequest) => {
          reachedGate.resolve();
          await gate.promise;
          return await backend.pool.execute(request);
        },
      } as unknown as RunnerPool;
      const gated = new FunctionExecutor({
        database,
        pool: gatedPool,
        deployment: () => backend.deployments.active,
        environment: () => ({}),
      });
      const send = (body: string, key = "session-r\u00000"): CallRequest => ({
        path: "messages:send",
        args: { channel: "c", body },
        expectedType: "mutation",
        identityJson: null,
        allowInternal: false,
        idempotencyKey: key,
      });

      const held = gated.call(send("one"));
      await reachedGate.promise; // its look-up found nothing
      const first = await backend.executor.call(send("one"));
      assert(first.ok, first.ok ? "" : first.errorMessage);
      gate.resolve();
      const late = await held;
      assert(late.ok, late.ok ? "" : late.errorMessage);
      assertEquals(late.valueJson, first.valueJson, "the late execution returns the committed result");
      assertEquals(late.ts, first.ts, "and its commit ts");
      assertEquals(await messageCount(backend), 1, "the key committed once");

      // The window still lets a different key through: the gate is not what stops a duplicate.
      const other = await gated.call(send("two", "session-r\u00001"));
      assert(other.ok, other.ok ? "" : other.errorMessage);
      assertEquals(await messageCount(backend), 2);

      // A plain re-send of the key, after the race, is answered from the record too.
      const wronglyFresh = await backend.executor.call(send("one"));
      assert(wronglyFresh.ok, wronglyFresh.ok ? "" : wronglyFresh.errorMessage);
      assertEquals(wronglyFresh.valueJson, first.valueJson);
      assertEquals(wronglyFresh.ts, first.ts);
      assertEquals(await messageCount(backend), 2, "nothing committed again");
    });
    await stopBundler();
  },
});
