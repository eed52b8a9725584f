/**
 * The committer's cores as units: the conflict history (optimistic concurrency), the commit queue (grouping, order,
 * turns, closing), the timestamp clock and the retention watermark, then the database's commit path on SQLite.
 */
import { setImmediate } from "node:timers";
import { assert, assertEquals, assertRejects, assertThrows } from "./helpers/assert.ts";
import { freshSqlite } from "./helpers/databases.ts";
import { mutate, sys, withSqliteDatabase } from "./helpers/engine.ts";
import { key, pointRange, readRange as range } from "./helpers/read_ranges.ts";
import { ConflictHistory } from "../src/database/conflicts.ts";
import { CommitQueue, type QueuedCommit } from "../src/database/commit_queue.ts";
import { TimestampClock } from "../src/database/clock.ts";
import { RetentionWatermark, SNAPSHOT_TOO_OLD } from "../src/database/retention.ts";
import { type Database, SyscallError, type TransactionOutcome } from "../src/database/mod.ts";
import { openPersistence } from "../src/persistence/mod.ts";

/** The conflict history's window (conflicts.ts): older commits are forgotten. */
const HISTORY_WINDOW_NS = 30_000_000_000n;
const INDEX_A = 7;
const INDEX_B = 8;

function commitKeys(ts: bigint, indexId: number, ...keys: Uint8Array[]) {
  return { ts, keysByIndex: new Map([[indexId, keys]]) };
}

// ---- conflict history ----------------------------------------------------------------------------------------

Deno.test("conflict history: a later write inside a read range conflicts; outside, or at or before the snapshot, not", () => {
  const history = new ConflictHistory(100n);
  history.record(commitKeys(110n, INDEX_A, key(5)));
  const readSet = [range(INDEX_A, key(3), key(6))];
  assertEquals(history.findConflict(105n, readSet), { indexId: INDEX_A }, "written after the snapshot, inside");
  assertEquals(history.findConflict(110n, readSet), null, "the write is in the snapshot itself");
  assertEquals(history.findConflict(105n, [range(INDEX_A, key(6), key(9))]), null, "high key is exclusive");
  assertEquals(history.findConflict(105n, [range(INDEX_A, key(5), key(5, 0))]), { indexId: INDEX_A }, "low inclusive");
  assertEquals(history.findConflict(105n, [range(INDEX_B, key(0), null)]), null, "another index");
  assertEquals(history.findConflict(105n, [range(INDEX_A, key(1), null)]), { indexId: INDEX_A }, "unbounded high");
  assertEquals(history.findConflict(105n, []), null, "an empty read set never conflicts");
});

Deno.test("conflict history: a point read conflicts only with a write of that exact key", () => {
  const history = new ConflictHistory(0n);
  history.record(commitKeys(10n, INDEX_A, key(4, 2)));
  assertEquals(history.findConflict(5n, [pointRange(INDEX_A, key(4, 2))]), { indexId: INDEX_A });
  assertEquals(history.findConflict(5n, [pointRange(INDEX_A, key(4, 1))]), null);
  assertEquals(history.findConflict(5n, [pointRange(INDEX_A, key(4, 2, 0))]), null);
});

Deno.test("conflict history: snapshots older than the remembered window are too old to check", () => {
  const history = new ConflictHistory(1_000n);
  assertEquals(history.findConflict(999n, []), { tooOld: true }, "below the floor it started with");
  assertEquals(history.findConflict(1_000n, []), null, "at the floor");
  const firstTs = 2_000n;
  history.record(commitKeys(firstTs, INDEX_A, key(1)));
  // A commit past the window pushes the first one out: snapshots before it can no longer be checked.
  history.record(commitKeys(firstTs + HISTORY_WINDOW_NS + 1n, INDEX_B, key(1)));
  assertEquals(history.findConflict(firstTs - 1n, []), { tooOld: true });
  assertEquals(history.findConflict(firstTs, [range(INDEX_A, key(0), null)]), null, "the pruned commit is gone");
  assertEquals(history.findConflict(firstTs, [range(INDEX_B, key(0), null)]), { indexId: INDEX_B });
});

Deno.test("conflict history: a commit that failed to persist is forgotten (only the newest)", () => {
  const history = new ConflictHistory(0n);
  history.record(commitKeys(10n, INDEX_A, key(1)));
  history.record(commitKeys(11n, INDEX_A, key(2)));
  history.forget(10n); // not the newest: ignored
  history.forget(11n);
  const readAll = [range(INDEX_A, key(0), null)];
  assertEquals(history.findConflict(10n, readAll), null, "the forgotten commit no longer conflicts");
  assertEquals(history.findConflict(9n, readAll), { indexId: INDEX_A }, "the older commit is still there");
});

// ---- commit queue ----------------------------------------------------------------------------------------------

function outcome(label: string): TransactionOutcome {
  return {
    snapshotTs: "0",
    readSet: [],
    writes: [{ id: label, tableNumber: 10_001, previousJson: null, previousTs: null, json: "{}" }],
    metrics: { bytesRead: 0, bytesWritten: 0, documentsRead: 0, documentsWritten: 1 },
  };
}

/** A commit queue whose group commit resolves every commit with the next ts, recording the groups it saw. */
function recordingQueue(gate: Promise<void> = Promise.resolve()) {
  const groups: string[][] = [];
  let lastTs = 0n;
  const queue = new CommitQueue({
    latestTs: () => lastTs,
    commitGroup: async (group: QueuedCommit[]) => {
      groups.push(group.map((item) => item.outcome.writes[0].id));
      await gate;
      for (const item of group) item.resolve(++lastTs);
    },
  });
  return { queue, groups };
}

Deno.test("commit queue: commits queued behind a running group go together in the next group, in order", async () => {
  const gate = Promise.withResolvers<void>();
  const { queue, groups } = recordingQueue(gate.promise);
  const first = queue.commit(outcome("a"));
  // The first group is being written (gathered for its turns, then held at the gate) when the others arrive.
  await nextTurns(4);
  const rest = ["b", "c", "d"].map((label) => queue.commit(outcome(label)));
  gate.resolve();
  assertEquals([await first, ...await Promise.all(rest)], [1n, 2n, 3n, 4n], "commit ts strictly increase");
  assertEquals(groups, [["a"], ["b", "c", "d"]]);
  await queue.close();
});

Deno.test("commit queue: a small group waits two turns of the event loop for commits that are about to arrive", async () => {
  const { queue, groups } = recordingQueue();
  const committed = [queue.commit(outcome("a"))];
  // One turn later (a runner's answer read in the next poll of the loop): it joins the group.
  await nextTurns(1);
  committed.push(queue.commit(outcome("b")));
  await Promise.all(committed);
  // Bounded: a commit that comes many turns after the last one is a group of its own.
  committed.push(queue.commit(outcome("c")));
  await nextTurns(6);
  committed.push(queue.commit(outcome("d")));
  assertEquals(await Promise.all(committed), [1n, 2n, 3n, 4n]);
  assertEquals(groups, [["a", "b"], ["c"], ["d"]]);
  await queue.close();
});

/** Resolves after `count` turns of the event loop (setImmediate, as the committer's own turns). */
async function nextTurns(count: number): Promise<void> {
  for (let i = 0; i < count; i++) await new Promise((resolve) => setImmediate(resolve));
}

Deno.test("commit queue: a commit without writes is not queued; it resolves with the latest ts", async () => {
  const { queue, groups } = recordingQueue();
  await queue.commit(outcome("a"));
  assertEquals(await queue.commit({ ...outcome("none"), writes: [] }), 1n);
  assertEquals(groups, [["a"]]);
  await queue.close();
});

Deno.test("commit queue: a turn holds other commits until it ends; its own commits and tasks still run", async () => {
  const { queue, groups } = recordingQueue();
  const release = Promise.withResolvers<void>();
  const turnStarted = Promise.withResolvers<void>();
  let outside: Promise<bigint> | undefined;
  const turn = queue.withCommitTurn(async (commit) => {
    turnStarted.resolve();
    outside = queue.commit(outcome("outside"));
    await queue.exclusive(async () => {});
    const inside = await commit(outcome("inside"));
    await release.promise;
    return inside;
  });
  await turnStarted.promise;
  assert(queue.hasPendingTurns);
  await new Promise((resolve) => setTimeout(resolve, 10));
  assertEquals(groups, [["inside"]], "the outside commit waits for the turn");
  release.resolve();
  assertEquals(await turn, 1n);
  assertEquals(await outside, 2n);
  await queue.turnsSettled();
  assert(!queue.hasPendingTurns);
  await queue.close();
});

Deno.test("commit queue: once closed, new commits, tasks and turns are refused with DatabaseClosed", async () => {
  const { queue } = recordingQueue();
  await queue.close();
  const closed = (error: SyscallError) => assertEquals(error.code, "DatabaseClosed");
  closed(await assertRejects(() => queue.commit(outcome("late")), SyscallError));
  closed(await assertRejects(() => queue.exclusive(async () => {}), SyscallError));
  closed(await assertRejects(() => queue.withCommitTurn(async () => {}), SyscallError));
});

// ---- timestamps and the retention watermark -------------------------------------------------------------------

Deno.test("timestamp clock: strictly increasing, and above the floor even when the wall clock is behind it", () => {
  const farFutureTs = 1n << 62n;
  const clock = new TimestampClock(farFutureTs);
  const stamps = Array.from({ length: 1_000 }, () => clock.next());
  assertEquals(stamps[0], farFutureTs + 1n);
  for (let i = 1; i < stamps.length; i++) assert(stamps[i] > stamps[i - 1], `ts ${i} did not increase`);
  assertEquals(clock.lastTs, stamps[stamps.length - 1]);
});

async function withPersistence(body: (persistence: Awaited<ReturnType<typeof openPersistence>>) => Promise<void>) {
  const location = await freshSqlite();
  const persistence = await openPersistence(location);
  try {
    await body(persistence);
  } finally {
    await persistence.close();
    await location.cleanup();
  }
}

Deno.test("retention watermark: refuses snapshots below it, only rises, and survives a reload", async () => {
  await withPersistence(async (persistence) => {
    const retentionMs = 60_000;
    const fresh = await RetentionWatermark.load(persistence, 10n, retentionMs);
    assertEquals(fresh.ts, 0n, "never below zero");
    const unrecordedMaxTs = 100_000_000_000n;
    const fallback = await RetentionWatermark.load(persistence, unrecordedMaxTs, retentionMs);
    assertEquals(fallback.ts, unrecordedMaxTs - BigInt(retentionMs) * 1_000_000n, "an unrecorded database");

    const watermark = await RetentionWatermark.load(persistence, 0n, retentionMs);
    await watermark.raise(500n);
    await watermark.raise(400n);
    assertEquals(watermark.ts, 500n, "a lower ts does not lower it");
    watermark.assertReadable(500n);
    const error = assertThrows(() => watermark.assertReadable(499n), SyscallError);
    assertEquals(error.code, SNAPSHOT_TOO_OLD);
    assertEquals((await RetentionWatermark.load(persistence, unrecordedMaxTs, retentionMs)).ts, 500n, "durable");
  });
});

// ---- the database's commit path ---------------------------------------------------------------------------------

const occFailure = (error: SyscallError) => assertEquals(error.code, "OptimisticConcurrencyControlFailure");

async function insertTwo(db: Database): Promise<[string, string]> {
  const { result } = await mutate(db, async (tx) => {
    const insert = async (name: string) =>
      (await sys<{ _id: string }>(tx, "1.0/insert", { table: "t", value: { name } }))._id;
    return [await insert("a"), await insert("b")] as [string, string];
  });
  return result;
}

/** Begins a mutation that reads document `id` and patches it. */
async function readAndPatch(db: Database, id: string, value: Record<string, unknown>) {
  const tx = db.begin("mutation");
  await sys(tx, "1.0/get", { id, isSystem: false });
  await sys(tx, "1.0/shallowMerge", { id, value });
  return tx.outcome();
}

Deno.test("database commit: overlapping transactions, the second conflicts; disjoint ones both commit", async () => {
  await withSqliteDatabase(async (db) => {
    const [a, b] = await insertTwo(db);

    const first = await readAndPatch(db, a, { n: 1 });
    const second = await readAndPatch(db, a, { n: 2 });
    const firstTs = await db.commit(first);
    occFailure(await assertRejects(() => db.commit(second), SyscallError));
    assertEquals(db.latestTs, firstTs, "the failed commit wrote nothing");

    const onA = await readAndPatch(db, a, { n: 3 });
    const onB = await readAndPatch(db, b, { n: 3 });
    const [tsA, tsB] = await Promise.all([db.commit(onA), db.commit(onB)]);
    assert(firstTs < tsA && tsA < tsB, `commit ts strictly increase: ${firstTs} ${tsA} ${tsB}`);
  });
});

Deno.test("database commit: a snapshot below the retention watermark cannot be read", async () => {
  await withSqliteDatabase(async (db) => {
    await insertTwo(db);
    const oldTs = db.latestTs;
    await insertTwo(db);
    await db.pruneNow(db.latestTs);
    assertEquals(db.retainedSinceTs, db.latestTs);
    const error = assertThrows(() => db.begin("query", null, oldTs), SyscallError);
    assertEquals(error.code, SNAPSHOT_TOO_OLD);
    db.begin("query", null, db.latestTs);
  });
});

Deno.test("database commit: many concurrent commits get distinct, strictly increasing ts in queue order", async () => {
  await withSqliteDatabase(async (db) => {
    await insertTwo(db);
    const outcomes = await Promise.all(Array.from({ length: 20 }, async (_, i) => {
      const tx = db.begin("mutation");
      await sys(tx, "1.0/insert", { table: "t", value: { i } });
      return tx.outcome();
    }));
    const stamps = await Promise.all(outcomes.map((each) => db.commit(each)));
    for (let i = 1; i < stamps.length; i++) assert(stamps[i] > stamps[i - 1], `ts ${i} did not increase`);
    assertEquals(db.latestTs, stamps[stamps.length - 1]);
  });
});
