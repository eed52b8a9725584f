/**
 * The filter expression evaluator of serialized queries (convex-compat.md §4.5), with Convex comparison semantics:
 * comparisons use the total order of values, so a missing field (undefined) is comparable.
 */
import { compareValues, getFieldPath, type Value } from "../values/mod.ts";
import { decodeLiteral } from "./index_range.ts";
import { SyscallError } from "./types.ts";

/** A compiled expression: evaluates against one document. */
export type CompiledExpression = (document: Value) => Value | undefined;

const MAX_EXPRESSION_DEPTH = 64;

function filterError(message: string): SyscallError {
  return new SyscallError("InvalidFilter", `Invalid filter expression: ${message}`);
}

type Arithmetic = (a: number, b: number) => number;
type BigArithmetic = (a: bigint, b: bigint) => bigint;

function arithmetic(op: string, number: Arithmetic, big: BigArithmetic): (a: unknown, b: unknown) => Value {
  return (a, b) => {
    if (typeof a === "number" && typeof b === "number") return number(a, b);
    if (typeof a === "bigint" && typeof b === "bigint") {
      const result = big(a, b);
      return BigInt.asIntN(64, result);
    }
    throw new SyscallError(
      "InvalidFilter",
      `${op} needs two numbers of the same type (float64 with float64, int64 with int64), got ${describe(a)} and ${
        describe(b)
      }`,
    );
  };
}

function describe(value: unknown): string {
  if (value === undefined) return "undefined";
  if (typeof value === "bigint") return `int64 ${value}`;
  if (typeof value === "number") return `float64 ${value}`;
  return typeof value;
}

const ARITHMETIC: Record<string, (a: unknown, b: unknown) => Value> = {
  $add: arithmetic("$add", (a, b) => a + b, (a, b) => a + b),
  $sub: arithmetic("$sub", (a, b) => a - b, (a, b) => a - b),
  $mul: arithmetic("$mul", (a, b) => a * b, (a, b) => a * b),
  $div: arithmetic("$div", (a, b) => a / b, (a, b) => {
    if (b === 0n) throw new SyscallError("InvalidFilter", "$div: int64 division by zero");
    return a / b;
  }),
  $mod: arithmetic("$mod", (a, b) => a % b, (a, b) => {
    if (b === 0n) throw new SyscallError("InvalidFilter", "$mod: int64 division by zero");
    return a % b;
  }),
};

const COMPARISONS: Record<string, (order: number) => boolean> = {
  $eq: (order) => order === 0,
  $neq: (order) => order !== 0,
  $lt: (order) => order < 0,
  $lte: (order) => order <= 0,
  $gt: (order) => order > 0,
  $gte: (order) => order >= 0,
};

/** Compiles a filter expression once so evaluating it per document allocates little. */
export function compileExpression(json: unknown, depth = 0): CompiledExpression {
  if (depth > MAX_EXPRESSION_DEPTH) throw filterError(`nested deeper than ${MAX_EXPRESSION_DEPTH}`);
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw filterError(`expected an object like {"$eq": [..]}, got ${JSON.stringify(json)}`);
  }
  const keys = Object.keys(json);
  if (keys.length !== 1) throw filterError(`expected exactly one operator, got ${JSON.stringify(keys)}`);
  const op = keys[0];
  const operand = (json as Record<string, unknown>)[op];
  if (op === "$field") {
    if (typeof operand !== "string") throw filterError("$field takes a field path string");
    return (document) => getFieldPath(document, operand);
  }
  if (op === "$literal") {
    const value = decodeLiteral(operand);
    return () => value;
  }
  if (op === "$not" || op === "$neg") {
    const inner = compileExpression(operand, depth + 1);
    if (op === "$not") {
      return (document) => {
        const value = inner(document);
        if (typeof value !== "boolean") throw new SyscallError("InvalidFilter", `$not needs a boolean`);
        return !value;
      };
    }
    return (document) => {
      const value = inner(document);
      if (typeof value === "number") return -value;
      if (typeof value === "bigint") return BigInt.asIntN(64, -value);
      throw new SyscallError("InvalidFilter", `$neg needs a number, got ${describe(value)}`);
    };
  }
  if (op === "$and" || op === "$or") {
    if (!Array.isArray(operand)) throw filterError(`${op} takes an array`);
    const parts = operand.map((part) => compileExpression(part, depth + 1));
    const isAnd = op === "$and";
    return (document) => {
      for (const part of parts) {
        const value = part(document);
        if (typeof value !== "boolean") throw new SyscallError("InvalidFilter", `${op} needs booleans`);
        if (isAnd ? !value : value) return !isAnd;
      }
      return isAnd;
    };
  }
  const comparison = COMPARISONS[op];
  const arithmeticOp = ARITHMETIC[op];
  if (!comparison && !arithmeticOp) throw filterError(`unknown operator ${JSON.stringify(op)}`);
  if (!Array.isArray(operand) || operand.length !== 2) throw filterError(`${op} takes an array of two expressions`);
  const left = compileExpression(operand[0], depth + 1);
  const right = compileExpression(operand[1], depth + 1);
  if (comparison) return (document) => comparison(compareValues(left(document), right(document)));
  return (document) => arithmeticOp(left(document), right(document));
}
