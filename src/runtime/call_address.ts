/**
 * Where a call across functions goes. `convex/server`'s `getFunctionAddress` turns every function reference into one
 * of three address kinds (components design §2): `{name}` (a function of the caller's own component),
 * `{reference: "_reference/childComponent/<child>/<module…>/<export>"}` (a function of one of the caller's children)
 * and `{functionHandle: "function://<path>;<module.js:export>"}` (any function, handed over as a string). All three
 * resolve here, relative to the calling component, for the worker (nested calls, handles) and the executor (actions'
 * calls, the scheduler) alike.
 */
import { type ComponentPath, functionHandle, parseChildReference, parseFunctionHandle } from "../components/mod.ts";
import { resolveFunctionPath } from "./worker/functions.ts";

/** The address fields a syscall carries (exactly one is set by convex/server). */
export interface CallAddress {
  name?: unknown;
  reference?: unknown;
  functionHandle?: unknown;
}

/** A resolved address: the target instance, its canonical udf path, and whether only public functions qualify. */
export interface ResolvedCallAddress {
  componentPath: ComponentPath;
  /** `dir/module.js:export`. */
  udfPath: string;
  /**
   * True when the call crosses into a child through a reference: a parent reaches only its children's public
   * functions. Calls by name stay inside the caller's component, and a handle may name any function (that is what
   * handles are for), so both may reach internal functions.
   */
  publicOnly: boolean;
}

/** A malformed or missing address; the message is the user-facing error. */
export class CallAddressError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CallAddressError";
  }
}

/** `messages` / `messages:list` / `dir/file.js:fn` → `messages.js:default` / `messages.js:list` / `dir/file.js:fn`. */
export function canonicalUdfPath(name: string): string {
  const { modulePath, exportName } = resolveFunctionPath(name);
  return `${modulePath}:${exportName}`;
}

/** The path of `callerPath`'s child `child`. */
export function childComponentPath(callerPath: ComponentPath, child: string): ComponentPath {
  return callerPath === "" ? child : `${callerPath}/${child}`;
}

/** Resolves `address` as a call from a function of `callerPath`; throws `CallAddressError` when it names nothing. */
export function resolveCallAddress(callerPath: ComponentPath, address: CallAddress): ResolvedCallAddress {
  if (typeof address.name === "string" && address.name !== "") {
    return { componentPath: callerPath, udfPath: canonicalUdfPath(address.name), publicOnly: false };
  }
  if (typeof address.reference === "string") {
    const child = parseChildReference(address.reference);
    if (child === null) throw new CallAddressError(`Invalid function reference ${JSON.stringify(address.reference)}`);
    return { componentPath: childComponentPath(callerPath, child.child), udfPath: child.udfPath, publicOnly: true };
  }
  if (typeof address.functionHandle === "string") {
    const target = parseFunctionHandle(address.functionHandle);
    if (target === null) {
      throw new CallAddressError(`Invalid function handle ${JSON.stringify(address.functionHandle)}`);
    }
    return { componentPath: target.componentPath, udfPath: canonicalUdfPath(target.udfPath), publicOnly: false };
  }
  throw new CallAddressError("The call names no function (expected a name, a reference or a function handle)");
}

/** The handle string of a resolved address (`1.0/createFunctionHandle`). */
export function handleOf(address: ResolvedCallAddress): string {
  return functionHandle({ componentPath: address.componentPath, udfPath: address.udfPath });
}

/** `dir/module.js:export` → `dir/module:export` as error messages and logs show it (the default export: `dir/module`). */
export function displayUdfPath(componentPath: ComponentPath, udfPath: string): string {
  const colon = udfPath.lastIndexOf(":");
  const module = udfPath.slice(0, colon).replace(/\.js$/, "");
  const exportName = udfPath.slice(colon + 1);
  const local = exportName === "default" ? module : `${module}:${exportName}`;
  return componentPath === "" ? local : `${componentPath}/${local}`;
}
