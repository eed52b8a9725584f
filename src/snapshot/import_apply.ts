/**
 * Writing a checked import: every document of the file (and every delete its mode implies) in one commit, taken in
 * an exclusive commit turn so it cannot lose a conflict to concurrent writers (they wait for the turn). Tables are
 * created in the source's table-number order, so IDs of a snapshot keep their tables when the numbers line up (a
 * fresh deployment, or the one the snapshot came from); stored files are written before the commit and checked
 * against their sha256. Component namespaces (`_components/` in a ZIP) must be mounted already: the push creates
 * them, an import only fills their tables.
 *
 * Private to `src/snapshot`.
 */
import {
  type Database,
  type DocumentWrite,
  FIRST_USER_TABLE_NUMBER,
  type ReadRange,
  type TableInfo,
} from "../database/mod.ts";
import { storageDocument, type StorageService } from "../storage/mod.ts";
import {
  checkDocument,
  decodeDocumentId,
  generateDocumentId,
  isDocumentIdOfTable,
  type Value,
  valueToJsonText,
} from "../values/mod.ts";
import { IdTranslation } from "./id_translation.ts";
import { type ImportedTable, ImportFileError, type ImportSource } from "./import_sources.ts";

/** Most bytes of documents (as JSON) one import writes: they are held in memory until its one commit. */
export const MAX_IMPORT_WRITE_BYTES = 256 * 1024 * 1024;
/**
 * Most documents one import writes: the one commit's index keys and write set cost about 2 KiB of server memory per
 * document besides its JSON (measured with scripts/bench/snapshot_bench.ts), so this keeps an import under ~500 MiB.
 */
export const MAX_IMPORT_DOCUMENTS = 200_000;
/** Largest stored file restored from a snapshot. */
const MAX_FILE_BYTES = 1024 * 1024 * 1024;
const STORAGE_TABLE = "_storage";
/** Creation times of one import's generated documents are at least this far apart (ms). */
const CREATION_TIME_STEP_MS = 0.001;
/** Progress is reported every this many documents read. */
const PROGRESS_EVERY_DOCUMENTS = 10_000;
/** Checkpoint lines kept per import (a ZIP with many tables adds one per table). */
const MAX_CHECKPOINTS = 200;

/** The import modes of the CLI (`--append`, `--replace`, `--replace-all`, none). */
export type ImportMode = "requireEmpty" | "append" | "replace" | "replaceAll";

/** What an import in progress reports: finished steps and the current one (the CLI prints both). */
export interface ImportProgress {
  checkpoints: string[];
  message: string;
}

/** What writing an import needs. */
export interface ApplyContext {
  database: Database;
  storage: StorageService;
  mode: ImportMode;
  /** The namespace the import targets (`""`: the app). */
  componentPath: string;
  /**
   * Registers component namespaces the file names that do not exist here (`denvex restore` into a fresh data
   * directory: the next push mounts the components and finds their data). Otherwise such a file is refused.
   */
  mountComponents: boolean;
  progress: ImportProgress;
  /**
   * Called after the progress changed; `urgent` once reading is done (the caller throttles the others). An urgent
   * report may return a promise: the commit waits for it, so the news goes out before the commit's long synchronous
   * stretch blocks the event loop.
   */
  report: (urgent: boolean) => void | Promise<void>;
}

interface Insert {
  table: TableInfo;
  json: string;
}

/** Where each imported table goes, and how IDs change per namespace. */
interface ImportPlan {
  tables: { imported: ImportedTable; namespace: string; table: TableInfo }[];
  /** Per relative namespace with `_storage` in the file: its `_storage` table here. */
  storageTables: Map<string, TableInfo>;
  /** Per target namespace. */
  translations: Map<string, IdTranslation>;
}

/** Writes `source` in one commit; resolves with the documents written. */
export async function applyImport(context: ApplyContext, source: ImportSource): Promise<number> {
  const inserts = new Map<string, Insert>();
  let writeBytes = 0;
  const add = (table: TableInfo, id: string, json: string) => {
    if (inserts.has(id)) throw new ImportFileError(`the document ${id} appears twice in the import`);
    writeBytes += json.length;
    if (inserts.size >= MAX_IMPORT_DOCUMENTS) {
      throw new ImportFileError(`an import writes at most ${MAX_IMPORT_DOCUMENTS} documents (split the file)`);
    }
    if (writeBytes > MAX_IMPORT_WRITE_BYTES) {
      throw new ImportFileError(`an import writes at most ${MAX_IMPORT_WRITE_BYTES} bytes of documents`);
    }
    inserts.set(id, { table, json });
  };
  const plan = await planImport(context, source);
  const targetTables = await readTables(context, plan, add);
  const storageTables = await writeFiles(context, source, plan, add);
  const cleared = clearedTables(context, [...targetTables, ...storageTables]);
  const touched = [...new Set([...cleared, ...targetTables, ...storageTables])];
  context.progress.message = `Writing ${inserts.size} documents in one commit`;
  await context.report(true);
  await commitImport(context, inserts, cleared, touched, writeBytes);
  return inserts.size;
}

/**
 * Creates the tables (in the source's number order) and decides the ID translations: a table this import creates
 * takes its source number when that is free here; otherwise IDs of the source table are translated.
 */
async function planImport(context: ApplyContext, source: ImportSource): Promise<ImportPlan> {
  const plan: ImportPlan = { tables: [], storageTables: new Map(), translations: new Map() };
  const translation = (namespace: string) => {
    let found = plan.translations.get(namespace);
    if (!found) plan.translations.set(namespace, found = new IdTranslation());
    return found;
  };
  const ordered = [...source.tables].sort((a, b) =>
    (a.sourceTableNumber ?? Infinity) - (b.sourceTableNumber ?? Infinity)
  );
  for (const imported of ordered) {
    const namespace = joinComponentPath(context.componentPath, imported.componentPath);
    const table = await targetTable(context, namespace, imported.name, imported.sourceTableNumber);
    plan.tables.push({ imported, namespace, table });
    if (imported.sourceTableNumber !== null) translation(namespace).set(imported.sourceTableNumber, table.tableNumber);
  }
  for (const relative of source.storageNamespaces) {
    const namespace = joinComponentPath(context.componentPath, relative);
    const table = await targetTable(context, namespace, STORAGE_TABLE, null);
    plan.storageTables.set(relative, table);
    const first = (source.files ?? []).find((file) => file.componentPath === relative);
    const sourceNumber = first ? decodeDocumentId(first.metadata._id)?.tableNumber : undefined;
    if (sourceNumber !== undefined) translation(namespace).set(sourceNumber, table.tableNumber);
  }
  const changed = [...plan.translations.values()].reduce((sum, t) => sum + t.tableCount, 0);
  if (changed > 0) {
    checkpoint(context, `IDs of ${changed} tables get this deployment's table numbers (their numbers are taken here)`);
  }
  return plan;
}

/** Reads and checks every table's documents into `add`; returns the tables written. */
async function readTables(
  context: ApplyContext,
  plan: ImportPlan,
  add: (table: TableInfo, id: string, json: string) => void,
): Promise<TableInfo[]> {
  let lastCreationTimeMs = 0;
  for (const { imported, namespace, table } of plan.tables) {
    const translation = plan.translations.get(namespace) ?? new IdTranslation();
    const label = tableLabel(namespace, table.name);
    let count = 0;
    for await (const original of imported.documents()) {
      const document = translation.value(original) as Record<string, Value>;
      validate(document, label);
      const id = typeof document._id === "string" ? document._id : generateDocumentId(table.tableNumber);
      if (!isDocumentIdOfTable(id, table.tableNumber)) {
        throw new ImportFileError(
          `the ID ${id} of table "${label}" was made for another table number than "${label}" has here ` +
            `(${table.tableNumber}); import into a deployment whose tables were created in the same order`,
        );
      }
      // Documents without one get increasing creation times, so they list in the file's order.
      lastCreationTimeMs = Math.max(Date.now(), lastCreationTimeMs + CREATION_TIME_STEP_MS);
      const creationTimeMs = typeof document._creationTime === "number" ? document._creationTime : lastCreationTimeMs;
      add(table, id, valueToJsonText({ ...document, _id: id, _creationTime: creationTimeMs }));
      if (++count % PROGRESS_EVERY_DOCUMENTS === 0) setMessage(context, `Reading "${label}" (${count} documents)`);
    }
    checkpoint(context, `Read ${count} documents of "${label}"`);
  }
  return plan.tables.map(({ table }) => table);
}

/** Writes the stored files of the source (blobs first; their documents join the commit); returns their tables. */
async function writeFiles(
  context: ApplyContext,
  source: ImportSource,
  plan: ImportPlan,
  add: (table: TableInfo, id: string, json: string) => void,
): Promise<TableInfo[]> {
  const tables = plan.storageTables;
  let count = 0;
  for (const file of source.files ?? []) {
    const storageTable = tables.get(file.componentPath)!;
    const namespace = joinComponentPath(context.componentPath, file.componentPath);
    const id = plan.translations.get(namespace)?.id(file.metadata._id) ?? file.metadata._id;
    const { _creationTime: creationTimeMs, sha256, contentType } = file.metadata;
    if (!isDocumentIdOfTable(id, storageTable.tableNumber)) {
      throw new ImportFileError(`_storage: ${id} is not a storage ID of this deployment's "_storage" table`);
    }
    const written = await context.storage.blobs.write(id, ReadableStream.from(file.bytes()), MAX_FILE_BYTES);
    if (written.sha256Base64 !== sha256) {
      throw new ImportFileError(`_storage: the bytes of ${id} do not match their sha256`);
    }
    add(storageTable, id, JSON.stringify(storageDocument(id, written, contentType ?? null, creationTimeMs)));
    if (++count % 100 === 0) setMessage(context, `Restoring files (${count})`);
  }
  if (count > 0) checkpoint(context, `Restored ${count} files`);
  return [...tables.values()];
}

/**
 * The table `name` of `namespace`, created when missing (a component namespace must exist already). A table this
 * call creates takes `sourceNumber` when no table here has that number, so IDs from the snapshot stay valid.
 */
async function targetTable(
  context: ApplyContext,
  namespace: string,
  name: string,
  sourceNumber: number | null,
): Promise<TableInfo> {
  const database = context.database;
  await ensureNamespace(context, namespace);
  const existed = database.catalogView.forComponent(namespace).tableByName(name) !== undefined;
  if (!name.startsWith("_")) await database.createTable(name, namespace);
  const table = database.catalogView.forComponent(namespace).tableByName(name);
  if (!table) throw new ImportFileError(`the table "${tableLabel(namespace, name)}" does not exist here`);
  if (existed || sourceNumber === null || sourceNumber === table.tableNumber) return table;
  if (sourceNumber < FIRST_USER_TABLE_NUMBER || database.catalog.tables.some((t) => t.tableNumber === sourceNumber)) {
    return table;
  }
  // Just created, so no document has its number yet: renumbering changes nothing stored.
  await database.updateCatalog((current) => ({
    ...current,
    tables: current.tables.map((t) => t.tableNumber === table.tableNumber ? { ...t, tableNumber: sourceNumber } : t),
  }));
  return database.catalogView.forComponent(namespace).tableByName(name)!;
}

/** Refuses (or, when the context says so, registers) a component namespace that does not exist here. */
export async function ensureNamespace(context: ApplyContext, namespace: string): Promise<void> {
  const database = context.database;
  if (namespace === "" || database.catalog.tables.some((table) => (table.componentPath ?? "") === namespace)) return;
  if (!context.mountComponents) {
    throw new ImportFileError(
      `the component "${namespace}" is not mounted here: deploy the app with it before importing its data`,
    );
  }
  await database.mountComponent(namespace);
}

/** The tables whose documents the mode deletes first: the written ones, or with replaceAll every user table. */
function clearedTables(context: ApplyContext, written: TableInfo[]): TableInfo[] {
  if (context.mode === "append") return [];
  if (context.mode !== "replaceAll") return written;
  const base = context.componentPath;
  const inScope = (path: string) => base === "" || path === base || path.startsWith(`${base}/`);
  const users = context.database.catalog.tables.filter((table) =>
    inScope(table.componentPath ?? "") && table.tableNumber >= FIRST_USER_TABLE_NUMBER && !table.name.startsWith("_")
  );
  return [...new Set([...written, ...users])];
}

async function commitImport(
  context: ApplyContext,
  inserts: Map<string, Insert>,
  cleared: TableInfo[],
  touched: TableInfo[],
  writeBytes: number,
): Promise<void> {
  const { database, mode } = context;
  await database.withCommitTurn(async (commit) => {
    const snapshotTs = database.latestTs;
    const writes = new Map<string, DocumentWrite>();
    for (const table of cleared) {
      const snapshot = database.readSnapshot(snapshotTs, { componentPath: table.componentPath ?? "" });
      const existing = await snapshot.scan(`${table.name}.by_id`, { limit: 1 });
      if (existing.length === 0) continue;
      if (mode === "requireEmpty") {
        throw new ImportFileError(
          `table "${tableLabel(table.componentPath ?? "", table.name)}" is not empty: use --append, --replace ` +
            `or --replace-all`,
        );
      }
      for await (const document of tableDocuments(snapshot, table.name)) {
        writes.set(document.id, {
          id: document.id,
          tableNumber: table.tableNumber,
          previousJson: document.json,
          previousTs: String(document.ts),
          json: null,
        });
      }
    }
    const appSnapshot = database.readSnapshot(snapshotTs);
    for (const [id, insert] of inserts) {
      const replaced = writes.get(id);
      if (replaced) {
        replaced.json = insert.json;
        continue;
      }
      if (mode === "append") {
        const snapshot = insert.table.componentPath
          ? database.readSnapshot(snapshotTs, { componentPath: insert.table.componentPath })
          : appSnapshot;
        if (await snapshot.get(id) !== null) {
          throw new ImportFileError(`the document ${id} already exists: use --replace to overwrite it`);
        }
      }
      writes.set(id, {
        id,
        tableNumber: insert.table.tableNumber,
        previousJson: null,
        previousTs: null,
        json: insert.json,
      });
    }
    const readSet: ReadRange[] = touched.map((table) => ({
      indexId: table.indexes.find((index) => index.name === `${table.name}.by_id`)!.indexId,
      lowKey: "",
      highKey: null,
    }));
    await commit({
      snapshotTs: snapshotTs.toString(),
      readSet,
      writes: [...writes.values()],
      metrics: { bytesRead: 0, bytesWritten: writeBytes, documentsRead: 0, documentsWritten: writes.size },
    });
  });
}

async function* tableDocuments(snapshot: ReturnType<Database["readSnapshot"]>, tableName: string) {
  let resumeAfter: Uint8Array | undefined;
  while (true) {
    const page = await snapshot.scan(`${tableName}.by_id`, { limit: 1_000, ...(resumeAfter ? { resumeAfter } : {}) });
    yield* page;
    if (page.length < 1_000) return;
    resumeAfter = page[page.length - 1].key;
  }
}

/** `base` and a path relative to it, joined (`""` is the app). */
export function joinComponentPath(base: string, relative: string): string {
  return base === "" ? relative : relative === "" ? base : `${base}/${relative}`;
}

/** A table's name for messages: `component/table` inside a component. */
export function tableLabel(componentPath: string, name: string): string {
  return componentPath === "" ? name : `${componentPath}/${name}`;
}

/** Checks one document; the error names its table. */
export function validate(document: Record<string, Value>, label: string): void {
  try {
    checkDocument(document);
  } catch (error) {
    throw new ImportFileError(`table "${label}": ${(error as Error).message}`);
  }
}

function setMessage(context: ApplyContext, message: string): void {
  context.progress.message = message;
  context.report(false);
}

function checkpoint(context: ApplyContext, line: string): void {
  if (context.progress.checkpoints.length < MAX_CHECKPOINTS) context.progress.checkpoints.push(line);
  // Throttled like messages: the urgent report before the commit carries every checkpoint so far.
  context.report(false);
}
