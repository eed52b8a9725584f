/**
 * A SQLite reader's hold (`PersistenceReader.holdReads`): the reads until its release share one read transaction, so
 * they see the database as it was at the first of them (and pay for the WAL's read lock once, issue 14), while the
 * writer goes on committing; after the release every read sees the newest commits again.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { openSqlitePersistence, openSqliteReader } from "../src/persistence/mod.ts";
import type { CommitBatch } from "../src/persistence/mod.ts";

const LATEST = 2n ** 62n;

function insertAt(ts: bigint, id: string): CommitBatch {
  return {
    ts,
    documents: [{ id, tableNumber: 1, ts, json: JSON.stringify({ _id: id }), prevTs: null }],
    indexEntries: [],
  };
}

Deno.test("sqlite reader: reads under a hold share one snapshot, the writer goes on, the release lets new commits in", async () => {
  const dir = await Deno.makeTempDir({ prefix: "denvex-read-hold-" });
  const writer = await openSqlitePersistence(`${dir}/db.sqlite3`);
  const reader = await openSqliteReader(`${dir}/db.sqlite3`);
  try {
    await writer.commit([insertAt(1n, "a")]);
    const release = reader.holdReads!();
    assert((await reader.getDocument("a", LATEST)) !== null);
    await writer.commit([insertAt(2n, "b")]);
    // Held: the commit after the first read is not seen, and a hold taken inside the first is none.
    assertEquals(await reader.getDocument("b", LATEST), null);
    reader.holdReads!()();
    assertEquals(await reader.getDocument("b", LATEST), null);
    release();
    assertEquals((await reader.getDocument("b", LATEST))?.ts, 2n);
    release(); // twice: nothing more
    // Unheld, each read sees the newest commits.
    await writer.commit([insertAt(3n, "c")]);
    assertEquals((await reader.getDocument("c", LATEST))?.ts, 3n);
  } finally {
    await reader.close();
    await writer.close();
    await Deno.remove(dir, { recursive: true });
  }
});
