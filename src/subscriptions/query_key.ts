/**
 * Cache keys of query results: (function, args, identity, admin, journal), canonical so equal calls share one entry.
 * A short key is its own text (at most {@link MAX_PLAIN_KEY_CHARS}); a longer one is a digest, so a key costs at most
 * that however large the args (the entry keeps the args themselves once, in its spec). Digesting every key cost
 * ~10-35 µs of node:crypto per lookup (issue 14), and a plain key cannot collide with a digest (see below).
 */
import { createHash } from "node:crypto";
import { parseFunctionPath } from "../values/mod.ts";
import type { JsonValue } from "../values/mod.ts";

/** One query call as a subscription or cache lookup names it. */
export interface QuerySpec {
  path: string;
  /** The component whose query `path` names (absent or `""`: the app); part of the cache key. */
  componentPath?: string;
  /** The args object, convex-JSON. */
  args: JsonValue;
  identityJson: string | null;
  /** Admin callers may run internal functions; their results are cached apart. */
  allowInternal: boolean;
  /** The journal the client sent (stable pagination, convex-compat.md §2.9); queries with another journal differ. */
  journal?: string | null;
}

/**
 * Deepest nesting {@link canonicalJson} walks. Callers refuse deeper args at decoding (`MAX_JSON_ARGS_NESTING`);
 * this bound only keeps the recursion from ever overflowing the stack if one did not.
 */
const MAX_CANONICAL_NESTING = 256;

/** JSON with object keys sorted, so `{a, b}` and `{b, a}` are one key. Throws a RangeError past its nesting bound. */
export function canonicalJson(value: unknown, depth = 0): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (depth >= MAX_CANONICAL_NESTING) throw new RangeError(`Value nested deeper than ${MAX_CANONICAL_NESTING} levels`);
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item, depth + 1)).join(",")}]`;
  const entries = Object.keys(value as Record<string, unknown>).sort()
    .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
    .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key], depth + 1)}`);
  return `{${entries.join(",")}}`;
}

/** A query call's cache key and the size of its args' canonical JSON (what the args retain, about). */
export interface QueryKey {
  key: string;
  argsBytes: number;
}

/**
 * Longest key kept as its own text. A plain key starts with `=`, which a base64 digest never does, so the two kinds
 * never meet; past this length the text is digested (SHA-256), bounding what a key retains.
 */
export const MAX_PLAIN_KEY_CHARS = 512;
/** Function paths whose canonical key is remembered (a few per deployment; cleared when full). */
const MAX_REMEMBERED_PATHS = 1_024;
const functionKeys = new Map<string, string>();

/** The deployment key of a function path (`messages` → `messages.js:default`); the path itself when invalid. */
function functionKeyOf(path: string): string {
  let key = functionKeys.get(path);
  if (key !== undefined) return key;
  try {
    key = parseFunctionPath(path).key;
  } catch {
    key = path; // An invalid path fails when run; it still needs a key.
  }
  if (functionKeys.size >= MAX_REMEMBERED_PATHS) functionKeys.clear();
  functionKeys.set(path, key);
  return key;
}

/** The cache key of a query call (`messages`, `messages:default` and `messages.js:default` are one function). */
export function queryKeyOf(spec: QuerySpec): QueryKey {
  let path = functionKeyOf(spec.path);
  const args = canonicalJson(spec.args);
  // A component's query is keyed under its path; the app's keys stay as they were.
  if (spec.componentPath) path = `${spec.componentPath}\u0001${path}`;
  const text = `${path}\u0000${spec.identityJson ?? ""}\u0000${spec.allowInternal ? 1 : 0}\u0000${
    spec.journal ?? ""
  }\u0000${args}`;
  const key = text.length < MAX_PLAIN_KEY_CHARS ? `=${text}` : createHash("sha256").update(text).digest("base64");
  return { key, argsBytes: args.length };
}

/** The cache key alone, see {@link queryKeyOf}. */
export function queryKey(spec: QuerySpec): string {
  return queryKeyOf(spec).key;
}
