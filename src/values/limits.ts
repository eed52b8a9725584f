/**
 * Size accounting and the structural limits of values and documents (convex-compat.md §1.3, §1.4).
 * One walk checks everything and sums the size, so writes pay for a single traversal.
 */
import { ValueError } from "./errors.ts";
import { describeNonValue, isInt64, isPlainObject } from "./kind.ts";
import { fieldNameProblem } from "./names.ts";
import { utf8ByteLength } from "./strings.ts";
import type { Value } from "./types.ts";

/** Deepest nesting of arrays and objects in any value (a scalar is 0, `[1]` is 1). */
export const MAX_VALUE_NESTING = 64;
/** Deepest nesting of a document (the document object itself is level 1). */
export const MAX_DOCUMENT_NESTING = 16;
/** Most elements in one array. */
export const MAX_ARRAY_LENGTH = 8192;
/** Most fields in one object. */
export const MAX_OBJECT_FIELDS = 1024;
/** Largest document by {@link valueSizeBytes}. */
export const MAX_DOCUMENT_SIZE_BYTES = 1 << 20;
/** Largest value of any kind by {@link valueSizeBytes}. */
export const MAX_VALUE_SIZE_BYTES = 1 << 25;

/**
 * The size of a value by Convex's formula (`values/size.ts`, matching the backend): null and booleans 1, int64 and
 * float64 9, strings 2 + UTF-8 length, bytes 2 + length, arrays 2 + Σ elements, objects 2 + Σ (name length + 1 +
 * value size). Fields holding `undefined` are absent.
 */
export function valueSizeBytes(value: Value): number {
  switch (typeof value) {
    case "string":
      return 2 + utf8ByteLength(value);
    case "number":
    case "bigint":
      return 9;
    case "boolean":
      return 1;
    case "object": {
      if (value === null) return 1;
      if (Array.isArray(value)) {
        let sizeBytes = 2;
        for (let i = 0; i < value.length; i++) sizeBytes += valueSizeBytes(value[i]);
        return sizeBytes;
      }
      if (value instanceof ArrayBuffer) return 2 + value.byteLength;
      let sizeBytes = 2;
      for (const name in value) {
        const field = value[name];
        if (field !== undefined) sizeBytes += utf8ByteLength(name) + 1 + valueSizeBytes(field);
      }
      return sizeBytes;
    }
  }
  throw new ValueError(`${describeNonValue(value)} is not a supported Convex type.`);
}

/** Path segments from the checked root: a field name or an array index. */
type PathSegment = string | number;

/** Formats a path as in validator errors: `.a.b[0]`. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = "";
  for (const segment of path) out += typeof segment === "number" ? `[${segment}]` : `.${segment}`;
  return out;
}

function errorAt(message: string, path: readonly PathSegment[]): ValueError {
  return new ValueError(path.length === 0 ? message : `${message}\nPath: ${formatPath(path)}`);
}

interface WalkLimits {
  maxNesting: number;
  /** "Document" or "Value", for the nesting message. */
  subject: string;
}

const DOCUMENT_LIMITS: WalkLimits = { maxNesting: MAX_DOCUMENT_NESTING, subject: "Document" };
const VALUE_LIMITS: WalkLimits = { maxNesting: MAX_VALUE_NESTING, subject: "Value" };

/** Checks `value` (at nesting `depth`, 0 for the root) against every structural limit; returns its size in bytes. */
function checkedSizeBytes(value: unknown, depth: number, path: PathSegment[], limits: WalkLimits): number {
  switch (typeof value) {
    case "string":
      // Lone surrogates cannot be stored as UTF-8 and would come back as U+FFFD.
      if (!value.isWellFormed()) {
        throw errorAt("String contains an unpaired surrogate, which is not valid Unicode.", path);
      }
      return 2 + utf8ByteLength(value);
    case "number":
      return 9;
    case "bigint":
      if (!isInt64(value)) throw errorAt(`BigInt ${value} does not fit into a 64-bit signed integer.`, path);
      return 9;
    case "boolean":
      return 1;
    case "object": {
      if (value === null) return 1;
      if (value instanceof ArrayBuffer) return 2 + value.byteLength;
      const isArray = Array.isArray(value);
      if (!isArray && !isPlainObject(value)) break;
      if (depth >= limits.maxNesting) {
        throw errorAt(
          `${limits.subject} is too nested (nested at least ${
            depth + 1
          } levels deep > maximum nesting ${limits.maxNesting})`,
          path,
        );
      }
      return isArray
        ? checkedArraySizeBytes(value as unknown[], depth, path, limits)
        : checkedObjectSizeBytes(value as Record<string, unknown>, depth, path, limits);
    }
  }
  throw errorAt(`${describeNonValue(value)} is not a supported Convex type.`, path);
}

function checkedArraySizeBytes(array: unknown[], depth: number, path: PathSegment[], limits: WalkLimits): number {
  if (array.length > MAX_ARRAY_LENGTH) {
    throw errorAt(`Array length is too long (${array.length} > maximum length ${MAX_ARRAY_LENGTH})`, path);
  }
  let sizeBytes = 2;
  for (let i = 0; i < array.length; i++) {
    path.push(i);
    if (array[i] === undefined) throw errorAt("undefined is not a valid Convex value (in an array).", path);
    sizeBytes += checkedSizeBytes(array[i], depth + 1, path, limits);
    path.pop();
  }
  return sizeBytes;
}

function checkedObjectSizeBytes(
  object: Record<string, unknown>,
  depth: number,
  path: PathSegment[],
  limits: WalkLimits,
): number {
  const names = Object.keys(object);
  if (names.length > MAX_OBJECT_FIELDS) {
    let fieldCount = 0;
    for (const name of names) if (object[name] !== undefined) fieldCount++;
    if (fieldCount > MAX_OBJECT_FIELDS) {
      throw errorAt(`Object has too many fields (${fieldCount} > maximum number ${MAX_OBJECT_FIELDS})`, path);
    }
  }
  let sizeBytes = 2;
  for (const name of names) {
    const field = object[name];
    if (field === undefined) continue;
    const problem = fieldNameProblem(name);
    if (problem !== null) throw errorAt(problem, path);
    path.push(name);
    sizeBytes += name.length + 1 + checkedSizeBytes(field, depth + 1, path, limits);
    path.pop();
  }
  return sizeBytes;
}

/**
 * Checks a user document before it is written: an object whose top-level fields do not start with `_` (except `_id`,
 * a string, and `_creationTime`, a number); valid field names everywhere; nesting ≤ 16; arrays ≤ 8192 elements;
 * objects ≤ 1024 fields; size ≤ 1 MiB by {@link valueSizeBytes}, measured on the value as given. Throws a ValueError
 * whose message ends with the offending path (`Path: .a.b[0]`) when there is one.
 */
export function checkDocument(value: Value): void {
  if (typeof value !== "object" || value === null || Array.isArray(value) || value instanceof ArrayBuffer) {
    throw new ValueError(`A document must be an object, not ${describeKind(value)}.`);
  }
  if (!isPlainObject(value)) throw new ValueError(`${describeNonValue(value)} is not a supported Convex type.`);
  for (const name in value) {
    if (name.charCodeAt(0) !== 95 /* _ */ || value[name] === undefined) continue;
    if (name === "_id") {
      if (typeof value[name] !== "string") throw new ValueError("The '_id' field must be an Id (a string).");
    } else if (name === "_creationTime") {
      if (typeof value[name] !== "number") throw new ValueError("The '_creationTime' field must be a float64.");
    } else {
      throw new ValueError(
        `Field '${name}' starts with an underscore, which is only allowed for system fields like '_id'`,
      );
    }
  }
  const sizeBytes = checkedSizeBytes(value, 0, [], DOCUMENT_LIMITS);
  if (sizeBytes > MAX_DOCUMENT_SIZE_BYTES) {
    throw new ValueError(
      `Document is too large (${sizeBytes} bytes > maximum size ${MAX_DOCUMENT_SIZE_BYTES} bytes = 1 MiB)`,
    );
  }
}

/**
 * Checks any value (function arguments, return values, stored non-document values): valid field names, int64 range,
 * nesting ≤ 64, arrays ≤ 8192 elements, objects ≤ 1024 fields, size ≤ 32 MiB. Throws a ValueError with the path.
 */
export function checkValue(value: Value): void {
  if (value === undefined) throw new ValueError("undefined is not a valid Convex value.");
  const sizeBytes = checkedSizeBytes(value, 0, [], VALUE_LIMITS);
  if (sizeBytes > MAX_VALUE_SIZE_BYTES) {
    throw new ValueError(
      `Value is too large (${sizeBytes} bytes > maximum size ${MAX_VALUE_SIZE_BYTES} bytes = 32 MiB)`,
    );
  }
}

function describeKind(value: Value): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (value instanceof ArrayBuffer) return "bytes";
  if (typeof value === "bigint") return "an int64";
  if (typeof value === "number") return "a float64";
  return `a ${typeof value}`;
}
