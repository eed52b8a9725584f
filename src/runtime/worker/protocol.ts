/**
 * Messages between a runner's main thread and its worker (postMessage). Syscalls of queries and mutations do not
 * appear here: they use the synchronous channel (sync_channel.ts), whose extra ops are named below.
 */
import type { DeploymentAnalysis, ExecutionMetadata, LogLineSource, UdfType } from "../types.ts";
import type { JsonValue } from "../../values/mod.ts";
import type {
  HttpBodyPullMessage,
  HttpInlineResponse,
  HttpRequestHead,
  HttpResponseAckMessage,
  HttpResponseHeadMessage,
  WorkerHttpBodyChunkMessage,
  WorkerHttpResponseChunkMessage,
} from "../http_action_protocol.ts";

/** Channel ops the worker sends besides database syscalls. */
export const NESTED_BEGIN_OP = "$nested/begin";
/** Args JSON: `true` to commit the nested call's writes, `false` to roll them back. */
export const NESTED_END_OP = "$nested/end";
/**
 * Args JSON: `{validator: <validator JSON>, value: <convex-JSON>}`; answer: null, or the validation message. Runs on
 * the main thread because `v.id(table)` needs the catalog.
 */
export const VALIDATE_OP = "$validate";
/**
 * Args: a `WorkerResultMessage` as JSON; answer: null. The end of an execution travels over the channel rather than
 * postMessage: the main thread is usually polling it already (after the last syscall), and even parked it wakes
 * sooner than for a message.
 */
export const RESULT_OP = "$result";
/**
 * Args: `1.0/queryStream`'s args; answer: the stream's first batch (`encodeStreamBatch`, query_streams.ts, with the new
 * stream's ID). Opens a stream and reads its first batch in one crossing: a query's reads start at once (the runtime
 * opens a stream on its first `next()`), so the separate round trip bought nothing (issue 14).
 */
export const QUERY_STREAM_FIRST_OP = "$queryStreamFirst";
/** Args: `{"queryId": n, "batchSize": n}`; answer: the stream's next batch (`encodeStreamBatch`, query_streams.ts). */
export const QUERY_STREAM_BATCH_OP = "$queryStreamBatch";

/**
 * Args: `[settled, received]`: `settled` is true when the worker settled after an execution (the answer to its
 * self-probe, see SETTLED_PROBE_ID), `received` counts the messages it has received so far; answer: a
 * `WorkerExecuteMessage` as JSON to run next, or `null` to return to the event loop (to receive messages: the runner
 * sent more than `received`, or sends one now; or the worker is being ended). A parked worker waits for its next call
 * on the channel, blocked in `Atomics.wait`: the call then costs no postMessage either way (issue 14).
 */
export const IDLE_OP = "$idle";

/** Main → worker: the channel to use; answered by `ReadyMessage`. */
export interface InitMessage {
  type: "init";
  channel: SharedArrayBuffer;
  /**
   * Whether the worker parks on the channel between calls (`IDLE_OP`): transaction runners. An action runner's worker
   * stays on its event loop, where the in-flight work of an action (fetch, timers) is settled or dropped.
   */
  parkBetweenCalls?: boolean;
}

/** Main → worker: run one function. */
export interface WorkerExecuteMessage {
  type: "execute";
  executionId: string;
  udfType: UdfType;
  /** `file:` URL of the deployment folder, with a trailing slash. */
  deploymentUrl: string;
  /** The component whose function this is (absent: the app); its modules load from its folder of the deployment. */
  componentPath?: string;
  modulePath: string;
  exportName: string;
  argsJson: string;
  requestId: string;
  /** `process.env` of the function's component. */
  env: Record<string, string>;
  /**
   * `process.env` of other components the call may reach (nested calls, handles), by component path; one not listed
   * gets only the deployment URLs of `env`.
   */
  componentEnvs?: Record<string, Record<string, string>>;
  /** Frozen `Date.now()` of a query/mutation. */
  nowMs: number;
  /** Seed of `Math.random()` in a query/mutation. */
  randomSeed: number;
  /** Set for an HTTP action: the request to route through the deployment's `http.js`. */
  http?: HttpRequestHead;
  /** What `ctx.meta` reports about the deployment and the request (the transaction answers `getSnapshotTs`). */
  metadata: ExecutionMetadata;
}

/** Main → worker: analyze modules of a deployment. */
export interface WorkerAnalyzeMessage {
  type: "analyze";
  executionId: string;
  deploymentUrl: string;
  /** The component whose modules to analyze (absent: the app's), in its folder below `deploymentUrl`. */
  componentPath?: string;
  modulePaths: string[];
  env: Record<string, string>;
}

/** Main → worker: the answer to an action's `CallMessage`. */
export interface CallResultMessage {
  type: "callResult";
  callId: number;
  ok: boolean;
  resultJson?: string;
  error?: { message: string; data?: JsonValue };
}

/**
 * Main → worker, after each execution or analysis: answer, then restore the global snapshot (before any later message
 * is handled, so before the next call). A worker whose event loop is starved (a detached microtask loop, a blocked
 * timer) never answers, and its runner is then retired.
 */
export interface ProbeMessage {
  type: "probe";
  probeId: number;
}

/** Everything the main thread sends. */
export type ToWorkerMessage =
  | InitMessage
  | ProbeMessage
  | WorkerExecuteMessage
  | WorkerAnalyzeMessage
  | CallResultMessage
  | WorkerHttpBodyChunkMessage
  | HttpResponseAckMessage;

/** Worker → main: the worker is set up. */
export interface ReadyMessage {
  type: "ready";
}

/** An execution's result as it leaves the worker; the runner passes it on to the server with its own fields. */
export interface ExecutionResultFields {
  type: "result";
  executionId: string;
  ok: boolean;
  resultJson?: string | undefined;
  errorMessage?: string | undefined;
  errorData?: JsonValue | undefined;
  logLines: string[];
  /** Which lines nested calls into other components wrote (types.ts `LogLineSource`). */
  logSources?: LogLineSource[] | undefined;
  /** An HTTP action's whole response, when small and complete before the result (see `HttpInlineResponse`). */
  httpResponse?: HttpInlineResponse | undefined;
}

/** Worker → main: an execution finished. */
export interface WorkerResultMessage extends ExecutionResultFields {
  /** See `WorkerAnalysisMessage.workerPoisoned`. */
  workerPoisoned?: boolean | undefined;
}

/** Worker → main: an analysis finished. */
export interface WorkerAnalysisMessage {
  type: "analysis";
  executionId: string;
  ok: boolean;
  analysis?: DeploymentAnalysis;
  errorMessage?: string;
  /**
   * Set when the worker refused to run anything: its globals could not be restored after an earlier call (a frozen
   * or locked built-in). The runner replaces the worker and runs the call again there.
   */
  workerPoisoned?: boolean;
}

/** Worker → main: an action asks the server to run `op` (`1.0/actions/query`, …). */
export interface CallMessage {
  type: "call";
  executionId: string;
  callId: number;
  op: string;
  argsJson: string;
}

/**
 * The `probeId` of the probe answer a worker sends by itself after every execution (from a task of its event loop,
 * like the answer to a probe, which executions therefore do not need: one message less per call, issue 14).
 */
export const SETTLED_PROBE_ID = 0;

/** Worker → main: the answer to a probe (or, with `SETTLED_PROBE_ID`, the self-probe after an execution). */
export interface ProbeAckMessage {
  type: "probeAck";
  probeId: number;
}

/** Everything the worker sends. */
export type FromWorkerMessage =
  | ReadyMessage
  | ProbeAckMessage
  | WorkerResultMessage
  | WorkerAnalysisMessage
  | CallMessage
  | HttpBodyPullMessage
  | HttpResponseHeadMessage
  | WorkerHttpResponseChunkMessage;
