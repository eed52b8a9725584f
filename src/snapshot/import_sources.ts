/**
 * The documents of an uploaded import file, as Convex values, one table at a time: a snapshot ZIP (each
 * `<table>/documents.jsonl` decoded with the export contexts of its `generated_schema.jsonl`, `_tables` for the
 * source table numbers, `_storage` metadata and files) or one table's `.jsonl`, `.json` array or `.csv`.
 * Streams everything but a `.json` array (parsed whole, so it has a size limit) and the export contexts.
 */
import { jsonToValue, type JsonValue, type Value } from "../values/mod.ts";
import { applyExportContext, type ExportContext } from "./clean_json.ts";
import { readZipDirectory, readZipEntry, textLines, type ZipEntry } from "./zip_reader.ts";

/** The file formats `npx convex import` names. */
export type ImportFormat = "zip" | "jsonLines" | "jsonArray" | "csv";

/** Largest `.json` array file (it is parsed in one piece). */
export const MAX_JSON_ARRAY_BYTES = 64 * 1024 * 1024;

/** A problem with the file's content: the import fails with this message. */
export class ImportFileError extends Error {}

/** One table's documents in the file. */
export interface ImportedTable {
  name: string;
  /** The component namespace the table belongs to, relative to the import's target (`""`: the target itself). */
  componentPath: string;
  /** The table's number in the deployment the snapshot came from (ZIP with `_tables`), for keeping IDs. */
  sourceTableNumber: number | null;
  documents(): AsyncGenerator<Record<string, Value>>;
}

/** A stored file in a snapshot ZIP. */
export interface ImportedFile {
  /** The component namespace whose `_storage` holds it, relative to the import's target. */
  componentPath: string;
  /** Its `_storage` document (`_id`, `_creationTime`, `sha256`, `size`, `contentType?`). */
  metadata: { _id: string; _creationTime: number; sha256: string; size: number; contentType?: string };
  bytes(): AsyncGenerator<Uint8Array>;
}

/** What an import file holds. */
export interface ImportSource {
  tables: ImportedTable[];
  /** Null when the file has no `_storage` (not a ZIP, or one exported without file storage). */
  files: ImportedFile[] | null;
  /** The component namespaces with a `_storage/documents.jsonl` (their file storage is part of the import). */
  storageNamespaces: string[];
}

/** Opens the file at `path` for reading as `format`; `tableName` is required for every format but a ZIP. */
export async function openImportSource(
  path: string,
  format: ImportFormat,
  tableName: string | null,
): Promise<ImportSource> {
  if (format === "zip") return await openZip(path);
  if (tableName === null) throw new ImportFileError(`a table name is required for format ${format}`);
  const documents = format === "jsonLines"
    ? () => jsonLinesDocuments(path)
    : format === "jsonArray"
    ? () => jsonArrayDocuments(path)
    : () => csvDocuments(path);
  return {
    tables: [{ name: tableName, componentPath: "", sourceTableNumber: null, documents }],
    files: null,
    storageNamespaces: [],
  };
}

/** Most nested component levels a ZIP path may name (Convex's component trees are shallow). */
const MAX_COMPONENT_DEPTH = 16;

/**
 * The ZIP folder of a component namespace: Convex's layout nests each level as `_components/<name>/`, so the
 * instance `a/b` lives under `_components/a/_components/b/`; the app's tables are at the root.
 */
export function componentZipPrefix(componentPath: string): string {
  return componentPath === "" ? "" : componentPath.split("/").map((name) => `_components/${name}/`).join("");
}

/** Splits a ZIP path into its component namespace and the path inside it. */
export function splitComponentZipPath(path: string): { componentPath: string; rest: string } {
  const segments = path.split("/");
  const names: string[] = [];
  let at = 0;
  while (segments[at] === "_components" && at + 2 < segments.length) {
    names.push(segments[at + 1]);
    at += 2;
  }
  if (names.length > MAX_COMPONENT_DEPTH) {
    throw new ImportFileError(`${path}: components nest at most ${MAX_COMPONENT_DEPTH} levels`);
  }
  return { componentPath: names.join("/"), rest: segments.slice(at).join("/") };
}

async function openZip(path: string): Promise<ImportSource> {
  const entries = await readZipDirectory(path);
  const byPath = new Map(entries.map((entry) => [entry.path, entry]));
  const tables: ImportedTable[] = [];
  const numbersByPrefix = new Map<string, Map<string, number>>();
  for (const entry of entries) {
    const { componentPath, rest } = splitComponentZipPath(entry.path);
    const match = /^([^/]+)\/documents\.jsonl$/.exec(rest);
    if (!match || match[1].startsWith("_")) continue;
    const name = match[1];
    const prefix = componentZipPrefix(componentPath);
    let sourceNumbers = numbersByPrefix.get(prefix);
    if (!sourceNumbers) numbersByPrefix.set(prefix, sourceNumbers = await readTableNumbers(path, byPath, prefix));
    const schemaEntry = byPath.get(`${prefix}${name}/generated_schema.jsonl`);
    tables.push({
      name,
      componentPath,
      sourceTableNumber: sourceNumbers.get(name) ?? null,
      documents: () => zipTableDocuments(path, entry, schemaEntry),
    });
  }
  const storageNamespaces = entries
    .map((entry) => splitComponentZipPath(entry.path))
    .filter(({ rest }) => rest === "_storage/documents.jsonl")
    .map(({ componentPath }) => componentPath);
  const files: ImportedFile[] = [];
  for (const componentPath of storageNamespaces) files.push(...await zipFiles(path, entries, componentPath));
  return { tables, files: storageNamespaces.length > 0 ? files : null, storageNamespaces };
}

/** `<prefix>_tables/documents.jsonl`: the source table numbers of one namespace (empty when absent). */
async function readTableNumbers(
  path: string,
  byPath: Map<string, ZipEntry>,
  prefix: string,
): Promise<Map<string, number>> {
  const sourceNumbers = new Map<string, number>();
  const tablesEntry = byPath.get(`${prefix}_tables/documents.jsonl`);
  if (!tablesEntry) return sourceNumbers;
  for await (const line of textLines(readZipEntry(path, tablesEntry))) {
    const row = parseLine(line, tablesEntry.path) as { name?: unknown; id?: unknown };
    if (typeof row.name === "string" && typeof row.id === "number") sourceNumbers.set(row.name, row.id);
  }
  return sourceNumbers;
}

async function* zipTableDocuments(
  path: string,
  entry: ZipEntry,
  schemaEntry: ZipEntry | undefined,
): AsyncGenerator<Record<string, Value>> {
  const contexts = schemaEntry ? await readContexts(path, schemaEntry) : new Map<string, ExportContext>();
  let lineNumber = 0;
  for await (const line of textLines(readZipEntry(path, entry))) {
    lineNumber++;
    const json = parseLine(line, `${entry.path}:${lineNumber}`);
    const id = (json as { _id?: unknown })._id;
    try {
      yield asDocument(applyExportContext(json, typeof id === "string" ? contexts.get(id) : undefined));
    } catch (error) {
      throw new ImportFileError(`${entry.path}:${lineNumber}: ${(error as Error).message}`);
    }
  }
}

/** The export contexts of `generated_schema.jsonl`: its first line is the shape, the rest `{"<id>": context}`. */
async function readContexts(path: string, entry: ZipEntry): Promise<Map<string, ExportContext>> {
  const contexts = new Map<string, ExportContext>();
  let first = true;
  for await (const line of textLines(readZipEntry(path, entry))) {
    const json = parseLine(line, entry.path);
    if (first) {
      first = false;
      continue;
    }
    for (const [id, context] of Object.entries(json as Record<string, ExportContext>)) contexts.set(id, context);
  }
  return contexts;
}

async function zipFiles(path: string, entries: ZipEntry[], componentPath: string): Promise<ImportedFile[]> {
  const prefix = `${componentZipPrefix(componentPath)}_storage/`;
  const metadataEntry = entries.find((entry) => entry.path === `${prefix}documents.jsonl`)!;
  const blobs = new Map<string, ZipEntry>();
  for (const entry of entries) {
    if (!entry.path.startsWith(prefix) || entry.path === metadataEntry.path) continue;
    // Convex names a file `_storage/<id>` or `_storage/<id>.<extension>`.
    const match = /^([^/.]+)(\.[^/]*)?$/.exec(entry.path.slice(prefix.length));
    if (match) blobs.set(match[1], entry);
  }
  const files: ImportedFile[] = [];
  for await (const line of textLines(readZipEntry(path, metadataEntry))) {
    const metadata = parseLine(line, metadataEntry.path) as ImportedFile["metadata"];
    if (typeof metadata._id !== "string" || typeof metadata._creationTime !== "number") {
      throw new ImportFileError(`${metadataEntry.path}: a line without _id or _creationTime`);
    }
    const blob = blobs.get(metadata._id);
    if (!blob) throw new ImportFileError(`${prefix}: the file ${metadata._id} is missing from the ZIP`);
    files.push({ componentPath, metadata, bytes: () => readZipEntry(path, blob) });
  }
  return files;
}

async function* fileBytes(path: string): AsyncGenerator<Uint8Array> {
  using file = await Deno.open(path, { read: true });
  yield* file.readable;
}

async function* jsonLinesDocuments(path: string): AsyncGenerator<Record<string, Value>> {
  let lineNumber = 0;
  for await (const line of textLines(fileBytes(path))) {
    lineNumber++;
    yield convexDocument(parseLine(line, `line ${lineNumber}`), `line ${lineNumber}`);
  }
}

async function* jsonArrayDocuments(path: string): AsyncGenerator<Record<string, Value>> {
  const { size } = await Deno.stat(path);
  if (size > MAX_JSON_ARRAY_BYTES) {
    throw new ImportFileError(`a .json array import holds at most ${MAX_JSON_ARRAY_BYTES} bytes; use .jsonl`);
  }
  const json = parseLine(await Deno.readTextFile(path), "the file");
  if (!Array.isArray(json)) throw new ImportFileError("a .json import must hold one array of objects");
  for (let i = 0; i < json.length; i++) yield convexDocument(json[i], `element ${i}`);
}

/** A CSV file with a header row: numbers become float64, `true`/`false` booleans, empty cells are left out. */
async function* csvDocuments(path: string): AsyncGenerator<Record<string, Value>> {
  let header: string[] | null = null;
  let rowNumber = 0;
  for await (const row of csvRows(textLines(fileBytes(path)))) {
    rowNumber++;
    if (header === null) {
      header = row;
      continue;
    }
    if (row.length !== header.length) {
      throw new ImportFileError(`CSV row ${rowNumber} has ${row.length} cells, the header ${header.length}`);
    }
    const document: Record<string, Value> = {};
    header.forEach((name, i) => {
      const cell = row[i];
      if (cell === "") return;
      const number = Number(cell);
      document[name] = cell === "true" ? true : cell === "false" ? false : Number.isFinite(number) ? number : cell;
    });
    yield asDocument(document);
  }
}

/** RFC 4180 rows (quoted cells may span lines). */
async function* csvRows(lines: AsyncIterable<string>): AsyncGenerator<string[]> {
  let cells: string[] = [];
  let cell = "";
  let quoted = false;
  for await (const line of lines) {
    for (let i = 0; i < line.length; i++) {
      const char = line[i];
      if (quoted) {
        if (char === '"' && line[i + 1] === '"') {
          cell += '"';
          i++;
        } else if (char === '"') quoted = false;
        else cell += char;
      } else if (char === '"') quoted = true;
      else if (char === ",") {
        cells.push(cell);
        cell = "";
      } else cell += char;
    }
    if (quoted) {
      cell += "\n";
      continue;
    }
    cells.push(cell);
    yield cells;
    cells = [];
    cell = "";
  }
  if (quoted) throw new ImportFileError("the CSV file ends inside a quoted cell");
}

function parseLine(text: string, where: string): JsonValue {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ImportFileError(`${where}: not valid JSON (${(error as Error).message})`);
  }
}

/** A single-table line: plain JSON, where convex-JSON forms (`{"$integer": ...}`) are decoded. */
function convexDocument(json: JsonValue, where: string): Record<string, Value> {
  try {
    return asDocument(jsonToValue(json));
  } catch (error) {
    throw new ImportFileError(`${where}: ${(error as Error).message}`);
  }
}

function asDocument(value: Value): Record<string, Value> {
  if (value === null || typeof value !== "object" || Array.isArray(value) || value instanceof ArrayBuffer) {
    throw new ImportFileError("every document must be a JSON object");
  }
  return value;
}
