/**
 * The Data page's server side: tables of every component, pages of documents by any index (cursor = the last key, so
 * page N costs what page 1 costs on a 100k-document table), an optional filter on one field's value (bounded work per
 * page), single documents, and the writes: insert, replace, delete, clear. Writes run as system transactions in the
 * table's namespace, so the pushed schema validates them exactly as it validates a mutation's writes, and the error
 * the operator sees is the server's own.
 */
import { type Database, FIRST_USER_TABLE_NUMBER, type ScannedDocument, type TableInfo } from "../database/mod.ts";
import {
  checkUserTableName,
  decodeDocumentId,
  getFieldPath,
  jsonToValue,
  type JsonValue,
  keyFromBase64,
  keyToBase64,
  parseConvexJsonText,
  type Value,
  valuesEqual,
} from "../values/mod.ts";
import { badRequest, DashboardError } from "./types.ts";

/** Largest page the UI may ask for. */
export const MAX_PAGE_DOCUMENTS = 500;
/** Documents a filtered page examines at most before it returns what it found (with a cursor to go on). */
export const MAX_FILTER_SCAN_DOCUMENTS = 20_000;
/** Documents counted per table before the count is reported as "at least". */
export const MAX_COUNTED_DOCUMENTS = 200_000;
/** Documents one clearing transaction deletes (Convex's write limit is 16,000; leave room). */
const CLEAR_BATCH_DOCUMENTS = 4_000;
/** Most clearing transactions per request: a larger table needs another click (the UI says so). */
const MAX_CLEAR_BATCHES = 50;
/** Most documents one delete request names. */
export const MAX_DELETE_IDS = 1_000;
/** Largest document text accepted from the editor (Convex's document limit is 1 MiB). */
export const MAX_DOCUMENT_TEXT_BYTES = 2 * 1024 * 1024;
const COUNT_PAGE_ROWS = 5_000;

/** One table as the Data page lists it. */
export interface TableSummary {
  componentPath: string;
  name: string;
  /** Documents, up to {@link MAX_COUNTED_DOCUMENTS}. */
  count: number;
  /** True when counting stopped at the cap. */
  countCapped: boolean;
  indexes: { name: string; fields: string[]; ready: boolean }[];
}

/** Every component path with data or code: the app first. */
export function componentPaths(database: Database, mounted: Iterable<string>): string[] {
  const paths = new Set<string>([""]);
  for (const path of mounted) paths.add(path);
  for (const table of database.catalog.tables) paths.add(table.componentPath ?? "");
  return [...paths].sort();
}

/** The user tables of one namespace, by name. */
export function userTables(database: Database, componentPath: string): TableInfo[] {
  return database.catalog.tables
    .filter((table) =>
      (table.componentPath ?? "") === componentPath && table.tableNumber >= FIRST_USER_TABLE_NUMBER &&
      !table.name.startsWith("_")
    )
    .sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

function requireTable(database: Database, componentPath: string, name: string): TableInfo {
  const table = userTables(database, componentPath).find((candidate) => candidate.name === name);
  if (!table) throw new DashboardError(404, "TableNotFound", `No table "${name}" in ${describe(componentPath)}`);
  return table;
}

function describe(componentPath: string): string {
  return componentPath === "" ? "the app" : `component ${componentPath}`;
}

/** Counts a table's documents by its `by_id` index, up to the cap. */
export async function countDocuments(
  database: Database,
  table: TableInfo,
): Promise<{ count: number; capped: boolean }> {
  const snapshot = database.readSnapshot(undefined, { componentPath: table.componentPath ?? "" });
  let count = 0;
  let resumeAfter: Uint8Array | undefined;
  while (count < MAX_COUNTED_DOCUMENTS) {
    const rows = await snapshot.scan(`${table.name}.by_id`, {
      ...(resumeAfter ? { resumeAfter } : {}),
      limit: COUNT_PAGE_ROWS,
    });
    count += rows.length;
    if (rows.length < COUNT_PAGE_ROWS) return { count, capped: false };
    resumeAfter = rows[rows.length - 1].key;
  }
  return { count, capped: true };
}

/** A count is reused for this long after a commit touched its table, so a write burst costs one recount per window. */
const MIN_RECOUNT_INTERVAL_MS = 2_000;

interface CachedCount {
  count: number;
  capped: boolean;
  countedAtMs: number;
}

/**
 * Document counts per table, recounted only after a commit wrote to the table (seen through its `by_id` index in the
 * commit's keys) and at most once per {@link MIN_RECOUNT_INTERVAL_MS}: the overview refreshes every few seconds, and
 * counting a 100k-document table on each refresh would cost more than everything else the dashboard does.
 */
export class TableCounts {
  readonly #database: Database;
  readonly #cache = new Map<string, CachedCount>();
  readonly #dirty = new Set<string>();
  /** `by_id` index ID → table key, for the catalog version `#catalogVersion`. */
  #tableOfIdIndex = new Map<number, string>();
  #catalogVersion = -1;

  constructor(database: Database) {
    this.#database = database;
    database.onCommit((event) => {
      this.#refreshIndexMap();
      for (const indexId of event.keysByIndex.keys()) {
        const key = this.#tableOfIdIndex.get(indexId);
        if (key !== undefined) this.#dirty.add(key);
      }
    });
  }

  /** The table's count, from the cache when no commit has touched it since. */
  async count(table: TableInfo): Promise<{ count: number; capped: boolean }> {
    const key = tableKey(table);
    const cached = this.#cache.get(key);
    const nowMs = Date.now();
    if (cached && (!this.#dirty.has(key) || nowMs - cached.countedAtMs < MIN_RECOUNT_INTERVAL_MS)) return cached;
    // Cleared before counting: a commit landing during the count marks it dirty again.
    this.#dirty.delete(key);
    const counted = await countDocuments(this.#database, table);
    this.#cache.set(key, { ...counted, countedAtMs: nowMs });
    if (this.#cache.size > MAX_CACHED_COUNTS) this.#cache.delete(this.#cache.keys().next().value!);
    return counted;
  }

  #refreshIndexMap(): void {
    const catalog = this.#database.catalog;
    if (catalog.version === this.#catalogVersion) return;
    this.#catalogVersion = catalog.version;
    this.#tableOfIdIndex = new Map();
    for (const table of catalog.tables) {
      const byId = table.indexes.find((index) => index.name === `${table.name}.by_id`);
      if (byId) this.#tableOfIdIndex.set(byId.indexId, tableKey(table));
    }
  }
}

/** Most tables whose counts are cached (beyond it the oldest entry is recounted when next asked). */
const MAX_CACHED_COUNTS = 10_000;

function tableKey(table: TableInfo): string {
  return `${table.componentPath ?? ""}\u0000${table.tableNumber}`;
}

/** The tables of every namespace with their counts and indexes. */
export async function listTables(
  database: Database,
  counts: TableCounts,
  mounted: Iterable<string>,
): Promise<TableSummary[]> {
  const summaries: TableSummary[] = [];
  for (const componentPath of componentPaths(database, mounted)) {
    for (const table of userTables(database, componentPath)) {
      const { count, capped } = await counts.count(table);
      summaries.push({
        componentPath,
        name: table.name,
        count,
        countCapped: capped,
        indexes: table.indexes.map((index) => ({
          name: index.name.slice(table.name.length + 1),
          fields: index.fields,
          ready: index.ready,
        })),
      });
    }
  }
  return summaries;
}

/** What the UI asks for a page of documents. */
export interface PageRequest {
  componentPath: string;
  table: string;
  /** The index's short name (`by_creation_time`, `by_channel`, ...). */
  index: string;
  order: "asc" | "desc";
  /** The previous page's cursor; null for the first page. */
  cursor: string | null;
  limit: number;
  /** Keep only documents whose field (a dotted path) equals the convex-JSON value `filterValue`. */
  filterField: string | null;
  filterValue: string | null;
}

/** A page of documents. */
export interface DocumentPage {
  documents: JsonValue[];
  /** The table name of every string in the page that is an ID of a table of this namespace (for links). */
  idTables: Record<string, string>;
  cursor: string | null;
  isDone: boolean;
  /** Documents examined (more than returned when filtering). */
  scanned: number;
  snapshotTs: string;
}

/** A page of `request.table` through `request.index`. */
export async function documentPage(database: Database, request: PageRequest): Promise<DocumentPage> {
  const table = requireTable(database, request.componentPath, request.table);
  const index = table.indexes.find((candidate) => candidate.name === `${table.name}.${request.index}`);
  if (!index) throw badRequest(`Table "${table.name}" has no index "${request.index}"`, "IndexNotFound");
  if (!index.ready) throw badRequest(`Index "${request.index}" is still backfilling`, "IndexNotReady");
  const limit = Math.max(1, Math.min(Math.floor(request.limit) || 50, MAX_PAGE_DOCUMENTS));
  const filter = parseFilter(request.filterField, request.filterValue);
  const snapshot = database.readSnapshot(undefined, { componentPath: request.componentPath });
  const scan = new PageScan(limit, filter);
  let resumeAfter = parseCursor(request.cursor);
  // Unfiltered: one scan of `limit`. Filtered: scans in chunks until the page is full or a scan budget is spent.
  while (!scan.stopped) {
    const want = filter ? FILTER_CHUNK_DOCUMENTS : limit - scan.found.length;
    const rows = await snapshot.scan(index.name, {
      ...(resumeAfter ? { resumeAfter } : {}),
      order: request.order,
      limit: want,
    });
    const consumedAll = scan.take(rows);
    if (consumedAll && rows.length < want) {
      scan.exhausted = true;
      break;
    }
    resumeAfter = scan.lastKey ?? undefined;
  }
  const { found, exhausted, lastKey, scanned } = scan;
  const documents = found.map((row) => JSON.parse(row.json) as JsonValue);
  return {
    documents,
    idTables: idTablesOf(database, request.componentPath, documents),
    cursor: exhausted || lastKey === null ? null : keyToBase64(lastKey),
    isDone: exhausted,
    scanned,
    snapshotTs: snapshot.snapshotTs.toString(),
  };
}

interface Filter {
  field: string;
  value: Value;
}

/** Documents a filtered page reads from the index per scan. */
const FILTER_CHUNK_DOCUMENTS = 1_000;
/** Most bytes of documents in one page (documents are up to 1 MiB each); a page holds at least one. */
export const MAX_PAGE_BYTES = 8 * 1024 * 1024;
/** Most bytes of documents a filtered page examines. */
export const MAX_FILTER_SCAN_BYTES = 64 * 1024 * 1024;

/** The state of one page's scan: what it kept, where it stopped, and what it spent. */
class PageScan {
  readonly found: ScannedDocument[] = [];
  lastKey: Uint8Array | null = null;
  scanned = 0;
  /** The index has nothing after `lastKey`. */
  exhausted = false;
  /** The page is full or a budget is spent. */
  stopped = false;
  #pageBytes = 0;
  #scannedBytes = 0;

  constructor(readonly limit: number, readonly filter: Filter | null) {}

  /** Consumes rows in order until the page is full or a budget is spent; true when it consumed them all. */
  take(rows: ScannedDocument[]): boolean {
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i];
      const matched = this.filter === null || matches(row, this.filter);
      // A document that would overflow the page's bytes starts the next page instead.
      if (matched && this.found.length > 0 && this.#pageBytes + row.json.length > MAX_PAGE_BYTES) {
        this.stopped = true;
        return false;
      }
      this.lastKey = row.key;
      this.scanned++;
      this.#scannedBytes += row.json.length;
      if (matched) {
        this.found.push(row);
        this.#pageBytes += row.json.length;
      }
      const spent = this.scanned >= MAX_FILTER_SCAN_DOCUMENTS || this.#scannedBytes >= MAX_FILTER_SCAN_BYTES;
      if (this.found.length === this.limit || spent) {
        this.stopped = true;
        return i === rows.length - 1;
      }
    }
    return true;
  }
}

function parseFilter(field: string | null, valueText: string | null): Filter | null {
  if (field === null || field === "") return null;
  if (valueText === null) throw badRequest("A filter needs a value");
  return { field, value: parseValueText(valueText, "The filter value") };
}

function matches(row: ScannedDocument, filter: Filter): boolean {
  const document = jsonToValue(JSON.parse(row.json)) as Record<string, Value>;
  const value = getFieldPath(document, filter.field);
  return value !== undefined && valuesEqual(value, filter.value);
}

function parseCursor(cursor: string | null): Uint8Array | undefined {
  if (cursor === null || cursor === "") return undefined;
  try {
    return keyFromBase64(cursor);
  } catch {
    throw badRequest("The page cursor is not valid; reload the table", "InvalidCursor");
  }
}

/** Parses convex-JSON text (`{"$integer": ...}` for int64, `{"$bytes": ...}` for bytes) into a value. */
function parseValueText(text: string, what: string): Value {
  if (new TextEncoder().encode(text).length > MAX_DOCUMENT_TEXT_BYTES) {
    throw new DashboardError(413, "DocumentTooLarge", `${what} is larger than ${MAX_DOCUMENT_TEXT_BYTES} bytes`);
  }
  try {
    return parseConvexJsonText(text);
  } catch (error) {
    throw badRequest(`${what} is not valid Convex JSON: ${(error as Error).message}`, "InvalidJson");
  }
}

/** Every string in `values` (deeply) that is an ID of a table of the namespace, mapped to the table's name. */
export function idTablesOf(database: Database, componentPath: string, values: JsonValue[]): Record<string, string> {
  const tableNames = new Map<number, string>();
  for (const table of database.catalog.tables) {
    if ((table.componentPath ?? "") === componentPath) tableNames.set(table.tableNumber, table.name);
  }
  const out: Record<string, string> = {};
  const visit = (value: JsonValue, depth: number) => {
    if (depth > 64) return;
    if (typeof value === "string") {
      const tableNumber = decodeDocumentId(value)?.tableNumber;
      const name = tableNumber === undefined ? undefined : tableNames.get(tableNumber);
      if (name !== undefined) out[value] = name;
    } else if (Array.isArray(value)) {
      for (const item of value) visit(item, depth + 1);
    } else if (value !== null && typeof value === "object") {
      for (const item of Object.values(value)) visit(item, depth + 1);
    }
  };
  for (const value of values) visit(value, 0);
  return out;
}

/** One document by ID, or a 404. */
export async function getDocument(
  database: Database,
  componentPath: string,
  id: string,
): Promise<{ document: JsonValue; table: string; idTables: Record<string, string> }> {
  const table = tableOfId(database, componentPath, id);
  const stored = await database.readSnapshot(undefined, { componentPath }).get(id);
  if (stored === null) throw new DashboardError(404, "DocumentNotFound", `Document ${id} does not exist`);
  const document = JSON.parse(stored.json) as JsonValue;
  return { document, table: table.name, idTables: idTablesOf(database, componentPath, [document]) };
}

function tableOfId(database: Database, componentPath: string, id: string): TableInfo {
  const tableNumber = decodeDocumentId(id)?.tableNumber;
  const table = userTables(database, componentPath).find((candidate) => candidate.tableNumber === tableNumber);
  if (!table) {
    throw new DashboardError(404, "DocumentNotFound", `"${id}" is not an ID of a table in ${describe(componentPath)}`);
  }
  return table;
}

/** A document object from the editor's text; system fields are the server's, so they are dropped. */
function documentFromText(text: string): Record<string, Value> {
  const value = parseValueText(text, "The document");
  if (value === null || typeof value !== "object" || Array.isArray(value) || value instanceof ArrayBuffer) {
    throw badRequest("A document must be an object");
  }
  const { _id: _ignoredId, _creationTime: _ignoredTime, ...fields } = value as Record<string, Value>;
  return fields;
}

/** Inserts a document (creating the table if new); returns its ID. */
export async function insertDocument(
  database: Database,
  componentPath: string,
  tableName: string,
  text: string,
): Promise<string> {
  try {
    checkUserTableName(tableName);
  } catch (error) {
    throw badRequest((error as Error).message, "InvalidTableName");
  }
  const fields = documentFromText(text);
  return await writeWithServerErrors(database, componentPath, "insert", (tx) => tx.insert(tableName, fields));
}

/** Replaces document `id` with the editor's text (its `_id` and `_creationTime` stay). */
export async function replaceDocument(database: Database, componentPath: string, id: string, text: string) {
  tableOfId(database, componentPath, id);
  const fields = documentFromText(text);
  await writeWithServerErrors(database, componentPath, "replace", (tx) => tx.replace(id, fields));
}

/** Deletes documents; returns how many existed. */
export async function deleteDocuments(database: Database, componentPath: string, ids: string[]): Promise<number> {
  if (ids.length > MAX_DELETE_IDS) throw badRequest(`At most ${MAX_DELETE_IDS} documents per delete`);
  for (const id of ids) tableOfId(database, componentPath, id);
  return await writeWithServerErrors(database, componentPath, "delete", async (tx) => {
    let deleted = 0;
    for (const id of ids) if (await tx.delete(id)) deleted++;
    return deleted;
  });
}

/** Deletes a table's documents in batches; `done` is false when the request's batch budget ran out first. */
export async function clearTable(
  database: Database,
  componentPath: string,
  tableName: string,
): Promise<{ deleted: number; done: boolean }> {
  const table = requireTable(database, componentPath, tableName);
  let deleted = 0;
  for (let batch = 0; batch < MAX_CLEAR_BATCHES; batch++) {
    const count = await writeWithServerErrors(database, componentPath, "clear", async (tx) => {
      const rows = await tx.scan(`${table.name}.by_id`, { limit: CLEAR_BATCH_DOCUMENTS });
      for (const row of rows) await tx.delete(row.id);
      return rows.length;
    });
    deleted += count;
    if (count < CLEAR_BATCH_DOCUMENTS) return { deleted, done: true };
  }
  return { deleted, done: false };
}

type Tx = Parameters<Parameters<Database["runSystemTransaction"]>[0]>[0];

/** Runs a write; the server's refusal (schema, limits, names) becomes a 400 with its message. */
async function writeWithServerErrors<T>(
  database: Database,
  componentPath: string,
  what: string,
  run: (tx: Tx) => Promise<T>,
): Promise<T> {
  try {
    const { value } = await database.runSystemTransaction(run, { componentPath, label: `dashboard: ${what}` });
    return value;
  } catch (error) {
    if (error instanceof DashboardError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw badRequest(message, "WriteRefused");
  }
}
