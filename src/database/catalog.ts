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

/** The namespace of a table (`""` the app). */
export function componentPathOf(table: TableInfo): string {
  return table.componentPath ?? "";
}

/** The key of a table or index name within its namespace (the app's keys are the bare names). */
function namespacedKey(componentPath: string, name: string): string {
  return componentPath === "" ? name : `${componentPath}\0${name}`;
}

/** What every namespace's view of one catalog shares. */
interface CatalogMaps {
  byName: Map<string, TableInfo>;
  byNumber: Map<number, TableInfo>;
  indexes: Map<string, { table: TableInfo; index: IndexInfo }>;
  indexesById: Map<number, { table: TableInfo; index: IndexInfo }>;
  views: Map<string, CatalogView>;
}

/**
 * Lookup helpers over an immutable catalog value, within one component namespace (`componentPath`, `""` the app):
 * names resolve in it, and a table number of another namespace reads as unknown. `forComponent` gives the view of
 * another namespace over the same catalog.
 */
export class CatalogView {
  readonly catalog: Catalog;
  readonly componentPath: string;
  readonly #maps: CatalogMaps;

  constructor(catalog: Catalog, componentPath = "", maps?: CatalogMaps) {
    this.catalog = catalog;
    this.componentPath = componentPath;
    this.#maps = maps ?? buildMaps(catalog);
  }

  /** The view of the namespace `componentPath` over the same catalog. */
  forComponent(componentPath: string): CatalogView {
    if (componentPath === this.componentPath) return this;
    let view = this.#maps.views.get(componentPath);
    if (view === undefined) {
      view = new CatalogView(this.catalog, componentPath, this.#maps);
      this.#maps.views.set(componentPath, view);
    }
    return view;
  }

  tableByName(name: string): TableInfo | undefined {
    return this.#maps.byName.get(namespacedKey(this.componentPath, name));
  }

  /** The table of `tableNumber` when it is in this namespace. */
  tableByNumber(tableNumber: number): TableInfo | undefined {
    const table = this.#maps.byNumber.get(tableNumber);
    return table && componentPathOf(table) === this.componentPath ? table : undefined;
  }

  /** The table of `tableNumber` in whatever namespace (the committer, retention, backfills). */
  tableByNumberInAnyComponent(tableNumber: number): TableInfo | undefined {
    return this.#maps.byNumber.get(tableNumber);
  }

  index(name: string): { table: TableInfo; index: IndexInfo } | undefined {
    return this.#maps.indexes.get(namespacedKey(this.componentPath, name));
  }

  /** Index IDs are global: this finds an index of any namespace. */
  indexById(indexId: number): { table: TableInfo; index: IndexInfo } | undefined {
    return this.#maps.indexesById.get(indexId);
  }

  /** Whether the schema of this namespace has validation on. */
  get schemaValidation(): boolean {
    return schemaValidationOf(this.catalog, this.componentPath);
  }

  /** The validator writes to `table` must satisfy, or null when the schema does not constrain it. */
  documentType(table: TableInfo): ValidatorJson | null {
    return schemaValidationOf(this.catalog, componentPathOf(table)) ? table.documentType : null;
  }

  /** True when a schema with validation is active in this namespace and does not declare `tableName`. */
  tableMissingFromSchema(tableName: string): boolean {
    if (!this.schemaValidation) return false;
    const table = this.tableByName(tableName);
    return !table || !table.documentType;
  }

  /** The tables of this namespace. */
  tables(): TableInfo[] {
    return this.catalog.tables.filter((table) => componentPathOf(table) === this.componentPath);
  }
}

function buildMaps(catalog: Catalog): CatalogMaps {
  const maps: CatalogMaps = {
    byName: new Map(),
    byNumber: new Map(),
    indexes: new Map(),
    indexesById: new Map(),
    views: new Map(),
  };
  for (const table of catalog.tables) {
    const componentPath = componentPathOf(table);
    maps.byName.set(namespacedKey(componentPath, table.name), table);
    maps.byNumber.set(table.tableNumber, table);
    for (const index of table.indexes) {
      maps.indexes.set(namespacedKey(componentPath, index.name), { table, index });
      maps.indexesById.set(index.indexId, { table, index });
    }
  }
  return maps;
}

/** The schema validation flag of one namespace. */
export function schemaValidationOf(catalog: Catalog, componentPath: string): boolean {
  return componentPath === "" ? catalog.schemaValidation : catalog.componentSchemaValidation?.[componentPath] ?? false;
}

/** The paths of the namespaces holding a table named `tableName` (e.g. every `_scheduled_functions`). */
export function componentPathsWithTable(catalog: Catalog, tableName: string): string[] {
  return catalog.tables.filter((table) => table.name === tableName).map(componentPathOf);
}

/**
 * `catalog` with the system tables of a component instance (its own `_scheduled_functions` and `_storage`, with
 * their system indexes) registered, when missing. Their numbers come from the reserved system range, so every check
 * of "a system table" by number holds in components too.
 */
export function withComponentSystemTables(catalog: Catalog, componentPath: string): Catalog {
  if (componentPath === "") return catalog;
  const tables = [...catalog.tables];
  let nextNumber = Math.max(...Object.values(SYSTEM_TABLE_NUMBERS)) + 1;
  let nextIndexId = 1;
  for (const table of tables) {
    if (table.tableNumber < FIRST_USER_TABLE_NUMBER) nextNumber = Math.max(nextNumber, table.tableNumber + 1);
    for (const index of table.indexes) nextIndexId = Math.max(nextIndexId, index.indexId + 1);
  }
  let changed = false;
  for (const name of COMPONENT_SYSTEM_TABLES) {
    if (tables.some((table) => table.name === name && componentPathOf(table) === componentPath)) continue;
    if (nextNumber >= FIRST_USER_TABLE_NUMBER) {
      throw new Error("invariant: the system table numbers are used up (too many component instances)");
    }
    const indexes = builtinIndexes(name, nextIndexId);
    nextIndexId += 2;
    for (const [indexName, fields] of Object.entries(SYSTEM_INDEXES)) {
      if (!indexName.startsWith(name + ".")) continue;
      indexes.push({ indexId: nextIndexId++, name: indexName, fields, ready: true });
    }
    tables.push({ name, componentPath, tableNumber: nextNumber++, indexes, documentType: null });
    changed = true;
  }
  return changed ? { ...catalog, tables } : catalog;
}

/** The system tables each component instance has (`_mutation_results` is the app's only). */
const COMPONENT_SYSTEM_TABLES = ["_scheduled_functions", "_storage"];

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
    if (tables.some((table) => table.name === name && componentPathOf(table) === "")) continue;
    tables.push({ name, tableNumber, indexes: builtinIndexes(name, nextIndexId), documentType: null });
    nextIndexId += 2;
  }
  let changed = tables.length !== catalog.tables.length;
  for (const [indexName, fields] of Object.entries(SYSTEM_INDEXES)) {
    const tableName = indexName.slice(0, indexName.indexOf("."));
    const at = tables.findIndex((table) => table.name === tableName && componentPathOf(table) === "");
    if (at === -1 || tables[at].indexes.some((index) => index.name === indexName)) continue;
    // Ready at once: databases from before the index never wrote its table (the scheduler came with the index).
    const index: IndexInfo = { indexId: nextIndexId++, name: indexName, fields, ready: true };
    tables[at] = { ...tables[at], indexes: [...tables[at].indexes, index] };
    changed = true;
  }
  return changed ? { ...catalog, tables } : catalog;
}
