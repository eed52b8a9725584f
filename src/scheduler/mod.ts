/**
 * The scheduler: `ctx.scheduler` jobs (`_scheduled_functions`, run by {@link Scheduler}) and cron jobs of
 * `crons.js` ({@link CronRunner}), both run through the function executor.
 */
import type { Database } from "../database/mod.ts";
import type { ActiveDeployment, FunctionExecutor } from "../functions/mod.ts";
import { CronRunner } from "./crons.ts";
import { Scheduler } from "./scheduler.ts";

export { FINISHED_JOB_RETENTION_MS, MAX_CONCURRENT_JOBS, Scheduler } from "./scheduler.ts";
export { CronRunner } from "./crons.ts";
export { type CompiledSchedule, compileSchedule, type CronSchedule, parseCron } from "./cron_schedule.ts";
export { SCHEDULER_ACTION_OPS, serveSchedulerActionOp } from "./action_ops.ts";
export { BY_NEXT_INDEX, type Job, type JobState, readJob, scanJobs, setJobState, transitionJob } from "./jobs.ts";
export { type JobStateKind, scheduledFunctionName, SCHEDULER_TRANSACTION_SYSCALLS } from "./transaction_syscalls.ts";

/** The scheduler and the cron runner of one backend, started and stopped together. */
export interface SchedulerService {
  scheduler: Scheduler;
  crons: CronRunner;
  /** Re-reads the crons of the active deployment (call after every activation). */
  reloadCrons(): void;
  stop(): void;
}

/** The `export()` JSON of `crons.js` in a deployment, or null. */
export function cronsJsonOf(deployment: ActiveDeployment | null): string | null {
  return deployment?.analysis.modules.find((module) => module.path === "crons.js")?.cronsJson ?? null;
}

/** Starts the scheduler loop (after recovering interrupted actions) and the crons of the active deployment. */
export async function startSchedulerService(options: {
  database: Database;
  executor: FunctionExecutor;
  deployment: () => ActiveDeployment | null;
}): Promise<SchedulerService> {
  const scheduler = new Scheduler(options.database, options.executor);
  const crons = new CronRunner(options.executor);
  await scheduler.start();
  crons.update(cronsJsonOf(options.deployment()));
  return {
    scheduler,
    crons,
    reloadCrons: () => crons.update(cronsJsonOf(options.deployment())),
    stop() {
      crons.stop();
      scheduler.stop();
    },
  };
}
