/**
 * Classifying values by type. The numeric kinds follow the total order of convex-compat.md §1.5, so comparing two
 * kinds compares two values of different types.
 */
import { ValueError } from "./errors.ts";
import type { Value } from "./types.ts";

/** A value's type as its rank in the total order: missing < null < int64 < float64 < boolean < string < bytes < array < object. */
export const Kind = {
  Missing: 0,
  Null: 1,
  Int64: 2,
  Float64: 3,
  Boolean: 4,
  String: 5,
  Bytes: 6,
  Array: 7,
  Object: 8,
} as const;

/** One of the {@link Kind} ranks. */
export type Kind = typeof Kind[keyof typeof Kind];

/** The rank of `value`'s type; throws for anything that is not a Convex value (functions, Maps, class instances...). */
export function kindOf(value: Value | undefined): Kind {
  if (value === undefined) return Kind.Missing;
  if (value === null) return Kind.Null;
  switch (typeof value) {
    case "bigint":
      return Kind.Int64;
    case "number":
      return Kind.Float64;
    case "boolean":
      return Kind.Boolean;
    case "string":
      return Kind.String;
    case "object":
      if (Array.isArray(value)) return Kind.Array;
      if (value instanceof ArrayBuffer) return Kind.Bytes;
      if (isPlainObject(value)) return Kind.Object;
  }
  throw new ValueError(`${describeNonValue(value)} is not a supported Convex type.`);
}

/** True for objects created by literals, `JSON.parse` or `Object.create(null)`: the only objects that are Convex objects. */
export function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** A short description of something that is not a Convex value, for error messages. */
export function describeNonValue(value: unknown): string {
  if (value === undefined) return "undefined";
  if (typeof value === "function") return `Function ${value.name || "(anonymous)"}`;
  if (typeof value === "symbol") return value.toString();
  if (typeof value === "object" && value !== null) {
    const name = Object.getPrototypeOf(value)?.constructor?.name;
    return name ? `An object of class ${name}` : "An object";
  }
  return String(value);
}

/**
 * The field names of a Convex object in the canonical order (sorted; fields holding `undefined` count as absent, as
 * in convex-JSON). Field names are ASCII, so JavaScript's default string sort equals UTF-8 byte order here.
 */
export function sortedFieldNames(object: { [field: string]: Value }): string[] {
  let names = Object.keys(object);
  for (let i = 0; i < names.length; i++) {
    if (object[names[i]] === undefined) {
      names = names.filter((name) => object[name] !== undefined);
      break;
    }
  }
  return sortKeys(names);
}

/**
 * Sorts field names in place and returns them. Stored documents already have sorted keys, so a linear check first
 * usually saves the sort.
 */
export function sortKeys(names: string[]): string[] {
  for (let i = 1; i < names.length; i++) {
    if (names[i - 1] > names[i]) return names.sort();
  }
  return names;
}

const MIN_INT64 = -(1n << 63n);
const MAX_INT64 = (1n << 63n) - 1n;

/** True if `n` is in the signed 64-bit range, the only bigints that are Convex int64 values. */
export function isInt64(n: bigint): boolean {
  return n >= MIN_INT64 && n <= MAX_INT64;
}
