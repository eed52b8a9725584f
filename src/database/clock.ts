/**
 * Commit timestamps: u64 nanoseconds since the Unix epoch, strictly increasing, and above every timestamp the
 * database ever committed (so they keep increasing across restarts even when the wall clock steps back).
 */

/** Wall-clock nanoseconds with sub-millisecond resolution. */
export function wallClockNs(): bigint {
  const nowMs = performance.timeOrigin + performance.now();
  return BigInt(Math.floor(nowMs * 1000)) * 1000n;
}

/** Hands out strictly increasing timestamps, starting above `floorTs`. */
export class TimestampClock {
  #lastTs: bigint;

  constructor(floorTs: bigint) {
    this.#lastTs = floorTs;
  }

  /** The largest timestamp handed out so far. */
  get lastTs(): bigint {
    return this.#lastTs;
  }

  next(): bigint {
    const wallTs = wallClockNs();
    this.#lastTs = wallTs > this.#lastTs ? wallTs : this.#lastTs + 1n;
    return this.#lastTs;
  }
}

/**
 * `_creationTime`s for one transaction's inserts: wall-clock milliseconds with a fractional part, strictly increasing,
 * so the inserts of one transaction keep their order in `by_creation_time` (and never tie on it).
 */
export class CreationTimes {
  #lastMs = 0;

  next(): number {
    let nowMs = performance.timeOrigin + performance.now();
    if (nowMs <= this.#lastMs) nowMs = this.#lastMs + 0.001;
    this.#lastMs = nowMs;
    return nowMs;
  }
}
