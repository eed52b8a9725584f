/**
 * The pushed schema (`schema.js` `export()`, convex-compat.md §4.2): parsing, validation with readable errors, and the
 * index diff against the current catalog.
 *
 * Private to `src/deploy`: other folders use its `mod.ts`.
 */
import type { Catalog, IndexInfo, SearchIndexInfo, TableInfo, VectorIndexInfo } from "../database/mod.ts";
import {
  componentPathOf,
  FIRST_USER_TABLE_NUMBER,
  MAX_INDEXES_PER_TABLE,
  schemaValidationOf,
} from "../database/mod.ts";
import type { ValidatorJson } from "../values/mod.ts";
import { DeployError } from "./store.ts";

/** Most fields of one database index (Convex's limit). */
export const MAX_INDEX_FIELDS = 16;
/** Index names reserved for the built-in indexes. */
const RESERVED_INDEX_NAMES = new Set(["by_id", "by_creation_time"]);
const IDENTIFIER = /^[a-zA-Z][a-zA-Z0-9_]{0,63}$/;
/** Suffix of the catalog name of an index whose fields changed, while the old one still serves the old code. */
export const PENDING_INDEX_MARKER = "@pending";

/** One database index the schema declares. */
export interface SchemaIndex {
  /** `table.index`. */
  name: string;
  fields: string[];
  /** `staged: true`: backfilled and maintained, but queries fail until a push enables it. */
  staged?: boolean;
}

/** Most filter fields of one search index (Convex's limit). */
export const MAX_SEARCH_FILTER_FIELDS = 16;
/** Dimensions a vector index may have (Convex's limits). */
export const MIN_VECTOR_DIMENSIONS = 2;
export const MAX_VECTOR_DIMENSIONS = 4096;

/** One table of the schema. */
export interface SchemaTable {
  tableName: string;
  indexes: SchemaIndex[];
  /** Full-text search indexes (staged ones flagged). */
  searchIndexes: SearchIndexInfo[];
  /** Vector indexes (staged ones flagged). */
  vectorIndexes: VectorIndexInfo[];
  documentType: ValidatorJson | null;
}

/** A validated schema. `raw` is what `export()` returned, parsed (reported back to the CLI as is). */
export interface ParsedSchema {
  tables: SchemaTable[];
  schemaValidation: boolean;
  raw: Record<string, unknown>;
}

function invalid(message: string): DeployError {
  return new DeployError("InvalidSchema", `Hit an error while evaluating your schema:\n${message}`);
}

/** Parses and checks `schemaJson`; throws DeployError(`InvalidSchema`) naming the table and index at fault. */
export function parseSchema(schemaJson: string): ParsedSchema {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(schemaJson);
  } catch {
    throw invalid("schema.export() did not return JSON");
  }
  if (!raw || typeof raw !== "object" || !Array.isArray(raw.tables)) throw invalid("The schema has no tables list");
  const tables: SchemaTable[] = [];
  const seen = new Set<string>();
  for (const entry of raw.tables as Record<string, unknown>[]) {
    const tableName = entry?.tableName;
    if (typeof tableName !== "string" || !IDENTIFIER.test(tableName)) {
      throw invalid(
        `Invalid table name ${JSON.stringify(tableName)}: table names start with a letter and hold only letters, ` +
          `digits and underscores (at most 64 characters)`,
      );
    }
    if (seen.has(tableName)) throw invalid(`Table ${tableName} is defined twice`);
    seen.add(tableName);
    const documentType = (entry.documentType ?? null) as ValidatorJson | null;
    const indexes = parseIndexes(tableName, stagedList(entry.indexes, entry.stagedDbIndexes), documentType);
    const searchIndexes = parseSearchIndexes(
      tableName,
      stagedList(entry.searchIndexes, entry.stagedSearchIndexes),
      documentType,
      indexes,
    );
    const vectorIndexes = parseVectorIndexes(
      tableName,
      stagedList(entry.vectorIndexes, entry.stagedVectorIndexes),
      documentType,
      [...indexes.map((index) => index.name), ...searchIndexes.map((index) => index.name)],
    );
    tables.push({ tableName, indexes, searchIndexes, vectorIndexes, documentType });
  }
  return { tables, schemaValidation: raw.schemaValidation !== false, raw };
}

/**
 * One list of a table's enabled and staged index entries (`indexes` + `stagedDbIndexes`, ...), the staged ones marked
 * `staged: true`; a list that is not an array is passed on as it is, for the parser's error.
 */
function stagedList(enabled: unknown, staged: unknown): unknown {
  if (staged === undefined || staged === null) return enabled;
  if (!Array.isArray(staged)) return staged;
  const marked = staged.map((entry) => ({ ...(entry as Record<string, unknown>), staged: true }));
  if (enabled === undefined || enabled === null) return marked;
  return Array.isArray(enabled) ? [...enabled, ...marked] : enabled;
}

function parseIndexes(tableName: string, value: unknown, documentType: ValidatorJson | null): SchemaIndex[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw invalid(`Table ${tableName}: indexes must be a list`);
  if (value.length > MAX_INDEXES_PER_TABLE - 2) {
    throw invalid(`Table ${tableName} has ${value.length} indexes; at most ${MAX_INDEXES_PER_TABLE - 2} are allowed`);
  }
  const indexes: SchemaIndex[] = [];
  const names = new Set<string>();
  for (const index of value as Record<string, unknown>[]) {
    const descriptor = index?.indexDescriptor;
    const where = `Index ${tableName}.${String(descriptor)}`;
    if (typeof descriptor !== "string" || !IDENTIFIER.test(descriptor)) {
      throw invalid(`${where}: invalid index name (letters, digits and underscores, starting with a letter)`);
    }
    if (RESERVED_INDEX_NAMES.has(descriptor)) throw invalid(`${where}: the name ${descriptor} is reserved`);
    if (names.has(descriptor)) throw invalid(`${where} is defined twice`);
    names.add(descriptor);
    const fields = index.fields;
    if (!Array.isArray(fields) || fields.length === 0 || !fields.every((f) => typeof f === "string" && f !== "")) {
      throw invalid(`${where}: an index needs at least one field`);
    }
    if (fields.length > MAX_INDEX_FIELDS) throw invalid(`${where} has more than ${MAX_INDEX_FIELDS} fields`);
    if (new Set(fields).size !== fields.length) throw invalid(`${where} lists a field twice`);
    for (const field of fields as string[]) {
      if (field === "_id") throw invalid(`${where}: _id cannot be an index field (every index ends with it)`);
      if (field === "_creationTime") {
        throw invalid(`${where}: _creationTime cannot be an index field (every index ends with it)`);
      }
      if (documentType && !validatorHasField(documentType, field.split("."))) {
        throw invalid(
          `${where} is on the field "${field}", which is not in the table's validator. Add the field to the ` +
            `defineTable({...}) validator or remove it from the index.`,
        );
      }
    }
    const parsed: SchemaIndex = { name: `${tableName}.${descriptor}`, fields: fields as string[] };
    if (index.staged === true) parsed.staged = true;
    indexes.push(parsed);
  }
  return indexes;
}

function parseSearchIndexes(
  tableName: string,
  value: unknown,
  documentType: ValidatorJson | null,
  indexes: SchemaIndex[],
): SearchIndexInfo[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw invalid(`Table ${tableName}: searchIndexes must be a list`);
  const searchIndexes: SearchIndexInfo[] = [];
  const names = new Set(indexes.map((index) => index.name));
  for (const index of value as Record<string, unknown>[]) {
    const { name, where } = claimIndexName("Search index", tableName, index?.indexDescriptor, names);
    const searchField = index.searchField;
    if (typeof searchField !== "string" || searchField === "") {
      throw invalid(`${where}: searchField must be a field name`);
    }
    const filterFields = checkedIndexFields(where, index.filterFields, searchField, "search", documentType);
    const parsed: SearchIndexInfo = { name, searchField, filterFields };
    if (index.staged === true) parsed.staged = true;
    searchIndexes.push(parsed);
  }
  return searchIndexes;
}

function parseVectorIndexes(
  tableName: string,
  value: unknown,
  documentType: ValidatorJson | null,
  takenNames: string[],
): VectorIndexInfo[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw invalid(`Table ${tableName}: vectorIndexes must be a list`);
  const vectorIndexes: VectorIndexInfo[] = [];
  const names = new Set(takenNames);
  for (const index of value as Record<string, unknown>[]) {
    const { name, where } = claimIndexName("Vector index", tableName, index?.indexDescriptor, names);
    const { vectorField, dimensions } = index;
    if (typeof vectorField !== "string" || vectorField === "") {
      throw invalid(`${where}: vectorField must be a field name`);
    }
    if (
      typeof dimensions !== "number" || !Number.isInteger(dimensions) || dimensions < MIN_VECTOR_DIMENSIONS ||
      dimensions > MAX_VECTOR_DIMENSIONS
    ) {
      throw invalid(
        `${where}: dimensions must be an integer between ${MIN_VECTOR_DIMENSIONS} and ${MAX_VECTOR_DIMENSIONS}, ` +
          `got ${JSON.stringify(dimensions)}`,
      );
    }
    const filterFields = checkedIndexFields(where, index.filterFields, vectorField, "vector", documentType);
    const parsed: VectorIndexInfo = { name, vectorField, dimensions, filterFields };
    if (index.staged === true) parsed.staged = true;
    vectorIndexes.push(parsed);
  }
  return vectorIndexes;
}

/**
 * Checks a search or vector index's name (an identifier, not reserved, not taken by another index of the table) and
 * adds it to `names`; returns its full name and the prefix of its error messages.
 */
function claimIndexName(
  kind: "Search index" | "Vector index",
  tableName: string,
  descriptor: unknown,
  names: Set<string>,
): { name: string; where: string } {
  const where = `${kind} ${tableName}.${String(descriptor)}`;
  if (typeof descriptor !== "string" || !IDENTIFIER.test(descriptor)) {
    throw invalid(`${where}: invalid index name (letters, digits and underscores, starting with a letter)`);
  }
  if (RESERVED_INDEX_NAMES.has(descriptor)) throw invalid(`${where}: the name ${descriptor} is reserved`);
  const name = `${tableName}.${descriptor}`;
  if (names.has(name)) throw invalid(`${where}: the name is used by another index of the table`);
  names.add(name);
  return { name, where };
}

/**
 * The filter fields of a search or vector index on `mainField`, checked as Convex does: field names, at most
 * MAX_SEARCH_FILTER_FIELDS, no repeats, no system fields, each in the table's validator, the main field not among them.
 */
function checkedIndexFields(
  where: string,
  value: unknown,
  mainField: string,
  kind: "search" | "vector",
  documentType: ValidatorJson | null,
): string[] {
  const filterFields = value ?? [];
  if (!Array.isArray(filterFields) || !filterFields.every((f) => typeof f === "string" && f !== "")) {
    throw invalid(`${where}: filterFields must be a list of field names`);
  }
  if (filterFields.length > MAX_SEARCH_FILTER_FIELDS) {
    throw invalid(`${where} has more than ${MAX_SEARCH_FILTER_FIELDS} filter fields`);
  }
  if (new Set(filterFields).size !== filterFields.length) throw invalid(`${where} lists a filter field twice`);
  for (const field of [mainField, ...filterFields as string[]]) {
    const role = field === mainField ? `${kind} field` : "filter field";
    if (field.startsWith("_")) throw invalid(`${where}: the ${role} "${field}" is a system field name`);
    if (documentType && !validatorHasField(documentType, field.split("."))) {
      throw invalid(
        `${where} is on the field "${field}", which is not in the table's validator. Add the field to the ` +
          `defineTable({...}) validator or remove it from the ${kind} index.`,
      );
    }
  }
  if ((filterFields as string[]).includes(mainField)) {
    throw invalid(`${where}: the ${kind} field "${mainField}" cannot also be a filter field`);
  }
  return filterFields as string[];
}

/** Search indexes per IDs: IDs of this table's range, -(tableNumber * 100 + k), kept for an unchanged definition. */
const SEARCH_INDEX_IDS_PER_TABLE = 100;

/** `wanted` with term-key index IDs: an unchanged index keeps its ID, a new or changed one takes a free one. */
function withSearchIndexIds(table: TableInfo, wanted: SearchIndexInfo[]): SearchIndexInfo[] {
  const sameDefinition = (a: SearchIndexInfo, b: SearchIndexInfo) =>
    a.name === b.name && a.searchField === b.searchField && sameFields(a.filterFields, b.filterFields);
  const kept = wanted.map((index) => (table.searchIndexes ?? []).find((old) => sameDefinition(old, index))?.indexId);
  const used = new Set(kept.filter((id) => id !== undefined));
  let k = 0;
  return wanted.map((index, i) => {
    let indexId = kept[i];
    while (indexId === undefined && k < SEARCH_INDEX_IDS_PER_TABLE) {
      const candidate = -(table.tableNumber * SEARCH_INDEX_IDS_PER_TABLE + k++);
      if (!used.has(candidate)) indexId = candidate;
    }
    return indexId === undefined ? index : { ...index, indexId };
  });
}

/** True when some document matching `validator` may have a value at `path`. */
function validatorHasField(validator: ValidatorJson, path: string[]): boolean {
  if (path.length === 0) return true;
  const v = validator as unknown as Record<string, unknown>;
  switch (v.type) {
    case "any":
      return true;
    case "union":
      return (v.value as ValidatorJson[]).some((member) => validatorHasField(member, path));
    case "object": {
      const field = (v.value as Record<string, { fieldType: ValidatorJson }>)[path[0]];
      return field !== undefined && validatorHasField(field.fieldType, path.slice(1));
    }
    case "record":
      return true;
    default:
      return false;
  }
}

/** An index this push adds: its catalog entry (not ready until backfilled) and what it becomes at finish. */
export interface AddedIndex {
  table: string;
  /** `table.index`: the final name. */
  name: string;
  fields: string[];
  /** The name in the catalog during the push (the final name, or a pending name while an old index holds it). */
  catalogName: string;
  indexId: number;
  /** True when the catalog already holds it (from an earlier push that did not finish); no backfill to start. */
  reused: boolean;
}

/** What a push changes in the indexes. */
export interface IndexPlan {
  added: AddedIndex[];
  /** Indexes dropped at finish (old definitions of changed indexes included). */
  removed: IndexInfo[];
  /** Tables the schema names that do not exist yet. */
  newTables: string[];
}

function isBuiltin(index: IndexInfo): boolean {
  return index.name.endsWith(".by_id") || index.name.endsWith(".by_creation_time");
}

function sameFields(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((field, i) => field === b[i]);
}

/** The user-defined indexes of a table, keyed by final name (pending names mapped back). */
function finalName(index: IndexInfo): string {
  const marker = index.name.indexOf(PENDING_INDEX_MARKER);
  return marker === -1 ? index.name : index.name.slice(0, marker);
}

/**
 * Diffs the schema's indexes against the catalog. `allocateId` hands out index IDs for new ones. A schema of null
 * (no schema.js) removes every user-defined index, as on Convex.
 */
export function planIndexes(catalog: Catalog, schema: ParsedSchema | null, allocateId: () => number): IndexPlan {
  const plan: IndexPlan = { added: [], removed: [], newTables: [] };
  const wanted = new Map<string, SchemaTable>();
  for (const table of schema?.tables ?? []) wanted.set(table.tableName, table);
  const tablesByName = new Map<string, TableInfo>(catalog.tables.map((table) => [table.name, table]));

  for (const table of catalog.tables) {
    const schemaTable = wanted.get(table.name);
    for (const index of table.indexes) {
      // System tables' indexes belong to the server (e.g. the scheduler's), never to the schema.
      if (isBuiltin(index) || table.tableNumber < FIRST_USER_TABLE_NUMBER) continue;
      // An index survives when the schema still wants its name with the same fields: a live one as it is, a pending
      // leftover of an earlier unfinished push by being reused below. Everything else is dropped at finish.
      const want = schemaTable?.indexes.find((candidate) => candidate.name === finalName(index));
      if (!(want && sameFields(want.fields, index.fields))) plan.removed.push(index);
    }
  }
  for (const schemaTable of wanted.values()) {
    const table = tablesByName.get(schemaTable.tableName);
    if (!table) plan.newTables.push(schemaTable.tableName);
    for (const index of schemaTable.indexes) {
      const existing = table?.indexes.filter((candidate) => finalName(candidate) === index.name) ?? [];
      const live = existing.find((candidate) => candidate.name === index.name);
      if (live && sameFields(live.fields, index.fields)) continue;
      const pending = existing.find((candidate) => candidate !== live && sameFields(candidate.fields, index.fields));
      if (pending) {
        plan.added.push({
          table: schemaTable.tableName,
          name: index.name,
          fields: index.fields,
          catalogName: pending.name,
          indexId: pending.indexId,
          reused: true,
        });
        continue;
      }
      const indexId = allocateId();
      plan.added.push({
        table: schemaTable.tableName,
        name: index.name,
        fields: index.fields,
        // The old definition keeps its name (and keeps serving the old code) until finish_push.
        catalogName: live ? `${index.name}${PENDING_INDEX_MARKER}${indexId}` : index.name,
        indexId,
        reused: false,
      });
    }
  }
  return plan;
}

/** The catalog with the plan's new indexes present but not ready (and the schema not yet applied). */
export function withPendingIndexes(catalog: Catalog, plan: IndexPlan): Catalog {
  return {
    ...catalog,
    tables: catalog.tables.map((table) => {
      const additions = plan.added.filter((added) => added.table === table.name && !added.reused);
      if (additions.length === 0) return table;
      const indexes = [...table.indexes];
      for (const added of additions) {
        if (indexes.some((index) => index.indexId === added.indexId)) continue;
        indexes.push({ indexId: added.indexId, name: added.catalogName, fields: added.fields, ready: false });
      }
      return { ...table, indexes };
    }),
  };
}

/**
 * The catalog of the finished push: removed indexes dropped, pending ones under their final names, every table's
 * document validator from the schema (null for tables it does not name) and the schema's validation flag.
 */
export function finalCatalog(catalog: Catalog, plan: IndexPlan, schema: ParsedSchema | null): Catalog {
  const removedIds = new Set(plan.removed.map((index) => index.indexId));
  const addedById = new Map(plan.added.map((added) => [added.indexId, added]));
  const documentTypes = new Map((schema?.tables ?? []).map((table) => [table.tableName, table.documentType]));
  const searchIndexes = new Map((schema?.tables ?? []).map((table) => [table.tableName, table.searchIndexes]));
  const vectorIndexes = new Map((schema?.tables ?? []).map((table) => [table.tableName, table.vectorIndexes]));
  const stagedIndexes = new Set(
    (schema?.tables ?? []).flatMap((table) => table.indexes.filter((index) => index.staged).map((index) => index.name)),
  );
  return {
    ...catalog,
    schemaValidation: schema?.schemaValidation ?? false,
    tables: catalog.tables.map((table) => ({
      ...table,
      documentType: table.tableNumber < FIRST_USER_TABLE_NUMBER
        ? table.documentType
        : documentTypes.get(table.name) ?? null,
      searchIndexes: table.tableNumber < FIRST_USER_TABLE_NUMBER
        ? table.searchIndexes
        : withSearchIndexIds(table, searchIndexes.get(table.name) ?? []),
      vectorIndexes: table.tableNumber < FIRST_USER_TABLE_NUMBER
        ? table.vectorIndexes
        : vectorIndexes.get(table.name) ?? [],
      indexes: table.indexes
        .filter((index) => !removedIds.has(index.indexId))
        .map((index) => {
          const added = addedById.get(index.indexId);
          const named = added ? { ...index, name: added.name, ready: true } : index;
          return withStagedFlag(named, stagedIndexes.has(named.name));
        }),
    })),
  };
}

/** `index` with its `staged` flag set to `staged` (absent when false, as in catalogs from before staging). */
function withStagedFlag(index: IndexInfo, staged: boolean): IndexInfo {
  if ((index.staged === true) === staged) return index;
  if (staged) return { ...index, staged: true };
  const { staged: _, ...enabled } = index;
  return enabled;
}

/** An index in the CLI's `IndexConfig` shape (convex-compat.md §5.4). */
export function indexConfig(name: string, fields: string[]): { name: string; type: "database"; fields: string[] } {
  return { name, type: "database", fields };
}

/** The part of `catalog` one component namespace sees: its tables and its schema validation flag. */
export function namespaceCatalog(catalog: Catalog, componentPath: string): Catalog {
  return {
    ...catalog,
    tables: catalog.tables.filter((table) => componentPathOf(table) === componentPath),
    schemaValidation: schemaValidationOf(catalog, componentPath),
  };
}

/**
 * `catalog` with one namespace changed by `update` (which sees only that namespace, `namespaceCatalog`, and may change
 * its tables and schema validation flag, not add tables).
 */
export function updateNamespace(
  catalog: Catalog,
  componentPath: string,
  update: (namespace: Catalog) => Catalog,
): Catalog {
  const updated = update(namespaceCatalog(catalog, componentPath));
  const byNumber = new Map(updated.tables.map((table) => [table.tableNumber, table]));
  const tables = catalog.tables.map((table) =>
    componentPathOf(table) === componentPath ? byNumber.get(table.tableNumber) ?? table : table
  );
  if (componentPath === "") return { ...catalog, tables, schemaValidation: updated.schemaValidation };
  return {
    ...catalog,
    tables,
    componentSchemaValidation: { ...catalog.componentSchemaValidation, [componentPath]: updated.schemaValidation },
  };
}
