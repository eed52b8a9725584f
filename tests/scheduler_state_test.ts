/**
 * The scheduler's state machine as units: a job's moves (pending → inProgress → success/failed, canceled from pending
 * or inProgress, nothing out of a finished state) made by `transitionJob` against a real database, and the retry
 * decisions for failures outside user code (retry.ts).
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { withSqliteDatabase } from "./helpers/engine.ts";
import { type Database, SCHEDULED_FUNCTIONS_TABLE } from "../src/database/mod.ts";
import { readJob, transitionJob } from "../src/scheduler/mod.ts";
import {
  FIRST_RETRY_DELAY_MS,
  InfrastructureRetries,
  MAX_INFRASTRUCTURE_ATTEMPTS,
  MAX_RETRY_DELAY_MS,
  retryDelayMs,
} from "../src/scheduler/retry.ts";

// ---- retry decisions ---------------------------------------------------------------------------------------------

/** The jitter of `retryDelayMs`: ±25 % around the base delay. */
function assertAround(delayMs: number, baseMs: number, what: string): void {
  assert(delayMs >= Math.floor(baseMs * 0.75) && delayMs <= Math.ceil(baseMs * 1.25), `${what}: ${delayMs} ms`);
}

Deno.test("scheduler retry: the backoff doubles from the first delay and stops at the cap, with jitter", () => {
  for (let attempt = 1; attempt <= 40; attempt++) {
    const baseMs = Math.min(MAX_RETRY_DELAY_MS, FIRST_RETRY_DELAY_MS * 2 ** (attempt - 1));
    for (let sample = 0; sample < 20; sample++) assertAround(retryDelayMs(attempt), baseMs, `attempt ${attempt}`);
  }
  assertAround(retryDelayMs(1_000), MAX_RETRY_DELAY_MS, "a huge attempt number stays at the cap");
});

Deno.test("scheduler retry: a job is retried after a backoff, then given up after the last attempt", () => {
  const retries = new InfrastructureRetries();
  const nowMs = 1_000_000;
  assertEquals(retries.notBeforeMs("job"), 0, "a job never failed may run now");
  for (let attempt = 1; attempt < MAX_INFRASTRUCTURE_ATTEMPTS; attempt++) {
    const decision = retries.note("job", nowMs);
    assert(decision.retry, `attempt ${attempt} is retried`);
    assertEquals(decision.attempt, attempt);
    assertEquals(retries.notBeforeMs("job"), nowMs + decision.delayMs);
  }
  assertEquals(retries.size, 1);
  assertEquals(retries.note("job", nowMs), { retry: false, attempts: MAX_INFRASTRUCTURE_ATTEMPTS });
  assertEquals(retries.size, 0, "a job given up is forgotten");
  assertEquals(retries.notBeforeMs("job"), 0);
});

Deno.test("scheduler retry: without giving up, retries go on at the longest delay", () => {
  const retries = new InfrastructureRetries();
  for (let attempt = 1; attempt <= MAX_INFRASTRUCTURE_ATTEMPTS * 2; attempt++) {
    const decision = retries.note("job", 0, false);
    assert(decision.retry, `attempt ${attempt} is retried`);
    if (attempt > 20) assertAround(decision.delayMs, MAX_RETRY_DELAY_MS, `attempt ${attempt}`);
  }
});

Deno.test("scheduler retry: clear forgets a job; forgetStale drops only long-past retries", () => {
  const retries = new InfrastructureRetries();
  retries.note("finished", 0);
  retries.clear("finished");
  assertEquals(retries.notBeforeMs("finished"), 0);
  retries.note("old", 0);
  retries.note("recent", 50_000);
  retries.forgetStale(60_000, 30_000);
  assertEquals(retries.notBeforeMs("old"), 0, "its retry time is more than 30 s past");
  assert(retries.notBeforeMs("recent") > 50_000, "still backing off");
  assertEquals(retries.size, 1);
});

// ---- job state transitions ---------------------------------------------------------------------------------------

/** A pending job for `name`, due now, written as `ctx.scheduler.runAfter(0, …)` writes it; returns its ID. */
async function schedule(db: Database, name = "jobs:work"): Promise<string> {
  const { value } = await db.runSystemTransaction((tx) =>
    tx.insert(SCHEDULED_FUNCTIONS_TABLE, { name, args: [{}], scheduledTime: Date.now(), state: { kind: "pending" } })
  );
  return value;
}

/** Cancels job `id` as `ctx.scheduler.cancel` does: only a pending or running job becomes canceled. */
async function cancel(db: Database, id: string): Promise<void> {
  for (const from of ["pending", "inProgress"] as const) {
    if (await transitionJob(db, id, from, { kind: "canceled" })) return;
  }
}

async function stateOf(db: Database, id: string) {
  return (await readJob(db.readSnapshot(), id))?.state;
}

Deno.test("scheduler state: pending → inProgress → success, each move only from the state it expects", async () => {
  await withSqliteDatabase(async (db) => {
    const id = await schedule(db);
    assertEquals(await stateOf(db, id), { kind: "pending" });
    assertEquals(await transitionJob(db, id, "inProgress", { kind: "success" }), false, "not in progress yet");
    assertEquals(await stateOf(db, id), { kind: "pending" });
    assertEquals(await transitionJob(db, id, "pending", { kind: "inProgress" }), true);
    assertEquals(await transitionJob(db, id, "pending", { kind: "inProgress" }), false, "claimed only once");
    assertEquals(await stateOf(db, id), { kind: "inProgress" });
    assertEquals(await transitionJob(db, id, "inProgress", { kind: "success" }), true);
    assertEquals(await stateOf(db, id), { kind: "success" });
    for (const from of ["pending", "inProgress"] as const) {
      assertEquals(await transitionJob(db, id, from, { kind: "failed", error: "late" }), false, `from ${from}`);
    }
    assertEquals(await stateOf(db, id), { kind: "success" }, "a finished job stays finished");
  });
});

Deno.test("scheduler state: a failure keeps its error; an interrupted action may go back to pending", async () => {
  await withSqliteDatabase(async (db) => {
    const failing = await schedule(db);
    assert(await transitionJob(db, failing, "pending", { kind: "failed", error: "user code threw" }));
    assertEquals(await stateOf(db, failing), { kind: "failed", error: "user code threw" });

    const action = await schedule(db);
    assert(await transitionJob(db, action, "pending", { kind: "inProgress" }));
    assert(await transitionJob(db, action, "inProgress", { kind: "pending" }), "never reached a runner: handed back");
    assertEquals(await stateOf(db, action), { kind: "pending" });
  });
});

Deno.test("scheduler state: a cancel wins over a later move, from pending and from inProgress", async () => {
  await withSqliteDatabase(async (db) => {
    const pending = await schedule(db);
    await cancel(db, pending);
    assertEquals(await stateOf(db, pending), { kind: "canceled" });
    assertEquals(await transitionJob(db, pending, "pending", { kind: "inProgress" }), false);

    const running = await schedule(db);
    assert(await transitionJob(db, running, "pending", { kind: "inProgress" }));
    await cancel(db, running);
    assertEquals(await transitionJob(db, running, "inProgress", { kind: "success" }), false, "canceled while running");
    assertEquals(await stateOf(db, running), { kind: "canceled" });

    const finished = await schedule(db);
    assert(await transitionJob(db, finished, "pending", { kind: "success" }));
    await cancel(db, finished);
    assertEquals(await stateOf(db, finished), { kind: "success" }, "canceling a finished job changes nothing");
  });
});

Deno.test("scheduler state: moving a job that does not exist changes nothing", async () => {
  await withSqliteDatabase(async (db) => {
    const id = await schedule(db);
    await db.runSystemTransaction(async (tx) => {
      await tx.delete(id);
    });
    assertEquals(await transitionJob(db, id, "pending", { kind: "inProgress" }), false);
    assertEquals(await readJob(db.readSnapshot(), id), null);
  });
});
