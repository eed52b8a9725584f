/**
 * `ctx.meta` (convex 1.48, server/impl/meta_impl.js), answered in the worker from what the execution carries: the
 * function (its frame), the deployment and the request that started the call. (`getSnapshotTs` and
 * `getTransactionMetrics` are the transaction's, database/syscalls.ts.) Which kinds of function may ask for what is the
 * convex package's business: `setupQueryMeta` has no request metadata.
 *
 * Private to `src/runtime`: other folders use its `mod.ts`.
 */
import type { RequestMetadata } from "../types.ts";
import { currentExecution, type Frame } from "./execution_state.ts";

/** Convex's smallest deployment class; denvex has no classes, and the type admits no "none". */
const DEPLOYMENT_CLASS = "s16";

const METADATA_OPS: ReadonlySet<string> = new Set([
  "1.0/getFunctionMetadata",
  "1.0/getDeploymentMetadata",
  "1.0/getRequestMetadata",
]);

/** Whether `op` is one of `ctx.meta`'s (a set lookup, for the paths every syscall takes). */
export function isMetadataOp(op: string): boolean {
  return METADATA_OPS.has(op);
}

/** The answer (JSON) to a metadata syscall of `frame`, or null when `op` is not one (or not answerable here). */
export function localMetadataSyscall(op: string, frame: Frame): string | null {
  const execution = currentExecution();
  if (execution === null) return null;
  const { metadata } = execution;
  switch (op) {
    case "1.0/getFunctionMetadata":
      return JSON.stringify({ name: frame.functionName, componentPath: frame.componentPath });
    case "1.0/getDeploymentMetadata":
      return deploymentMetadataJson(metadata.deploymentName);
    case "1.0/getRequestMetadata":
      return requestMetadataJson(metadata.request, execution.requestId);
    default:
      return null;
  }
}

/** `getDeploymentMetadata`'s answer (also node actions', node/local_syscalls.ts). */
export function deploymentMetadataJson(deploymentName: string): string {
  // Self-hosted: no region, as Convex reports for local deployments.
  return JSON.stringify({ name: deploymentName, region: null, class: DEPLOYMENT_CLASS });
}

/** `getRequestMetadata`'s answer (also node actions', node/local_syscalls.ts). */
export function requestMetadataJson(request: RequestMetadata, requestId: string): string {
  return JSON.stringify({ ...request, requestId });
}
