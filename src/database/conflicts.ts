/**
 * Optimistic concurrency control: the index keys recent commits wrote, checked against the read set of a committing
 * transaction. A write inside a range the transaction read, committed after its snapshot, is a conflict.
 */
import { compareKeys, keyFromBase64 } from "../values/mod.ts";
import type { ReadRange } from "./types.ts";

/** Keys written by one commit, per index. */
export interface CommitKeys {
  ts: bigint;
  keysByIndex: Map<number, Uint8Array[]>;
}

/** How long recent commits are remembered; a transaction with an older snapshot is retried. */
const HISTORY_WINDOW_NS = 30_000_000_000n;
/** The most commits remembered, whatever their age (bounds memory under bursts). */
const MAX_HISTORY_COMMITS = 50_000;

/** What a slot before the head holds (never read). */
const FORGOTTEN: CommitKeys = { ts: 0n, keysByIndex: new Map() };

/** A decoded read range. */
interface DecodedRange {
  indexId: number;
  lowKey: Uint8Array;
  highKey: Uint8Array | null;
}

/** The recent-commit history. */
export class ConflictHistory {
  #commits: CommitKeys[] = [];
  #head = 0;
  /** Snapshots at or before this ts can no longer be checked. */
  #floorTs: bigint;

  constructor(floorTs: bigint) {
    this.#floorTs = floorTs;
  }

  record(commit: CommitKeys): void {
    this.#commits.push(commit);
    this.#trim(commit.ts);
  }

  /** Forgets a commit that failed to persist (it must be the newest). */
  forget(ts: bigint): void {
    const last = this.#commits[this.#commits.length - 1];
    if (last && last.ts === ts) this.#commits.pop();
  }

  #trim(nowTs: bigint): void {
    const cutoffTs = nowTs - HISTORY_WINDOW_NS;
    while (
      this.#head < this.#commits.length &&
      (this.#commits.length - this.#head > MAX_HISTORY_COMMITS || this.#commits[this.#head].ts < cutoffTs)
    ) {
      this.#floorTs = this.#commits[this.#head].ts;
      // Released now, not at the next compaction (every 1,024 commits): one commit may hold many keys (an import).
      this.#commits[this.#head] = FORGOTTEN;
      this.#head++;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#commits.length) {
      this.#commits = this.#commits.slice(this.#head);
      this.#head = 0;
    }
  }

  /**
   * The first conflict for a transaction that read `readSet` at `snapshotTs`, described for the error message, or
   * null when it may commit.
   */
  findConflict(snapshotTs: bigint, readSet: ReadRange[]): { indexId: number } | { tooOld: true } | null {
    if (snapshotTs < this.#floorTs) return { tooOld: true };
    let decoded: DecodedRange[] | null = null;
    for (let i = this.#commits.length - 1; i >= this.#head; i--) {
      const commit = this.#commits[i];
      if (commit.ts <= snapshotTs) break;
      decoded ??= readSet.map((range) => ({
        indexId: range.indexId,
        lowKey: keyFromBase64(range.lowKey),
        highKey: range.highKey === null ? null : keyFromBase64(range.highKey),
      }));
      for (const range of decoded) {
        const keys = commit.keysByIndex.get(range.indexId);
        if (!keys) continue;
        for (const key of keys) {
          if (compareKeys(key, range.lowKey) >= 0 && (range.highKey === null || compareKeys(key, range.highKey) < 0)) {
            return { indexId: range.indexId };
          }
        }
      }
    }
    return null;
  }
}
