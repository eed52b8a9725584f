/** Cache keys of query results: (function, args, identity, admin), canonical so equal calls share one entry. */
import { parseFunctionPath } from "../functions/mod.ts";
import type { JsonValue } from "../values/types.ts";

/** One query call as a subscription or cache lookup names it. */
export interface QuerySpec {
  path: string;
  /** The args object, convex-JSON. */
  args: JsonValue;
  identityJson: string | null;
  /** Admin callers may run internal functions; their results are cached apart. */
  allowInternal: boolean;
  /** The journal the client sent (stable pagination, convex-compat.md §2.9); queries with another journal differ. */
  journal?: string | null;
}

/** JSON with object keys sorted, so `{a, b}` and `{b, a}` are one key. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.keys(value as Record<string, unknown>).sort()
    .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
    .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`);
  return `{${entries.join(",")}}`;
}

/** The cache key of a query call (`messages`, `messages:default` and `messages.js:default` are one function). */
export function queryKey(spec: QuerySpec): string {
  let path = spec.path;
  try {
    path = parseFunctionPath(spec.path).key;
  } catch {
    // An invalid path fails when run; it still needs a key.
  }
  return `${path}\u0000${canonicalJson(spec.args)}\u0000${spec.identityJson ?? ""}\u0000${spec.allowInternal ? 1 : 0}` +
    `\u0000${spec.journal ?? ""}`;
}
