/**
 * Checking values against validator JSON (convex-compat.md §1.8), with the official backend's error texts:
 * "Value does not match validator.", "Object is missing the required field `f`. …",
 * "Object contains extra field `f` that is not in the validator.", each with a `Path: .a.b[0]` line, the value and
 * the validator.
 */
import { compareFloats, valuesEqual } from "./compare.ts";
import { ValueError } from "./errors.ts";
import { formatFloat, formatValue } from "./format.ts";
import { jsonToValue } from "./json.ts";
import { isPlainObject, sortedFieldNames } from "./kind.ts";
import { identifierProblem } from "./names.ts";
import type { JsonValue, ValidatorJson, Value } from "./types.ts";

type ObjectValidatorJson = Extract<ValidatorJson, { type: "object" }>;
type FieldValidatorJson = { fieldType: ValidatorJson; optional: boolean };
type ConvexObject = { [field: string]: Value };

/** Decides whether `id` is a document ID of table `tableName`; must return false for any non-ID string. */
export type IsIdOfTable = (id: string, tableName: string) => boolean;

/**
 * Checks `value` (`undefined` = missing) against a validator. Returns null when it passes, else the error message
 * the official backend would give. Object validators reject missing required fields and extra fields; unions pass if
 * any member passes; literals compare exact Convex values; `number` accepts only float64 and `bigint` only int64.
 */
export function validateValue(
  validator: ValidatorJson,
  value: Value | undefined,
  isIdOfTable: IsIdOfTable,
): string | null {
  const failure = check(validator, value, [], isIdOfTable);
  return failure === null ? null : failureMessage(failure);
}

/** Why a value failed; rendered to text only when it reaches the caller, since union members fail routinely. */
type Failure =
  | { kind: "noMatch"; value: Value | undefined; validator: ValidatorJson; path: string }
  | { kind: "literal"; value: Value | undefined; validator: ValidatorJson; path: string }
  | {
    kind: "missingField" | "extraField";
    object: ConvexObject;
    field: string;
    validator: ValidatorJson;
    path: string;
  };

function isConvexObject(value: Value | undefined): value is ConvexObject {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof ArrayBuffer) &&
    isPlainObject(value);
}

function check(
  validator: ValidatorJson,
  value: Value | undefined,
  path: string[],
  isIdOfTable: IsIdOfTable,
): Failure | null {
  let matches: boolean;
  switch (validator.type) {
    case "any":
      matches = value !== undefined;
      break;
    case "null":
      matches = value === null;
      break;
    case "number":
      matches = typeof value === "number";
      break;
    case "bigint":
    case "commitTs": // The placeholder itself never reaches here; what is stored is the int64 it resolves to.
      matches = typeof value === "bigint";
      break;
    case "boolean":
      matches = typeof value === "boolean";
      break;
    case "string":
      matches = typeof value === "string";
      break;
    case "bytes":
      matches = value instanceof ArrayBuffer;
      break;
    case "id":
      matches = typeof value === "string" && isIdOfTable(value, validator.tableName);
      break;
    case "literal":
      if (literalMatches(validator.value, value)) return null;
      return { kind: "literal", value, validator, path: path.join("") };
    case "array":
      if (!Array.isArray(value)) {
        matches = false;
        break;
      }
      for (let i = 0; i < value.length; i++) {
        path.push(`[${i}]`);
        const failure = check(validator.value, value[i], path, isIdOfTable);
        path.pop();
        if (failure !== null) return failure;
      }
      return null;
    case "object":
      if (!isConvexObject(value)) {
        matches = false;
        break;
      }
      return checkObject(validator, value, path, isIdOfTable);
    case "record":
      if (!isConvexObject(value)) {
        matches = false;
        break;
      }
      for (const name of sortedFieldNames(value)) {
        path.push(".keys()");
        const keyFailure = check(validator.keys, name, path, isIdOfTable);
        path.pop();
        if (keyFailure !== null) return keyFailure;
        path.push(".values()");
        const valueFailure = check(validator.values.fieldType, value[name], path, isIdOfTable);
        path.pop();
        if (valueFailure !== null) return valueFailure;
      }
      return null;
    case "union": {
      const members = validator.value;
      // A one-member union reports its member's own error, as the official backend does.
      if (members.length === 1) return check(members[0], value, path, isIdOfTable);
      for (const member of members) if (check(member, value, path, isIdOfTable) === null) return null;
      matches = false;
      break;
    }
    default:
      matches = false;
  }
  return matches ? null : { kind: "noMatch", value, validator, path: path.join("") };
}

function checkObject(
  validator: ObjectValidatorJson,
  object: ConvexObject,
  path: string[],
  isIdOfTable: IsIdOfTable,
): Failure | null {
  const fields = validator.value;
  // Validator fields in sorted order, so the first reported problem is the official one.
  for (const name of sortedValidatorFieldNames(validator)) {
    const fieldValue = Object.hasOwn(object, name) ? object[name] : undefined;
    if (fieldValue === undefined) {
      if (fields[name].optional) continue;
      return { kind: "missingField", object, field: name, validator, path: path.join("") };
    }
    path.push(`.${name}`);
    const failure = check(fields[name].fieldType, fieldValue, path, isIdOfTable);
    path.pop();
    if (failure !== null) return failure;
  }
  for (const name in object) {
    if (object[name] !== undefined && !Object.hasOwn(fields, name)) {
      // Report the first extra field in sorted order; only this failure path pays for the sort.
      const extra = sortedFieldNames(object).find((field) => !Object.hasOwn(fields, field))!;
      return { kind: "extraField", object, field: extra, validator, path: path.join("") };
    }
  }
  return null;
}

// Object validators are checked many times (every write to a table, every call of a function); sort their fields once.
const sortedNamesCache = new WeakMap<object, string[]>();

function sortedValidatorFieldNames(validator: ObjectValidatorJson): string[] {
  let names = sortedNamesCache.get(validator.value);
  if (names === undefined) {
    names = Object.keys(validator.value).sort();
    sortedNamesCache.set(validator.value, names);
  }
  return names;
}

function literalMatches(literal: JsonValue, value: Value | undefined): boolean {
  switch (typeof literal) {
    case "string":
    case "boolean":
      return value === literal;
    case "number":
      return typeof value === "number" && compareFloats(value, literal) === 0;
  }
  // `$integer` / `$float` forms.
  const literalValue = decodeLiteral(literal);
  return literalValue !== undefined && valuesEqual(literalValue, value);
}

function decodeLiteral(literal: JsonValue): Value | undefined {
  try {
    return jsonToValue(literal);
  } catch {
    return undefined;
  }
}

function contextLine(path: string): string {
  return path === "" ? "" : `Path: ${path}`;
}

function failureMessage(failure: Failure): string {
  const context = contextLine(failure.path);
  switch (failure.kind) {
    case "noMatch":
      return `Value does not match validator.\n${context}\nValue: ${formatValue(failure.value)}\nValidator: ${
        formatValidator(failure.validator)
      }`;
    case "literal":
      return `\`${formatValue(failure.value)}\` does not match literal validator \`${
        formatValidator(failure.validator)
      }\`.${context === "" ? "" : `\n${context}`}`;
    case "missingField":
      return `Object is missing the required field \`${failure.field}\`. Consider wrapping the field validator in ` +
        `\`v.optional(...)\` if this is expected.\n${context}\nObject: ${formatValue(failure.object)}\nValidator: ${
          formatValidator(failure.validator)
        }`;
    case "extraField":
      return `Object contains extra field \`${failure.field}\` that is not in the validator.\n${context}\nObject: ${
        formatValue(failure.object)
      }\nValidator: ${formatValidator(failure.validator)}`;
  }
}

/** Renders a validator as the official backend does in messages: `v.object({a: v.optional(v.float64())})`. */
export function formatValidator(validator: ValidatorJson): string {
  switch (validator.type) {
    case "id":
      return `v.id("${validator.tableName}")`;
    case "null":
      return "v.null()";
    case "number":
      return "v.float64()";
    case "bigint":
      return "v.int64()";
    case "commitTs":
      return "v.commitTs()";
    case "boolean":
      return "v.boolean()";
    case "string":
      return "v.string()";
    case "bytes":
      return "v.bytes()";
    case "any":
      return "v.any()";
    case "literal":
      return `v.literal(${formatLiteral(validator.value)})`;
    case "array":
      return `v.array(${formatValidator(validator.value)})`;
    case "record":
      return `v.record(${formatValidator(validator.keys)}, ${formatFieldValidator(validator.values)})`;
    case "object":
      return `v.object({${
        sortedValidatorFieldNames(validator).map((name) => `${name}: ${formatFieldValidator(validator.value[name])}`)
          .join(", ")
      }})`;
    case "union":
      return `v.union(${validator.value.map(formatValidator).join(", ")})`;
  }
  return JSON.stringify(validator);
}

function formatFieldValidator(field: FieldValidatorJson): string {
  return field.optional ? `v.optional(${formatValidator(field.fieldType)})` : formatValidator(field.fieldType);
}

/** A literal as the backend prints it: JSON for strings, booleans and finite floats; `<bigint>`/`<number>` otherwise. */
function formatLiteral(literal: JsonValue): string {
  const value = typeof literal === "object" ? decodeLiteral(literal) : literal;
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "boolean":
      return String(value);
    case "bigint":
      return "<bigint>";
    case "number":
      return Number.isFinite(value) ? formatFloat(value) : "<number>";
  }
  return JSON.stringify(literal);
}

/**
 * Checks that untrusted JSON (a pushed schema, function argument validators) is well-formed validator JSON and
 * returns it typed. Enforces what the backend enforces on push: object field names are identifiers, literals are
 * strings, numbers, int64 or booleans, record keys are `string`, `id`, string literals or unions of those, record
 * values are not optional. Throws a ValueError naming the problem and where it is.
 */
export function parseValidatorJson(json: unknown): ValidatorJson {
  checkValidatorJson(json, "");
  return json as ValidatorJson;
}

function invalidValidator(where: string, problem: string): ValueError {
  return new ValueError(`Invalid validator${where === "" ? "" : ` at ${where}`}: ${problem}`);
}

function checkValidatorJson(json: unknown, where: string): void {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw invalidValidator(where, "expected an object with a `type`.");
  }
  const validator = json as Record<string, unknown>;
  switch (validator.type) {
    case "null":
    case "number":
    case "bigint":
    case "boolean":
    case "string":
    case "bytes":
    case "any":
    case "commitTs":
      return;
    case "id":
      if (typeof validator.tableName !== "string") throw invalidValidator(where, "`id` needs a string `tableName`.");
      return;
    case "literal":
      checkLiteral(validator.value as JsonValue, where);
      return;
    case "array":
      checkValidatorJson(validator.value, `${where}[]`);
      return;
    case "object": {
      const fields = validator.value;
      if (typeof fields !== "object" || fields === null || Array.isArray(fields)) {
        throw invalidValidator(where, "`object` needs a `value` object of fields.");
      }
      for (const [name, field] of Object.entries(fields)) {
        const problem = identifierProblem(name, "field name");
        if (problem !== null) throw invalidValidator(where, problem);
        checkFieldValidatorJson(field, `${where}.${name}`);
      }
      return;
    }
    case "record": {
      checkValidatorJson(validator.keys, `${where}.keys()`);
      if (!isRecordKeyValidator(validator.keys as ValidatorJson)) {
        throw invalidValidator(
          where,
          "record keys must be `v.string()`, `v.id(...)`, string literals or a union of those.",
        );
      }
      checkFieldValidatorJson(validator.values, `${where}.values()`);
      if ((validator.values as FieldValidatorJson).optional) {
        throw invalidValidator(where, "record values cannot be optional.");
      }
      return;
    }
    case "union":
      if (!Array.isArray(validator.value)) throw invalidValidator(where, "`union` needs a `value` array.");
      for (const member of validator.value) checkValidatorJson(member, where);
      return;
  }
  throw invalidValidator(where, `unknown validator type ${JSON.stringify(validator.type)}.`);
}

function checkFieldValidatorJson(json: unknown, where: string): void {
  if (typeof json !== "object" || json === null || typeof (json as FieldValidatorJson).optional !== "boolean") {
    throw invalidValidator(where, "expected `{fieldType, optional}`.");
  }
  checkValidatorJson((json as FieldValidatorJson).fieldType, where);
}

function checkLiteral(literal: JsonValue, where: string): void {
  if (typeof literal === "string" || typeof literal === "boolean" || typeof literal === "number") return;
  const value = typeof literal === "object" && literal !== null ? decodeLiteral(literal) : undefined;
  if (typeof value === "bigint" || typeof value === "number") return;
  throw invalidValidator(where, "a literal must be a string, number, bigint or boolean.");
}

function isRecordKeyValidator(validator: ValidatorJson): boolean {
  switch (validator.type) {
    case "string":
    case "id":
      return true;
    case "literal":
      return typeof validator.value === "string";
    case "union":
      return validator.value.every(isRecordKeyValidator);
  }
  return false;
}
