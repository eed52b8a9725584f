/**
 * `1.0/runUdf`: `ctx.runQuery` / `ctx.runMutation` inside a query or mutation (convex-compat.md §4.4.5). The nested
 * function runs in this worker, inside the caller's transaction, between a savepoint (`$nested/begin`) and its commit
 * or rollback (`$nested/end`). Args and return values are validated like a top-level call's.
 *
 * The callee may live in another component (a child reference, a function handle): it then runs in that component's
 * namespace, still inside the one transaction and its savepoints, so a child mutation that throws rolls back only its
 * own writes and the caller may catch the error.
 */
import type { JsonValue } from "../../values/mod.ts";
import { NESTED_BEGIN_OP, NESTED_END_OP, VALIDATE_OP } from "./protocol.ts";
import { markLogSource } from "./console_capture.ts";
import { convexErrorData, formatUncaught, isConvexError, syscallFailure } from "./error_format.ts";
import {
  componentModulesUrl,
  currentExecution,
  currentFrame,
  type Execution,
  type Frame,
  functionName,
  runInFrame,
  SerialQueue,
} from "./execution_state.ts";
import { checkKind, loadFunction, type RegisteredFunction, resolveFunctionPath } from "./functions.ts";
import { displayUdfPath, handleOf, resolveCallAddress, type ResolvedCallAddress } from "../call_address.ts";

/** Deepest chain of nested calls. */
export const MAX_NESTED_DEPTH = 8;

/**
 * A synchronous call to the transaction on the runner's main thread (throws on failure), in the namespace of
 * `componentPath` (default: the calling frame's component).
 */
export type TransactionCall = (op: string, argsJson: string, componentPath?: string) => string;

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
  let target: ResolvedCallAddress;
  try {
    target = resolveCallAddress(parent.componentPath, request);
  } catch (error) {
    return Promise.reject(syscallFailure(error instanceof Error ? error.message : String(error)));
  }
  // Sibling calls are serialized: the transaction's savepoints form a stack.
  return parent.children.run(() =>
    runNested(execution, parent, udfType === "mutation" ? "mutation" : "query", target, request, call)
  );
}

/**
 * `1.0/createFunctionHandle`: the handle string (as JSON) of the address in `argsJson`, resolved against the calling
 * frame's component. The function must exist (and be public when named through a child reference), as in Convex.
 */
export async function createFunctionHandle(argsJson: string): Promise<string> {
  const execution = currentExecution();
  const frame = currentFrame();
  if (execution === null || frame === null) throw syscallFailure("No function is running");
  let target: ResolvedCallAddress;
  try {
    target = resolveCallAddress(frame.componentPath, JSON.parse(argsJson) as RunUdfArgs);
  } catch (error) {
    throw syscallFailure(error instanceof Error ? error.message : String(error));
  }
  await findFunction(execution, frame, target);
  return JSON.stringify(handleOf(target));
}

/** Schedule ops whose target a child reference may name. */
const SCHEDULE_OPS: ReadonlySet<string> = new Set(["1.0/schedule", "1.0/actions/schedule"]);

/**
 * For a schedule op naming its function through a child reference (`components.x.mod.fn`): resolves when that
 * function exists and is public, and rejects with the "not found" error of a direct call otherwise, since a parent
 * reaches only its children's public functions however it calls them. Null for every other syscall (nothing to check;
 * names stay in the caller's component and handles may name any function).
 */
export function checkScheduledReference(op: string, argsJson: string): Promise<void> | null {
  if (!SCHEDULE_OPS.has(op)) return null;
  const execution = currentExecution();
  const frame = currentFrame();
  if (execution === null || frame === null) return null;
  let target: ResolvedCallAddress;
  try {
    const address = JSON.parse(argsJson) as RunUdfArgs;
    if (typeof address.reference !== "string") return null;
    target = resolveCallAddress(frame.componentPath, address);
  } catch {
    return null; // The scheduler reports a malformed address itself.
  }
  return findFunction(execution, frame, target).then(() => {});
}

/** The registered function `target` names, seen from `caller`; a missing or hidden one fails as "not found". */
async function findFunction(
  execution: Execution,
  caller: Frame,
  target: ResolvedCallAddress,
): Promise<{ fn: RegisteredFunction; modulePath: string; exportName: string }> {
  const { modulePath, exportName } = resolveFunctionPath(target.udfPath);
  const modulesUrl = componentModulesUrl(execution.deploymentUrl, target.componentPath);
  const notFound = () =>
    syscallFailure(
      `Could not find public function for '${displayUdfPath(target.componentPath, target.udfPath)}'. ` +
        "Did you forget to run `npx convex dev` or `npx convex deploy`?",
    );
  const crossing = target.componentPath !== caller.componentPath;
  // Loaded as code of the target: module top-level code reads the target component's `process.env`.
  const loading: Frame = {
    ...caller,
    componentPath: target.componentPath,
    functionName: functionName(modulePath, exportName),
    children: new SerialQueue(),
  };
  let fn: RegisteredFunction;
  try {
    fn = await runInFrame(loading, () => loadFunction(modulesUrl, modulePath, exportName));
  } catch (error) {
    // Within a component the loader's message helps; across a boundary the target's modules are not the caller's
    // business (and a component that does not exist has none).
    if (crossing) throw notFound();
    throw syscallFailure(error instanceof Error ? error.message : String(error));
  }
  if (target.publicOnly && fn.isPublic !== true) throw notFound();
  return { fn, modulePath, exportName };
}

async function runNested(
  execution: Execution,
  parent: Frame,
  udfType: "query" | "mutation",
  target: ResolvedCallAddress,
  request: RunUdfArgs,
  call: TransactionCall,
): Promise<string> {
  const { fn, modulePath, exportName } = await findFunction(execution, parent, target);
  checkKind(fn, udfType, `${modulePath}:${exportName}`);
  const args = request.args;
  if (typeof args !== "object" || args === null || Array.isArray(args)) {
    throw syscallFailure(
      "ArgumentValidationError: Expected to receive a single object as the function's argument",
    );
  }
  const componentPath = target.componentPath;
  const argsProblem = validate(call, fn.exportArgs?.() ?? '{"type":"any"}', args, componentPath);
  if (argsProblem !== null) throw syscallFailure(`ArgumentValidationError: ${argsProblem}`);

  const frame: Frame = {
    udfType,
    componentPath,
    functionName: functionName(modulePath, exportName),
    depth: parent.depth + 1,
    children: new SerialQueue(),
  };
  const argsJson = JSON.stringify([args]);
  // Lines logged inside another component are that component's function's (the function logs show them so).
  const crossing = componentPath !== parent.componentPath;
  if (crossing) markLogSource(componentPath, `${modulePath}:${exportName}`);
  call(NESTED_BEGIN_OP, "null");
  let commit = false;
  try {
    const resultJson = await runInFrame(
      frame,
      () => udfType === "mutation" ? fn.invokeMutation!(argsJson) : fn.invokeQuery!(argsJson),
    );
    const returns = fn.exportReturns?.() ?? "null";
    if (returns !== "null") {
      const returnsProblem = validate(call, returns, JSON.parse(resultJson), componentPath);
      if (returnsProblem !== null) throw syscallFailure(`ReturnsValidationError: ${returnsProblem}`);
    }
    commit = true;
    return resultJson;
  } catch (error) {
    if (isConvexError(error)) throw syscallFailure(error.message, convexErrorData(error));
    // The caller sees the callee's failure as Convex reports it (`Uncaught Error: …` with its frames), so an
    // uncaught rethrow reads `Uncaught Error: Uncaught Error: …`, one level per call, as on Convex.
    throw syscallFailure(formatUncaught(error, execution.deploymentUrl).errorMessage);
  } finally {
    call(NESTED_END_OP, commit ? "true" : "false");
    if (crossing) markLogSource(parent.componentPath, udfPathOfFrame(parent));
  }
}

/** `dir/mod.js:fn` of a frame, from its display name (`dir/mod:fn`, or `dir/mod` for a default export). */
function udfPathOfFrame(frame: Frame): string {
  const colon = frame.functionName.lastIndexOf(":");
  return colon === -1
    ? `${frame.functionName}.js:default`
    : `${frame.functionName.slice(0, colon)}.js:${frame.functionName.slice(colon + 1)}`;
}

/**
 * Validates `value` (convex-JSON) against validator JSON text on the main thread, which knows the catalog; `v.id(t)`
 * names a table of `componentPath`.
 */
function validate(
  call: TransactionCall,
  validatorJson: string,
  value: JsonValue,
  componentPath: string,
): string | null {
  if (validatorJson === '{"type":"any"}') return null;
  const argsJson = JSON.stringify({ validator: JSON.parse(validatorJson), value });
  return JSON.parse(call(VALIDATE_OP, argsJson, componentPath)) as
    | string
    | null;
}
