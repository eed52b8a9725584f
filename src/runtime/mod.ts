/**
 * The function runtime: runs pushed Convex bundles in sandboxed runner processes (a permission-less worker per
 * runner, killed and replaced when it exceeds its time or memory), with syscalls answered by a transaction in the
 * runner (queries, mutations) or by the server (actions).
 *
 * `worker/` is the code that runs inside those workers (started by URL, so its imports stay narrow: no server-only
 * modules); like every file here but this one, it is private to `src/runtime`.
 *
 * @module
 */
export { RunnerPool } from "./pool.ts";
export { TASKSET } from "./cpu_affinity.ts";
export {
  type CallAddress,
  CallAddressError,
  canonicalUdfPath,
  childComponentPath,
  displayUdfPath,
  handleOf,
  resolveCallAddress,
  type ResolvedCallAddress,
} from "./call_address.ts";
export { concatBytes } from "./bytes.ts";
export {
  HTTP_CHUNK_BYTES,
  HTTP_RESPONSE_WINDOW_CHUNKS,
  type HttpExchange,
  type HttpRequestHead,
  type HttpResponseHead,
} from "./http_action_protocol.ts";
export { runnerMain } from "./runner_main.ts";
export {
  checkModulePath,
  modulesRoot,
  validateModules,
  writeDeploymentModules,
  type WrittenDeployment,
} from "./module_writer.ts";
export { AnalyzeError, ModuleLoadError, RunnerPoolFullError } from "./errors.ts";
export { parseIp } from "./net_policy/mod.ts";
export { nodeConfigPath, type NodeDependency, type NodeModuleConfig } from "./node/mod.ts";
export type {
  ActionNetOptions,
  AnalyzedFunction,
  CallContext,
  DeploymentAnalysis,
  ExecuteRequest,
  ExecutionResult,
  HttpRoute,
  LogLineSource,
  ModuleAnalysis,
  ModuleConfig,
  RequestMetadata,
  RunnerPoolOptions,
  UdfType,
} from "./types.ts";
export { NO_REQUEST_METADATA } from "./types.ts";
