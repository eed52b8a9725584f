/**
 * The async syscalls of a node action that the node pool answers itself from the call's context, as the isolate
 * runner and worker do for isolate actions (`1.0/getUserIdentity` in runtime/runner.ts, `1.0/getFunctionMetadata` in
 * worker/syscall_router.ts): the server's `onCall` does not know them. Everything else goes on to `onCall`.
 */
import type { CallContext } from "../types.ts";
import { identityFailureOf } from "../../errors/mod.ts";
import { deploymentMetadataJson, requestMetadataJson } from "../worker/metadata.ts";

/** The answer JSON of `op` when it is answered locally, or null when the server must answer it. */
export function answerLocally(op: string, context: CallContext): string | null {
  if (op === "1.0/getUserIdentity") {
    // Called from an HTTP action whose Bearer token did not verify: throw why (errors/identity_failure.ts).
    const failure = identityFailureOf(context.identityJson);
    if (failure !== null) throw new Error(failure.message);
    return context.identityJson ?? "null";
  }
  if (op === "1.0/getFunctionMetadata") {
    return JSON.stringify({ name: metadataName(context.functionPath), componentPath: context.componentPath });
  }
  if (op === "1.0/getDeploymentMetadata") return deploymentMetadataJson(context.deploymentName);
  if (op === "1.0/getRequestMetadata") return requestMetadataJson(context.requestMetadata, context.requestId);
  return null;
}

/** `dir/file.js:fn` → `dir/file:fn`; the default export is just `dir/file` (as the isolate worker reports it). */
function metadataName(functionPath: string): string {
  const colon = functionPath.lastIndexOf(":");
  const module = functionPath.slice(0, colon).replace(/\.js$/, "");
  const exportName = functionPath.slice(colon + 1);
  return exportName === "default" ? module : `${module}:${exportName}`;
}
