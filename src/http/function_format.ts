/**
 * Value formats of the function API (convex-compat.md §1.1, §3.3): `convex_encoded_json` (the npm clients' format,
 * alias `convex_json`) and `json` (alias `convex_clean_json`), lossy plain JSON for `curl` users and `/api/run`.
 *
 * Private to `src/http`: other folders use its `mod.ts`.
 */
import type { JsonValue } from "../values/mod.ts";
import { decodeBase64 } from "../values/mod.ts";
import { HttpError } from "./errors.ts";

/** The formats accepted. */
export type ValueFormat = "encoded" | "clean";

/** Parses a `format` field; absent means `fallback`. */
export function parseFormat(format: unknown, fallback: ValueFormat): ValueFormat {
  if (format === undefined || format === null) return fallback;
  if (format === "convex_encoded_json" || format === "convex_json") return "encoded";
  if (format === "json" || format === "convex_clean_json") return "clean";
  throw new HttpError(
    400,
    "BadFormat",
    `Unsupported format ${JSON.stringify(format)}; use "convex_encoded_json" or "json"`,
  );
}

/** Converts a convex-JSON value to clean JSON: Int64 as a decimal string, bytes as base64, special floats as text. */
export function toCleanJson(value: JsonValue): JsonValue {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map(toCleanJson);
  const keys = Object.keys(value);
  if (keys.length === 1) {
    const special = value[keys[0]];
    if (keys[0] === "$integer" && typeof special === "string") {
      return new DataView(decodeBase64(special).buffer).getBigInt64(0, true).toString();
    }
    if (keys[0] === "$float" && typeof special === "string") {
      return String(new DataView(decodeBase64(special).buffer).getFloat64(0, true));
    }
    if (keys[0] === "$bytes" && typeof special === "string") return special;
  }
  const out: Record<string, JsonValue> = {};
  for (const key of keys) out[key] = toCleanJson(value[key]);
  return out;
}
