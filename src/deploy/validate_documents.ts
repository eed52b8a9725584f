/**
 * Checks that existing documents satisfy a new schema before it goes live (convex-compat.md §5.4 `wait_for_schema`
 * `failed`): every document of every table the schema names, and no documents in tables it leaves out.
 */
import { type Database, FIRST_USER_TABLE_NUMBER, type SnapshotReader, type TableInfo } from "../database/mod.ts";
import { decodeDocumentId, parseConvexJsonText, validateValue, type Value } from "../values/mod.ts";
import type { ParsedSchema } from "./schema.ts";

/** Documents read per page of the scan. */
const PAGE_ROWS = 1_000;
/** Longest rendering of an offending document in the error. */
const MAX_DOCUMENT_TEXT = 2_000;

/** Why existing data does not fit the schema. */
export interface SchemaViolation {
  tableName: string;
  message: string;
}

/**
 * Scans the tables at `snapshotTs`. Returns the first violation or null. Tables the schema omits may not hold documents
 * when validation is on (writes to them would fail afterwards).
 */
export async function findSchemaViolation(
  database: Database,
  schema: ParsedSchema,
  snapshotTs: bigint,
  componentPath = "",
): Promise<SchemaViolation | null> {
  if (!schema.schemaValidation) return null;
  const tables = database.catalogView.forComponent(componentPath).tables();
  const byName = new Map(tables.map((table) => [table.name, table]));
  const isIdOfTable = (id: string, tableName: string) => {
    const decoded = decodeDocumentId(id);
    const table = byName.get(tableName);
    return decoded !== null && table !== undefined && decoded.tableNumber === table.tableNumber;
  };
  const snapshot = database.readSnapshot(snapshotTs, { componentPath });
  const named = new Set(schema.tables.map((table) => table.tableName));
  for (const table of tables) {
    if (table.tableNumber < FIRST_USER_TABLE_NUMBER || named.has(table.name)) continue;
    const first = await firstPage(snapshot, table, 1);
    if (first.length > 0) {
      return {
        tableName: table.name,
        message: `Table "${table.name}" has documents but is not in the schema. Add it to schema.ts ` +
          `(defineTable) or delete its documents first.`,
      };
    }
  }
  for (const schemaTable of schema.tables) {
    const table = byName.get(schemaTable.tableName);
    if (!table || !schemaTable.documentType) continue;
    let afterKey: Uint8Array | null = null;
    for (;;) {
      const rows = await firstPage(snapshot, table, PAGE_ROWS, afterKey);
      for (const row of rows) {
        const document = parseConvexJsonText(row.json) as Record<string, Value>;
        const { _id: _ignoredId, _creationTime: _ignoredTime, ...userFields } = document;
        const problem = validateValue(schemaTable.documentType, userFields, isIdOfTable);
        if (problem !== null) {
          let text = row.json;
          if (text.length > MAX_DOCUMENT_TEXT) text = text.slice(0, MAX_DOCUMENT_TEXT) + "…";
          return {
            tableName: table.name,
            message: `Document with ID "${row.id}" in table "${table.name}" does not match the schema: ` +
              `${problem}\nDocument: ${text}`,
          };
        }
      }
      if (rows.length < PAGE_ROWS) break;
      afterKey = rows[rows.length - 1].key;
    }
  }
  return null;
}

/** Up to `limit` documents of `table` in ID order, after `afterKey` when given. */
function firstPage(snapshot: SnapshotReader, table: TableInfo, limit: number, afterKey?: Uint8Array | null) {
  const byId = table.indexes.find((index) => index.name === `${table.name}.by_id`) ?? table.indexes[0];
  return snapshot.scan(byId.name, { ...(afterKey ? { resumeAfter: afterKey } : {}), limit });
}
