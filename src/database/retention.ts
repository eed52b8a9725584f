/**
 * The retention watermark: the oldest snapshot whose reads are still exact. Retention prunes revisions that no
 * snapshot at or after its `retainTs` can see; a snapshot below that has lost history (a deleted document's whole
 * past, an overwritten value) and would read wrong data, so such reads are refused with `SnapshotTooOld`.
 *
 * The watermark is raised (in memory, then durably) before anything below it is deleted, so a reader that checks it
 * before and after its reads knows whether pruning could have touched them. It survives restarts as a global.
 *
 * Snapshot holds keep the watermark down for readers that outlive the retention window (an export of millions of
 * documents, a backup, a slow download): retention prunes only up to the oldest live hold. Holds lapse after a hard
 * maximum age and are limited in number, so a stuck reader cannot grow the database without bound.
 */
import type { Persistence } from "../persistence/mod.ts";
import { SyscallError } from "./types.ts";

/** The global holding the watermark (decimal ns). */
const WATERMARK_GLOBAL = "retention_watermark_ts";

/** The error code of a read below the watermark. */
export const SNAPSHOT_TOO_OLD = "SnapshotTooOld";

/** See the module comment. */
export class RetentionWatermark {
  #ts: bigint;
  readonly #persistence: Persistence;

  private constructor(persistence: Persistence, ts: bigint) {
    this.#persistence = persistence;
    this.#ts = ts;
  }

  /**
   * Loads the durable watermark. A database pruned before the watermark was recorded gets the conservative
   * `maxTs - retentionMs`: earlier servers pruned up to their latest ts minus the same retention.
   */
  static async load(persistence: Persistence, maxTs: bigint, retentionMs: number): Promise<RetentionWatermark> {
    const stored = await persistence.getGlobal(WATERMARK_GLOBAL);
    if (stored !== null) return new RetentionWatermark(persistence, BigInt(stored));
    const fallbackTs = maxTs - BigInt(retentionMs) * 1_000_000n;
    return new RetentionWatermark(persistence, fallbackTs > 0n ? fallbackTs : 0n);
  }

  /** Snapshots below this ts are refused. */
  get ts(): bigint {
    return this.#ts;
  }

  /**
   * Raises the watermark to `ts` before pruning up to it: in memory first (new reads are refused at once), then
   * durably. Resolves once pruning up to `ts` is safe; a failure to persist leaves the database unpruned.
   */
  async raise(ts: bigint): Promise<void> {
    if (ts <= this.#ts) return;
    this.#ts = ts;
    await this.#persistence.setGlobals({ [WATERMARK_GLOBAL]: ts.toString() });
  }

  /** Throws `SnapshotTooOld` unless reads at `snapshotTs` are exact. */
  assertReadable(snapshotTs: bigint): void {
    if (snapshotTs >= this.#ts) return;
    throw new SyscallError(
      SNAPSHOT_TOO_OLD,
      `The snapshot ${snapshotTs} is older than the retained history (retention pruned revisions before ` +
        `${this.#ts}); read at a newer timestamp`,
    );
  }
}

// ---- snapshot holds ---------------------------------------------------------------------------------------------

/** Longest a hold may last: a stuck export cannot keep history (and grow the database) for longer than this. */
export const MAX_SNAPSHOT_HOLD_MS = 6 * 60 * 60 * 1000;
/** Most holds alive at once: each pins history, so a flood of stalled downloads is refused, not accumulated. */
export const MAX_SNAPSHOT_HOLDS = 64;
/** Longest reason text (it is logged and listed). */
const MAX_HOLD_REASON_LENGTH = 200;
/** The error code when `MAX_SNAPSHOT_HOLDS` holds are alive. */
export const TOO_MANY_SNAPSHOT_HOLDS = "TooManySnapshotHolds";

/** Options of `Database.holdSnapshot`. */
export interface SnapshotHoldOptions {
  /** What holds the snapshot ("export download", "backup"), for logs and listings. */
  reason: string;
  /** After this long the hold lapses on its own (default and maximum `MAX_SNAPSHOT_HOLD_MS`). */
  maxHoldMs?: number;
}

/**
 * A held snapshot: retention prunes nothing a read at `ts` needs until it is released or lapses. Release it when the
 * reader finishes, fails or its client goes away (`using` releases it at the end of a scope).
 */
export interface SnapshotHold extends Disposable {
  readonly ts: bigint;
  readonly reason: string;
  /** True once released or lapsed: reads at `ts` may then fail with `SnapshotTooOld`. */
  readonly ended: boolean;
  /** Ends the hold (idempotent). */
  release(): void;
}

/** A live hold as listings show it. */
export interface SnapshotHoldInfo {
  ts: bigint;
  reason: string;
  ageMs: number;
}

interface HoldEntry {
  ts: bigint;
  reason: string;
  startedAtMs: number;
  expiresAtMs: number;
  ended: boolean;
}

/**
 * The live snapshot holds of one database. Retention prunes only up to the oldest live hold; a hold past its
 * `maxHoldMs` lapses (with a warning) the next time retention asks, so a forgotten hold cannot pin history forever.
 */
export class SnapshotHolds {
  readonly #entries = new Set<HoldEntry>();
  readonly #nowMs: () => number;

  constructor(nowMs: () => number = Date.now) {
    this.#nowMs = nowMs;
  }

  /** Adds a hold at `ts` (the caller checked `ts` is readable). Throws on bad options or too many holds. */
  add(ts: bigint, options: SnapshotHoldOptions): SnapshotHold {
    const reason = options.reason;
    if (typeof reason !== "string" || reason.trim() === "" || reason.length > MAX_HOLD_REASON_LENGTH) {
      throw new SyscallError("BadSnapshotHold", `a snapshot hold needs a reason of 1-${MAX_HOLD_REASON_LENGTH} chars`);
    }
    const maxHoldMs = options.maxHoldMs ?? MAX_SNAPSHOT_HOLD_MS;
    if (!Number.isSafeInteger(maxHoldMs) || maxHoldMs <= 0 || maxHoldMs > MAX_SNAPSHOT_HOLD_MS) {
      throw new SyscallError(
        "BadSnapshotHold",
        `maxHoldMs must be an integer 1-${MAX_SNAPSHOT_HOLD_MS}, got ${maxHoldMs}`,
      );
    }
    this.#lapseExpired();
    if (this.#entries.size >= MAX_SNAPSHOT_HOLDS) {
      throw new SyscallError(
        TOO_MANY_SNAPSHOT_HOLDS,
        `${MAX_SNAPSHOT_HOLDS} snapshots are held already (exports and backups in progress); try again later`,
      );
    }
    const startedAtMs = this.#nowMs();
    const entry: HoldEntry = { ts, reason, startedAtMs, expiresAtMs: startedAtMs + maxHoldMs, ended: false };
    this.#entries.add(entry);
    const entries = this.#entries;
    const release = () => {
      entry.ended = true;
      entries.delete(entry);
    };
    return {
      ts,
      reason,
      get ended() {
        return entry.ended;
      },
      release,
      [Symbol.dispose]: release,
    };
  }

  /** The ts of the oldest live hold, or null; lapses expired holds first. */
  oldestTs(): bigint | null {
    this.#lapseExpired();
    let oldest: bigint | null = null;
    for (const entry of this.#entries) if (oldest === null || entry.ts < oldest) oldest = entry.ts;
    return oldest;
  }

  /** Live holds (expired ones included until retention lapses them). */
  get count(): number {
    return this.#entries.size;
  }

  /** The live holds, oldest snapshot first. */
  list(): SnapshotHoldInfo[] {
    const nowMs = this.#nowMs();
    return [...this.#entries]
      .sort((a, b) => a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0)
      .map((entry) => ({ ts: entry.ts, reason: entry.reason, ageMs: nowMs - entry.startedAtMs }));
  }

  #lapseExpired(): void {
    const nowMs = this.#nowMs();
    for (const entry of this.#entries) {
      if (entry.expiresAtMs > nowMs) continue;
      entry.ended = true;
      this.#entries.delete(entry);
      console.warn(
        `denvex: the snapshot hold for ${entry.reason} at ts ${entry.ts} lapsed after ` +
          `${Math.round((nowMs - entry.startedAtMs) / 1000)} s; retention prunes past it again`,
      );
    }
  }
}
