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
export {
  type JobStateKind,
  scheduledFunctionName,
  type ScheduledTarget,
  scheduledTarget,
  SCHEDULER_TRANSACTION_SYSCALLS,
} from "./transaction_syscalls.ts";

/** The scheduler and the cron runner of one backend, started and stopped together. */
export interface SchedulerService {
  scheduler: Scheduler;
  crons: CronRunner;
  /** Re-reads the crons of the active deployment (call after every activation). */
  reloadCrons(): void;
  stop(): void;
}

/** The `export()` JSON of `crons.js` in a deployment (the app's), or null. */
export function cronsJsonOf(deployment: ActiveDeployment | null): string | null {
  return deployment === null ? null : cronsOfAnalysis(deployment.analysis);
}

function cronsOfAnalysis(analysis: ActiveDeployment["analysis"]): string | null {
  return analysis.modules.find((module) => module.path === "crons.js")?.cronsJson ?? null;
}

/** The `export()` JSON of every instance's `crons.js` (static crons), by component path; the app at `""`. */
export function cronsByComponentOf(deployment: ActiveDeployment | null): Map<string, string | null> {
  const crons = new Map<string, string | null>([["", cronsJsonOf(deployment)]]);
  for (const [path, component] of deployment?.components ?? []) {
    if (path !== "") crons.set(path, cronsOfAnalysis(component.analysis));
  }
  return crons;
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
  crons.updateComponents(cronsByComponentOf(options.deployment()));
  return {
    scheduler,
    crons,
    reloadCrons: () => crons.updateComponents(cronsByComponentOf(options.deployment())),
    stop() {
      crons.stop();
      scheduler.stop();
    },
  };
}
