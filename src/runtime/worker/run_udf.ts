/**
 * `1.0/runUdf`: `ctx.runQuery` / `ctx.runMutation` inside a query or mutation (convex-compat.md §4.4.5). The nested
 * function runs in this worker, inside the caller's transaction, between a savepoint (`$nested/begin`) and its commit
 * or rollback (`$nested/end`). Args and return values are validated like a top-level call's.
 */
import type { JsonValue } from "../../values/mod.ts";
import { NESTED_BEGIN_OP, NESTED_END_OP, VALIDATE_OP } from "./protocol.ts";
import { convexErrorData, isConvexError, syscallFailure } from "./error_format.ts";
import {
  currentExecution,
  currentFrame,
  type Frame,
  functionName,
  runInFrame,
  SerialQueue,
} from "./execution_state.ts";
import { checkKind, loadFunction, resolveFunctionPath } from "./functions.ts";

/** Deepest chain of nested calls. */
export const MAX_NESTED_DEPTH = 8;

/** A synchronous call to the transaction on the runner's main thread (throws on failure). */
export type TransactionCall = (op: string, argsJson: string) => string;

interface RunUdfArgs {
  udfType?: string;
  args?: JsonValue;
  name?: string;
  reference?: string;
  functionHandle?: string;
}

/** Runs the nested call described by `argsJson`; resolves to its convex-JSON result text. */
export function runNestedFunction(argsJson: string, call: TransactionCall): Promise<string> {
  const execution = currentExecution();
  const parent = currentFrame();
  if (execution === null || parent === null) return Promise.reject(syscallFailure("No function is running"));
  const request = JSON.parse(argsJson) as RunUdfArgs;
  const udfType = request.udfType;
  if (udfType !== "query" && udfType !== "mutation" && udfType !== "snapshotQuery") {
    return Promise.reject(syscallFailure(`Invalid udfType ${JSON.stringify(udfType)} for runUdf`));
  }
  if (parent.udfType === "query" && udfType !== "query") {
    return Promise.reject(syscallFailure("A query can only call other queries (ctx.runQuery)"));
  }
  if (parent.depth >= MAX_NESTED_DEPTH) {
    return Promise.reject(syscallFailure(`Nested function calls are limited to a depth of ${MAX_NESTED_DEPTH}`));
  }
  if (typeof request.name !== "string") {
    const kind = request.functionHandle !== undefined ? "Function handles" : "Component function references";
    return Promise.reject(syscallFailure(`${kind} are not supported yet by denvex`));
  }
  const name = request.name;
  // Sibling calls are serialized: the transaction's savepoints form a stack.
  return parent.children.run(() =>
    runNested(execution.deploymentUrl, parent, udfType === "mutation" ? "mutation" : "query", name, request, call)
  );
}

async function runNested(
  deploymentUrl: string,
  parent: Frame,
  udfType: "query" | "mutation",
  path: string,
  request: RunUdfArgs,
  call: TransactionCall,
): Promise<string> {
  const { modulePath, exportName } = resolveFunctionPath(path);
  const fn = await loadFunction(deploymentUrl, modulePath, exportName).catch((error) => {
    throw syscallFailure(error instanceof Error ? error.message : String(error));
  });
  checkKind(fn, udfType, `${modulePath}:${exportName}`);
  const args = request.args;
  if (typeof args !== "object" || args === null || Array.isArray(args)) {
    throw syscallFailure(
      "ArgumentValidationError: Expected to receive a single object as the function's argument",
    );
  }
  const argsProblem = validate(call, fn.exportArgs?.() ?? '{"type":"any"}', args);
  if (argsProblem !== null) throw syscallFailure(`ArgumentValidationError: ${argsProblem}`);

  const frame: Frame = {
    udfType,
    functionName: functionName(modulePath, exportName),
    depth: parent.depth + 1,
    children: new SerialQueue(),
  };
  const argsJson = JSON.stringify([args]);
  call(NESTED_BEGIN_OP, "null");
  let commit = false;
  try {
    const resultJson = await runInFrame(
      frame,
      () => udfType === "mutation" ? fn.invokeMutation!(argsJson) : fn.invokeQuery!(argsJson),
    );
    const returns = fn.exportReturns?.() ?? "null";
    if (returns !== "null") {
      const returnsProblem = validate(call, returns, JSON.parse(resultJson));
      if (returnsProblem !== null) throw syscallFailure(`ReturnsValidationError: ${returnsProblem}`);
    }
    commit = true;
    return resultJson;
  } catch (error) {
    if (isConvexError(error)) throw syscallFailure(error.message, convexErrorData(error));
    throw error instanceof Error ? syscallFailure(error.message) : syscallFailure(String(error));
  } finally {
    call(NESTED_END_OP, commit ? "true" : "false");
  }
}

/** Validates `value` (convex-JSON) against validator JSON text on the main thread, which knows the catalog. */
function validate(call: TransactionCall, validatorJson: string, value: JsonValue): string | null {
  if (validatorJson === '{"type":"any"}') return null;
  return JSON.parse(call(VALIDATE_OP, JSON.stringify({ validator: JSON.parse(validatorJson), value }))) as
    | string
    | null;
}
