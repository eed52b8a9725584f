/**
 * Cron jobs of the active deployment's `crons.js` files, the app's and each component instance's (convex-compat.md
 * §4.2). State is kept in memory: each job has its
 * next run time and whether a run is in progress. A push replaces the whole set at once; jobs whose spec did not
 * change keep their timing. Runs go through the executor like any other call (mutations and actions).
 *
 * - One run at a time per job: a tick that comes while the previous run is still going is skipped.
 * - Missed runs are skipped, never replayed: after a restart (or a late timer) the next run is computed from now.
 */
import type { JsonValue } from "../values/mod.ts";
import type { FunctionExecutor } from "../functions/mod.ts";
import { type CompiledSchedule, compileSchedule, type CronSchedule } from "./cron_schedule.ts";

/** The longest single timer; longer waits re-arm (timers cannot wait beyond ~24.8 days anyway). */
const MAX_TIMER_MS = 60 * 60 * 1000;
/** Most cron jobs tracked (push already refuses more). */
const MAX_CRON_JOBS = 1_000;

/** One entry of `crons.js`' `export()`. */
interface CronSpec {
  name: string;
  args: JsonValue[];
  schedule: CronSchedule;
}

interface CronJob {
  /** The job's name in its component's `crons.js`, prefixed with the component's path and `/` outside the app. */
  identifier: string;
  /** The component whose `crons.js` declared it, where it runs (`""`: the app). */
  componentPath: string;
  /** The spec's JSON, to tell an unchanged job from a changed one across pushes. */
  specJson: string;
  spec: CronSpec;
  schedule: CompiledSchedule;
  nextRunMs: number;
  running: boolean;
  timer: ReturnType<typeof setTimeout> | null;
}

/** See the module comment. */
export class CronRunner {
  readonly #executor: FunctionExecutor;
  #jobs = new Map<string, CronJob>();
  #stopped = false;

  constructor(executor: FunctionExecutor) {
    this.#executor = executor;
  }

  /** The identifiers of the jobs in effect (tests, dashboards). */
  get identifiers(): string[] {
    return [...this.#jobs.keys()];
  }

  /** Replaces the job set with the `export()` JSON of the app's `crons.js` (null: no crons). */
  update(cronsJson: string | null): void {
    this.updateComponents(new Map([["", cronsJson]]));
  }

  /**
   * Replaces the job set with the `export()` JSON of each component instance's `crons.js`, by component path (`""`
   * the app; null: no crons). Each instance's jobs run in that instance.
   */
  updateComponents(cronsByComponent: ReadonlyMap<string, string | null>): void {
    if (this.#stopped) return;
    const entries: [string, string, CronSpec][] = [];
    for (const [componentPath, cronsJson] of cronsByComponent) {
      const specs = cronsJson ? JSON.parse(cronsJson) as Record<string, CronSpec> : {};
      for (const [name, spec] of Object.entries(specs)) {
        entries.push([componentPath, componentPath === "" ? name : `${componentPath}/${name}`, spec]);
      }
    }
    const next = new Map<string, CronJob>();
    const nowMs = Date.now();
    for (const [componentPath, identifier, spec] of entries.slice(0, MAX_CRON_JOBS)) {
      const specJson = JSON.stringify(spec);
      const kept = this.#jobs.get(identifier);
      if (kept && kept.specJson === specJson) {
        next.set(identifier, kept);
        continue;
      }
      let schedule: CompiledSchedule;
      try {
        schedule = compileSchedule(spec.schedule);
      } catch (error) {
        console.error(`denvex: cron job "${identifier}" has an invalid schedule: ${(error as Error).message}`);
        continue;
      }
      const job: CronJob = {
        identifier,
        componentPath,
        specJson,
        spec,
        schedule,
        nextRunMs: schedule.nextRunMs(nowMs),
        running: false,
        timer: null,
      };
      next.set(identifier, job);
    }
    for (const [identifier, old] of this.#jobs) {
      if (next.get(identifier) !== old && old.timer !== null) clearTimeout(old.timer);
    }
    this.#jobs = next;
    for (const job of next.values()) if (job.timer === null && !job.running) this.#arm(job);
  }

  /** Cancels every timer; runs in progress finish. */
  stop(): void {
    this.#stopped = true;
    for (const job of this.#jobs.values()) if (job.timer !== null) clearTimeout(job.timer);
    this.#jobs = new Map();
  }

  #arm(job: CronJob): void {
    if (!Number.isFinite(job.nextRunMs)) return; // a cron expression that never matches again
    const delayMs = Math.max(0, Math.min(job.nextRunMs - Date.now(), MAX_TIMER_MS));
    job.timer = setTimeout(() => {
      job.timer = null;
      this.#tick(job);
    }, delayMs);
    Deno.unrefTimer(job.timer);
  }

  #tick(job: CronJob): void {
    if (this.#stopped || this.#jobs.get(job.identifier) !== job) return; // replaced by a push
    const nowMs = Date.now();
    if (nowMs < job.nextRunMs) return this.#arm(job); // a capped long wait
    // The next run follows the schedule from this one; runs already missed are skipped (computed from now).
    let nextRunMs = job.schedule.nextRunMs(job.nextRunMs);
    if (nextRunMs <= nowMs) nextRunMs = job.schedule.nextRunMs(nowMs);
    job.nextRunMs = nextRunMs;
    if (job.running) return this.#arm(job); // one run at a time: skip this tick
    job.running = true;
    this.#arm(job);
    this.#executor.call({
      path: job.spec.name,
      componentPath: job.componentPath,
      args: job.spec.args?.[0] ?? {},
      allowInternal: true,
      identityJson: null,
    })
      .then((result) => {
        if (!result.ok) console.error(`denvex: cron job "${job.identifier}" failed: ${result.errorMessage}`);
      })
      .catch((error) => console.error(`denvex: cron job "${job.identifier}":`, error))
      .finally(() => {
        job.running = false;
      });
  }
}
