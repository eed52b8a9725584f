/**
 * The node runner kind (`"use node"` actions): sandboxed `deno run` processes with Node semantics, one call at a time,
 * supervised by the node set of the runner pool. Private to `src/runtime` (its `mod.ts` re-exports what others use);
 * tests reach the runner directly through this face.
 *
 * @module
 */
export { NODE_ACTION_TIMEOUT_MS, NodeAnalyzeError, NodeRunner, NodeRunnerDiedError } from "./runner.ts";
export { analyzeNodeModule, type NodeAnalyzedFunction, type NodeModuleAnalysis } from "./analyze.ts";
export {
  NODE_MAX_HEAP_MB,
  nodeConfigPath,
  type NodeRunnerCommand,
  nodeRunnerCommand,
  type NodeRunnerSandbox,
} from "./command.ts";
export { type NodeExecuteRequest, NodePool, type NodePoolOptions } from "./pool.ts";
export type { NodeCall, NodeCallResult, NodeDependency, NodeModuleConfig, NodeSyscallHandler } from "./types.ts";
