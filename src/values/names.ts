/** Field names and table names (convex-compat.md §1.3). */
import { ValueError } from "./errors.ts";

/** Longest object field name, in characters (all ASCII, so also bytes). */
export const MAX_FIELD_NAME_LENGTH = 1024;
/** Longest identifier (table name, module path component), in characters. */
export const MAX_IDENTIFIER_LENGTH = 64;

/**
 * Why `name` cannot be an object field name, or null if it can: non-empty, not starting with `$`, only printable
 * ASCII (32..126), at most 1024 characters. Returns a message instead of throwing so hot paths pay nothing when valid.
 */
export function fieldNameProblem(name: string): string | null {
  const length = name.length;
  if (length === 0) return "Field name cannot be empty";
  if (length > MAX_FIELD_NAME_LENGTH) {
    return `Field name is too long (${length} > maximum ${MAX_FIELD_NAME_LENGTH})`;
  }
  if (name.charCodeAt(0) === 0x24 /* $ */) return `Field name ${name} starts with '$', which is reserved.`;
  for (let i = 0; i < length; i++) {
    const code = name.charCodeAt(i);
    if (code < 32 || code > 126) {
      return `Field name ${name} has invalid character ${
        JSON.stringify(String.fromCodePoint(name.codePointAt(i)!))
      }: Field names can only contain non-control ASCII characters`;
    }
  }
  return null;
}

/** Throws a ValueError unless `name` is a valid object field name (see {@link fieldNameProblem}). */
export function checkFieldName(name: string): void {
  const problem = fieldNameProblem(name);
  if (problem !== null) throw new ValueError(problem);
}

function isIdentifierStart(code: number): boolean {
  return (code >= 65 && code <= 90) || (code >= 97 && code <= 122) || code === 95;
}

function isIdentifierPart(code: number): boolean {
  return isIdentifierStart(code) || (code >= 48 && code <= 57);
}

/**
 * Why `name` is not an identifier (`[A-Za-z_][A-Za-z0-9_]*`, at most 64 characters, not all underscores), or null if
 * it is one. `what` names the kind of identifier in the message, e.g. "table name".
 */
export function identifierProblem(name: string, what: string): string | null {
  const quoted = JSON.stringify(name);
  const length = name.length;
  if (length === 0) return `Invalid ${what} ${quoted}: it cannot be empty.`;
  if (length > MAX_IDENTIFIER_LENGTH) {
    return `Invalid ${what} ${quoted}: it is too long (${length} > maximum ${MAX_IDENTIFIER_LENGTH} characters).`;
  }
  if (!isIdentifierStart(name.charCodeAt(0))) {
    return `Invalid ${what} ${quoted}: it must start with a letter or an underscore.`;
  }
  let allUnderscores = name.charCodeAt(0) === 95;
  for (let i = 1; i < length; i++) {
    const code = name.charCodeAt(i);
    if (!isIdentifierPart(code)) {
      const character = JSON.stringify(String.fromCodePoint(name.codePointAt(i)!));
      return `Invalid ${what} ${quoted}: invalid character ${character}; only letters, digits and underscores are allowed.`;
    }
    if (code !== 95) allUnderscores = false;
  }
  if (allUnderscores) return `Invalid ${what} ${quoted}: it cannot consist only of underscores.`;
  return null;
}

/**
 * Throws a ValueError naming the table unless `name` is a valid table name: `[A-Za-z_][A-Za-z0-9_]*`, at most 64
 * characters, not all underscores. System table names (leading `_`) pass.
 */
export function checkTableName(name: string): void {
  const problem = identifierProblem(name, "table name");
  if (problem !== null) throw new ValueError(problem);
}

/**
 * Like {@link checkTableName}, and the table must not be a system table (leading `_`): user code cannot write there.
 */
export function checkUserTableName(name: string): void {
  checkTableName(name);
  if (name.charCodeAt(0) === 95) {
    throw new ValueError(
      `Invalid table name ${JSON.stringify(name)}: System tables (prefixed with \`_\`) are read-only.`,
    );
  }
}
