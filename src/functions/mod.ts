/**
 * The functions layer: path resolution, visibility, argument and return validation, and running queries, mutations
 * and actions through the runtime with mutations committed (and retried) through the database.
 *
 * @module
 */
export { type FunctionAddress, parseFunctionPath } from "../values/mod.ts";
export {
  type CallAddress,
  CallAddressError,
  canonicalUdfPath,
  handleOf,
  resolveCallAddress,
  type ResolvedCallAddress,
} from "../runtime/mod.ts";
export { componentEnvironments, componentFunctions } from "./component_calls.ts";
export { type ActiveDeployment, type ComponentDeployment, type FunctionInfo, indexFunctions } from "./deployment.ts";
export {
  ActionCallError,
  type CallRequest,
  type CallResult,
  type ExecutionRecord,
  type ExecutorDependencies,
  FunctionExecutor,
  serveActionCall,
  type SystemFunction,
} from "./executor.ts";
export { ExecutionLog, type LoggedExecution, MAX_LOGGED_EXECUTIONS } from "./execution_log.ts";
export { idempotencyOwner, MUTATION_RESULT_RETENTION_MS, sweepResults } from "./idempotency.ts";
