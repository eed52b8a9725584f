/**
 * Public types of the function runtime: what the server asks a runner to do and what comes back.
 */
import type { Catalog, TransactionOutcome } from "../database/mod.ts";
import type { PersistenceLocation } from "../persistence/mod.ts";
import type { JsonValue } from "../values/mod.ts";
import type { HttpExchange, HttpRequestHead } from "./http_action_protocol.ts";

/** The kinds of function a runner executes (HTTP actions are not run yet). */
export type UdfType = "query" | "mutation" | "action";

/** One function call, as the functions layer hands it to the pool. */
export interface ExecuteRequest {
  udfType: UdfType;
  /** Module path inside the deployment, with `.js`: `"messages.js"`, `"dir/file.js"`. */
  modulePath: string;
  /** The export to call: `"list"`, or `"default"` for the default export. */
  exportName: string;
  /** JSON of a 1-element array holding the convex-JSON args object (convex-compat.md §4.2). */
  argsJson: string;
  /** Snapshot the query/mutation reads at. Required for queries and mutations, ignored for actions. */
  snapshotTs?: bigint;
  /** The catalog at `snapshotTs`. Required for queries and mutations; runners cache it by `version`. */
  catalog?: Catalog;
  /**
   * Takes the snapshot (and its catalog) when a runner starts the call instead: a mutation's wait for a runner then
   * stays outside its conflict window (issue 14). Replaces `snapshotTs` and `catalog`; the result says which it took.
   */
  snapshot?: () => { snapshotTs: bigint; catalog: Catalog };
  /** JSON of the caller's identity (convex-compat.md §4.4.2) or null when unauthenticated. */
  identityJson: string | null;
  /** A query's journal from its previous run (stable reactive pagination, convex-compat.md §2.9). */
  journal?: string | null;
  /** The deployment's environment variables (CONVEX_CLOUD_URL / CONVEX_SITE_URL included by the caller). */
  env: Record<string, string>;
  /** Request ID given to actions (`invokeAction(requestId, …)`) and reported in metadata. */
  requestId: string;
  /** `ctx.meta.getRequestMetadata()` apart from the request id; default {@link NO_REQUEST_METADATA}. */
  requestMetadata?: RequestMetadata;
  /** Absolute directory of the deployment's modules, as returned by `writeDeploymentModules`. */
  deploymentDir: string;
  /**
   * The component whose function this is (absent or `""`: the app): its modules load from its folder of the
   * deployment (components/layout.ts) and its syscalls run in its namespace. `env` is then that component's.
   */
  componentPath?: string;
  /**
   * `process.env` of other components a nested call or handle may reach, by path; one not listed gets only
   * CONVEX_CLOUD_URL / CONVEX_SITE_URL of `env`.
   */
  componentEnvs?: Record<string, Record<string, string>>;
  /**
   * `"node"`: a `"use node"` action, run in a node runner on `nodeDir` (the push's node deployment folder) instead of
   * an action runner's worker. Default `"isolate"`.
   */
  environment?: "isolate" | "node";
  /** The node deployment folder (required for `environment: "node"`). */
  nodeDir?: string;
  /** Overrides the user-code time limit (default: 1 s for queries/mutations, 10 min for actions). */
  timeLimitMs?: number;
  /**
   * Makes an action call an HTTP action: the runner routes `head` through `http.js` (modulePath/exportName are only
   * labels then) and streams the bodies through `exchange`.
   */
  http?: { head: HttpRequestHead; exchange: HttpExchange };
  /**
   * Aborted when the caller no longer wants the result (an HTTP action's client disconnected): a queued call is
   * dropped, a running one is stopped by killing its runner, and the call fails.
   */
  signal?: AbortSignal;
}

/**
 * Where a run of log lines came from: lines from index `fromLine` on were written by `udfPath` (`dir/mod.js:fn`) of
 * the component at `componentPath`, until the next source. A nested call into another component starts one, its
 * return starts one back to its caller; the function logs show each run under its own function, as Convex does.
 */
export interface LogLineSource {
  fromLine: number;
  componentPath: string;
  udfPath: string;
}

/** The result of one function call. A failure of user code is `ok: false`, never a thrown error. */
export interface ExecutionResult {
  ok: boolean;
  /** convex-JSON text of the return value (`"null"` for undefined), when ok. */
  resultJson?: string;
  /** `Uncaught ConvexError: …` / `Uncaught Error: …` + stack / a limit message, when not ok. */
  errorMessage?: string;
  /** convex-JSON data of a ConvexError, when the failure is one. */
  errorData?: JsonValue | undefined;
  /** Console output, `[LOG] 'hi' 1` style (convex-compat.md §2.10). */
  logLines: string[];
  /** Which lines nested calls into other components wrote (absent: all are the called function's). */
  logSources?: LogLineSource[] | undefined;
  /**
   * Read set and write set of a query or mutation (a query's read set drives reactivity); present for failed calls
   * too. Absent for actions and when the runner died.
   */
  outcome?: TransactionOutcome | undefined;
  /** Wall time of the execution in the runner, syscalls included. */
  executionTimeMs: number;
  /** The snapshot a query or mutation read at (the one `snapshot()` took); absent when it never started. */
  snapshotTs?: bigint | undefined;
  /**
   * True when the call failed for a reason outside its user code (its runner crashed or stopped answering, the pool
   * closed, an internal error): running it again may succeed. Absent for user-code failures and their limits.
   */
  infrastructure?: boolean;
}

/**
 * What `ctx.meta.getRequestMetadata()` reports besides the request id (convex 1.48, server/meta.d.ts). A nested call
 * (`ctx.runMutation` …) carries its parent's, as in Convex.
 */
export interface RequestMetadata {
  /** The client's address, null when no HTTP request started the call (scheduled jobs, crons). */
  ip: string | null;
  userAgent: string | null;
  /** The `_scheduled_functions` job the call belongs to (down the whole call tree), else null. */
  scheduledFunctionId: string | null;
  /** The user's raw token (a JWT), null when unauthenticated or called with the admin key. */
  authToken: string | null;
}

/** What `ctx.meta` reports that a runner cannot know itself (worker/syscall_router.ts answers it). */
export interface ExecutionMetadata {
  deploymentName: string;
  request: RequestMetadata;
}

/** The metadata of a call no request started and no user made. */
export const NO_REQUEST_METADATA: RequestMetadata = Object.freeze({
  ip: null,
  userAgent: null,
  scheduledFunctionId: null,
  authToken: null,
});

/** Context given to `onCall` for syscalls an action makes to the server (`1.0/actions/query`, …). */
export interface CallContext {
  executionId: string;
  requestId: string;
  /** The calling action's request metadata, which its own calls keep. */
  requestMetadata: RequestMetadata;
  /** What `ctx.meta.getDeploymentMetadata()` names (node actions answer it from here). */
  deploymentName: string;
  identityJson: string | null;
  /** `"messages.js:send"` style path of the calling action. */
  functionPath: string;
  /** The component of the calling action (`""`: the app): its calls resolve relative to it. */
  componentPath: string;
}

/** Options of `RunnerPool`. */
export interface RunnerPoolOptions {
  /** The server's data directory; deployments live in `<dataDir>/modules/<hash>/`. */
  dataDir: string;
  /** Where runners open their own database reader. */
  location: PersistenceLocation;
  /** The name `ctx.meta.getDeploymentMetadata()` reports (the instance name); default `"denvex"`. */
  deploymentName?: string;
  /** V8 old-space cap of each runner process; a worker exceeding it kills its runner (fails only its call). */
  maxHeapMb?: number;
  /**
   * Runs an action's call to the server (`1.0/actions/query|mutation|action`, the metadata ops of worker/ops.ts) and
   * returns the result JSON; `context.componentPath` is the calling action's component. Throw an error with `message`
   * (and `data` = convex-JSON of a ConvexError) to reject. (`1.0/getUserIdentity` is answered in the runner from
   * `identityJson`; `1.0/createFunctionHandle` in the worker.)
   */
  onCall(op: string, argsJson: string, context: CallContext): Promise<string>;
  /**
   * Creates a table on a mutation's first insert into it and returns the new catalog. Without it, the request reaches
   * `onCall` as op `denvex/createTable` with args `{tableName, componentPath}` and must return the new catalog's JSON.
   */
  createTable?(tableName: string, componentPath: string): Promise<Catalog>;
  /** The most runners for queries and mutations (default cores, at least 2; one is kept warm). */
  queryRunners?: number;
  /** Queued query/mutation calls beyond which `execute` fails at once (default 1000). */
  maxQueuedCalls?: number;
  /** Action runners kept warm (default 0, one started with the pool) and the most that may exist (default 4 × cores). */
  minActionRunners?: number;
  maxActionRunners?: number;
  /** Idle time after which a runner beyond its set's warm minimum exits (default 30 s). */
  runnerIdleExitMs?: number;
  /**
   * The program that pins each transaction runner to one CPU (cpu_affinity.ts: `TASKSET`), or null (the default here;
   * the server passes `TASKSET` unless `--no-pin-runners`) for unpinned runners. Where it cannot run (not Linux, not
   * installed, not allowed), runners are unpinned too. Pinned runners take less CPU per call (cpu_affinity.ts).
   */
  cpuAffinityProgram?: string | null;
  /** Node runners (`"use node"` actions) running a call at once (default 2 × cores). */
  maxNodeRunners?: number;
  /** `--node-packages`: "off" refuses pushes with `node.externalPackages` (default "auto": install them). */
  nodePackages?: "auto" | "off";
  /** Default user-code limits. */
  queryTimeLimitMs?: number;
  actionTimeLimitMs?: number;
  /**
   * The runner enforces the user-code limit itself; the pool SIGKILLs a runner that has not answered by
   * limit × 2 + this slack (it covers time spent in syscalls, which the limit excludes).
   */
  hardDeadlineSlackMs?: number;
  /**
   * What actions may reach beyond the public internet (net_policy/). Default: nothing more; loopback, private and
   * link-local addresses, the machine's own addresses and the database stay closed.
   */
  actionNet?: ActionNetOptions | undefined;
  /** Wall-time limit of an analysis (module top-level code). */
  analyzeTimeLimitMs?: number;
  /**
   * Receives each line a runner writes to its standard error, prefixed with the runner and bounded (runner_output.ts);
   * default: the server's standard error.
   */
  onRunnerOutput?: (line: string) => void;
  /** The module run in runner mode and its arguments (default: `main.ts runner` of this checkout). */
  runnerEntry?: { module: URL; args: string[] };
}

/** Options of the action network policy (net_policy/policy.ts). */
export interface ActionNetOptions {
  /** Hosts (names or IP literals) actions may reach although their addresses are private (`--action-allow-host`). */
  allowHosts?: string[];
  /**
   * The server's own ports, closed to actions even on allowed hosts. A promise when they are known only once the
   * server listens (`--port 0`): action runners start after it resolves.
   */
  serverPorts?: number[] | Promise<number[]>;
}

/** A function export found by analysis. */
export interface AnalyzedFunction {
  name: string;
  udfType: "Query" | "Mutation" | "Action" | "HttpAction";
  /** null for HTTP actions, which have no visibility of their own. */
  visibility: { kind: "public" } | { kind: "internal" } | null;
  /** `exportArgs()` JSON text; null for HTTP actions. */
  args: string | null;
  /** `exportReturns()` JSON text (`"null"` if none); null for HTTP actions. */
  returns: string | null;
}

/** One route of `http.js`. */
export interface HttpRoute {
  path: string;
  method: string;
}

/** What analysis found in one module. */
export interface ModuleAnalysis {
  path: string;
  functions: AnalyzedFunction[];
  /** Routes of the default export of `http.js`; null elsewhere. */
  httpRoutes: HttpRoute[] | null;
  /** `export()` JSON text of the default export of `crons.js`; null elsewhere. */
  cronsJson: string | null;
  /** `"node"` for a `"use node"` module (its functions run in node runners); absent for isolate modules. */
  environment?: "node";
}

/** The analysis of a whole deployment. */
export interface DeploymentAnalysis {
  modules: ModuleAnalysis[];
  /** `export()` JSON text of the default export of `schema.js`, if that module was analyzed. */
  schemaJson: string | null;
  /** The default export of `auth.config.js` (a plain object, evaluated with the env vars), if analyzed. */
  authConfig: JsonValue | null;
  /** Environment variables `auth.config.js` read while it was evaluated that were not set (sorted). */
  authConfigMissingEnv?: string[];
  /** What `export()` of the default export of `convex.config.js` returned (a component definition), if analyzed. */
  componentDefinition?: JsonValue;
}

/** One module as the CLI pushes it (convex-compat.md §5.3). */
export interface ModuleConfig {
  path: string;
  source: string;
  sourceMap?: string | undefined;
  environment: "isolate" | "node";
}
