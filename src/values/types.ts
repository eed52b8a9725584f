/**
 * The Convex value model (convex-compat.md §1). Shared by every layer.
 *
 * `undefined` never appears inside a stored value; it stands for a missing field in comparisons, index keys and
 * filter literals.
 */

/** A Convex value as user code sees it: null, int64 (bigint), float64 (number), boolean, string, bytes, array, object. */
export type Value =
  | null
  | bigint
  | number
  | boolean
  | string
  | ArrayBuffer
  | Value[]
  | { [field: string]: Value };

/** A document: an object with `_id` (string) and `_creationTime` (float64 ms). */
export type DocumentValue = { _id: string; _creationTime: number; [field: string]: Value };

/** The JSON form of a Convex value (convex-JSON, §1.1). */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [field: string]: JsonValue };

/** Validator JSON (convex-compat.md §1.8). */
export type ValidatorJson =
  | { type: "null" | "number" | "bigint" | "boolean" | "string" | "bytes" | "any" | "commitTs" }
  | { type: "literal"; value: JsonValue }
  | { type: "id"; tableName: string }
  | { type: "array"; value: ValidatorJson }
  | { type: "object"; value: Record<string, { fieldType: ValidatorJson; optional: boolean }> }
  | { type: "record"; keys: ValidatorJson; values: { fieldType: ValidatorJson; optional: boolean } }
  | { type: "union"; value: ValidatorJson[] };
