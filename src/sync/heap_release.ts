/**
 * Gives memory back after a wave of disconnects (issue 14: "memory comes back after clients leave"). What departed
 * subscriptions held (cached results, read ranges, socket state) lives in V8's old generation until its next full
 * collection, and a server that has gone quiet allocates too little to trigger one: measured, 10,000 subscriptions
 * that left were still 30 MiB of heap 45 s later. So once many subscriptions were released and the releases have
 * stopped, the hub asks V8 for one full collection (the server runs with `--expose-gc`, src/server/launcher.ts), at
 * most once per interval, so a steady churn of clients never turns into a stream of pauses.
 *
 * Private to `src/sync`: other folders use its `mod.ts`.
 */

/** Released subscriptions that make a collection worth its pause (a full GC of a ~50 MiB heap: tens of ms). */
export const COLLECT_AFTER_RELEASED_QUERIES = 1_000;
/** No release for this long: the wave is over. */
export const QUIET_BEFORE_COLLECT_MS = 4_000;
/** At most one collection per this interval. */
export const MIN_COLLECT_INTERVAL_MS = 30_000;

/** See the module comment. `collect` is V8's `gc()` when the server exposes it. */
export class HeapRelease {
  readonly #collect: (() => void) | null;
  #released = 0;
  #lastReleaseMs = 0;
  #lastCollectMs = -Infinity;

  constructor(collect: (() => void) | null = exposedGc()) {
    this.#collect = collect;
  }

  /** `count` subscriptions were let go at `nowMs`. */
  noteReleased(count: number, nowMs: number): void {
    if (count <= 0) return;
    this.#released += count;
    this.#lastReleaseMs = nowMs;
  }

  /** Collects if a finished wave released enough; returns whether it did. Called on the hub's tick. */
  maybeCollect(nowMs: number): boolean {
    if (this.#collect === null || this.#released < COLLECT_AFTER_RELEASED_QUERIES) return false;
    if (nowMs - this.#lastReleaseMs < QUIET_BEFORE_COLLECT_MS) return false;
    if (nowMs - this.#lastCollectMs < MIN_COLLECT_INTERVAL_MS) return false;
    this.#released = 0;
    this.#lastCollectMs = nowMs;
    this.#collect();
    return true;
  }
}

/**
 * V8's `gc` as a "last resort" full collection: a plain `gc()` emptied the heap (124 → 14 MiB) but kept the pages
 * (RSS 160 → 161 MiB); this flavour also gives them back (RSS 158 → 44 MiB), for a longer pause.
 */
function exposedGc(): (() => void) | null {
  const gc = (globalThis as { gc?: unknown }).gc;
  if (typeof gc !== "function") return null;
  return () => gc({ type: "major", execution: "sync", flavor: "last-resort" });
}
