/**
 * Function addresses across components. `components.aggregate.btree.count` reaches the server as the reference
 * `_reference/childComponent/aggregate/btree/count` (convex/server `components/paths.ts`), resolved against the calling
 * instance. A function handle is an address serialised as a string that the holder may store and call later:
 * `function://<componentPath>;<module.js:export>`; `;` cannot occur in a path, and the old root-only form
 * `function://<module.js:export>` still reads as the app's.
 */
import type { ComponentPath } from "./types.ts";

const CHILD_REFERENCE_PREFIX = "_reference/childComponent/";
const HANDLE_PREFIX = "function://";

/** A function of a child instance: the child's name and the canonical udf path within it. */
export interface ChildFunctionReference {
  child: string;
  udfPath: string;
}

/** Parses `_reference/childComponent/<child>/<module parts…>/<export>`; null when it is not one. */
export function parseChildReference(reference: string): ChildFunctionReference | null {
  if (!reference.startsWith(CHILD_REFERENCE_PREFIX)) return null;
  const parts = reference.slice(CHILD_REFERENCE_PREFIX.length).split("/");
  if (parts.length < 3 || parts.some((part) => part === "")) return null;
  const [child, ...rest] = parts;
  const exportName = rest.pop()!;
  return { child, udfPath: `${rest.join("/")}.js:${exportName}` };
}

/** A function address: the instance and the canonical udf path (`module.js:export`). */
export interface FunctionAddress {
  componentPath: ComponentPath;
  udfPath: string;
}

/** The handle string of `address`. */
export function functionHandle(address: FunctionAddress): string {
  return `${HANDLE_PREFIX}${address.componentPath};${address.udfPath}`;
}

/** The address a handle names, or null when `handle` is not one. */
export function parseFunctionHandle(handle: string): FunctionAddress | null {
  if (!handle.startsWith(HANDLE_PREFIX)) return null;
  const body = handle.slice(HANDLE_PREFIX.length);
  const separator = body.indexOf(";");
  const address = separator === -1
    ? { componentPath: "", udfPath: body }
    : { componentPath: body.slice(0, separator), udfPath: body.slice(separator + 1) };
  return address.udfPath === "" ? null : address;
}
