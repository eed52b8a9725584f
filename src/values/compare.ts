/**
 * The total order of Convex values (convex-compat.md §1.5):
 * missing < null < int64 < float64 < boolean < string < bytes < array < object.
 * Within float64 the IEEE total order (-Infinity < ... < -0 < 0 < ... < Infinity < NaN; every NaN is one value);
 * strings by UTF-8 bytes; bytes and arrays lexicographically; objects as their sorted (key, value) lists.
 */
import { Kind, kindOf, sortedFieldNames } from "./kind.ts";
import { compareStrings } from "./strings.ts";
import type { Value } from "./types.ts";

/** Compares two values (`undefined` = missing field) in the Convex total order; returns -1, 0 or 1. */
export function compareValues(a: Value | undefined, b: Value | undefined): number {
  // Fast paths for the common same-type scalars, before classifying.
  if (typeof a === "string") {
    if (typeof b === "string") return compareStrings(a, b);
  } else if (typeof a === "number" && typeof b === "number") {
    return compareFloats(a, b);
  }
  const kindA = kindOf(a);
  const kindB = kindOf(b);
  if (kindA !== kindB) return kindA < kindB ? -1 : 1;
  switch (kindA) {
    case Kind.Missing:
    case Kind.Null:
      return 0;
    case Kind.Int64:
      return (a as bigint) < (b as bigint) ? -1 : (a as bigint) > (b as bigint) ? 1 : 0;
    case Kind.Boolean:
      return a === b ? 0 : a ? 1 : -1;
    case Kind.Bytes:
      return compareBytes(new Uint8Array(a as ArrayBuffer), new Uint8Array(b as ArrayBuffer));
    case Kind.Array:
      return compareArrays(a as Value[], b as Value[]);
    case Kind.Object:
      return compareObjects(a as { [field: string]: Value }, b as { [field: string]: Value });
  }
  // Unreachable: strings and numbers returned above.
  return typeof a === "string" ? compareStrings(a, b as string) : compareFloats(a as number, b as number);
}

/** True if two values are equal in the total order: NaN equals NaN, -0 differs from 0, int64 5n differs from 5. */
export function valuesEqual(a: Value | undefined, b: Value | undefined): boolean {
  if (a === b) return typeof a !== "number" || a !== 0 || 1 / a === 1 / (b as number);
  const typeA = typeof a;
  if (typeA !== "object" || typeof b !== "object" || a === null || b === null) {
    // Distinct primitives are unequal, except NaN and NaN.
    return typeA === "number" && a !== a && b !== b;
  }
  return compareValues(a, b) === 0;
}

/** IEEE-754 total order on float64, with all NaNs equal and greatest. */
export function compareFloats(a: number, b: number): number {
  if (a < b) return -1;
  if (a > b) return 1;
  if (a === b) {
    if (a !== 0) return 0;
    // -0 < 0: compare the signs of the reciprocals (-Infinity vs Infinity).
    const negativeA = 1 / a < 0;
    const negativeB = 1 / b < 0;
    return negativeA === negativeB ? 0 : negativeA ? -1 : 1;
  }
  const nanA = a !== a;
  const nanB = b !== b;
  return nanA === nanB ? 0 : nanA ? 1 : -1;
}

/** Unsigned lexicographic comparison of byte strings; a proper prefix sorts first. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const sharedLength = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < sharedLength; i++) {
    const byteA = a[i];
    const byteB = b[i];
    if (byteA !== byteB) return byteA < byteB ? -1 : 1;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}

function compareArrays(a: Value[], b: Value[]): number {
  const sharedLength = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < sharedLength; i++) {
    const order = compareValues(a[i], b[i]);
    if (order !== 0) return order;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}

function compareObjects(a: { [field: string]: Value }, b: { [field: string]: Value }): number {
  const namesA = sortedFieldNames(a);
  const namesB = sortedFieldNames(b);
  const sharedLength = namesA.length < namesB.length ? namesA.length : namesB.length;
  for (let i = 0; i < sharedLength; i++) {
    const nameOrder = compareStrings(namesA[i], namesB[i]);
    if (nameOrder !== 0) return nameOrder;
    const valueOrder = compareValues(a[namesA[i]], b[namesB[i]]);
    if (valueOrder !== 0) return valueOrder;
  }
  return namesA.length < namesB.length ? -1 : namesA.length > namesB.length ? 1 : 0;
}
