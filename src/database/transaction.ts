/**
 * A transaction at one snapshot: reads from persistence merged with its own pending writes, a read set of index
 * ranges, a write set of whole documents. Queries get a read-only one; a mutation's outcome goes to the committer.
 */
import {
  checkDocument,
  checkUserTableName,
  decodeDocumentId,
  encodeIndexKey,
  generateDocumentId,
  keyToBase64,
  validateValue,
  type Value,
  valueToJsonText,
} from "../values/mod.ts";
import type { PersistenceReader } from "../persistence/mod.ts";
import { CatalogView } from "./catalog.ts";
import { type KeyRange, pointRange, TABLE_EXISTENCE_INDEX_ID, tableExistenceKey } from "./index_range.ts";
import { TRANSACTION_LIMITS } from "./limits.ts";
import type { OverlayDocument, QueryStream } from "./query_stream.ts";
import { type Catalog, type DocumentWrite, type ReadRange, SyscallError, type TableInfo } from "./types.ts";
import type { TransactionOutcome } from "./types.ts";

/** A document as the transaction currently sees it. */
interface PendingWrite extends OverlayDocument {
  previousJson: string | null;
  previousTs: bigint | null;
}

/** What a transaction needs to start. */
export interface TransactionOptions {
  reader: PersistenceReader;
  catalog: Catalog | CatalogView;
  snapshotTs: bigint;
  udfType: "query" | "mutation";
  identityJson: string | null;
  /** The journal of the previous run of this query (its page's end cursor), or null. */
  journal?: string | null;
  /**
   * Creates a table (in the namespace `componentPath`, default the app) on first insert; returns the new catalog.
   * Without it, inserts into new tables fail.
   */
  createTable?: (tableName: string, componentPath?: string) => Promise<Catalog>;
}

/** The counters behind the limits and `getTransactionMetrics`. */
export interface TransactionMetrics {
  bytesRead: number;
  bytesWritten: number;
  documentsRead: number;
  documentsWritten: number;
}

/** A document read: its text as stored and its revision ts (for the write's prevTs). */
export interface ReadDocument {
  json: string;
  /** The parsed document when already known (pending writes); parse `json` otherwise. */
  value: Value | null;
  ts: bigint | null;
}

function limitError(what: string, limit: number): SyscallError {
  return new SyscallError(
    "TooManyReads",
    `Transaction exceeded the limit of ${limit} ${what}. Consider using smaller limits in your queries, paginating ` +
      `the query, or using indexed queries with a selective index range expression.`,
  );
}

/** The transaction state shared by its syscalls. */
export class Transaction {
  readonly reader: PersistenceReader;
  readonly snapshotTs: bigint;
  readonly udfType: "query" | "mutation";
  readonly identityJson: string | null;
  #catalog: CatalogView;
  /**
   * The component namespace names and IDs resolve in (`""` the app): the syscall layer sets it to the calling
   * function's before each syscall, so one transaction serves an app function and the components it calls.
   */
  componentPath: string;
  readonly metrics: TransactionMetrics = { bytesRead: 0, bytesWritten: 0, documentsRead: 0, documentsWritten: 0 };
  /** Functions this transaction scheduled and the bytes of their args (`getTransactionMetrics`, limits.ts). */
  readonly scheduled = { functions: 0, argsBytes: 0 };
  readonly #createTable: ((tableName: string, componentPath?: string) => Promise<Catalog>) | undefined;
  readonly #writes = new Map<string, PendingWrite>();
  readonly #pointReads: { indexId: number; range: KeyRange }[] = [];
  readonly #streams: QueryStream[] = [];
  /** One undo log per open nested call: the write each id had before the nested call changed it. */
  readonly #undoLogs: Map<string, PendingWrite | undefined>[] = [];

  constructor(options: TransactionOptions) {
    this.reader = options.reader;
    this.snapshotTs = options.snapshotTs;
    this.udfType = options.udfType;
    this.identityJson = options.identityJson;
    this.#catalog = options.catalog instanceof CatalogView ? options.catalog : new CatalogView(options.catalog);
    this.componentPath = this.#catalog.componentPath;
    this.#createTable = options.createTable;
  }

  /** The catalog as the current namespace sees it. */
  get catalog(): CatalogView {
    return this.#catalog.forComponent(this.componentPath);
  }

  // ---- reads ----

  /** Counts one scanned document; throws when a read limit is exceeded. */
  chargeRead(sizeBytes: number): void {
    this.metrics.documentsRead++;
    this.metrics.bytesRead += sizeBytes;
    if (this.metrics.documentsRead > TRANSACTION_LIMITS.documentsRead) {
      throw limitError("documents read", TRANSACTION_LIMITS.documentsRead);
    }
    if (this.metrics.bytesRead > TRANSACTION_LIMITS.bytesRead) {
      throw limitError("bytes read", TRANSACTION_LIMITS.bytesRead);
    }
  }

  /** Registers a query stream so its scanned range joins the read set. */
  addStream(stream: QueryStream): void {
    if (this.#streams.length >= TRANSACTION_LIMITS.indexRanges) {
      throw limitError("index ranges", TRANSACTION_LIMITS.indexRanges);
    }
    this.#streams.push(stream);
  }

  /** The transaction's writes to one table, for merging into scans. */
  *overlay(tableNumber: number): Iterable<OverlayDocument> {
    for (const write of this.#writes.values()) if (write.tableNumber === tableNumber) yield write;
  }

  hasWrite(id: string): boolean {
    return this.#writes.has(id);
  }

  /** The table an ID belongs to, or undefined when the ID is malformed or its table does not exist. */
  tableOfId(id: string): TableInfo | undefined {
    const decoded = decodeDocumentId(id);
    return decoded ? this.catalog.tableByNumber(decoded.tableNumber) : undefined;
  }

  /** Reads one document by ID (recording the point read). */
  async readDocument(table: TableInfo, id: string): Promise<ReadDocument | null> {
    const byId = table.indexes[0];
    this.#recordPointRead(byId.indexId, encodeIndexKey([id]));
    const write = this.#writes.get(id);
    if (write) return write.json === null ? null : { json: write.json, value: write.value!, ts: null };
    const revision = await this.reader.getDocument(id, this.snapshotTs);
    if (!revision || revision.json === null) return null;
    this.chargeRead(revision.json.length);
    // Parsing waits until someone needs the value: a plain `db.get` returns the stored text as it is.
    return { json: revision.json, value: null, ts: revision.ts };
  }

  /** Records that the transaction saw `tableName` missing (creating the table conflicts with and invalidates it). */
  recordMissingTable(tableName: string): void {
    this.#recordPointRead(TABLE_EXISTENCE_INDEX_ID, tableExistenceKey(tableName, this.componentPath));
  }

  #recordPointRead(indexId: number, key: Uint8Array): void {
    // Point reads are bounded like documents read (a `db.get` of a missing ID reads no document but still counts).
    if (this.#pointReads.length >= TRANSACTION_LIMITS.documentsRead) {
      throw limitError("documents read", TRANSACTION_LIMITS.documentsRead);
    }
    this.#pointReads.push({ indexId, range: pointRange(key) });
  }

  // ---- writes ----

  #requireMutation(operation: string): void {
    if (this.udfType !== "mutation") {
      throw new SyscallError("ReadOnly", `${operation} is not allowed in a query: queries are read-only`);
    }
  }

  /** The table to insert into, created on first use when allowed. */
  async tableForInsert(tableName: string): Promise<TableInfo> {
    this.#requireMutation("db.insert");
    checkUserTableName(tableName);
    const existing = this.catalog.tableByName(tableName);
    if (existing) return existing;
    if (this.catalog.tableMissingFromSchema(tableName)) {
      throw new SyscallError("SchemaValidation", `Failed to insert into table "${tableName}": it is not in the schema`);
    }
    if (!this.#createTable) throw new SyscallError("TableMissing", `Table "${tableName}" does not exist`);
    this.#catalog = new CatalogView(await this.#createTable(tableName, this.componentPath));
    const created = this.catalog.tableByName(tableName);
    if (!created) throw new SyscallError("TableMissing", `Table "${tableName}" could not be created`);
    return created;
  }

  /** Checks a whole new document against the limits and the schema. */
  checkNewDocument(table: TableInfo, document: Record<string, Value>): void {
    checkDocument(document);
    const documentType = this.catalog.documentType(table);
    if (documentType) {
      const { _id: _ignoredId, _creationTime: _ignoredTime, ...userFields } = document;
      const message = validateValue(documentType, userFields, (id, tableName) => this.isIdOfTable(id, tableName));
      if (message !== null) {
        throw new SyscallError(
          "SchemaValidation",
          `Failed to write document ${document._id} in table "${table.name}": it does not match the schema: ${message}`,
        );
      }
    }
  }

  /** True when `id` is an ID of `tableName` (for `v.id()` validators). */
  isIdOfTable(id: string, tableName: string): boolean {
    const decoded = decodeDocumentId(id);
    if (!decoded) return false;
    const table = this.catalog.tableByName(tableName);
    return table !== undefined && table.tableNumber === decoded.tableNumber;
  }

  /** Records the new version of a document (null deletes it). */
  write(table: TableInfo, id: string, before: ReadDocument | null, document: Record<string, Value> | null): string {
    this.#requireMutation("Writing");
    const json = document === null ? null : valueToJsonText(document);
    const existing = this.#writes.get(id);
    const undo = this.#undoLogs[this.#undoLogs.length - 1];
    if (undo && !undo.has(id)) undo.set(id, existing);
    const isNewWrite = existing === undefined;
    if (isNewWrite) {
      this.metrics.documentsWritten++;
      if (this.metrics.documentsWritten > TRANSACTION_LIMITS.documentsWritten) {
        throw new SyscallError(
          "TooManyWrites",
          `Transaction exceeded the limit of ${TRANSACTION_LIMITS.documentsWritten} documents written`,
        );
      }
    }
    this.metrics.bytesWritten += json?.length ?? 0;
    if (this.metrics.bytesWritten > TRANSACTION_LIMITS.bytesWritten) {
      throw new SyscallError(
        "TooManyWrites",
        `Transaction exceeded the limit of ${TRANSACTION_LIMITS.bytesWritten} bytes written`,
      );
    }
    this.#writes.set(id, {
      id,
      tableNumber: table.tableNumber,
      json,
      value: document,
      previousJson: existing ? existing.previousJson : (before?.json ?? null),
      previousTs: existing ? existing.previousTs : (before?.ts ?? null),
    });
    return json ?? "null";
  }

  /** A fresh ID in `table`. */
  newId(table: TableInfo): string {
    return generateDocumentId(table.tableNumber);
  }

  // ---- nested calls ----

  beginNested(): void {
    this.#undoLogs.push(new Map());
  }

  endNested(commit: boolean): void {
    const undo = this.#undoLogs.pop();
    if (!undo) throw new Error("endNested without beginNested");
    const parent = this.#undoLogs[this.#undoLogs.length - 1];
    for (const [id, previous] of undo) {
      if (commit) {
        if (parent && !parent.has(id)) parent.set(id, previous);
      } else if (previous === undefined) this.#writes.delete(id);
      else this.#writes.set(id, previous);
    }
  }

  // ---- outcome ----

  /** The read set as index ranges (keys in base64). */
  readSet(): ReadRange[] {
    const ranges: ReadRange[] = [];
    for (const read of this.#pointReads) ranges.push(toReadRange(read.indexId, read.range));
    for (const stream of this.#streams) {
      const range = stream.readRange();
      if (range) ranges.push(toReadRange(stream.index.indexId, range));
    }
    return ranges;
  }

  outcome(): TransactionOutcome {
    const writes: DocumentWrite[] = [];
    for (const write of this.#writes.values()) {
      if (write.previousJson === null && write.json === null) continue; // inserted then deleted
      writes.push({
        id: write.id,
        tableNumber: write.tableNumber,
        previousJson: write.previousJson,
        previousTs: write.previousTs === null ? null : write.previousTs.toString(),
        json: write.json,
      });
    }
    return { snapshotTs: this.snapshotTs.toString(), readSet: this.readSet(), writes, metrics: { ...this.metrics } };
  }
}

function toReadRange(indexId: number, range: KeyRange): ReadRange {
  return {
    indexId,
    lowKey: keyToBase64(range.lowKey),
    highKey: range.highKey === null ? null : keyToBase64(range.highKey),
  };
}
