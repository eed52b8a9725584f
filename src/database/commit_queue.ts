/**
 * The committer's queue: commits, exclusive tasks (catalog changes, backfills) and exclusive commit turns, taken in
 * order by one drain loop. Consecutive commits are handed over in groups (one persistence transaction, one fsync).
 *
 * A commit turn is for a transaction that keeps losing optimistic conflicts: once the queue reaches the turn, no other
 * commit is taken until the turn ends, so a transaction that takes its snapshot inside the turn and commits through
 * it cannot conflict with another transaction. Tasks still run during a turn (the turn's own code may create a
 * table); other commits wait and are taken after the turn, in order.
 */
import { setImmediate } from "node:timers";
import { SyscallError, type TransactionOutcome } from "./types.ts";

/** The most transactions written in one group commit. */
const MAX_GROUP_SIZE = 512;
/** The most items waiting for the committer; beyond it new ones fail fast with a retryable error. */
const MAX_COMMIT_QUEUE = 10_000;
/**
 * A group smaller than this waits up to `GATHER_TURNS` turns of the event loop before it is written, so runner answers
 * that are already readable, or read during those turns, join it: fewer, larger groups, each one SQLite transaction
 * and one fsync, where the per-group cost (pages written, the commit itself) dominates a small insert's (issue 14:
 * call_path_bench, 32 HTTP clients inserting, groups of 1.3 → 1.5 transactions, 1,032 → 1,140 inserts/s and 1,348 →
 * 1,264 µs CPU per call, medians of 3 alternating rounds). A turn with nothing ready costs microseconds: a lone
 * client's insert took as long as before (p50 1.46–1.61 ms both).
 */
const GATHER_BELOW = 4;
const GATHER_TURNS = 2;

/** An exclusive commit turn, queued like a commit and started when the drain loop reaches it. */
interface Turn {
  kind: "turn";
  start: () => void;
  reject: (error: unknown) => void;
}

/** A queued commit, as the group-commit callback receives it. */
export interface QueuedCommit {
  kind: "commit";
  outcome: TransactionOutcome;
  resolve: (ts: bigint) => void;
  reject: (error: unknown) => void;
  /** The turn this commit belongs to, or null for an ordinary optimistic commit. */
  turn: Turn | null;
}

type QueueItem =
  | QueuedCommit
  | { kind: "task"; run: () => Promise<void>; resolve: () => void; reject: (error: unknown) => void }
  | Turn;

/** Commits a transaction's outcome inside a turn (see `withCommitTurn`). */
export type TurnCommit = (outcome: TransactionOutcome) => Promise<bigint>;

/** What the queue needs from the database. */
export interface CommitQueueHooks {
  /** Checks and writes one group of commits, settling each item. Never rejects. */
  commitGroup(group: QueuedCommit[]): Promise<void>;
  /** The latest commit ts: what a commit without writes resolves with. */
  latestTs(): bigint;
}

/**
 * Resolves on the next turn of the event loop, after the I/O callbacks that are ready now. `setImmediate`, not
 * `setTimeout(0)`: timers have millisecond granularity (~2 ms here), which a lone commit would wait out.
 */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A transaction with nothing to write commits at the latest ts without a turn of the committer. */
function writesNothing(outcome: TransactionOutcome): boolean {
  // A mutation result is a write: a repeat of its key must find it even when the mutation wrote no document.
  return outcome.writes.length === 0 && outcome.mutationResult === undefined;
}

function closedError(): SyscallError {
  return new SyscallError("DatabaseClosed", "The database is shutting down");
}

/** See the module comment. */
export class CommitQueue {
  readonly #hooks: CommitQueueHooks;
  readonly #queue: QueueItem[] = [];
  #draining = false;
  #drainDone: Promise<void> = Promise.resolve();
  #closed = false;
  /** The turn holding the committer, or null. */
  #activeTurn: Turn | null = null;
  #activeTurnDone: Promise<unknown> = Promise.resolve();
  /** Turns queued or running (see `turnsSettled`). */
  #pendingTurns = 0;
  #turnsSettledWaiters: (() => void)[] = [];

  constructor(hooks: CommitQueueHooks) {
    this.#hooks = hooks;
  }

  /** Queues a commit; resolves with its commit ts, or rejects as `commitGroup` decides. */
  commit(outcome: TransactionOutcome): Promise<bigint> {
    if (writesNothing(outcome)) return Promise.resolve(this.#hooks.latestTs());
    return new Promise((resolve, reject) => {
      this.#enqueue({ kind: "commit", outcome, resolve, reject, turn: null });
    });
  }

  /** Runs `run` with no commit in progress. */
  exclusive(run: () => Promise<void>): Promise<void> {
    return new Promise((resolve, reject) => this.#enqueue({ kind: "task", run, resolve, reject }));
  }

  /** Runs `run` in an exclusive commit turn (see the module comment); `commit` commits inside the turn. */
  withCommitTurn<T>(run: (commit: TurnCommit) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const turn: Turn = {
        kind: "turn",
        start: () => {
          const commit: TurnCommit = (outcome) => {
            if (writesNothing(outcome)) return Promise.resolve(this.#hooks.latestTs());
            return new Promise((resolveCommit, rejectCommit) => {
              this.#enqueue({ kind: "commit", outcome, resolve: resolveCommit, reject: rejectCommit, turn });
            });
          };
          this.#activeTurnDone = run(commit).then(resolve, reject).finally(() => this.#endTurn(turn));
        },
        reject: (error) => {
          this.#settleTurn();
          reject(error);
        },
      };
      this.#pendingTurns++;
      this.#enqueue(turn);
    });
  }

  /** Resolves once no commit turn is queued or running. */
  turnsSettled(): Promise<void> {
    if (this.#pendingTurns === 0) return Promise.resolve();
    return new Promise((resolve) => this.#turnsSettledWaiters.push(resolve));
  }

  /** Whether a commit turn is queued or running. */
  get hasPendingTurns(): boolean {
    return this.#pendingTurns > 0;
  }

  /**
   * Refuses new items, then waits until everything queued is taken. A running turn may still commit; the commits
   * held behind it are taken when it ends. Queued turns that have not started are refused.
   */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#draining || this.#activeTurn !== null) {
      await this.#drainDone;
      await this.#activeTurnDone;
    }
  }

  #endTurn(turn: Turn): void {
    if (this.#activeTurn !== turn) throw new Error("invariant: only the active commit turn can end");
    this.#activeTurn = null;
    this.#settleTurn();
    if (!this.#draining && this.#queue.length > 0) this.#drainDone = this.#drain();
  }

  #settleTurn(): void {
    this.#pendingTurns--;
    if (this.#pendingTurns < 0) throw new Error("invariant: more commit turns ended than started");
    if (this.#pendingTurns === 0) {
      for (const wake of this.#turnsSettledWaiters.splice(0)) wake();
    }
  }

  #enqueue(item: QueueItem): void {
    // The active turn's own commit is taken even while closing or full: everything queued is waiting for it.
    const turnCommit = item.kind === "commit" && item.turn !== null && item.turn === this.#activeTurn;
    if (this.#closed && !turnCommit) {
      item.reject(closedError());
      return;
    }
    if (this.#queue.length >= MAX_COMMIT_QUEUE && !turnCommit) {
      item.reject(new SyscallError("CommitterFullError", "Too many commits are waiting; retry shortly"));
      return;
    }
    this.#queue.push(item);
    if (!this.#draining) this.#drainDone = this.#drain();
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    try {
      for (let index = this.#nextRunnable(); index >= 0; index = this.#nextRunnable()) {
        const first = this.#queue[index];
        if (first.kind === "task") {
          this.#queue.splice(index, 1);
          try {
            await first.run();
            first.resolve();
          } catch (error) {
            first.reject(error);
          }
          continue;
        }
        if (first.kind === "turn") {
          this.#queue.splice(index, 1);
          this.#startTurn(first);
          continue;
        }
        for (let turn = 0; turn < GATHER_TURNS && this.#queue.length - index < GATHER_BELOW; turn++) await nextTurn();
        let end = index;
        while (end < this.#queue.length && end - index < MAX_GROUP_SIZE && this.#isRunnableCommit(this.#queue[end])) {
          end++;
        }
        await this.#hooks.commitGroup(this.#queue.splice(index, end - index) as QueuedCommit[]);
        // One turn of the event loop before the next group: the answers that arrived while this group was written
        // (a synchronous write holds the loop) are read now and join the next group, one fsync for all of them.
        // Without it the loop found the queue empty, and each of those commits became a group of its own (issue 14).
        await nextTurn();
      }
    } finally {
      this.#draining = false;
    }
  }

  /** The first item the committer may take now: any, or during a turn only tasks and the turn's own commits. */
  #nextRunnable(): number {
    if (this.#activeTurn === null) return this.#queue.length > 0 ? 0 : -1;
    return this.#queue.findIndex((item) => item.kind === "task" || this.#isRunnableCommit(item));
  }

  #isRunnableCommit(item: QueueItem): item is QueuedCommit {
    return item.kind === "commit" && (this.#activeTurn === null || item.turn === this.#activeTurn);
  }

  #startTurn(turn: Turn): void {
    if (this.#activeTurn !== null) throw new Error("invariant: one commit turn at a time");
    if (this.#closed) {
      turn.reject(closedError());
      return;
    }
    this.#activeTurn = turn;
    turn.start();
  }
}
