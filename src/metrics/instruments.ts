/**
 * The process's metrics: one registry, and the counters and histograms code pushes to. Gauges (pool sizes, sockets,
 * memory) are registered by the server when it starts and read from their owners at scrape time.
 *
 * Private to `src/metrics`: other folders use its `mod.ts`.
 */
import { MetricsRegistry } from "./registry.ts";

/** The registry `/metrics` renders. */
export const METRICS = new MetricsRegistry();

/** Seconds, for latencies from sub-millisecond to a 10-minute action. */
const SECONDS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 600];

/** HTTP requests answered, by origin, endpoint (path with variable parts folded), method and status class. */
export const httpRequests = METRICS.counter(
  "denvex_http_requests_total",
  "HTTP requests answered, by origin (api, site), endpoint, method and status class",
  ["origin", "endpoint", "method", "status"],
);
/** HTTP request latency until the response head, by origin and endpoint. */
export const httpRequestSeconds = METRICS.histogram(
  "denvex_http_request_duration_seconds",
  "Time until the response head, by origin and endpoint",
  ["origin", "endpoint"],
  SECONDS_BUCKETS,
);
/** Function executions (every attempt, nested calls included), by kind and outcome. */
export const functionExecutions = METRICS.counter(
  "denvex_function_executions_total",
  "Function executions by kind (query, mutation, action, httpAction) and outcome (ok, error)",
  ["udf_type", "outcome"],
);
/** Function execution time, by kind. */
export const functionExecutionSeconds = METRICS.histogram(
  "denvex_function_execution_duration_seconds",
  "Execution time of functions, by kind",
  ["udf_type"],
  SECONDS_BUCKETS,
);
/** Group commits: time from handing a batch to persistence until it is durable. */
export const commitSeconds = METRICS.histogram(
  "denvex_commit_duration_seconds",
  "Time to make one group commit durable",
  [],
  SECONDS_BUCKETS,
);
/** Transactions per group commit. */
export const commitBatchSize = METRICS.histogram(
  "denvex_commit_batch_size",
  "Transactions written by one group commit",
  [],
  [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
);
/** Optimistic concurrency conflicts found at commit (each makes its mutation retry, or fail once retries run out). */
export const occConflicts = METRICS.counter(
  "denvex_occ_conflicts_total",
  "Transactions refused at commit because a newer commit wrote what they read (the mutation is retried)",
);
/** Runner processes that exited and were replaced. */
export const runnerRestarts = METRICS.counter(
  "denvex_runner_restarts_total",
  "Runner processes that exited (crash, kill at a limit, recycling) while the pool was open, by kind",
  ["kind"],
);

/** A value code sets (the latest wins), read when scraped. */
export class SettableGauge {
  #value = 0;
  constructor(name: string, help: string) {
    METRICS.gauge(name, help, () => this.#value);
  }

  set(value: number): void {
    this.#value = value;
  }
}

/** Set by the scheduler after each pass: jobs due to run (running ones included), counted up to its scan limit. */
export const schedulerDueJobs = new SettableGauge(
  "denvex_scheduler_due_jobs",
  "Scheduled functions due at the last scheduler pass, running ones included (counted up to its scan limit)",
);

/** Records a group commit of `batchSize` transactions that settles with `commit`; returns `commit`. */
export function observeCommit<T>(batchSize: number, commit: Promise<T>): Promise<T> {
  const startedMs = performance.now();
  commitBatchSize.observe(batchSize);
  return commit.finally(() => commitSeconds.observe((performance.now() - startedMs) / 1000));
}
