/**
 * Reads below the retained history: once retention pruned the revisions a snapshot needs, `/api/query_at_ts` at that
 * snapshot must fail with a clear 400 `{code, message}`, never answer `success` with what is left (a deleted
 * document's history is gone, so it would read as missing). Snapshots at or above the prune watermark still read.
 */
import { ConvexHttpClient } from "convex/browser";
import { anyApi } from "convex/server";
import { assert, assertEquals } from "./helpers/assert.ts";
import { withCounterServer } from "./helpers/counter_app.ts";
import { stopBundler } from "./helpers/runtime_app.ts";
import { openDatabase } from "../src/database/mod.ts";
import { openPersistence } from "../src/persistence/mod.ts";
import { freshSqlite } from "./helpers/databases.ts";

const api = anyApi;

async function queryAtTs(url: string, path: string, args: unknown, ts: string): Promise<Response> {
  return await fetch(`${url}/api/query_at_ts`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ path, args, ts }),
  });
}

async function latestTs(url: string): Promise<string> {
  const response = await fetch(`${url}/api/query_ts`, { method: "POST" });
  return ((await response.json()) as { ts: string }).ts;
}

Deno.test({
  name: "retention: query_at_ts below the prune watermark is refused, not answered with pruned data",
  async fn() {
    await withCounterServer("sqlite", async (server) => {
      const client = new ConvexHttpClient(server.url);
      const id = await client.mutation(api.counters.create, {});
      await client.mutation(api.counters.increment, { id });
      const whileAlive = await latestTs(server.url);

      // Within retention the old snapshot reads the document as it was.
      let response = await queryAtTs(server.url, "counters:get", { id }, whileAlive);
      assertEquals(response.status, 200);
      assertEquals(await response.json(), { status: "success", value: 1, logLines: [] });

      await client.mutation(api.counters.remove, { id });
      const afterDelete = await latestTs(server.url);
      const database = server.backend.database;
      while (!(await database.pruneNow(database.latestTs)).done) { /* until every old revision is gone */ }

      response = await queryAtTs(server.url, "counters:get", { id }, whileAlive);
      assertEquals(response.status, 400, "a snapshot whose history was pruned is a client error");
      const body = await response.json() as { code: string; message: string };
      assertEquals(body.code, "SnapshotTooOld");
      assert(body.message.includes("retention"), body.message);

      // At the watermark and above, reads still work.
      response = await queryAtTs(server.url, "counters:get", { id }, afterDelete);
      assertEquals(response.status, 200);
      assertEquals(await response.json(), { status: "success", value: null, logLines: [] });
    });
    await stopBundler();
  },
});

Deno.test({
  name: "retention: the prune watermark survives a restart, and transactions below it are refused",
  async fn() {
    const fresh = await freshSqlite();
    try {
      let database = await openDatabase(await openPersistence(fresh));
      await database.createTable("things");
      const before = database.latestTs;
      await database.createTable("others");
      const watermark = database.latestTs;
      await database.pruneNow(watermark);
      assertEquals(database.retainedSinceTs, watermark);
      await database.close();

      database = await openDatabase(await openPersistence(fresh));
      assertEquals(database.retainedSinceTs, watermark, "the watermark is durable");
      let refused = "";
      try {
        database.begin("query", null, before);
      } catch (error) {
        refused = (error as { code?: string }).code ?? "";
      }
      assertEquals(refused, "SnapshotTooOld");
      database.begin("query", null, watermark);
      await database.close();
    } finally {
      await fresh.cleanup();
    }
  },
});
