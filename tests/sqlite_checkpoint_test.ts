/**
 * SQLite WAL checkpoints run in a worker thread, never inside a commit on the event loop (issue 14,
 * src/persistence/_sqlite_checkpointer.ts; the stalls they caused: scripts/bench/checkpoint_bench.ts).
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { DatabaseSync } from "node:sqlite";
import { type CommitBatch, openSqlitePersistence, type Persistence } from "../src/persistence/mod.ts";
import { SqliteCheckpointer } from "../src/persistence/_sqlite_checkpointer.ts";

const encoder = new TextEncoder();

/** `size` transactions from `firstTs`, each one document and three index entries (the call path's inserts). */
function group(firstTs: bigint, size: number): CommitBatch[] {
  return Array.from({ length: size }, (_, i) => {
    const ts = firstTs + BigInt(i);
    const id = `doc${ts.toString().padStart(10, "0")}`;
    return {
      ts,
      documents: [{ id, tableNumber: 1, ts, json: JSON.stringify({ _id: id, body: "x".repeat(200) }), prevTs: null }],
      indexEntries: [
        { indexId: 1, key: encoder.encode(id), documentId: id, deleted: false },
        { indexId: 2, key: encoder.encode(`${Number(ts) % 97}\u0000${id}`), documentId: id, deleted: false },
        { indexId: 3, key: encoder.encode(crypto.randomUUID()), documentId: id, deleted: false },
      ],
    };
  });
}

type Checkpoints = { completed: number; quiet: number; quietTotalMs: number; quietMaxMs: number } | null;

function checkpointsOf(persistence: Persistence): Checkpoints {
  return (persistence as unknown as { backgroundCheckpoints: Checkpoints }).backgroundCheckpoints;
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function withDatabase(work: (path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "denvex-checkpoint-test-" });
  try {
    await work(`${dir}/denvex.sqlite3`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("sqlite checkpoints: a few commits reach the database file by a background checkpoint", async () => {
  await withDatabase(async (path) => {
    const persistence = await openSqlitePersistence(path, { checkpointGapMs: 10 });
    try {
      const fileBytesBefore = (await Deno.stat(path)).size;
      let ts = (await persistence.maxTs()) + 1n;
      // ~50 groups: far below the 1,000 WAL pages at which SQLite's own checkpoint would run inside a commit.
      for (let i = 0; i < 50; i++, ts += 4n) await persistence.commit(group(ts, 4));
      await waitFor(() => (checkpointsOf(persistence)?.completed ?? 0) >= 1, "a background checkpoint");
      await waitFor(() => Deno.statSync(path).size > fileBytesBefore, "the database file to grow");
      assertEquals(await persistence.maxTs(), ts - 1n);
    } finally {
      await persistence.close();
    }
  });
});

Deno.test("sqlite checkpoints: under sustained commits the WAL starts over (quiet checkpoints), nothing is lost", async () => {
  await withDatabase(async (path) => {
    const persistence = await openSqlitePersistence(path, { checkpointGapMs: 20 });
    const groups = 2_500;
    try {
      let ts = (await persistence.maxTs()) + 1n;
      const inFlight: Promise<void>[] = [];
      for (let i = 0; i < groups; i++, ts += 4n) {
        inFlight.push(persistence.commit(group(ts, 4)));
        if (inFlight.length > 2) await inFlight.shift();
      }
      await Promise.all(inFlight);
      const checkpoints = checkpointsOf(persistence)!;
      assert(checkpoints.quiet >= 1, `no quiet checkpoint in ${checkpoints.completed}`);
      // ~200 MiB of WAL frames were written; a WAL that never started over holds them all (740 MiB in the bench).
      const walBytes = (await Deno.stat(`${path}-wal`)).size;
      assert(walBytes < 64 * 2 ** 20, `the WAL grew to ${walBytes} bytes`);
      assertEquals(await persistence.maxTs(), ts - 1n);
      const rows = await persistence.scanIndex({
        indexId: 1,
        lowKey: new Uint8Array(0),
        highKey: null,
        order: "asc",
        snapshotTs: ts,
        limit: 100_000,
      });
      assertEquals(rows.length, groups * 4);
    } finally {
      await persistence.close();
    }
    // The writer's close checkpointed the rest and removed the WAL.
    assertEquals(await Deno.stat(`${path}-wal`).then(() => true, () => false), false);
  });
});

Deno.test("sqlite checkpoints: inline mode keeps SQLite's own checkpoint (no worker)", async () => {
  await withDatabase(async (path) => {
    const persistence = await openSqlitePersistence(path, { checkpoints: "inline" });
    try {
      assertEquals(checkpointsOf(persistence), null);
      await persistence.commit(group(1n, 4));
      assertEquals(await persistence.maxTs(), 4n);
    } finally {
      await persistence.close();
    }
  });
});

Deno.test("sqlite checkpoints: a close during a quiet checkpoint waits for it (the worker stays referenced)", async () => {
  await withDatabase(async (path) => {
    // A writer of the test's own, so the test decides when frames are written.
    const writer = new DatabaseSync(path);
    writer.exec("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; PRAGMA synchronous = NORMAL;");
    writer.exec("CREATE TABLE blobs (body BLOB)");
    const insert = writer.prepare("INSERT INTO blobs (body) VALUES (?)");
    const writeMiB = (mebibytes: number) => {
      writer.exec("BEGIN");
      for (let i = 0; i < mebibytes * 16; i++) insert.run(crypto.getRandomValues(new Uint8Array(65_536)));
      writer.exec("COMMIT");
    };
    try {
      writeMiB(8); // ~2,000 frames: the first checkpoint finds the WAL past RESTART_AFTER_FRAMES
      const unavailable: string[] = [];
      const checkpointer = new SqliteCheckpointer(path, {
        gapMs: 0,
        onUnavailable: (reason) => unavailable.push(reason),
      });
      checkpointer.noteCommit();
      // Frames written while the first checkpoint runs are left to the quiet one, which then takes a while. Bounded:
      // a checkpointer that never answers must fail the test, not fill the disk.
      for (let writtenMiB = 0; checkpointer.completed === 0; writtenMiB++) {
        assert(writtenMiB < 256 && unavailable.length === 0, `no first checkpoint: ${unavailable.join("; ")}`);
        writeMiB(1);
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
      const paused = checkpointer.writesPaused;
      assert(paused !== null, "the quiet checkpoint follows the first at once");
      // Nothing else holds the event loop: if the worker were unref'd, this await would end the test unresolved.
      await checkpointer.close();
      await paused;
      assertEquals(checkpointer.completed, 2, "the close waited for the quiet checkpoint's answer");
      assertEquals(checkpointer.lastError, null);
    } finally {
      writer.close();
    }
  });
});

Deno.test("sqlite checkpoints: a worker that cannot open the database hands checkpoints back, and closes", async () => {
  await withDatabase(async (path) => {
    const reasons: string[] = [];
    // A directory where the database file should be: SQLite cannot open it.
    await Deno.mkdir(path);
    const checkpointer = new SqliteCheckpointer(path, { gapMs: 0, onUnavailable: (reason) => reasons.push(reason) });
    checkpointer.noteCommit();
    await waitFor(() => reasons.length > 0, "the worker to report it cannot open the database");
    assertEquals(reasons.length, 1);
    assertEquals(checkpointer.lastError, reasons[0]);
    assertEquals(checkpointer.writesPaused, null, "writes never wait for a checkpointer that cannot run");
    checkpointer.noteCommit(); // ignored: nothing is scheduled
    assertEquals(checkpointer.completed, 0);
    await checkpointer.close();
  });
});
