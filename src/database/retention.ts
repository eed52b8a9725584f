/**
 * The retention watermark: the oldest snapshot whose reads are still exact. Retention prunes revisions that no
 * snapshot at or after its `retainTs` can see; a snapshot below that has lost history (a deleted document's whole
 * past, an overwritten value) and would read wrong data, so such reads are refused with `SnapshotTooOld`.
 *
 * The watermark is raised (in memory, then durably) before anything below it is deleted, so a reader that checks it
 * before and after its reads knows whether pruning could have touched them. It survives restarts as a global.
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
