/**
 * Index keys of documents and the key ranges of `IndexRange` query sources (convex-compat.md §4.5).
 */
import { encodeIndexKey, getFieldPath, jsonToValue, prefixSuccessor, type Value } from "../values/mod.ts";
import { indexKeyFields } from "./catalog.ts";
import type { IndexInfo } from "./types.ts";
import { SyscallError } from "./types.ts";

/** The largest Int64: what a `$commitTs` placeholder compares as. */
const INT64_MAX = (1n << 63n) - 1n;

/** A half-open key range `[lowKey, highKey)`; `highKey === null` is unbounded. */
export interface KeyRange {
  lowKey: Uint8Array;
  highKey: Uint8Array | null;
}

/** The key of `document` in `index`. */
export function documentIndexKey(index: IndexInfo, document: Value): Uint8Array {
  const fields = indexKeyFields(index);
  const values: (Value | undefined)[] = new Array(fields.length);
  for (let i = 0; i < fields.length; i++) values[i] = getFieldPath(document, fields[i]);
  return encodeIndexKey(values);
}

/** The smallest key strictly greater than `key` (keys are unique per document, so this bounds one entry). */
export function keyAfter(key: Uint8Array): Uint8Array {
  const next = new Uint8Array(key.length + 1);
  next.set(key);
  return next;
}

/** The range holding exactly `key`. */
export function pointRange(key: Uint8Array): KeyRange {
  return { lowKey: key, highKey: keyAfter(key) };
}

/** One `RangeExpr` of a serialized query. */
export interface RangeExpression {
  type: "Eq" | "Gt" | "Gte" | "Lt" | "Lte";
  fieldPath: string;
  value: unknown;
}

/** Decodes a range or filter literal: convex-JSON, `{"$undefined":null}` (missing) or `{"$commitTs":null}`. */
export function decodeLiteral(json: unknown): Value | undefined {
  if (json !== null && typeof json === "object" && !Array.isArray(json)) {
    const keys = Object.keys(json);
    if (keys.length === 1 && keys[0] === "$undefined") return undefined;
    if (keys.length === 1 && keys[0] === "$commitTs") return INT64_MAX;
  }
  // deno-lint-ignore no-explicit-any
  return jsonToValue(json as any);
}

/** Convex's message for a query on an index the schema declares with `staged: true`. */
export function stagedIndexMessage(indexName: string): string {
  return `Index ${indexName} is currently staged and not available to query until it is enabled`;
}

function rangeError(indexName: string, message: string): SyscallError {
  return new SyscallError("InvalidIndexRange", `Invalid index range for index ${indexName}: ${message}`);
}

/**
 * Compiles `range` over `index` into a key range. Valid ranges are: `Eq` on a prefix of the index fields in order,
 * then at most one lower bound (`Gt`/`Gte`) and one upper bound (`Lt`/`Lte`) on the next field.
 */
export function compileIndexRange(index: IndexInfo, range: RangeExpression[]): KeyRange {
  if (index.staged === true) throw new SyscallError("IndexStaged", stagedIndexMessage(index.name));
  if (!Array.isArray(range)) throw rangeError(index.name, "the range must be an array");
  const fields = indexKeyFields(index);
  const equalities: (Value | undefined)[] = [];
  let lower: { inclusive: boolean; value: Value | undefined } | null = null;
  let upper: { inclusive: boolean; value: Value | undefined } | null = null;
  let boundField: string | null = null;
  for (const expression of range) {
    if (!expression || typeof expression !== "object" || typeof expression.fieldPath !== "string") {
      throw rangeError(index.name, "each range expression needs a type, a fieldPath and a value");
    }
    const value = decodeLiteral(expression.value);
    if (expression.type === "Eq") {
      if (boundField !== null) {
        throw rangeError(index.name, `equality on "${expression.fieldPath}" after a bound on "${boundField}"`);
      }
      const expected = fields[equalities.length];
      if (expression.fieldPath !== expected) {
        throw rangeError(
          index.name,
          `expected a condition on "${expected ?? "(no more fields)"}" but got "${expression.fieldPath}"; ` +
            `index fields are ${JSON.stringify(fields)} and must be used in order`,
        );
      }
      equalities.push(value);
      continue;
    }
    const expected = fields[equalities.length];
    if (expression.fieldPath !== expected || (boundField !== null && boundField !== expression.fieldPath)) {
      throw rangeError(
        index.name,
        `a bound must be on the field after the equalities ("${expected ?? "(none)"}"), got "${expression.fieldPath}"`,
      );
    }
    boundField = expression.fieldPath;
    if (expression.type === "Gt" || expression.type === "Gte") {
      if (lower) throw rangeError(index.name, `two lower bounds on "${expression.fieldPath}"`);
      lower = { inclusive: expression.type === "Gte", value };
    } else if (expression.type === "Lt" || expression.type === "Lte") {
      if (upper) throw rangeError(index.name, `two upper bounds on "${expression.fieldPath}"`);
      upper = { inclusive: expression.type === "Lte", value };
    } else {
      throw rangeError(index.name, `unknown range expression type ${JSON.stringify(expression.type)}`);
    }
  }
  const prefix = encodeIndexKey(equalities);
  let lowKey = prefix;
  let highKey = prefixSuccessor(prefix);
  if (lower) {
    const bound = encodeIndexKey([...equalities, lower.value]);
    const after = prefixSuccessor(bound);
    lowKey = lower.inclusive ? bound : (after ?? bound);
  }
  if (upper) {
    const bound = encodeIndexKey([...equalities, upper.value]);
    highKey = upper.inclusive ? prefixSuccessor(bound) : bound;
  }
  return { lowKey, highKey };
}

/**
 * The pseudo-index whose keys are table names: a read of a table that does not exist records its name here, and
 * creating the table writes it (no real index has ID 0).
 */
export const TABLE_EXISTENCE_INDEX_ID = 0;

/** The key of `tableName` in the table-existence pseudo-index. */
export function tableExistenceKey(tableName: string, componentPath = ""): Uint8Array {
  // The app's keys stay as they were; a component's carry its path (same name, other namespace, other key).
  return encodeIndexKey(componentPath === "" ? [tableName] : [componentPath, tableName]);
}
