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
