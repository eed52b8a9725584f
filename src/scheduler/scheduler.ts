/**
 * The scheduler loop: runs due `_scheduled_functions` jobs through the executor with bounded concurrency. It wakes
 * at the next due time and whenever a commit touches the `by_next` index (a new, canceled or finished job).
 *
 * Guarantees, which rest on the database rather than on this loop's memory:
 * - a scheduled mutation runs exactly once: its change to `success` rides in the mutation's own commit, together with
 *   a read of the job document, so a cancel or a second run conflicts; after a crash the job is still `pending` and
 *   runs again from scratch (nothing of the first attempt was committed);
 * - a scheduled action runs at most once: it is claimed (`inProgress`) in a commit before it runs; jobs found
 *   `inProgress` at startup were interrupted by a crash and become `failed`;
 * - only user code fails a job: a failure outside it (a runner crash, the committer full, the database unavailable)
 *   leaves the job pending and retries it with backoff, boundedly (retry.ts). An action is retried only if it never
 *   reached a runner; once it started, at-most-once wins and an interrupted action fails.
 *
 * Every component instance has its own `_scheduled_functions`; the loop runs the jobs of all of them, each in the
 * component its function belongs to (a handle scheduled by a component into the app runs in the app).
 */
import {
  type CommitEvent,
  componentPathsWithTable,
  type Database,
  SCHEDULED_FUNCTIONS_TABLE,
} from "../database/mod.ts";
import type { FunctionExecutor } from "../functions/mod.ts";
import { NO_REQUEST_METADATA, type RequestMetadata } from "../runtime/mod.ts";
import { BY_NEXT_INDEX, type Job, type JobState, readJob, scanJobs, setJobState, transitionJob } from "./jobs.ts";
import { InfrastructureRetries } from "./retry.ts";
import { schedulerDueJobs } from "../metrics/mod.ts";
import { DATABASE_UNAVAILABLE_MESSAGE, DatabaseUnavailableError } from "../persistence/mod.ts";

/** Jobs running at once. */
export const MAX_CONCURRENT_JOBS = 16;
/** Pending jobs read per pass (running mutations stay pending, so read past them). */
const SCAN_LIMIT = MAX_CONCURRENT_JOBS * 4;
/** The longest sleep between passes, so a lost wake-up costs at most this long. */
const MAX_SLEEP_MS = 30_000;
/** How long finished jobs are kept (Convex keeps them 7 days). */
export const FINISHED_JOB_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;
/** How often old finished jobs are deleted, and how many per state and commit. */
const CLEANUP_INTERVAL_MS = 10 * 60 * 1000;
const CLEANUP_BATCH = 1_000;
/** Jobs recovered (interrupted actions marked failed) per startup batch. */
const RECOVERY_BATCH = 256;

const INTERRUPTED_ACTION_ERROR = "The action was interrupted (the server stopped while it ran); actions run at most " +
  "once, so it was not retried";

/** See the module comment. */
export class Scheduler {
  readonly #database: Database;
  readonly #executor: FunctionExecutor;
  readonly #running = new Set<string>();
  readonly #retries = new InfrastructureRetries();
  #timer: ReturnType<typeof setTimeout> | null = null;
  #cleanupTimer: ReturnType<typeof setInterval> | null = null;
  #unsubscribe: (() => void) | null = null;
  #passing = false;
  #passRequested = false;
  #stopped = false;

  constructor(database: Database, executor: FunctionExecutor) {
    this.#database = database;
    this.#executor = executor;
  }

  /** Marks interrupted actions failed, then starts the loop. */
  async start(): Promise<void> {
    await this.#recoverInterruptedActions();
    this.#unsubscribe = this.#database.onCommit((event) => this.#onCommit(event));
    this.#cleanupTimer = setInterval(() => {
      this.#cleanup().catch((error) => console.error("denvex: cleaning up scheduled functions:", error));
    }, CLEANUP_INTERVAL_MS);
    Deno.unrefTimer(this.#cleanupTimer);
    this.wake();
  }

  /** Stops starting jobs. Running ones finish on their own (or fail with the database closing, staying pending). */
  stop(): void {
    this.#stopped = true;
    this.#unsubscribe?.();
    if (this.#timer !== null) clearTimeout(this.#timer);
    if (this.#cleanupTimer !== null) clearInterval(this.#cleanupTimer);
  }

  /** Jobs running right now (tests, metrics). */
  get runningCount(): number {
    return this.#running.size;
  }

  /** Jobs waiting to be retried after an infrastructure failure (tests, metrics). */
  get retryingCount(): number {
    return this.#retries.size;
  }

  /** Requests a pass over due jobs; passes never overlap, a request during one runs another after it. */
  wake(): void {
    if (this.#stopped) return;
    if (this.#passing) {
      this.#passRequested = true;
      return;
    }
    this.#passing = true;
    this.#pass()
      .catch((error) => {
        // An outage is logged by persistence already; its stack adds nothing.
        const unavailable = error instanceof DatabaseUnavailableError;
        console.error("denvex: scheduler pass failed:", unavailable ? error.message : error);
        this.#sleep(1_000);
      })
      .finally(() => {
        this.#passing = false;
        if (this.#passRequested) {
          this.#passRequested = false;
          this.wake();
        }
      });
  }

  /**
   * The namespaces (component paths, `""` the app) whose jobs run: one per mounted instance. An unmounted instance
   * keeps its tables, so its jobs wait there until it is mounted again.
   */
  #namespaces(): string[] {
    return componentPathsWithTable(this.#database.catalog, SCHEDULED_FUNCTIONS_TABLE)
      .filter((namespace) => this.#executor.hasComponent(namespace));
  }

  /** Wakes the loop for a commit that touched the `by_next` index of any namespace (index IDs are global). */
  #onCommit(event: CommitEvent): void {
    const catalog = this.#database.catalogView;
    for (const [indexId, keys] of event.keysByIndex) {
      if (keys.length > 0 && catalog.indexById(indexId)?.index.name === BY_NEXT_INDEX) return this.wake();
    }
  }

  /** Jobs in state `kind` of every namespace, oldest `scheduledTime` first (at most `limit` per namespace). */
  async #scanAll(kind: "pending" | "inProgress", limit: number): Promise<Job[]> {
    const jobs: Job[] = [];
    for (const namespace of this.#namespaces()) {
      const reader = this.#database.readSnapshot(undefined, { componentPath: namespace });
      jobs.push(...await scanJobs(reader, kind, limit, null, namespace));
    }
    return jobs.sort((a, b) => a.scheduledTimeMs - b.scheduledTimeMs);
  }

  #sleep(delayMs: number): void {
    if (this.#stopped) return;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.wake();
    }, Math.max(0, Math.min(delayMs, MAX_SLEEP_MS)));
    Deno.unrefTimer(this.#timer);
  }

  async #pass(): Promise<void> {
    // Jobs of every namespace in one order; those beyond a namespace's scan limit come in a later pass.
    const jobs = await this.#scanAll("pending", SCAN_LIMIT);
    const nowMs = Date.now();
    schedulerDueJobs.set(jobs.filter((job) => job.scheduledTimeMs <= nowMs).length);
    let nextDueMs = nowMs + MAX_SLEEP_MS;
    for (const job of jobs) {
      if (this.#stopped) return;
      if (this.#running.has(job.id)) continue;
      if (job.scheduledTimeMs > nowMs) {
        nextDueMs = Math.min(nextDueMs, job.scheduledTimeMs);
        break;
      }
      const retryAtMs = this.#retries.notBeforeMs(job.id);
      if (retryAtMs > nowMs) {
        nextDueMs = Math.min(nextDueMs, retryAtMs);
        continue;
      }
      // Full: a finishing job wakes the loop again.
      if (this.#running.size >= MAX_CONCURRENT_JOBS) return;
      this.#running.add(job.id);
      this.#run(job)
        .catch((error) => {
          // Not even the job's state could be read or written (database unavailable): it stays as it was, and is
          // tried again after a backoff rather than at once.
          const decision = this.#retries.note(job.id, Date.now(), false);
          console.error(
            `denvex: scheduled function ${job.name} (${job.id}), retrying in ${
              decision.retry ? decision.delayMs : 0
            } ms:`,
            error instanceof Error ? error.message : String(error),
          );
        })
        .finally(() => {
          this.#running.delete(job.id);
          this.wake();
        });
    }
    this.#sleep(nextDueMs - nowMs);
  }

  async #run(job: Job): Promise<void> {
    const resolved = this.#executor.resolve(job.name, true, job.componentPath);
    if (typeof resolved === "string") {
      await transitionJob(this.#database, job.id, "pending", { kind: "failed", error: resolved }, job.namespace);
      return;
    }
    const udfType = resolved.info.udfType;
    if (udfType === "mutation") await this.#runMutation(job);
    else if (udfType === "action") await this.#runAction(job);
    else {
      const error = `${resolved.address.displayName} is a query; only mutations and actions can be scheduled`;
      await transitionJob(this.#database, job.id, "pending", { kind: "failed", error }, job.namespace);
    }
  }

  async #runMutation(job: Job): Promise<void> {
    let declined = false;
    const result = await this.#executor.call({
      path: job.name,
      componentPath: job.componentPath,
      args: job.args,
      allowInternal: true,
      identityJson: null,
      requestMetadata: scheduledMetadata(job),
      withCommitNamespace: job.namespace,
      withCommit: async (_valueJson, tx, ownWrites) => {
        // `tx` reads at the mutation's own snapshot: its read of the job then catches any change after it, and a job
        // already canceled (or run) before it is seen here.
        const current = await readJob(tx, job.id, job.namespace);
        declined = !current || current.state.kind !== "pending";
        if (declined) return false;
        // The mutation changed its own job (it canceled itself): its write is the job's end state, as on Convex; a
        // second write of the same document in one commit would not be one revision.
        if (ownWrites.some((write) => write.id === job.id)) return true;
        await setJobState(tx, job.id, { kind: "success" });
        return true;
      },
    });
    if (result.ok || declined || this.#stopped) {
      this.#retries.clear(job.id);
      return;
    }
    // A read in the runner that found the database unavailable reaches the mutation's code as an error, which it
    // usually lets through; nothing was committed, so retrying it is safe (and bounded).
    const infrastructure = result.infrastructure || result.errorMessage.includes(DATABASE_UNAVAILABLE_MESSAGE);
    if (infrastructure && this.#retryLater(job, result.errorMessage)) return;
    this.#retries.clear(job.id);
    await transitionJob(
      this.#database,
      job.id,
      "pending",
      { kind: "failed", error: result.errorMessage },
      job.namespace,
    );
  }

  /**
   * Schedules another attempt of `job` after an infrastructure failure; false when its attempts are used up (the
   * caller then fails it).
   */
  #retryLater(job: Job, errorMessage: string): boolean {
    const decision = this.#retries.note(job.id, Date.now());
    if (!decision.retry) {
      console.error(`denvex: scheduled function ${job.name} (${job.id}) failed ${decision.attempts} times: giving up`);
      return false;
    }
    console.error(
      `denvex: scheduled function ${job.name} (${job.id}) hit an error outside its code (attempt ${decision.attempt}), ` +
        `retrying in ${decision.delayMs} ms: ${errorMessage}`,
    );
    return true;
  }

  async #runAction(job: Job): Promise<void> {
    if (!await transitionJob(this.#database, job.id, "pending", { kind: "inProgress" }, job.namespace)) return;
    let result;
    try {
      result = await this.#executor.call({
        path: job.name,
        componentPath: job.componentPath,
        args: job.args,
        allowInternal: true,
        identityJson: null,
        requestMetadata: scheduledMetadata(job),
      });
    } catch (error) {
      // The call never reached a runner (the pool's queue was full, or it is closing): the action did not run, so
      // handing it back to `pending` keeps it at most once.
      const message = error instanceof Error ? error.message : String(error);
      if (this.#retryLater(job, message)) {
        await transitionJob(this.#database, job.id, "inProgress", { kind: "pending" }, job.namespace);
        return;
      }
      result = { ok: false as const, errorMessage: message };
    }
    this.#retries.clear(job.id);
    if (!result.ok && "infrastructure" in result && result.infrastructure === true) {
      // Not the action's own error (its runner died, …): the job fails, and the operator must see why.
      console.error(`denvex: scheduled action ${job.name} (${job.id}) failed outside its code: ${result.errorMessage}`);
    }
    const state: JobState = result.ok ? { kind: "success" } : { kind: "failed", error: result.errorMessage };
    // A cancel while it ran wins: the job stays canceled.
    await transitionJob(this.#database, job.id, "inProgress", state, job.namespace);
  }

  async #recoverInterruptedActions(): Promise<void> {
    for (;;) {
      const jobs = await this.#scanAll("inProgress", RECOVERY_BATCH);
      const failed = { kind: "failed" as const, error: INTERRUPTED_ACTION_ERROR };
      for (const job of jobs) await transitionJob(this.#database, job.id, "inProgress", failed, job.namespace);
      if (jobs.length === 0) return;
    }
  }

  /** Deletes finished jobs scheduled before the retention window, a bounded batch per state. */
  async #cleanup(): Promise<void> {
    this.#retries.forgetStale(Date.now(), CLEANUP_INTERVAL_MS);
    const cutoffMs = Date.now() - FINISHED_JOB_RETENTION_MS;
    for (const namespace of this.#namespaces()) {
      for (const kind of ["success", "failed", "canceled"] as const) {
        if (this.#stopped) return;
        await this.#database.runSystemTransaction(async (tx) => {
          for (const job of await scanJobs(tx, kind, CLEANUP_BATCH, cutoffMs)) await tx.delete(job.id);
        }, { maxAttempts: 1, componentPath: namespace }).catch(() => {/* a conflict: the next round deletes them */});
      }
    }
  }
}

/** `ctx.meta.getRequestMetadata()` of a job's run (and, through it, of the calls the job makes). */
function scheduledMetadata(job: Job): RequestMetadata {
  return { ...NO_REQUEST_METADATA, scheduledFunctionId: job.id };
}
