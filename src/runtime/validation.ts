/**
 * Validation of nested calls' args and return values, on the runner's main thread (the worker asks through the
 * channel): `v.id("table")` needs the catalog, which only the main thread has.
 *
 * Private to `src/runtime`: other folders use its `mod.ts`.
 */
import type { Catalog } from "../database/mod.ts";
import { decodeDocumentId, jsonToValue, validateValue } from "../values/mod.ts";
import type { JsonValue, ValidatorJson } from "../values/mod.ts";

/** The namespace of `table` (absent: the app). Read loosely until every catalog carries it. */
function tableComponentPath(table: object): string {
  const path = (table as { componentPath?: unknown }).componentPath;
  return typeof path === "string" ? path : "";
}

/** Returns null if `valueJson` (convex-JSON) passes `validator`, else the validation message. */
export function validateConvexJson(
  validator: ValidatorJson,
  valueJson: JsonValue,
  catalog: Catalog | null,
  componentPath = "",
): string | null {
  let value;
  try {
    value = jsonToValue(valueJson);
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  return validateValue(validator, value, (id, tableName) => {
    const decoded = decodeDocumentId(id);
    // `v.id(table)` names a table of the validating function's own component.
    const table = catalog?.tables.find((t) => t.name === tableName && tableComponentPath(t) === componentPath);
    return decoded !== null && table !== undefined && decoded.tableNumber === table.tableNumber;
  });
}
