/**
 * Snapshot import (`npx convex import`): the CLI uploads the file in parts, names the mode and format, and the import
 * is checked (every document parsed and validated, table names, counts) before the CLI asks for confirmation; the
 * confirmed import then commits as one transaction: every document of the file and every delete its mode implies, or
 * nothing. IDs and `_creationTime` in the file are kept (an ID must belong to its table's number here, which holds
 * for an import into a deployment whose tables were created in the same order, e.g. a fresh one), and stored files
 * are restored before the commit (their bytes checked against the sha256 of their metadata).
 *
 * The commit runs in an exclusive commit turn, so it cannot lose a conflict to concurrent writers (they wait for the
 * turn). Imports of more than {@link STAGED_ABOVE_DOCUMENTS} documents into empty tables are staged instead
 * (import_staged.ts: chunks in hidden tables, switched in by one catalog change), so their memory stays bounded;
 * other imports hold their write set in memory until the one commit and are limited to {@link MAX_IMPORT_DOCUMENTS}
 * documents and {@link MAX_IMPORT_WRITE_BYTES} of JSON. A confirmed import runs in the background; the CLI follows
 * its progress lines through `queryImport`.
 */
import type { Database } from "../database/mod.ts";
import type { StorageService } from "../storage/mod.ts";
import { checkUserTableName, type JsonValue } from "../values/mod.ts";
import {
  applyImport,
  type ImportMode,
  type ImportProgress,
  joinComponentPath,
  MAX_IMPORT_DOCUMENTS,
  MAX_IMPORT_WRITE_BYTES,
  tableLabel,
  validate,
} from "./import_apply.ts";
import { ImportFileError, type ImportFormat, type ImportSource, openImportSource } from "./import_sources.ts";
import { applyStaged, removeLeftoverStaging, stagingRefusal } from "./import_staged.ts";

export { type ImportMode, type ImportProgress, MAX_IMPORT_DOCUMENTS, MAX_IMPORT_WRITE_BYTES };

/** Most parts of one upload (the CLI sends at most 9,999). */
const MAX_UPLOAD_PARTS = 10_000;
/** Largest uploaded file. */
const MAX_UPLOAD_BYTES = 8 * 1024 * 1024 * 1024;
/** Imports remembered for `queryImport:list` (older ones are forgotten, their files deleted). */
const MAX_REMEMBERED_IMPORTS = 20;
/** Uploads started and not yet finished; starting one more abandons the oldest (its files go). */
const MAX_PENDING_UPLOADS = 8;

/** What `finish_upload` names. */
export interface ImportRequest {
  tableName: string | null;
  mode: ImportMode;
  format: ImportFormat;
  /** The component namespace the import writes into (`""`: the app); a ZIP's `_components/` nest below it. */
  componentPath?: string;
  /** Registers component namespaces that do not exist here instead of refusing them (`denvex restore`). */
  mountMissingComponents?: boolean;
}

/** Progress reaches subscribers at most this often (each announcement re-runs the live system queries). */
const PROGRESS_ANNOUNCE_MS = 1_000;
/** How long an urgent announcement is given to reach subscribers before the import's commit blocks the loop. */
const PROGRESS_FLUSH_MS = 100;

type ImportState =
  | { state: "uploaded" }
  | { state: "waiting_for_confirmation"; message: string }
  | { state: "in_progress"; progress: ImportProgress }
  | { state: "completed"; rowsWritten: number }
  | { state: "failed"; error: string };

interface ImportRecord {
  id: string;
  request: ImportRequest;
  filePath: string;
  state: ImportState;
  creationTimeMs: number;
  /** Documents in the file (stored files not counted), known once it is checked. */
  documentCount: number;
}

/** Imports of more documents than this are staged when they can be (import_staged.ts). */
export const STAGED_ABOVE_DOCUMENTS = 50_000;

/** What importing needs of the backend. */
export interface ImportHost {
  database: Database;
  storage: StorageService;
  /** Uploads are kept under `<dataDir>/snapshot_imports/` until the import is forgotten. */
  dataDir: string;
  /** Imports of more documents are staged when they can be (default {@link STAGED_ABOVE_DOCUMENTS}). */
  stagedAboveDocuments?: number;
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
  readonly #listeners = new Set<() => void>();
  /** Imports run one at a time, in the order they were confirmed. */
  #running: Promise<void> = Promise.resolve();

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
      documentCount: 0,
    };
    this.#remember(record);
    try {
      record.state = { state: "waiting_for_confirmation", message: await this.#check(record) };
    } catch (error) {
      record.state = { state: "failed", error: importErrorMessage(error) };
    }
    return record.id;
  }

  /**
   * Starts a confirmed import and resolves at once: the CLI then follows its progress through `queryImport` until
   * it is `completed` or `failed` (nothing is written then). Rejects when the import is unknown or not confirmable.
   */
  perform(importId: string): Promise<void> {
    const record = this.#imports.get(importId);
    if (!record) throw new ImportRequestError("ImportNotFound", `No import ${importId}`);
    // A confirmation repeated by a retrying client confirms nothing new.
    if (record.state.state === "in_progress" || record.state.state === "completed") return Promise.resolve();
    if (record.state.state !== "waiting_for_confirmation") {
      throw new ImportRequestError("ImportNotReady", `Import ${importId} is ${record.state.state}`);
    }
    const progress: ImportProgress = { checkpoints: [], message: "Importing" };
    record.state = { state: "in_progress", progress };
    // Subscribers (the CLI) must not keep seeing "waiting_for_confirmation" from a cached run.
    this.#announce();
    this.#running = this.#running.then(() => this.#run(record, progress));
    return Promise.resolve();
  }

  /** Calls `listener` whenever an import's state changes (the server re-runs live queries, as after a push). */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Imports the file at `filePath` directly (`denvex restore`): checked first, then written like a confirmed
   * import. Resolves with the documents written; rejects with the reason, having written nothing.
   */
  async importFile(
    filePath: string,
    request: ImportRequest,
    onProgress: (progress: ImportProgress) => void = () => {},
  ): Promise<number> {
    const record: ImportRecord = {
      id: crypto.randomUUID(),
      request,
      filePath,
      state: { state: "uploaded" },
      creationTimeMs: Date.now(),
      documentCount: 0,
    };
    await this.#check(record);
    const progress: ImportProgress = { checkpoints: [], message: "Importing" };
    return await this.#apply(record, progress, () => onProgress(progress));
  }

  async #run(record: ImportRecord, progress: ImportProgress): Promise<void> {
    let lastAnnouncedMs = 0;
    const report = (urgent: boolean): Promise<void> | undefined => {
      if (!urgent && Date.now() - lastAnnouncedMs < PROGRESS_ANNOUNCE_MS) return undefined;
      lastAnnouncedMs = Date.now();
      this.#announce();
      return urgent ? new Promise<void>((resolve) => setTimeout(resolve, PROGRESS_FLUSH_MS)) : undefined;
    };
    try {
      record.state = { state: "completed", rowsWritten: await this.#apply(record, progress, report) };
    } catch (error) {
      record.state = { state: "failed", error: importErrorMessage(error) };
    } finally {
      await Deno.remove(record.filePath).catch(() => {});
      this.#announce();
    }
  }

  #announce(): void {
    for (const listener of this.#listeners) {
      try {
        listener();
      } catch (error) {
        console.error("denvex: import state listener failed:", error);
      }
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
    const base = record.request.componentPath ?? "";
    const rows: string[] = [];
    for (const table of source.tables) {
      checkUserTableName(table.name);
      const label = tableLabel(joinComponentPath(base, table.componentPath), table.name);
      let count = 0;
      for await (const document of table.documents()) {
        validate(document, label);
        count++;
      }
      record.documentCount += count;
      rows.push(`${label} | ${count}`);
    }
    if (source.files) rows.push(`_storage | ${source.files.length}`);
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
  async #apply(
    record: ImportRecord,
    progress: ImportProgress,
    report: (urgent: boolean) => void | Promise<void>,
  ): Promise<number> {
    const context = {
      database: this.#host.database,
      storage: this.#host.storage,
      mode: record.request.mode,
      componentPath: record.request.componentPath ?? "",
      mountComponents: record.request.mountMissingComponents ?? false,
      progress,
      report,
    };
    // Staging tables of an import the process did not finish (a crash) go before anything else is staged.
    await removeLeftoverStaging(this.#host.database);
    const source = await this.#open(record);
    if (record.documentCount > (this.#host.stagedAboveDocuments ?? STAGED_ABOVE_DOCUMENTS)) {
      const refusal = await stagingRefusal(context, source);
      if (refusal === null) return await applyStaged(context, source);
      if (record.documentCount > MAX_IMPORT_DOCUMENTS) {
        throw new ImportFileError(
          `an import of more than ${MAX_IMPORT_DOCUMENTS} documents is written in stages, which needs empty ` +
            `tables and no stored files, but ${refusal}`,
        );
      }
    }
    return await applyImport(context, source);
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
    : state.state === "in_progress"
    ? {
      state: state.state,
      checkpoint_messages: [...state.progress.checkpoints],
      progress_message: state.progress.message,
    }
    : { state: state.state };
  return { _id: record.id, _creationTime: record.creationTimeMs, state: stateJson };
}
