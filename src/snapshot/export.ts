/**
 * Snapshot export (`npx convex export`): a request fixes the snapshot ts (the latest commit); the download streams a
 * ZIP of the app's tables as they were at that ts, read page by page from the revision log while writes continue.
 * Memory is bounded by a page of documents and one output chunk, whatever the database size.
 *
 * Layout (Convex's): `README.md`; per table `<table>/generated_schema.jsonl` (the shape, then one export-context line
 * per document that needs one) and `<table>/documents.jsonl`; `_tables/documents.jsonl` (name and table number, so
 * an import can keep IDs); with file storage `_storage/documents.jsonl` and one `_storage/<id>` entry per file.
 *
 * The snapshot is held (`Database.holdSnapshot`) from the request until its download ends, so retention keeps the
 * history it needs however long the export takes: a download holds it for at most 6 h, released when the ZIP is
 * complete, fails or the client goes away; a requested export not downloaded lapses after 15 min. Should a hold
 * lapse anyway, the download fails with `SnapshotTooOld` instead of returning inconsistent data.
 */
import {
  type Database,
  type DocumentReader,
  FIRST_USER_TABLE_NUMBER,
  MAX_SNAPSHOT_HOLD_MS,
  type SnapshotHold,
  type TableInfo,
} from "../database/mod.ts";
import { parseStorageDocument, type StorageService } from "../storage/mod.ts";
import { type JsonValue, parseConvexJsonText, timestampToBase64, type Value } from "../values/mod.ts";
import { cleanJsonText, exportContextOf } from "./clean_json.ts";
import { componentZipPrefix } from "./import_sources.ts";
import { ZipWriter } from "./zip_writer.ts";

/**
 * Documents per page of a table scan: pages aim at PAGE_TARGET_BYTES of JSON, starting small and sized from the
 * previous page's documents, never more than MAX_PAGE_DOCUMENTS (which bounds a page of the largest, 1 MiB,
 * documents) nor fewer than one. A page is held in memory while its lines are written, so this bounds an export's
 * reads whatever the table's size.
 */
const MAX_PAGE_DOCUMENTS = 100;
const FIRST_PAGE_DOCUMENTS = 16;
const PAGE_TARGET_BYTES = 256 * 1024;
/** Lines are gathered into chunks of about this size before they go to the compressor. */
const CHUNK_BYTES = 64 * 1024;
/** How long a requested export stays held for its download (the CLI downloads as soon as it is ready). */
const EXPORT_DOWNLOAD_WAIT_MS = 15 * 60_000;
/** The shape denvex writes for every table (see clean_json.ts). */
export const UNKNOWN_SHAPE = "unknown";

const README = `# Welcome to your Convex snapshot export!

This ZIP file contains a snapshot of the tables in your deployment (exported by denvex).

Documents for each table are listed as lines of JSON in <table_name>/documents.jsonl files.
Import it with \`npx convex import <file>.zip\`.
`;

/** The export state `_system/cli/exports:getLatest` reports (Convex's field names). */
export interface ExportState {
  state: "completed";
  startTs: bigint;
  includeStorage: boolean;
  requestedAtMs: number;
}

/** What exporting needs of the backend. */
export interface ExportHost {
  database: Database;
  storage: StorageService;
}

/** See the module comment. */
export class SnapshotExports {
  readonly #host: ExportHost;
  #latest: ExportState | null = null;
  /** Keeps the latest requested export's snapshot until its first complete download (or it lapses). */
  #requestHold: SnapshotHold | null = null;

  constructor(host: ExportHost) {
    this.#host = host;
  }

  /** Takes a new export at the latest ts; it is complete at once (the ZIP is written as it downloads). */
  request(includeStorage: boolean): ExportState {
    const startTs = this.#host.database.latestTs;
    const hold = this.#host.database.holdSnapshot(startTs, {
      reason: "a requested export",
      maxHoldMs: EXPORT_DOWNLOAD_WAIT_MS,
    });
    this.#requestHold?.release();
    this.#requestHold = hold;
    this.#latest = { state: "completed", startTs, includeStorage, requestedAtMs: Date.now() };
    return this.#latest;
  }

  /** The latest export as convex-JSON for the CLI, or null. */
  latestJson(): JsonValue {
    const latest = this.#latest;
    if (latest === null) return null;
    const ts = { $integer: timestampToBase64(latest.startTs) };
    return {
      state: latest.state,
      start_ts: ts,
      complete_ts: ts,
      requestor: "snapshotExport",
      format: { format: "zip", include_storage: latest.includeStorage },
      zip_object_key: `snapshot_${latest.startTs}.zip`,
    };
  }

  /** The export taken at `startTs`, if it is the latest. */
  find(startTs: bigint): ExportState | null {
    return this.#latest !== null && this.#latest.startTs === startTs ? this.#latest : null;
  }

  /**
   * The ZIP of `state`, streamed as it is read (pull-driven: a slow client slows the reads). Its snapshot is held
   * until the stream ends, fails or is cancelled; a snapshot already pruned is refused (`SnapshotTooOld`) before any
   * byte is sent.
   */
  zip(state: ExportState, reason = "an export download"): ReadableStream<Uint8Array> {
    const hold = this.#host.database.holdSnapshot(state.startTs, { reason, maxHoldMs: MAX_SNAPSHOT_HOLD_MS });
    return heldStream(snapshotZip(this.#host, state), hold, () => {
      if (this.#requestHold?.ts === state.startTs) this.#requestHold.release();
    });
  }
}

/** A pull-driven stream of `chunks` that releases `hold` when it ends, fails or is cancelled (client gone). */
function heldStream(
  chunks: AsyncGenerator<Uint8Array>,
  hold: SnapshotHold,
  onComplete: () => void,
): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await chunks.next();
        if (!done) return controller.enqueue(value);
        hold.release();
        onComplete();
        controller.close();
      } catch (error) {
        hold.release();
        controller.error(error);
      }
    },
    async cancel() {
      hold.release();
      await chunks.return(undefined).catch(() => {});
    },
  });
}

async function* snapshotZip(host: ExportHost, state: ExportState): AsyncGenerator<Uint8Array> {
  const zip = new ZipWriter(new Date(Number(state.startTs / 1_000_000n)));
  yield* zip.entry("README.md", [new TextEncoder().encode(README)]);
  for (const componentPath of exportedNamespaces(host.database)) {
    yield* namespaceEntries(host, state, zip, componentPath);
  }
  // Pruning raises the watermark before it deletes: a snapshot still retained now was read whole.
  host.database.assertRetained(state.startTs);
  yield* zip.finish();
}

/** One namespace's entries: `_tables`, each table's schema and documents, and its files when asked. */
async function* namespaceEntries(
  host: ExportHost,
  state: ExportState,
  zip: ZipWriter,
  componentPath: string,
): AsyncGenerator<Uint8Array> {
  const prefix = componentZipPrefix(componentPath);
  const snapshot = host.database.readSnapshot(state.startTs, { componentPath });
  const tables = exportedTables(host.database, componentPath);
  if (tables.length > 0 || componentPath === "") {
    yield* zip.entry(`${prefix}_tables/documents.jsonl`, [
      new TextEncoder().encode(tables.map((t) => JSON.stringify({ name: t.name, id: t.tableNumber }) + "\n").join("")),
    ]);
  }
  for (const table of tables) {
    yield* zip.entry(`${prefix}${table.name}/generated_schema.jsonl`, schemaLines(snapshot, table.name));
    yield* zip.entry(`${prefix}${table.name}/documents.jsonl`, documentLines(snapshot, table.name));
  }
  const hasStorage = host.database.catalogView.forComponent(componentPath).tableByName("_storage") !== undefined;
  if (!state.includeStorage || !hasStorage) return;
  yield* zip.entry(`${prefix}_storage/documents.jsonl`, storageLines(snapshot));
  for await (const document of tableDocuments(snapshot, "_storage")) {
    const entry = parseStorageDocument(document.json);
    const blob = await host.storage.blobs.stream(entry.storageId, 0, entry.sizeBytes);
    if (blob === null) throw new Error(`file ${entry.storageId} is missing from storage`);
    yield* zip.entry(`${prefix}_storage/${entry.storageId}`, blob);
  }
}

/** The app (`""`) and every component instance, parents before children. */
function exportedNamespaces(database: Database): string[] {
  const paths = new Set<string>([""]);
  for (const table of database.catalog.tables) paths.add(table.componentPath ?? "");
  return [...paths].sort();
}

/** The user tables of one namespace, by table number (the order an import creates them in). */
function exportedTables(database: Database, componentPath: string): TableInfo[] {
  return database.catalog.tables
    .filter((table) =>
      (table.componentPath ?? "") === componentPath && table.tableNumber >= FIRST_USER_TABLE_NUMBER &&
      !table.name.startsWith("_")
    )
    .sort((a, b) => a.tableNumber - b.tableNumber);
}

async function* tableDocuments(snapshot: DocumentReader, tableName: string) {
  let resumeAfter: Uint8Array | undefined;
  let limit = FIRST_PAGE_DOCUMENTS;
  while (true) {
    const page = await snapshot.scan(`${tableName}.by_id`, { limit, ...(resumeAfter ? { resumeAfter } : {}) });
    yield* page;
    if (page.length < limit) return;
    resumeAfter = page[page.length - 1].key;
    limit = nextPageLimit(page);
  }
}

/** The next page's size: as many documents like these as fit PAGE_TARGET_BYTES (see MAX_PAGE_DOCUMENTS). */
function nextPageLimit(page: { json: string }[]): number {
  let pageBytes = 0;
  for (const document of page) pageBytes += document.json.length;
  const fitting = Math.floor(PAGE_TARGET_BYTES * page.length / Math.max(1, pageBytes));
  return Math.min(MAX_PAGE_DOCUMENTS, Math.max(1, fitting));
}

/** Gathers text lines into chunks of about CHUNK_BYTES. */
async function* chunked(lines: AsyncIterable<string>): AsyncGenerator<Uint8Array> {
  const encoder = new TextEncoder();
  let pending: string[] = [];
  let pendingLength = 0;
  for await (const line of lines) {
    pending.push(line);
    pendingLength += line.length;
    if (pendingLength >= CHUNK_BYTES) {
      yield encoder.encode(pending.join(""));
      pending = [];
      pendingLength = 0;
    }
  }
  if (pending.length > 0) yield encoder.encode(pending.join(""));
}

function documentLines(snapshot: DocumentReader, tableName: string): AsyncGenerator<Uint8Array> {
  return chunked((async function* () {
    for await (const document of tableDocuments(snapshot, tableName)) {
      yield cleanJsonText(parseConvexJsonText(document.json)) + "\n";
    }
  })());
}

/** The shape line, then `{"<id>": <context>}` for each document with values clean JSON cannot tell apart. */
function schemaLines(snapshot: DocumentReader, tableName: string): AsyncGenerator<Uint8Array> {
  return chunked((async function* () {
    yield JSON.stringify(UNKNOWN_SHAPE) + "\n";
    for await (const document of tableDocuments(snapshot, tableName)) {
      // Only convex-JSON's `$`-forms (int64, bytes, special floats) need a context: most documents skip the parse.
      if (!document.json.includes('"$')) continue;
      const context = exportContextOf(parseConvexJsonText(document.json) as Value);
      if (context !== null) yield JSON.stringify({ [document.id]: context }) + "\n";
    }
  })());
}

/** `_storage/documents.jsonl`: Convex's file metadata lines. */
function storageLines(snapshot: DocumentReader): AsyncGenerator<Uint8Array> {
  return chunked((async function* () {
    for await (const document of tableDocuments(snapshot, "_storage")) {
      const entry = parseStorageDocument(document.json);
      yield JSON.stringify({
        _id: entry.storageId,
        _creationTime: entry.creationTimeMs,
        sha256: entry.sha256Base64,
        size: entry.sizeBytes,
        ...(entry.contentType ? { contentType: entry.contentType } : {}),
        internalId: entry.storageId,
      }) + "\n";
    }
  })());
}
