/**
 * Prototype of the runtime for `"use node"` actions (issue 12), not wired into the server yet: prepares a node
 * deployment folder at push time (modules + external packages installed with `deno install`) and runs its actions
 * in sandboxed `deno run` processes with Node semantics. Design and plan: /work/briefs/node_design.md.
 *
 * @module
 */
export {
  installNodeDependencies,
  type InstallOptions,
  nodeConfigPath,
  NodeInstallError,
  writeNodeModules,
} from "./install.ts";
export { NODE_ACTION_TIMEOUT_MS, NodeAnalyzeError, NodeRunner, NodeRunnerDiedError } from "./runner.ts";
export { analyzeNodeModule, type NodeAnalyzedFunction, type NodeModuleAnalysis } from "./analyze.ts";
export {
  NODE_MAX_HEAP_MB,
  type NodeRunnerCommand,
  nodeRunnerCommand,
  type NodeRunnerSandbox,
} from "./runner_command.ts";
export type { NodeCall, NodeCallResult, NodeDependency, NodeModuleConfig, NodeSyscallHandler } from "./types.ts";
