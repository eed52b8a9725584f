/**
 * Staged imports: large imports into empty tables with bounded memory. Each table's documents are written, in
 * chunks of {@link STAGED_CHUNK_DOCUMENTS}, into a hidden staging table (`_staged_import_<tag>_<name>`, invisible to
 * functions, the CLI and exports, with copies of the target's indexes). Nothing the app reads changes until the
 * switch: one catalog change, in an exclusive commit turn, that drops each (empty) target table and gives its name
 * and number to the staging table. A crash before the switch leaves only staging tables, which the next import
 * deletes; a failed import deletes its own. So the import is all or nothing, like the one-commit path, while memory
 * holds one chunk.
 *
 * The documents carry IDs of the final table number from the start (the target's, or the staging table's own when
 * the target does not exist yet), so they need no rewrite at the switch. Before the switch, a marker document is
 * inserted into and deleted from each existing target table: a transaction that read the empty table before the
 * switch then conflicts instead of committing on what it saw.
 *
 * Stored files are written to the blob store first (their bytes checked against their sha256) and their `_storage`
 * documents staged like a table's, the namespace's (empty) `_storage` table being switched like any other.
 *
 * Used only when it fits (the caller decides with {@link stagingRefusal}): every table the import writes or clears
 * (`_storage` included when it restores files) is empty and none has search or vector indexes. Other imports take
 * the one-commit path and its size limits.
 *
 * Private to `src/snapshot`.
 */
import {
  type Database,
  type DocumentWrite,
  FIRST_USER_TABLE_NUMBER,
  type IndexInfo,
  type TableInfo,
} from "../database/mod.ts";
import { storageDocument } from "../storage/mod.ts";
import {
  decodeDocumentId,
  generateDocumentId,
  isDocumentIdOfTable,
  type Value,
  valueToJsonText,
} from "../values/mod.ts";
import { IdTranslation } from "./id_translation.ts";
import { type ApplyContext, ensureNamespace, joinComponentPath, tableLabel, validate } from "./import_apply.ts";
import { type ImportedFile, type ImportedTable, ImportFileError, type ImportSource } from "./import_sources.ts";

/** Documents per staged commit. */
export const STAGED_CHUNK_DOCUMENTS = 5_000;
/** Bytes of documents (JSON) per staged commit, whichever limit comes first. */
const STAGED_CHUNK_BYTES = 8 * 1024 * 1024;
/** Staging tables are named `_staged_import_<6 hex>_<name>`. */
const STAGING_PATTERN = /^_staged_import_[0-9a-f]{6}_/;
/** Largest stored file restored from a snapshot. */
const MAX_FILE_BYTES = 1024 * 1024 * 1024;
const STORAGE_TABLE = "_storage";
/** Creation times of one import's generated documents are at least this far apart (ms). */
const CREATION_TIME_STEP_MS = 0.001;

interface StagedTable {
  namespace: string;
  /** The target table's name and, when it existed at the start, its number. */
  name: string;
  existingNumber: number | null;
  staging: TableInfo;
  /** The number the table has after the switch (and its documents' IDs have from the start). */
  finalNumber: number;
}

/**
 * Why `source` cannot be staged (a message), or null when it can: the tables it writes or clears are empty and none
 * has search or vector indexes.
 */
export async function stagingRefusal(context: ApplyContext, source: ImportSource): Promise<string | null> {
  const { database } = context;
  const written = source.tables.map((table) => ({
    namespace: joinComponentPath(context.componentPath, table.componentPath),
    name: table.name,
  }));
  for (const relative of source.storageNamespaces) {
    written.push({ namespace: joinComponentPath(context.componentPath, relative), name: STORAGE_TABLE });
  }
  const cleared = context.mode === "replaceAll"
    ? database.catalog.tables
      .filter((table) => inScope(context.componentPath, table.componentPath ?? "") && isUserTable(table))
      .map((table) => ({ namespace: table.componentPath ?? "", name: table.name }))
    : [];
  for (const { namespace, name } of [...written, ...cleared]) {
    const table = database.catalogView.forComponent(namespace).tableByName(name);
    if (!table) continue;
    if ((table.searchIndexes?.length ?? 0) > 0 || (table.vectorIndexes?.length ?? 0) > 0) {
      return `the table "${tableLabel(namespace, name)}" has search or vector indexes`;
    }
    if (!await isEmpty(database, namespace, name)) return `the table "${tableLabel(namespace, name)}" is not empty`;
  }
  return null;
}

/** Writes `source` through staging tables and switches them in; resolves with the documents written. */
export async function applyStaged(context: ApplyContext, source: ImportSource): Promise<number> {
  const staged: StagedTable[] = [];
  const translations = new Map<string, IdTranslation>();
  try {
    const ordered = [...source.tables].sort((a, b) =>
      (a.sourceTableNumber ?? Infinity) - (b.sourceTableNumber ?? Infinity)
    );
    const translation = (namespace: string) => {
      let found = translations.get(namespace);
      if (!found) translations.set(namespace, found = new IdTranslation());
      return found;
    };
    const tables: [StagedTable, ImportedTable][] = [];
    for (const imported of ordered) {
      const namespace = joinComponentPath(context.componentPath, imported.componentPath);
      const table = await stage(context, namespace, imported.name, imported.sourceTableNumber);
      staged.push(table);
      tables.push([table, imported]);
      if (imported.sourceTableNumber !== null) {
        translation(namespace).set(imported.sourceTableNumber, table.finalNumber);
      }
    }
    const storage = new Map<string, StagedTable>();
    for (const relative of source.storageNamespaces) {
      const namespace = joinComponentPath(context.componentPath, relative);
      const table = await stage(context, namespace, STORAGE_TABLE, null);
      staged.push(table);
      storage.set(relative, table);
      const first = (source.files ?? []).find((file) => file.componentPath === relative);
      const sourceNumber = first ? decodeDocumentId(first.metadata._id)?.tableNumber : undefined;
      if (sourceNumber !== undefined) translation(namespace).set(sourceNumber, table.finalNumber);
    }
    let written = 0;
    for (const [table, imported] of tables) {
      written += await writeStaged(context, table, imported.documents(), translation(table.namespace));
    }
    for (const [relative, table] of storage) {
      const files = (source.files ?? []).filter((file) => file.componentPath === relative);
      written += await writeStagedFiles(context, table, files, translation(table.namespace));
    }
    context.progress.message = `Switching ${staged.length} staged tables in`;
    await context.report(true);
    await switchIn(context.database, staged);
    return written;
  } catch (error) {
    await dropStagingTables(context.database, staged.map((table) => table.staging)).catch((cleanupError) =>
      console.error("denvex: removing the staging tables of a failed import:", cleanupError)
    );
    throw error;
  }
}

/** Deletes staging tables a crashed import left behind (their documents, then the tables). */
export async function removeLeftoverStaging(database: Database): Promise<void> {
  const leftovers = database.catalog.tables.filter((table) => STAGING_PATTERN.test(table.name));
  if (leftovers.length > 0) await dropStagingTables(database, leftovers);
}

/** Creates the staging table of `name` in `namespace`, numbered and indexed for the switch. */
async function stage(
  context: ApplyContext,
  namespace: string,
  name: string,
  sourceNumber: number | null,
): Promise<StagedTable> {
  const database = context.database;
  await ensureNamespace(context, namespace);
  const target = database.catalogView.forComponent(namespace).tableByName(name);
  if (!target && name === STORAGE_TABLE) throw new ImportFileError(`"${namespace}" has no _storage table`);
  const stagingName = `_staged_import_${randomTag()}_${name}`;
  await database.createTable(stagingName, namespace);
  const created = database.catalogView.forComponent(namespace).tableByName(stagingName)!;
  // A new table takes its snapshot number when no table has it, so the snapshot's IDs stay as they are.
  const renumber = !target && sourceNumber !== null && sourceNumber >= FIRST_USER_TABLE_NUMBER &&
    !database.catalog.tables.some((table) => table.tableNumber === sourceNumber);
  let nextIndexId = database.nextIndexId();
  const copiedIndexes: IndexInfo[] = (target?.indexes ?? [])
    .filter((index) => !isBuiltinIndex(index, target!.name))
    .map((index) => ({
      indexId: nextIndexId++,
      name: `${stagingName}.${index.name.slice(target!.name.length + 1)}`,
      fields: [...index.fields],
      ready: true,
      ...(index.staged ? { staged: true } : {}),
    }));
  await database.updateCatalog((current) => ({
    ...current,
    tables: current.tables.map((table) =>
      table.tableNumber === created.tableNumber
        ? {
          ...table,
          tableNumber: renumber ? sourceNumber! : table.tableNumber,
          indexes: [...table.indexes, ...copiedIndexes],
        }
        : table
    ),
  }));
  const staging = database.catalogView.forComponent(namespace).tableByName(stagingName)!;
  return {
    namespace,
    name,
    existingNumber: target?.tableNumber ?? null,
    staging,
    finalNumber: target?.tableNumber ?? staging.tableNumber,
  };
}

/** Streams one table's documents into its staging table, a chunk per commit; resolves with the count. */
async function writeStaged(
  context: ApplyContext,
  table: StagedTable,
  documents: AsyncIterable<Record<string, Value>>,
  translation: IdTranslation,
): Promise<number> {
  const { database } = context;
  const label = tableLabel(table.namespace, table.name);
  /** ID → document JSON; `fromFile` IDs (not generated here) are checked against earlier chunks. */
  let chunk = new Map<string, { json: string; fromFile: boolean }>();
  let chunkBytes = 0;
  let count = 0;
  let lastCreationTimeMs = 0;
  const flush = async () => {
    if (chunk.size === 0) return;
    await commitChunk(database, table, chunk);
    chunk = new Map();
    chunkBytes = 0;
    context.progress.message = `Importing "${label}" (${count} documents written)`;
    context.report(false);
  };
  for await (const original of documents) {
    const document = translation.value(original) as Record<string, Value>;
    validate(document, label);
    const fromFile = typeof document._id === "string";
    const id = fromFile ? document._id as string : generateDocumentId(table.finalNumber);
    if (!isDocumentIdOfTable(id, table.finalNumber)) {
      throw new ImportFileError(
        `the ID ${id} of table "${label}" was made for another table number than "${label}" has here ` +
          `(${table.finalNumber}); import into a deployment whose tables were created in the same order`,
      );
    }
    if (chunk.has(id)) throw new ImportFileError(`the document ${id} appears twice in the import`);
    lastCreationTimeMs = Math.max(Date.now(), lastCreationTimeMs + CREATION_TIME_STEP_MS);
    const creationTimeMs = typeof document._creationTime === "number" ? document._creationTime : lastCreationTimeMs;
    const json = valueToJsonText({ ...document, _id: id, _creationTime: creationTimeMs });
    chunk.set(id, { json, fromFile });
    chunkBytes += json.length;
    count++;
    if (chunk.size >= STAGED_CHUNK_DOCUMENTS || chunkBytes >= STAGED_CHUNK_BYTES) await flush();
  }
  await flush();
  context.progress.checkpoints.push(`Staged ${count} documents of "${label}"`);
  context.report(false);
  return count;
}

/** Writes the blobs of `files` and stages their `_storage` documents; resolves with the count. */
async function writeStagedFiles(
  context: ApplyContext,
  table: StagedTable,
  files: ImportedFile[],
  translation: IdTranslation,
): Promise<number> {
  let chunk = new Map<string, { json: string; fromFile: boolean }>();
  let count = 0;
  for (const file of files) {
    const id = translation.id(file.metadata._id);
    if (!isDocumentIdOfTable(id, table.finalNumber)) {
      throw new ImportFileError(`_storage: ${id} is not a storage ID of this deployment's "_storage" table`);
    }
    if (chunk.has(id)) throw new ImportFileError(`the document ${id} appears twice in the import`);
    const written = await context.storage.blobs.write(id, ReadableStream.from(file.bytes()), MAX_FILE_BYTES);
    if (written.sha256Base64 !== file.metadata.sha256) {
      throw new ImportFileError(`_storage: the bytes of ${id} do not match their sha256`);
    }
    const document = storageDocument(id, written, file.metadata.contentType ?? null, file.metadata._creationTime);
    chunk.set(id, { json: JSON.stringify(document), fromFile: true });
    count++;
    if (chunk.size >= STAGED_CHUNK_DOCUMENTS) {
      await commitChunk(context.database, table, chunk);
      chunk = new Map();
      context.progress.message = `Restoring files (${count})`;
      context.report(false);
    }
  }
  if (chunk.size > 0) await commitChunk(context.database, table, chunk);
  context.progress.checkpoints.push(`Restored ${count} files`);
  context.report(false);
  return count;
}

/** Commits one chunk into the staging table, refusing an ID an earlier chunk already wrote. */
async function commitChunk(
  database: Database,
  table: StagedTable,
  chunk: Map<string, { json: string; fromFile: boolean }>,
): Promise<void> {
  const snapshotTs = database.latestTs;
  // IDs decode to the final number, which the target table (existing) or the staging table (new) has here now.
  const snapshot = database.readSnapshot(snapshotTs, { componentPath: table.namespace });
  const writes: DocumentWrite[] = [];
  let bytes = 0;
  for (const [id, { json, fromFile }] of chunk) {
    // A generated ID is 16 random bytes: only the file's own IDs can repeat.
    if (fromFile && await snapshot.get(id) !== null) {
      throw new ImportFileError(`the document ${id} appears twice in the import`);
    }
    writes.push({ id, tableNumber: table.staging.tableNumber, previousJson: null, previousTs: null, json });
    bytes += json.length;
  }
  await database.commit({
    snapshotTs: snapshotTs.toString(),
    readSet: [],
    writes,
    metrics: { bytesRead: 0, bytesWritten: bytes, documentsRead: 0, documentsWritten: writes.length },
  });
}

/** The switch: checks the targets are still empty, fences readers of them, then renames the staging tables in. */
async function switchIn(database: Database, staged: StagedTable[]): Promise<void> {
  await database.withCommitTurn(async (commit) => {
    for (const table of staged) {
      const current = database.catalogView.forComponent(table.namespace).tableByName(table.name);
      const label = tableLabel(table.namespace, table.name);
      if ((current?.tableNumber ?? null) !== table.existingNumber) {
        throw new ImportFileError(`the table "${label}" was created or replaced while the import ran`);
      }
      if (!current) continue;
      if (!await isEmpty(database, table.namespace, table.name)) {
        throw new ImportFileError(`the table "${label}" received documents while the import ran`);
      }
      await fence(database, commit, current);
    }
    await database.updateCatalog((catalog) => {
      const replaced = new Set(staged.map((table) => table.existingNumber).filter((n) => n !== null));
      const byStagingNumber = new Map(staged.map((table) => [table.staging.tableNumber, table]));
      return {
        ...catalog,
        tables: catalog.tables
          .filter((table) => !replaced.has(table.tableNumber))
          .map((table) => {
            const entry = byStagingNumber.get(table.tableNumber);
            return entry ? switchedTable(table, entry, catalog.tables) : table;
          }),
      };
    });
  });
}

/** The staging table as the target: its name, its final number, the target's schema validator. */
function switchedTable(staging: TableInfo, entry: StagedTable, tables: TableInfo[]): TableInfo {
  const target = entry.existingNumber === null ? undefined : tables.find((t) => t.tableNumber === entry.existingNumber);
  const prefix = `${staging.name}.`;
  return {
    ...staging,
    name: entry.name,
    tableNumber: entry.finalNumber,
    indexes: staging.indexes.map((index) => ({ ...index, name: `${entry.name}.${index.name.slice(prefix.length)}` })),
    documentType: target?.documentType ?? null,
  };
}

/**
 * Inserts and deletes a marker document in `table` (two commits in the turn), so its indexes record a change: a
 * transaction that read the empty table before the switch conflicts at its commit instead of trusting that read.
 */
async function fence(
  database: Database,
  commit: (outcome: Parameters<Database["commit"]>[0]) => Promise<bigint>,
  table: TableInfo,
): Promise<void> {
  const id = generateDocumentId(table.tableNumber);
  const json = valueToJsonText({ _id: id, _creationTime: Date.now() });
  const metrics = { bytesRead: 0, bytesWritten: json.length, documentsRead: 0, documentsWritten: 1 };
  const insertedTs = await commit({
    snapshotTs: database.latestTs.toString(),
    readSet: [],
    writes: [{ id, tableNumber: table.tableNumber, previousJson: null, previousTs: null, json }],
    metrics,
  });
  await commit({
    snapshotTs: database.latestTs.toString(),
    readSet: [],
    writes: [{ id, tableNumber: table.tableNumber, previousJson: json, previousTs: String(insertedTs), json: null }],
    metrics,
  });
}

/** Deletes the documents of staging tables page by page, then drops the tables from the catalog. */
async function dropStagingTables(database: Database, tables: TableInfo[]): Promise<void> {
  for (const table of tables) {
    const namespace = table.componentPath ?? "";
    for (;;) {
      const snapshotTs = database.latestTs;
      const page = await database.readSnapshot(snapshotTs, { componentPath: namespace })
        .scan(`${table.name}.by_id`, { limit: STAGED_CHUNK_DOCUMENTS });
      if (page.length === 0) break;
      await database.commit({
        snapshotTs: snapshotTs.toString(),
        readSet: [],
        writes: page.map((document) => ({
          id: document.id,
          tableNumber: table.tableNumber,
          previousJson: document.json,
          previousTs: String(document.ts),
          json: null,
        })),
        metrics: { bytesRead: 0, bytesWritten: 0, documentsRead: page.length, documentsWritten: page.length },
      });
    }
  }
  const dropped = new Set(tables.map((table) => table.tableNumber));
  await database.updateCatalog((catalog) => ({
    ...catalog,
    tables: catalog.tables.filter((table) => !dropped.has(table.tableNumber)),
  }));
}

async function isEmpty(database: Database, namespace: string, name: string): Promise<boolean> {
  const page = await database.readSnapshot(database.latestTs, { componentPath: namespace })
    .scan(`${name}.by_id`, { limit: 1 });
  return page.length === 0;
}

function isBuiltinIndex(index: IndexInfo, tableName: string): boolean {
  return index.name === `${tableName}.by_id` || index.name === `${tableName}.by_creation_time`;
}

function isUserTable(table: TableInfo): boolean {
  return table.tableNumber >= FIRST_USER_TABLE_NUMBER && !table.name.startsWith("_");
}

function inScope(base: string, path: string): boolean {
  return base === "" || path === base || path.startsWith(`${base}/`);
}

function randomTag(): string {
  return [...crypto.getRandomValues(new Uint8Array(3))].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}
