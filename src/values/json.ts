/**
 * convex-JSON (convex-compat.md §1.1): the JSON form of Convex values used on every wire and in storage.
 * Int64 → `{"$integer": base64(8 bytes LE)}`, special floats (NaN, ±Infinity, -0) → `{"$float": base64(8 bytes LE)}`,
 * bytes → `{"$bytes": base64}`; everything else is plain JSON with object keys sorted.
 */
import { decodeBase64, decodeBase64To8Bytes, encodeBase64, float64ToBase64, int64ToBase64 } from "./base64.ts";
import { ValueError } from "./errors.ts";
import { describeNonValue, isInt64, isPlainObject, sortKeys } from "./kind.ts";
import { MAX_VALUE_NESTING } from "./limits.ts";
import { fieldNameProblem } from "./names.ts";
import type { JsonValue, Value } from "./types.ts";

/** True for the floats that convex-JSON cannot write as a plain number: NaN, ±Infinity and -0. */
export function isSpecialFloat(n: number): boolean {
  // NaN fails both comparisons, ±Infinity fails the first; -0 passes but has a negative reciprocal.
  return !(n > -Infinity && n < Infinity) || (n === 0 && 1 / n < 0);
}

function tooNested(): ValueError {
  return new ValueError(
    `Value is too nested (more than ${MAX_VALUE_NESTING} levels deep > maximum nesting ${MAX_VALUE_NESTING})`,
  );
}

/** Defines `object[name] = value` without invoking the `__proto__` setter, so a field named "__proto__" stays data. */
function setField(object: { [field: string]: Value }, name: string, value: Value): void {
  if (name === "__proto__") {
    Object.defineProperty(object, name, { value, writable: true, enumerable: true, configurable: true });
  } else {
    object[name] = value;
  }
}

/**
 * Decodes convex-JSON into a Convex value. Rejects `$set`/`$map`, `$undefined`, `$commitTs`, malformed special forms
 * (wrong length, `$float` holding an ordinary number) and invalid field names with a ValueError.
 */
export function jsonToValue(json: JsonValue): Value {
  return decode(json, 0);
}

/** Like {@link jsonToValue}, but a top-level `{"$undefined": null}` decodes to `undefined` (a missing field). */
export function jsonToValueOrUndefined(json: JsonValue): Value | undefined {
  if (isUndefinedMarker(json)) return undefined;
  return decode(json, 0);
}

function isUndefinedMarker(json: JsonValue): boolean {
  if (typeof json !== "object" || json === null || Array.isArray(json)) return false;
  for (const key in json) if (key !== "$undefined") return false;
  return Object.hasOwn(json, "$undefined");
}

function decode(json: JsonValue, depth: number): Value {
  switch (typeof json) {
    case "string":
    case "number":
    case "boolean":
      return json;
    case "object": {
      if (json === null) return null;
      if (depth >= MAX_VALUE_NESTING) throw tooNested();
      if (Array.isArray(json)) {
        const length = json.length;
        const out: Value[] = new Array(length);
        for (let i = 0; i < length; i++) out[i] = decode(json[i], depth + 1);
        return out;
      }
      const keys = Object.keys(json);
      if (keys.length === 1 && keys[0].charCodeAt(0) === 0x24 /* $ */) return decodeSpecial(keys[0], json[keys[0]]);
      const out: { [field: string]: Value } = {};
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i];
        const problem = fieldNameProblem(key);
        if (problem !== null) throw new ValueError(problem);
        setField(out, key, decode(json[key], depth + 1));
      }
      return out;
    }
  }
  throw new ValueError(`Unexpected type of ${describeNonValue(json)} in convex-JSON.`);
}

function decodeSpecial(key: string, payload: JsonValue): Value {
  switch (key) {
    case "$bytes":
      if (typeof payload !== "string") throw new ValueError("Malformed $bytes field: expected a base64 string.");
      return decodeBase64(payload).buffer as ArrayBuffer;
    case "$integer":
      if (typeof payload !== "string") throw new ValueError("Malformed $integer field: expected a base64 string.");
      return decodeBase64To8Bytes(payload, "$integer").getBigInt64(0, true);
    case "$float": {
      if (typeof payload !== "string") throw new ValueError("Malformed $float field: expected a base64 string.");
      const n = decodeBase64To8Bytes(payload, "$float").getFloat64(0, true);
      if (!isSpecialFloat(n)) throw new ValueError(`Float ${n} should be encoded as a number`);
      return n;
    }
    case "$set":
      throw new ValueError("Received a Set which is no longer supported as a Convex type.");
    case "$map":
      throw new ValueError("Received a Map which is no longer supported as a Convex type.");
    case "$undefined":
      throw new ValueError("undefined is not a valid Convex value here.");
    case "$commitTs":
      throw new ValueError("A commit-timestamp placeholder ($commitTs) is not a valid Convex value here.");
  }
  // Any other `$` key: the field-name check rejects it with the usual message.
  throw new ValueError(fieldNameProblem(key)!);
}

/**
 * Encodes a Convex value as convex-JSON: object keys sorted, fields holding `undefined` dropped, NaN/±Infinity/-0 as
 * `$float`. Throws a ValueError for bigints outside int64, `undefined` in arrays, invalid field names and non-values.
 */
export function valueToJson(value: Value): JsonValue {
  if (value === undefined) throw new ValueError("undefined is not a valid Convex value.");
  return encode(value, 0);
}

/** Like {@link valueToJson}, but a top-level `undefined` becomes `{"$undefined": null}` (filter literals, patches). */
export function valueOrUndefinedToJson(value: Value | undefined): JsonValue {
  if (value === undefined) return { $undefined: null };
  return encode(value, 0);
}

function encode(value: Value, depth: number): JsonValue {
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      return isSpecialFloat(value) ? { $float: float64ToBase64(value) } : value;
    case "bigint":
      if (!isInt64(value)) throw new ValueError(`BigInt ${value} does not fit into a 64-bit signed integer.`);
      return { $integer: int64ToBase64(value) };
    case "object": {
      if (value === null) return null;
      if (depth >= MAX_VALUE_NESTING) throw tooNested();
      if (Array.isArray(value)) {
        const length = value.length;
        const out: JsonValue[] = new Array(length);
        for (let i = 0; i < length; i++) {
          const element = value[i];
          if (element === undefined) throw new ValueError("undefined is not a valid Convex value (in an array).");
          out[i] = encode(element, depth + 1);
        }
        return out;
      }
      if (value instanceof ArrayBuffer) return { $bytes: encodeBase64(new Uint8Array(value)) };
      if (!isPlainObject(value)) break;
      const keys = sortKeys(Object.keys(value));
      const out: { [field: string]: JsonValue } = {};
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i];
        const field = value[key];
        if (field === undefined) continue;
        const problem = fieldNameProblem(key);
        if (problem !== null) throw new ValueError(problem);
        if (key === "__proto__") {
          Object.defineProperty(out, key, {
            value: encode(field, depth + 1),
            writable: true,
            enumerable: true,
            configurable: true,
          });
        } else {
          out[key] = encode(field, depth + 1);
        }
      }
      return out;
    }
  }
  throw new ValueError(`${describeNonValue(value)} is not a supported Convex type.`);
}

/** Parses convex-JSON text; throws a ValueError for invalid JSON or an invalid value. */
export function parseConvexJsonText(text: string): Value {
  let json: JsonValue;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ValueError(`Invalid JSON: ${(error as Error).message}`);
  }
  // The parsed tree is ours alone, so it is converted in place: only special forms are replaced.
  return decodeOwned(json, 0);
}

/** Like `decode`, but reuses the arrays and objects of `json`, which nobody else references. */
function decodeOwned(json: JsonValue, depth: number): Value {
  if (typeof json !== "object" || json === null) return json;
  if (depth >= MAX_VALUE_NESTING) throw tooNested();
  if (Array.isArray(json)) {
    for (let i = 0; i < json.length; i++) {
      const element = json[i];
      if (typeof element === "object" && element !== null) (json as Value[])[i] = decodeOwned(element, depth + 1);
    }
    return json as Value[];
  }
  const keys = Object.keys(json);
  if (keys.length === 1 && keys[0].charCodeAt(0) === 0x24 /* $ */) return decodeSpecial(keys[0], json[keys[0]]);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    const problem = fieldNameProblem(key);
    if (problem !== null) throw new ValueError(problem);
    const field = json[key];
    // JSON.parse defines "__proto__" as an own data property, so plain assignment below never hits the setter.
    if (typeof field === "object" && field !== null) {
      (json as { [field: string]: Value })[key] = decodeOwned(field, depth + 1);
    }
  }
  return json as { [field: string]: Value };
}

/**
 * Serializes a Convex value as convex-JSON text (keys sorted). Building the JSON tree and letting the native
 * JSON.stringify print it measured faster than printing directly.
 */
export function valueToJsonText(value: Value): string {
  return JSON.stringify(valueToJson(value));
}
