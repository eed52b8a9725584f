/**
 * The hard deadlines of running calls, watched by one timer for the pool instead of one timer per call. Arming and
 * clearing a timer cost the server's main thread ~20–30 µs per call (Deno's timers are Node-compatible `Timeout`
 * objects; a perf profile of call_path_bench's queries put `setTimeout`/`clearTimeout` at ~7 % of that thread, issue
 * 14), while a hard deadline lies seconds ahead and needs no precision finer than a sweep.
 *
 * The timer ticks every `intervalMs` while deadlines are watched and stops at the first tick that finds none, so an
 * idle server sleeps and a lone client's calls (one deadline at a time) do not arm a timer each.
 *
 * Private to `src/runtime`: other folders use its `mod.ts`.
 */

/** How often the sweep looks at the watched deadlines: how late, at most, a deadline is noticed. */
export const DEADLINE_SWEEP_INTERVAL_MS = 50;

interface Watched {
  /** `performance.now()` at which `onExpired` runs. */
  deadlineMs: number;
  onExpired: () => void;
}

export class DeadlineSweep {
  readonly #watched = new Set<Watched>();
  readonly #intervalMs: number;
  #timer: ReturnType<typeof setInterval> | null = null;
  #closed = false;

  constructor(intervalMs = DEADLINE_SWEEP_INTERVAL_MS) {
    if (!(intervalMs > 0)) throw new RangeError(`A sweep interval must be positive, not ${intervalMs} ms`);
    this.#intervalMs = intervalMs;
  }

  /**
   * Runs `onExpired` once, at most one interval after `afterMs` from now, unless the returned function is called first
   * (calling it later changes nothing).
   */
  watch(afterMs: number, onExpired: () => void): () => void {
    if (this.#closed) return () => {};
    const watched: Watched = { deadlineMs: performance.now() + afterMs, onExpired };
    this.#watched.add(watched);
    this.#timer ??= setInterval(() => this.#sweep(), this.#intervalMs);
    return () => {
      this.#watched.delete(watched);
    };
  }

  /** How many deadlines are watched now (for tests). */
  get size(): number {
    return this.#watched.size;
  }

  /** Whether the timer is armed now (for tests: an idle sweep holds no timer). */
  get armed(): boolean {
    return this.#timer !== null;
  }

  /** Stops watching: no deadline expires from now on. */
  close(): void {
    this.#closed = true;
    this.#watched.clear();
    this.#stop();
  }

  #sweep(): void {
    if (this.#watched.size === 0) return this.#stop();
    const now = performance.now();
    for (const watched of this.#watched) {
      if (watched.deadlineMs > now) continue;
      this.#watched.delete(watched);
      watched.onExpired();
    }
  }

  #stop(): void {
    if (this.#timer === null) return;
    clearInterval(this.#timer);
    this.#timer = null;
  }
}
