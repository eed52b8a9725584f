/**
 * `ctx.meta` (convex 1.48, server/impl/meta_impl.js), answered in the worker from what the execution carries: the
 * function (its frame), the deployment, the request that started the call and the snapshot a query or mutation reads.
 * Which kinds of function may ask for what is the convex package's business (`setupQueryMeta` has no request
 * metadata, actions no snapshot); an action asking for the snapshot gets no answer here.
 *
 * Private to `src/runtime`: other folders use its `mod.ts`.
 */
import { currentExecution, type Frame } from "./execution_state.ts";

/** Convex's smallest deployment class; denvex has no classes, and the type admits no "none". */
const DEPLOYMENT_CLASS = "s16";

/** The answer (JSON) to a metadata syscall of `frame`, or null when `op` is not one. */
export function localMetadataSyscall(op: string, frame: Frame): string | null {
  const execution = currentExecution();
  if (execution === null) return null;
  const { metadata } = execution;
  switch (op) {
    case "1.0/getFunctionMetadata":
      return JSON.stringify({ name: frame.functionName, componentPath: frame.componentPath });
    case "1.0/getDeploymentMetadata":
      // Self-hosted: no region, as Convex reports for local deployments.
      return JSON.stringify({ name: metadata.deploymentName, region: null, class: DEPLOYMENT_CLASS });
    case "1.0/getRequestMetadata":
      return JSON.stringify({ ...metadata.request, requestId: execution.requestId });
    case "1.0/getSnapshotTs":
      if (frame.udfType === "action" || metadata.snapshotTs === null) return null;
      return int64Json(BigInt(metadata.snapshotTs));
    default:
      return null;
  }
}

/**
 * convex-JSON of an int64 (`{"$integer": base64 of 8 bytes, little-endian}`), written here: the worker reads only
 * src/runtime, src/components and src/errors (runner_command.ts), not src/values.
 */
function int64Json(value: bigint): string {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigInt64(0, value, true);
  return JSON.stringify({ $integer: bytes.toBase64() });
}
