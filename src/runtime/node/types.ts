/**
 * Shapes of the node runner kind: what the CLI pushes for `"use node"` modules, one call, its result.
 */

/** A module record as `npx convex deploy` sends it (`environment: "node"` for `"use node"` files and their chunks). */
export interface NodeModuleConfig {
  /** POSIX path relative to `convex/`, `.js` extension, e.g. `ai.js` or `_deps/node/FNEXLUVL.js`. */
  path: string;
  source: string;
  sourceMap?: string | null | undefined;
  environment: "isolate" | "node";
}

/** One `convex.json` `node.externalPackages` dependency, as the push's `nodeDependencies` lists it. */
export interface NodeDependency {
  name: string;
  /** The exact version found in the developer's `node_modules`. */
  version: string;
}

/** One action call sent to a node runner. */
export interface NodeCall {
  modulePath: string;
  exportName: string;
  argsJson: string;
  requestId: string;
  /** The deployment's environment variables: the whole of `process.env` user code sees (plus `TMPDIR`). */
  env: Record<string, string>;
}

/** How a call ended. */
export type NodeCallResult =
  | { ok: true; resultJson: string; logLines: string[] }
  | { ok: false; errorMessage: string; errorData?: unknown; logLines: string[] };

/** Answers an async syscall of user code (`Convex.asyncSyscall(op, argsJson)`) with its JSON result. */
export type NodeSyscallHandler = (op: string, argsJson: string) => Promise<string>;
