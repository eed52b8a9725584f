/**
 * Reads and writes of the server's own code (the scheduler, idempotency records, file storage, deploy tools): the one
 * path from TypeScript to the database besides user functions. A `SystemTransaction` is a mutation without user code:
 * its reads join a read set, its writes are buffered, and it commits through the one committer with optimistic
 * concurrency, retried on conflicts like a mutation. A `SnapshotReader` reads at one snapshot for code that commits
 * nothing (no read set, no transaction limits: it may page through a whole table).
 *
 * Every table name is resolved by `#table` through the transaction's catalog, the one place a component namespace
 * (a component's own system tables) will later be applied.
 */
import {
  compareKeys,
  decodeDocumentId,
  encodeIndexKey,
  parseConvexJsonText,
  prefixSuccessor,
  type Value,
} from "../values/mod.ts";
import type { PersistenceReader } from "../persistence/mod.ts";
import type { CatalogView } from "./catalog.ts";
import { CreationTimes } from "./clock.ts";
import { keyAfter, type KeyRange } from "./index_range.ts";
import { QueryStream } from "./query_stream.ts";
import { type ReadDocument, Transaction } from "./transaction.ts";
import { type Catalog, type IndexInfo, SyscallError, type TableInfo, type TransactionOutcome } from "./types.ts";

/** A document as read: its convex-JSON text and, when read from persistence, its revision ts. */
export interface StoredDocument {
  id: string;
  json: string;
  /** The revision's commit ts; null for a document the transaction itself wrote. */
  ts: bigint | null;
}

/** A document found by an index scan, with its key in that index (a resume point for the next page). */
export interface ScannedDocument extends StoredDocument {
  key: Uint8Array;
}

/**
 * An index range to scan, as index-key values (the index's fields, then `_creationTime`, `_id`). Bounds combine:
 * the range is the intersection of all given.
 */
export interface IndexScanOptions {
  /** Only keys starting with these values. */
  prefix?: Value[];
  /** Only keys at or after these values. */
  from?: Value[];
  /** Only keys before these values (exclusive). */
  before?: Value[];
  /** Resumes a paged scan strictly past this key (a previous page's last `key`), in scan order. */
  resumeAfter?: Uint8Array;
  order?: "asc" | "desc";
  /** The most documents returned. */
  limit: number;
}

/** The reads every system reader offers. */
export interface DocumentReader {
  readonly snapshotTs: bigint;
  /** The document `id`, or null when it does not exist (or its ID is malformed). */
  get(id: string): Promise<StoredDocument | null>;
  /** Documents of one index (`<table>.<index>`) in a key range, in key order. */
  scan(indexName: string, options: IndexScanOptions): Promise<ScannedDocument[]>;
}

/** What a system transaction or snapshot needs from the database. */
export interface SystemReadContext {
  reader: PersistenceReader;
  catalog: CatalogView;
  snapshotTs: bigint;
}

/** A read-only view at one snapshot: see the module comment. */
export class SnapshotReader implements DocumentReader {
  readonly snapshotTs: bigint;
  readonly #reader: PersistenceReader;
  readonly #catalog: CatalogView;

  constructor(context: SystemReadContext) {
    this.#reader = context.reader;
    this.#catalog = context.catalog;
    this.snapshotTs = context.snapshotTs;
  }

  async get(id: string): Promise<StoredDocument | null> {
    // An ID of another namespace's table (or of no table) reads as missing, as in a transaction.
    const tableNumber = decodeDocumentId(id)?.tableNumber;
    if (tableNumber === undefined || !this.#catalog.tableByNumber(tableNumber)) return null;
    const revision = await this.#reader.getDocument(id, this.snapshotTs);
    if (!revision || revision.json === null) return null;
    return { id, json: revision.json, ts: revision.ts };
  }

  async scan(indexName: string, options: IndexScanOptions): Promise<ScannedDocument[]> {
    const { index } = lookUpIndex(this.#catalog, indexName);
    const order = options.order ?? "asc";
    const range = scanRange(options, order);
    if (range === null) return [];
    const rows = await this.#reader.scanIndex({
      indexId: index.indexId,
      lowKey: range.lowKey,
      highKey: range.highKey,
      order,
      snapshotTs: this.snapshotTs,
      limit: options.limit,
    });
    const documents: ScannedDocument[] = [];
    for (const row of rows) {
      if (row.document.json === null) continue;
      documents.push({ id: row.document.id, json: row.document.json, ts: row.document.ts, key: row.key });
    }
    return documents;
  }
}

/** What a system transaction needs to start. */
export interface SystemTransactionOptions extends SystemReadContext {
  /** Creates a user table on first insert; returns the new catalog. */
  createTable?: (tableName: string) => Promise<Catalog>;
}

/** A transaction of server code: see the module comment. */
export class SystemTransaction implements DocumentReader {
  readonly #transaction: Transaction;
  /**
   * Documents read from persistence, and IDs found missing (null), so a write after a read needs no second read: an
   * ID is looked up and then inserted under it (a storage ID chosen before its blob was written). At one snapshot a
   * miss stays a miss; the transaction's own writes are read from its write set instead.
   */
  readonly #reads = new Map<string, ReadDocument | null>();
  readonly #creationTimes = new CreationTimes();

  constructor(options: SystemTransactionOptions) {
    this.#transaction = new Transaction({
      reader: options.reader,
      catalog: options.catalog,
      snapshotTs: options.snapshotTs,
      udfType: "mutation",
      identityJson: null,
      ...(options.createTable ? { createTable: options.createTable } : {}),
    });
  }

  get snapshotTs(): bigint {
    return this.#transaction.snapshotTs;
  }

  // ---- reads (recorded in the read set) ----

  async get(id: string): Promise<StoredDocument | null> {
    const table = this.#transaction.tableOfId(id);
    if (!table) return null;
    const read = await this.#read(table, id);
    return read === null ? null : { id, json: read.json, ts: read.ts };
  }

  /** Scans through a query stream, so the range read joins the read set and the transaction's writes show. */
  async scan(indexName: string, options: IndexScanOptions): Promise<ScannedDocument[]> {
    const { table, index } = lookUpIndex(this.#transaction.catalog, indexName);
    const order = options.order ?? "asc";
    const range = scanRange(options, order);
    if (range === null) return [];
    const transaction = this.#transaction;
    const context = {
      reader: transaction.reader,
      snapshotTs: transaction.snapshotTs,
      overlay: (tableNumber: number) => transaction.overlay(tableNumber),
      hasWrite: (id: string) => transaction.hasWrite(id),
      chargeRead: (sizeBytes: number) => transaction.chargeRead(sizeBytes),
    };
    const stream = new QueryStream(context, index, table.tableNumber, range, order, [{ limit: options.limit }]);
    transaction.addStream(stream);
    const streamed = await stream.next(options.limit);
    return streamed.map((document) => ({ id: document.id, json: document.json, ts: null, key: document.key }));
  }

  // ---- writes (buffered until the commit) ----

  /**
   * Inserts a document into `tableName`; returns its ID. `_id` and `_creationTime` may be given (a storage ID chosen
   * before its blob was written, an ID derived from an idempotency key), else they are generated.
   */
  async insert(tableName: string, value: Record<string, Value>): Promise<string> {
    const table = await this.#table(tableName);
    const givenId = typeof value._id === "string" ? value._id : null;
    const id = givenId ?? this.#transaction.newId(table);
    if (givenId !== null) {
      if (this.#transaction.tableOfId(givenId) !== table) {
        throw new SyscallError("BadArgument", `insert: "${givenId}" is not an ID of table "${tableName}"`);
      }
      // A chosen ID is read first: two transactions inserting it then conflict instead of both winning.
      if (await this.#read(table, givenId) !== null) {
        throw new SyscallError("BadArgument", `insert: document ${givenId} already exists`);
      }
    }
    const creationTimeMs = typeof value._creationTime === "number" ? value._creationTime : this.#creationTimes.next();
    const document: Record<string, Value> = { ...value, _id: id, _creationTime: creationTimeMs };
    this.#transaction.checkNewDocument(table, document);
    this.#transaction.write(table, id, null, document);
    return id;
  }

  /** Replaces the document `id` with `value` (its `_id` and `_creationTime` are kept). */
  async replace(id: string, value: Record<string, Value>): Promise<void> {
    const { table, before, current } = await this.#existing(id, "replace");
    const next: Record<string, Value> = { ...value, _id: current._id, _creationTime: current._creationTime };
    this.#transaction.checkNewDocument(table, next);
    this.#transaction.write(table, id, before, next);
  }

  /** Sets the given top-level fields of document `id` (a shallow merge; system fields cannot change). */
  async patch(id: string, fields: Record<string, Value>): Promise<void> {
    const { table, before, current } = await this.#existing(id, "patch");
    const next: Record<string, Value> = {
      ...current,
      ...fields,
      _id: current._id,
      _creationTime: current._creationTime,
    };
    this.#transaction.checkNewDocument(table, next);
    this.#transaction.write(table, id, before, next);
  }

  /** Deletes document `id`; false when it does not exist. */
  async delete(id: string): Promise<boolean> {
    const table = this.#transaction.tableOfId(id);
    const before = table ? await this.#read(table, id) : null;
    if (!table || !before) return false;
    this.#transaction.write(table, id, before, null);
    return true;
  }

  /** The read set and write set, for the committer (or to ride along in a mutation's commit). */
  outcome(): TransactionOutcome {
    return this.#transaction.outcome();
  }

  // ---- internals ----

  /** The one table lookup by name (see the module comment); creates a missing user table. */
  async #table(tableName: string): Promise<TableInfo> {
    return this.#transaction.catalog.tableByName(tableName) ?? await this.#transaction.tableForInsert(tableName);
  }

  async #read(table: TableInfo, id: string): Promise<ReadDocument | null> {
    // Once written, the transaction's own version is the current one (the transaction reads it from its writes).
    const written = this.#transaction.hasWrite(id);
    const cached = written ? undefined : this.#reads.get(id);
    if (cached !== undefined) return cached;
    const read = await this.#transaction.readDocument(table, id);
    // Only persistence's answers are remembered: a null read from the write set (a deletion) is not a miss.
    if (!written && (read === null || read.ts !== null)) this.#reads.set(id, read);
    return read;
  }

  async #existing(id: string, operation: string) {
    const table = this.#transaction.tableOfId(id);
    const before = table ? await this.#read(table, id) : null;
    if (!table || !before) throw new SyscallError("BadArgument", `${operation}: document ${id} does not exist`);
    const current = (before.value ?? parseConvexJsonText(before.json)) as Record<string, Value>;
    return { table, before, current };
  }
}

function lookUpIndex(catalog: CatalogView, indexName: string): { table: TableInfo; index: IndexInfo } {
  const found = catalog.index(indexName);
  if (!found) throw new SyscallError("IndexMissing", `Index ${indexName} not found`);
  return found;
}

/** The key range of a scan, or null when it is empty. */
function scanRange(options: IndexScanOptions, order: "asc" | "desc"): KeyRange | null {
  const lows: Uint8Array[] = [];
  const highs: Uint8Array[] = [];
  if (options.prefix) {
    const prefix = encodeIndexKey(options.prefix);
    lows.push(prefix);
    const end = prefixSuccessor(prefix);
    if (end !== null) highs.push(end);
  }
  if (options.from) lows.push(encodeIndexKey(options.from));
  if (options.before) highs.push(encodeIndexKey(options.before));
  if (options.resumeAfter) {
    if (order === "asc") lows.push(keyAfter(options.resumeAfter));
    else highs.push(options.resumeAfter);
  }
  const lowKey = lows.reduce((max, key) => compareKeys(key, max) > 0 ? key : max, new Uint8Array());
  const highKey = highs.length === 0 ? null : highs.reduce((min, key) => compareKeys(key, min) < 0 ? key : min);
  if (highKey !== null && compareKeys(lowKey, highKey) >= 0) return null;
  return { lowKey, highKey };
}
