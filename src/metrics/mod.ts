/**
 * Prometheus metrics: a small registry (counters, histograms, scrape-time gauges) with no dependencies, at the
 * bottom of the layers so any subsystem can push a count with one line. The server serves {@link METRICS} at
 * `/metrics` (admin key required).
 *
 * @module
 */
export {
  Counter,
  Gauge,
  type GaugeSample,
  Histogram,
  type Labels,
  MAX_SERIES_PER_METRIC,
  MetricsRegistry,
} from "./registry.ts";
export {
  commitBatchSize,
  commitSeconds,
  functionExecutions,
  functionExecutionSeconds,
  httpRequests,
  httpRequestSeconds,
  METRICS,
  observeCommit,
  occConflicts,
  runnerRestarts,
  schedulerDueJobs,
  SettableGauge,
} from "./instruments.ts";
