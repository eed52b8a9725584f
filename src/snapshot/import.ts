/**
 * Snapshot import (`npx convex import`): the CLI uploads the file in parts, names the mode and format, and the import
 * is checked (every document parsed and validated, table names, counts) before the CLI asks for confirmation; the
 * confirmed import then commits as one transaction: every document of the file and every delete its mode implies, or
 * nothing. IDs and `_creationTime` in the file are kept (an ID must belong to its table's number here, which holds
 * for an import into a deployment whose tables were created in the same order, e.g. a fresh one), and stored files
 * are restored before the commit (their bytes checked against the sha256 of their metadata).
 *
 * The commit runs in an exclusive commit turn, so it cannot lose a conflict to concurrent writers (they wait for the
 * turn). The write set is held in memory until the commit: imports are limited to {@link MAX_IMPORT_DOCUMENTS}
 * documents and {@link MAX_IMPORT_WRITE_BYTES} of JSON. (Staging in chunks and committing by a catalog switch would
 * lift that; not built yet.)
 */
import {
  type Database,
  type DocumentWrite,
  FIRST_USER_TABLE_NUMBER,
  type ReadRange,
  SYSTEM_TABLE_NUMBERS,
  type TableInfo,
} from "../database/mod.ts";
import { storageDocument, type StorageService } from "../storage/mod.ts";
import {
  checkDocument,
  checkUserTableName,
  generateDocumentId,
  isDocumentIdOfTable,
  type JsonValue,
  type Value,
  valueToJsonText,
} from "../values/mod.ts";
import { ImportFileError, type ImportFormat, type ImportSource, openImportSource } from "./import_sources.ts";

/** Most bytes of documents (as JSON) one import writes: they are held in memory until its one commit. */
export const MAX_IMPORT_WRITE_BYTES = 256 * 1024 * 1024;
/**
 * Most documents one import writes: the one commit's index keys and write set cost about 2 KiB of server memory per
 * document besides its JSON (measured with scripts/bench/snapshot_bench.ts), so this keeps an import under ~500 MiB.
 */
export const MAX_IMPORT_DOCUMENTS = 200_000;
/** Most parts of one upload (the CLI sends at most 9,999). */
const MAX_UPLOAD_PARTS = 10_000;
/** Largest uploaded file. */
const MAX_UPLOAD_BYTES = 8 * 1024 * 1024 * 1024;
/** Largest stored file restored from a snapshot. */
const MAX_FILE_BYTES = 1024 * 1024 * 1024;
/** Imports remembered for `queryImport:list` (older ones are forgotten, their files deleted). */
const MAX_REMEMBERED_IMPORTS = 20;
/** Uploads started and not yet finished; starting one more abandons the oldest (its files go). */
const MAX_PENDING_UPLOADS = 8;
const STORAGE_TABLE = "_storage";
/** Creation times of one import's generated documents are at least this far apart (ms). */
const CREATION_TIME_STEP_MS = 0.001;

/** The import modes of the CLI (`--append`, `--replace`, `--replace-all`, none). */
export type ImportMode = "requireEmpty" | "append" | "replace" | "replaceAll";

/** What `finish_upload` names. */
export interface ImportRequest {
  tableName: string | null;
  mode: ImportMode;
  format: ImportFormat;
}

type ImportState =
  | { state: "uploaded" }
  | { state: "waiting_for_confirmation"; message: string }
  | { state: "in_progress" }
  | { state: "completed"; rowsWritten: number }
  | { state: "failed"; error: string };

interface ImportRecord {
  id: string;
  request: ImportRequest;
  filePath: string;
  state: ImportState;
  creationTimeMs: number;
}

/** What importing needs of the backend. */
export interface ImportHost {
  database: Database;
  storage: StorageService;
  /** Uploads are kept under `<dataDir>/snapshot_imports/` until the import is forgotten. */
  dataDir: string;
}

/** A request the routes answer with 400 `{code, message}`. */
export class ImportRequestError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

/** See the module comment. */
export class SnapshotImports {
  readonly #host: ImportHost;
  readonly #uploads = new Map<string, { dir: string; parts: Set<number>; sizeBytes: number }>();
  readonly #imports = new Map<string, ImportRecord>();
  #clearedLeftovers = false;

  constructor(host: ImportHost) {
    this.#host = host;
  }

  get #root(): string {
    return `${this.#host.dataDir}/snapshot_imports`;
  }

  /** Starts an upload; returns its token. */
  async startUpload(): Promise<string> {
    if (!this.#clearedLeftovers) {
      // Uploads of an earlier run of the server can never finish: their files go.
      this.#clearedLeftovers = true;
      await Deno.remove(this.#root, { recursive: true }).catch(() => {});
    }
    if (this.#uploads.size >= MAX_PENDING_UPLOADS) {
      const [oldestToken, oldest] = this.#uploads.entries().next().value!;
      this.#uploads.delete(oldestToken);
      await Deno.remove(oldest.dir, { recursive: true }).catch(() => {});
    }
    const token = crypto.randomUUID();
    const dir = `${this.#root}/${token}`;
    await Deno.mkdir(dir, { recursive: true });
    this.#uploads.set(token, { dir, parts: new Set(), sizeBytes: 0 });
    return token;
  }

  /** Stores part `partNumber` of an upload; returns the part token the CLI hands back at the end. */
  async uploadPart(token: string, partNumber: number, body: ReadableStream<Uint8Array> | null): Promise<string> {
    const upload = this.#upload(token);
    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > MAX_UPLOAD_PARTS) {
      throw new ImportRequestError("InvalidPartNumber", `partNumber must be 1..${MAX_UPLOAD_PARTS}`);
    }
    const path = `${upload.dir}/part-${partNumber}`;
    // The part is counted as it streams to disk, so one huge part stops at the file's budget instead of filling it.
    const budgetBytes = MAX_UPLOAD_BYTES - upload.sizeBytes;
    let partBytes = 0;
    const counted = (body ?? ReadableStream.from<Uint8Array>([])).pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          partBytes += chunk.byteLength;
          if (partBytes > budgetBytes) {
            controller.error(
              new ImportRequestError("ImportTooLarge", `an import file holds at most ${MAX_UPLOAD_BYTES} bytes`),
            );
          } else controller.enqueue(chunk);
        },
      }),
    );
    try {
      await Deno.writeFile(path, counted);
    } catch (error) {
      await Deno.remove(path).catch(() => {});
      throw error;
    }
    upload.sizeBytes += partBytes;
    upload.parts.add(partNumber);
    return String(partNumber);
  }

  /**
   * Joins the parts (in the order of `partTokens`) into the import file and checks it. Resolves with the import's ID;
   * its state is then `waiting_for_confirmation` or `failed`.
   */
  async finishUpload(token: string, partTokens: unknown[], request: ImportRequest): Promise<string> {
    const upload = this.#upload(token);
    this.#uploads.delete(token);
    const filePath = `${upload.dir}/import`;
    {
      using file = await Deno.open(filePath, { write: true, create: true, truncate: true });
      for (const partToken of partTokens) {
        const partNumber = Number(partToken);
        if (!upload.parts.has(partNumber)) throw new ImportRequestError("InvalidPartToken", "unknown part token");
        const partPath = `${upload.dir}/part-${partNumber}`;
        {
          using part = await Deno.open(partPath, { read: true });
          await part.readable.pipeTo(file.writable, { preventClose: true });
        }
        await Deno.remove(partPath);
      }
    }
    const record: ImportRecord = {
      id: crypto.randomUUID(),
      request,
      filePath,
      state: { state: "uploaded" },
      creationTimeMs: Date.now(),
    };
    this.#remember(record);
    try {
      record.state = { state: "waiting_for_confirmation", message: await this.#check(record) };
    } catch (error) {
      record.state = { state: "failed", error: importErrorMessage(error) };
    }
    return record.id;
  }

  /** Runs a confirmed import; rejects with an ImportRequestError when it fails (nothing is written then). */
  async perform(importId: string): Promise<void> {
    const record = this.#imports.get(importId);
    if (!record) throw new ImportRequestError("ImportNotFound", `No import ${importId}`);
    if (record.state.state !== "waiting_for_confirmation") {
      throw new ImportRequestError("ImportNotReady", `Import ${importId} is ${record.state.state}`);
    }
    record.state = { state: "in_progress" };
    try {
      record.state = { state: "completed", rowsWritten: await this.#apply(record) };
    } catch (error) {
      record.state = { state: "failed", error: importErrorMessage(error) };
      throw new ImportRequestError("ImportFailed", record.state.error);
    } finally {
      await Deno.remove(record.filePath).catch(() => {});
    }
  }

  /** `_system/cli/queryImport`'s answer for one import (Convex's field names), or null. */
  stateJson(importId: string): JsonValue {
    const record = this.#imports.get(importId);
    return record ? recordJson(record) : null;
  }

  /** `_system/cli/queryImport:list`: the remembered imports, newest first. */
  listJson(): JsonValue {
    return [...this.#imports.values()].reverse().map(recordJson);
  }

  #upload(token: string) {
    const upload = this.#uploads.get(token);
    if (!upload) throw new ImportRequestError("InvalidUploadToken", "unknown or finished upload token");
    return upload;
  }

  #remember(record: ImportRecord): void {
    this.#imports.set(record.id, record);
    for (const old of this.#imports.values()) {
      if (this.#imports.size <= MAX_REMEMBERED_IMPORTS) break;
      this.#imports.delete(old.id);
      Deno.remove(old.filePath.replace(/\/import$/, ""), { recursive: true }).catch(() => {});
    }
  }

  /** Reads the whole file once, validating every document; returns the summary the CLI shows for confirmation. */
  async #check(record: ImportRecord): Promise<string> {
    const source = await this.#open(record);
    const rows: string[] = [];
    for (const table of source.tables) {
      checkUserTableName(table.name);
      let count = 0;
      for await (const document of table.documents()) {
        validate(document, table.name);
        count++;
      }
      rows.push(`${table.name} | ${count}`);
    }
    if (source.files) rows.push(`${STORAGE_TABLE} | ${source.files.length}`);
    const modeNote = {
      requireEmpty: "The tables must be empty.",
      append: "Documents are added to the tables.",
      replace: "The tables' documents are replaced.",
      replaceAll: "Every table's documents are replaced; tables not in the import are emptied.",
    }[record.request.mode];
    return [`Import change summary (${modeNote}):`, "table | documents", ...rows].join("\n");
  }

  async #open(record: ImportRecord): Promise<ImportSource> {
    const { format, tableName } = record.request;
    const source = await openImportSource(record.filePath, format, tableName);
    if (format !== "zip" && tableName !== null) checkUserTableName(tableName);
    return source;
  }

  /** Writes the import in one commit; resolves with the documents written. */
  async #apply(record: ImportRecord): Promise<number> {
    const database = this.#host.database;
    const source = await this.#open(record);
    const ordered = [...source.tables].sort((a, b) =>
      (a.sourceTableNumber ?? Infinity) - (b.sourceTableNumber ?? Infinity)
    );
    const inserts = new Map<string, { table: TableInfo; json: string }>();
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
    const targetTables: TableInfo[] = [];
    let lastCreationTimeMs = 0;
    for (const imported of ordered) {
      await database.createTable(imported.name);
      const table = appTable(database, imported.name)!;
      targetTables.push(table);
      for await (const document of imported.documents()) {
        validate(document, table.name);
        const id = typeof document._id === "string" ? document._id : generateDocumentId(table.tableNumber);
        if (!isDocumentIdOfTable(id, table.tableNumber)) {
          throw new ImportFileError(
            `the ID ${id} of table "${table.name}" was made for another table number than "${table.name}" has here ` +
              `(${table.tableNumber}); import into a deployment whose tables were created in the same order`,
          );
        }
        // Documents without one get increasing creation times, so they list in the file's order.
        lastCreationTimeMs = Math.max(Date.now(), lastCreationTimeMs + CREATION_TIME_STEP_MS);
        const creationTimeMs = typeof document._creationTime === "number" ? document._creationTime : lastCreationTimeMs;
        add(table, id, valueToJsonText({ ...document, _id: id, _creationTime: creationTimeMs }));
      }
    }
    if (source.files) {
      const storageTable = appTable(database, STORAGE_TABLE)!;
      targetTables.push(storageTable);
      for (const file of source.files) {
        const { _id: id, _creationTime: creationTimeMs, sha256, contentType } = file.metadata;
        if (!isDocumentIdOfTable(id, SYSTEM_TABLE_NUMBERS[STORAGE_TABLE])) {
          throw new ImportFileError(`_storage: ${id} is not a storage ID`);
        }
        const written = await this.#host.storage.blobs.write(id, ReadableStream.from(file.bytes()), MAX_FILE_BYTES);
        if (written.sha256Base64 !== sha256) {
          throw new ImportFileError(`_storage: the bytes of ${id} do not match their sha256`);
        }
        add(storageTable, id, JSON.stringify(storageDocument(id, written, contentType ?? null, creationTimeMs)));
      }
    }
    const mode = record.request.mode;
    const cleared = mode === "replaceAll" ? [...new Set([...targetTables, ...userTables(database)])] : targetTables;
    await database.withCommitTurn(async (commit) => {
      const snapshotTs = database.latestTs;
      const snapshot = database.readSnapshot(snapshotTs);
      const writes = new Map<string, DocumentWrite>();
      if (mode !== "append") {
        for (const table of cleared) {
          const existing = await snapshot.scan(`${table.name}.by_id`, { limit: 1 });
          if (existing.length === 0) continue;
          if (mode === "requireEmpty") {
            throw new ImportFileError(
              `table "${table.name}" is not empty: use --append, --replace or --replace-all`,
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
      }
      for (const [id, insert] of inserts) {
        const replaced = writes.get(id);
        if (replaced) {
          replaced.json = insert.json;
          continue;
        }
        if (mode === "append" && await snapshot.get(id) !== null) {
          throw new ImportFileError(`the document ${id} already exists: use --replace to overwrite it`);
        }
        writes.set(id, {
          id,
          tableNumber: insert.table.tableNumber,
          previousJson: null,
          previousTs: null,
          json: insert.json,
        });
      }
      const readSet: ReadRange[] = cleared.concat(targetTables).map((table) => ({
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
    return inserts.size;
  }
}

function appTable(database: Database, name: string): TableInfo | undefined {
  return database.catalog.tables.find((table) => (table.componentPath ?? "") === "" && table.name === name);
}

function userTables(database: Database): TableInfo[] {
  return database.catalog.tables.filter((table) =>
    (table.componentPath ?? "") === "" && table.tableNumber >= FIRST_USER_TABLE_NUMBER && !table.name.startsWith("_")
  );
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

function validate(document: Record<string, Value>, tableName: string): void {
  try {
    checkDocument(document);
  } catch (error) {
    throw new ImportFileError(`table "${tableName}": ${(error as Error).message}`);
  }
}

function importErrorMessage(error: unknown): string {
  if (error instanceof ImportFileError || error instanceof ImportRequestError) return error.message;
  return `Import failed: ${error instanceof Error ? error.message : String(error)}`;
}

function recordJson(record: ImportRecord): JsonValue {
  const state = record.state;
  const stateJson: JsonValue = state.state === "waiting_for_confirmation"
    ? { state: state.state, message_to_confirm: state.message, require_manual_confirmation: true }
    : state.state === "completed"
    ? { state: state.state, num_rows_written: state.rowsWritten }
    : state.state === "failed"
    ? { state: state.state, error_message: state.error }
    : { state: state.state, checkpoint_messages: [], progress_message: "Importing" };
  return { _id: record.id, _creationTime: record.creationTimeMs, state: stateJson };
}
