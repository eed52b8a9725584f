/**
 * Retries of scheduled jobs that failed for reasons outside their user code (a runner crash, the committer full, the
 * database unavailable): the job stays `pending` and runs again after an exponential backoff, a bounded number of
 * times, then fails with the last error. Only user-code failures fail a job at once.
 *
 * Kept in memory: after a restart a pending job simply runs again, which a retry would have done anyway. Retrying
 * a mutation cannot run it twice, because its move to `success` rides in its own commit (see scheduler.ts).
 */

/** Attempts of one job that infrastructure errors may cost before it is marked failed. */
export const MAX_INFRASTRUCTURE_ATTEMPTS = 12;
/** Backoff before the first retry; it doubles per attempt up to `MAX_RETRY_DELAY_MS`. */
export const FIRST_RETRY_DELAY_MS = 100;
export const MAX_RETRY_DELAY_MS = 30_000;

/** What to do with a job after an infrastructure failure. */
export type RetryDecision = { retry: true; delayMs: number; attempt: number } | { retry: false; attempts: number };

/** Per-job infrastructure-failure counts and the earliest time each may run again. */
export class InfrastructureRetries {
  readonly #byJob = new Map<string, { attempts: number; notBeforeMs: number }>();

  /**
   * Records a failed attempt of `jobId` at `nowMs`. `giveUp` false keeps retrying at the longest delay past the
   * bound (for failures that could not even record the job's state).
   */
  note(jobId: string, nowMs: number, giveUp = true): RetryDecision {
    const attempts = (this.#byJob.get(jobId)?.attempts ?? 0) + 1;
    if (giveUp && attempts >= MAX_INFRASTRUCTURE_ATTEMPTS) {
      this.#byJob.delete(jobId);
      return { retry: false, attempts };
    }
    const delayMs = retryDelayMs(attempts);
    this.#byJob.set(jobId, { attempts, notBeforeMs: nowMs + delayMs });
    return { retry: true, delayMs, attempt: attempts };
  }

  /** The time before which `jobId` must not run again, or 0 when it may run now. */
  notBeforeMs(jobId: string): number {
    return this.#byJob.get(jobId)?.notBeforeMs ?? 0;
  }

  /** Forgets `jobId` (it finished, or was canceled). */
  clear(jobId: string): void {
    this.#byJob.delete(jobId);
  }

  /**
   * Forgets jobs whose retry time is more than `staleMs` past (canceled or deleted while backing off: the scheduler
   * never sees them again).
   */
  forgetStale(nowMs: number, staleMs: number): void {
    for (const [jobId, entry] of this.#byJob) {
      if (entry.notBeforeMs < nowMs - staleMs) this.#byJob.delete(jobId);
    }
  }

  /** Jobs with a retry pending (tests, metrics). */
  get size(): number {
    return this.#byJob.size;
  }
}

/** The backoff before retry `attempt` (1-based): doubling from FIRST_RETRY_DELAY_MS, capped, with ±25 % jitter. */
export function retryDelayMs(attempt: number): number {
  const baseMs = Math.min(MAX_RETRY_DELAY_MS, FIRST_RETRY_DELAY_MS * 2 ** Math.min(attempt - 1, 30));
  return Math.round(baseMs * (0.75 + Math.random() * 0.5));
}
