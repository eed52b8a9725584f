/** Reading fields by dotted path ("a.b.c"), as index definitions and filters name them. */
import type { Value } from "./types.ts";

/** The value of field `name` if `value` is a Convex object that has it (own property, never the prototype). */
function childField(value: Value | undefined, name: string): Value | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value) || value instanceof ArrayBuffer) {
    return undefined;
  }
  return Object.hasOwn(value, name) ? value[name] : undefined;
}

/**
 * The value at a dotted field path ("a.b.c") of `value`, or `undefined` when any step is missing or not an object
 * (array elements are not addressable, as in Convex).
 */
export function getFieldPath(value: Value, path: string): Value | undefined {
  let dot = path.indexOf(".");
  if (dot === -1) return childField(value, path);
  let current: Value | undefined = value;
  let start = 0;
  for (;;) {
    current = childField(current, path.slice(start, dot));
    if (current === undefined) return undefined;
    start = dot + 1;
    dot = path.indexOf(".", start);
    if (dot === -1) return childField(current, path.slice(start));
  }
}

/** Like {@link getFieldPath} with the path already split into field names (faster for index fields used often). */
export function getFieldPathParts(value: Value, fieldNames: readonly string[]): Value | undefined {
  let current: Value | undefined = value;
  for (let i = 0; i < fieldNames.length && current !== undefined; i++) current = childField(current, fieldNames[i]);
  return current;
}
