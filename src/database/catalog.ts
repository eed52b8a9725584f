/**
 * The catalog: tables, their table numbers, their indexes and the active schema. Persisted as one global (JSON) and
 * handed, whole and versioned, to runner processes.
 */
import type { Catalog, IndexInfo, TableInfo } from "./types.ts";
import type { ValidatorJson } from "../values/mod.ts";

/** Table numbers below this are reserved for system tables. */
export const FIRST_USER_TABLE_NUMBER = 10_001;
/** System tables readable through `ctx.db.system`. */
export const SYSTEM_TABLE_NUMBERS: Readonly<Record<string, number>> = {
  _scheduled_functions: 1,
  _storage: 2,
  _mutation_results: 3,
};
/** The system table of scheduled jobs. */
export const SCHEDULED_FUNCTIONS_TABLE = "_scheduled_functions";
/** System tables only the server reads: invisible to user code, even through `ctx.db.system`. */
export const INTERNAL_TABLE_NAMES: ReadonlySet<string> = new Set(["_mutation_results"]);
/** Indexes of system tables beyond the built-in ones. The scheduler finds due jobs by `state.kind`, then time. */
export const SYSTEM_INDEXES: Readonly<Record<string, string[]>> = {
  "_scheduled_functions.by_next": ["state.kind", "scheduledTime"],
};
export const MAX_TABLES = 10_000;
export const MAX_INDEXES_PER_TABLE = 64;

/** The fields an index orders by, with the implicit `_creationTime`, `_id` tiebreakers (convex-compat.md §1.7). */
export function indexKeyFields(index: IndexInfo): string[] {
  const suffix = index.name.endsWith(".by_id") && index.fields.length === 1 && index.fields[0] === "_id"
    ? []
    : ["_creationTime", "_id"];
  return [...index.fields, ...suffix];
}

/** The built-in indexes every table has. */
export function builtinIndexes(tableName: string, firstIndexId: number): IndexInfo[] {
  return [
    { indexId: firstIndexId, name: `${tableName}.by_id`, fields: ["_id"], ready: true },
    { indexId: firstIndexId + 1, name: `${tableName}.by_creation_time`, fields: [], ready: true },
  ];
}

/** Lookup helpers over an immutable catalog value. */
export class CatalogView {
  readonly catalog: Catalog;
  readonly #byName = new Map<string, TableInfo>();
  readonly #byNumber = new Map<number, TableInfo>();
  readonly #indexes = new Map<string, { table: TableInfo; index: IndexInfo }>();
  readonly #indexesById = new Map<number, { table: TableInfo; index: IndexInfo }>();

  constructor(catalog: Catalog) {
    this.catalog = catalog;
    for (const table of catalog.tables) {
      this.#byName.set(table.name, table);
      this.#byNumber.set(table.tableNumber, table);
      for (const index of table.indexes) {
        this.#indexes.set(index.name, { table, index });
        this.#indexesById.set(index.indexId, { table, index });
      }
    }
  }

  tableByName(name: string): TableInfo | undefined {
    return this.#byName.get(name);
  }

  tableByNumber(tableNumber: number): TableInfo | undefined {
    return this.#byNumber.get(tableNumber);
  }

  index(name: string): { table: TableInfo; index: IndexInfo } | undefined {
    return this.#indexes.get(name);
  }

  indexById(indexId: number): { table: TableInfo; index: IndexInfo } | undefined {
    return this.#indexesById.get(indexId);
  }

  /** The validator writes to `table` must satisfy, or null when the schema does not constrain it. */
  documentType(table: TableInfo): ValidatorJson | null {
    return this.catalog.schemaValidation ? table.documentType : null;
  }

  /** True when a schema with validation is active and does not declare `tableName`. */
  tableMissingFromSchema(tableName: string): boolean {
    if (!this.catalog.schemaValidation) return false;
    const table = this.#byName.get(tableName);
    return !table || !table.documentType;
  }
}

/** An empty catalog with the system tables registered. */
export function emptyCatalog(): Catalog {
  return withSystemTables({ version: 1, tables: [], schemaValidation: false });
}

/** `catalog` with every system table registered (databases created by older versions lack newer ones). */
export function withSystemTables(catalog: Catalog): Catalog {
  let nextIndexId = 1;
  for (const table of catalog.tables) {
    for (const index of table.indexes) nextIndexId = Math.max(nextIndexId, index.indexId + 1);
  }
  const tables = [...catalog.tables];
  for (const [name, tableNumber] of Object.entries(SYSTEM_TABLE_NUMBERS)) {
    if (tables.some((table) => table.name === name)) continue;
    tables.push({ name, tableNumber, indexes: builtinIndexes(name, nextIndexId), documentType: null });
    nextIndexId += 2;
  }
  let changed = tables.length !== catalog.tables.length;
  for (const [indexName, fields] of Object.entries(SYSTEM_INDEXES)) {
    const tableName = indexName.slice(0, indexName.indexOf("."));
    const at = tables.findIndex((table) => table.name === tableName);
    if (at === -1 || tables[at].indexes.some((index) => index.name === indexName)) continue;
    // Ready at once: databases from before the index never wrote its table (the scheduler came with the index).
    const index: IndexInfo = { indexId: nextIndexId++, name: indexName, fields, ready: true };
    tables[at] = { ...tables[at], indexes: [...tables[at].indexes, index] };
    changed = true;
  }
  return changed ? { ...catalog, tables } : catalog;
}
