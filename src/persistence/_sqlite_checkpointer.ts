/**
 * WAL checkpoints of the SQLite writer off the event loop (issue 14). SQLite's automatic checkpoint runs inside the
 * COMMIT that takes the WAL past 1,000 pages, on the thread that commits: it copies the WAL's pages into the database
 * file and fsyncs it there. On the server's one event loop that held every request for 11–17 ms about once every 45
 * commit groups, as long in all as the commits themselves (`deno run -A scripts/bench/checkpoint_bench.ts`).
 *
 * With this class the writer's automatic checkpoint is off, and PASSIVE checkpoints run on a connection of its own in a
 * worker thread: after a commit, one at a time, at least `gapMs` apart. A PASSIVE checkpoint copies what no reader
 * still needs and never blocks the writer or the readers (sqlite.org/wal.html); SQLite syncs the WAL before copying
 * and the database file after, as its automatic checkpoint does, so durability is unchanged (commits are made durable
 * by `_sqlite_wal_sync.ts`, which this does not touch).
 *
 * The writer starts the WAL over only when a transaction begins with every frame copied, which a checkpoint racing a
 * busy writer never leaves behind: the WAL grew without bound (740 MiB in checkpoint_bench). So once the WAL holds
 * `RESTART_AFTER_FRAMES`, the next checkpoint is quiet: the writer's commits wait for it (`writesPaused`), not the
 * event loop, and it copies only what the checkpoints before it left (a few frames), after which the writer's next
 * transaction starts the WAL over. Commits held meanwhile go on together, in one bigger group.
 *
 * The worker is a `node:worker_threads` one, from source text: Deno checks read permission for a Web worker's module
 * file (the server may read only its data directory), and a Web worker cannot be unref'd, so an idle writer would keep
 * the process alive. If the worker cannot open the database, `onUnavailable` runs (the writer then turns its own
 * automatic checkpoint back on).
 *
 * Private to `src/persistence/`.
 */

import { Worker as NodeWorker } from "node:worker_threads";

/** The least time between the end of one checkpoint and the start of the next, while commits keep coming. */
export const DEFAULT_CHECKPOINT_GAP_MS = 100;
/**
 * WAL frames (pages) past which the next checkpoint is a quiet one (see `writesPaused`): SQLite's automatic
 * checkpoint threshold, so the WAL stays as small as it did.
 */
export const RESTART_AFTER_FRAMES = 1_000;
/** Longest the writes wait for a quiet checkpoint (a slow disk must not hold commits for long). */
const QUIET_MAX_MS = 1_000;

/** The figures of one PASSIVE checkpoint (`PRAGMA wal_checkpoint`'s row). */
export interface CheckpointFigures {
  /** Whether it could not run at all (another checkpoint held the lock). */
  busy: boolean;
  /** Frames in the WAL when it ran. */
  walFrames: number;
  /** Frames of the WAL copied into the database file so far. */
  checkpointedFrames: number;
}

type ToCheckpointWorker = { type: "open"; path: string } | { type: "checkpoint" } | { type: "close" };
type FromCheckpointWorker =
  | { type: "opened" }
  | { type: "done"; figures: CheckpointFigures }
  | { type: "failed"; message: string; opening: boolean }
  | { type: "closed" };

/**
 * The worker's code (stringified into an `eval` worker, so it may use nothing from this file's scope). Checkpoints
 * with `synchronous = NORMAL`, which syncs at checkpoints like the writer's own setting.
 */
function checkpointWorkerMain(require: (specifier: string) => unknown): void {
  const { parentPort } = require("node:worker_threads") as {
    parentPort: {
      on(event: "message", listener: (message: ToCheckpointWorker) => void): void;
      postMessage(message: FromCheckpointWorker): void;
    };
  };
  const { DatabaseSync } = require("node:sqlite") as typeof import("node:sqlite");
  let db: InstanceType<typeof DatabaseSync> | null = null;
  const failed = (error: unknown, opening: boolean): FromCheckpointWorker => ({
    type: "failed",
    message: String((error as Error)?.message ?? error),
    opening,
  });
  parentPort.on("message", (message) => {
    if (message.type === "open") {
      try {
        db = new DatabaseSync(message.path, { timeout: 5_000 });
        db.exec("PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864;");
        parentPort.postMessage({ type: "opened" });
      } catch (error) {
        parentPort.postMessage(failed(error, true));
      }
    } else if (message.type === "checkpoint") {
      try {
        const row = db!.prepare("PRAGMA wal_checkpoint(PASSIVE)").get() as {
          busy: number;
          log: number;
          checkpointed: number;
        };
        const figures = { busy: row.busy !== 0, walFrames: row.log, checkpointedFrames: row.checkpointed };
        parentPort.postMessage({ type: "done", figures });
      } catch (error) {
        parentPort.postMessage(failed(error, false));
      }
    } else {
      db?.close();
      db = null;
      parentPort.postMessage({ type: "closed" });
    }
  });
}

/** See the module comment. */
export class SqliteCheckpointer {
  readonly #worker: NodeWorker;
  readonly #gapMs: number;
  readonly #onUnavailable: (reason: string) => void;
  #open = false;
  #unavailable = false;
  #running = false;
  /** A commit happened since the running (or last) checkpoint started. */
  #dirty = false;
  #gapTimer: ReturnType<typeof setTimeout> | null = null;
  #lastEndMs = -Infinity;
  #completed = 0;
  #lastFigures: CheckpointFigures | null = null;
  #lastError: string | null = null;
  #closing: PromiseWithResolvers<void> | null = null;
  /** Set while a quiet checkpoint runs: writes wait for it. */
  #quiet: PromiseWithResolvers<void> | null = null;
  #quietTimer: ReturnType<typeof setTimeout> | null = null;
  /** The next checkpoint is a quiet one (the last one found the WAL past RESTART_AFTER_FRAMES). */
  #quietNext = false;
  #quietCompleted = 0;
  #quietStartedMs = 0;
  /** Time writes waited for quiet checkpoints, in all and the longest once. */
  #quietTotalMs = 0;
  #quietMaxMs = 0;
  /** Whether the worker holds the process open (see `#refreshRef`). */
  #referenced = false;

  constructor(databasePath: string, options: { gapMs?: number | undefined; onUnavailable: (reason: string) => void }) {
    this.#gapMs = options.gapMs ?? DEFAULT_CHECKPOINT_GAP_MS;
    this.#onUnavailable = options.onUnavailable;
    this.#worker = new NodeWorker(`(${checkpointWorkerMain.toString()})(require);`, { eval: true });
    this.#worker.unref();
    this.#worker.on("message", (message: FromCheckpointWorker) => this.#receive(message));
    this.#worker.on("error", (error: Error) => this.#fail(`the checkpoint worker failed: ${error.message}`));
    this.#post({ type: "open", path: databasePath });
  }

  /** Checkpoints completed so far (for tests and benchmarks). */
  get completed(): number {
    return this.#completed;
  }

  /** The figures of the last checkpoint, or null before the first. */
  get lastFigures(): CheckpointFigures | null {
    return this.#lastFigures;
  }

  /** The last checkpoint's error, or null (the next commit tries again; the WAL keeps every commit meanwhile). */
  get lastError(): string | null {
    return this.#lastError;
  }

  /** Quiet checkpoints completed so far, and the time writes waited for them (for tests and benchmarks). */
  get quiet(): { completed: number; totalMs: number; maxMs: number } {
    return { completed: this.#quietCompleted, totalMs: this.#quietTotalMs, maxMs: this.#quietMaxMs };
  }

  /** While a quiet checkpoint runs, a promise that writes must await before they write; else null. */
  get writesPaused(): Promise<void> | null {
    return this.#quiet?.promise ?? null;
  }

  /** The writer committed: a checkpoint follows, after the running one and the gap. */
  noteCommit(): void {
    this.#dirty = true;
    this.#schedule();
  }

  /** Waits for the running checkpoint, then closes the worker's connection and ends the worker. */
  async close(): Promise<void> {
    if (this.#closing !== null) return await this.#closing.promise;
    this.#closing = Promise.withResolvers<void>();
    this.#refreshRef();
    if (this.#gapTimer !== null) clearTimeout(this.#gapTimer);
    this.#gapTimer = null;
    this.#resumeWrites();
    if (this.#unavailable) this.#end();
    else if (!this.#running) this.#post({ type: "close" });
    // Else the running checkpoint's answer sends the close (#receive).
    await this.#closing.promise;
  }

  #schedule(): void {
    if (!this.#open || this.#running || this.#gapTimer !== null || this.#closing !== null || !this.#dirty) return;
    const waitMs = this.#quietNext ? 0 : this.#lastEndMs + this.#gapMs - performance.now();
    if (waitMs > 0) {
      this.#gapTimer = setTimeout(() => {
        this.#gapTimer = null;
        this.#schedule();
      }, waitMs);
      Deno.unrefTimer(this.#gapTimer as unknown as number);
      return;
    }
    this.#dirty = false;
    this.#running = true;
    if (this.#quietNext) this.#pauseWrites();
    this.#post({ type: "checkpoint" });
  }

  #pauseWrites(): void {
    this.#quietNext = false;
    this.#quiet = Promise.withResolvers<void>();
    this.#quietStartedMs = performance.now();
    this.#quietTimer = setTimeout(() => this.#resumeWrites(), QUIET_MAX_MS);
    this.#refreshRef();
  }

  #resumeWrites(): void {
    if (this.#quietTimer !== null) clearTimeout(this.#quietTimer);
    this.#quietTimer = null;
    if (this.#quiet === null) return;
    const waitedMs = performance.now() - this.#quietStartedMs;
    this.#quietTotalMs += waitedMs;
    this.#quietMaxMs = Math.max(this.#quietMaxMs, waitedMs);
    this.#quiet.resolve();
    this.#quiet = null;
    this.#refreshRef();
  }

  /**
   * Housekeeping must not keep the process alive, so the worker is unref'd except while someone awaits its answer:
   * writes paused for a quiet checkpoint, or a close. One place decides, from both: a quiet checkpoint that ended
   * during a close once unref'd the worker the close had ref'd, and the close's await then ended the process
   * ("the event loop has already resolved", tests/dashboard_test.ts in CI).
   */
  #refreshRef(): void {
    const wanted = this.#quiet !== null || this.#closing !== null;
    if (wanted === this.#referenced) return;
    this.#referenced = wanted;
    if (wanted) this.#worker.ref();
    else this.#worker.unref();
  }

  #receive(message: FromCheckpointWorker): void {
    switch (message.type) {
      case "opened":
        this.#open = true;
        if (this.#closing !== null) this.#post({ type: "close" });
        else this.#schedule();
        return;
      case "done":
      case "failed":
        if (message.type === "failed" && message.opening) return this.#fail(message.message);
        this.#running = false;
        this.#lastEndMs = performance.now();
        if (this.#quiet !== null) {
          if (message.type === "done") this.#quietCompleted++;
          this.#resumeWrites();
        } else if (message.type === "done" && message.figures.walFrames >= RESTART_AFTER_FRAMES) {
          this.#quietNext = true;
          this.#dirty = true; // the quiet one runs whether or not a commit came meanwhile
        }
        if (message.type === "done") {
          this.#completed++;
          this.#lastFigures = message.figures;
          this.#lastError = null;
        } else {
          this.#lastError = message.message;
        }
        if (this.#closing !== null) this.#post({ type: "close" });
        else this.#schedule();
        return;
      case "closed":
        this.#end();
        return;
    }
  }

  /** The worker cannot checkpoint: the writer checkpoints by itself again. */
  #fail(reason: string): void {
    if (this.#unavailable) return;
    this.#unavailable = true;
    this.#open = false;
    this.#running = false;
    this.#lastError = reason;
    this.#resumeWrites();
    this.#onUnavailable(reason);
    if (this.#closing !== null) this.#end();
  }

  #end(): void {
    void this.#worker.terminate().finally(() => this.#closing?.resolve());
  }

  #post(message: ToCheckpointWorker): void {
    this.#worker.postMessage(message);
  }
}
