/**
 * The database, auth and metadata syscalls of convex-compat.md §4.4, on top of a Transaction. Arguments and results
 * are JSON text in the exact shapes user code's `convex/server` sends and expects.
 */
import { compareKeys, jsonToValue, parseConvexJsonText, type Value } from "../values/mod.ts";
import { compileExpression } from "./filter.ts";
import { CreationTimes } from "./clock.ts";
import { INTERNAL_TABLE_NAMES } from "./catalog.ts";
import { compileIndexRange, keyAfter, type KeyRange, type RangeExpression } from "./index_range.ts";
import {
  MAX_FUNCTIONS_SCHEDULED,
  MAX_PAGE_SIZE,
  MAX_SCHEDULED_ARGS_BYTES,
  MAX_STREAM_BATCH,
  TRANSACTION_LIMITS,
} from "./limits.ts";
import { type QueryOperator, QueryStream } from "./query_stream.ts";
import {
  decodeSearchCursor,
  encodeSearchCursor,
  isSearchCursorOf,
  parseSearchFilters,
  SearchStream,
} from "./search.ts";
import { decodeCursor, decodeJournal, encodeCursor, encodeJournal, isCursorOf } from "./cursor.ts";
import { Transaction, type TransactionOptions } from "./transaction.ts";
import {
  parseSyscallArgs,
  type SyscallArgs,
  syscallHandler,
  type SyscallServices,
  type TransactionSyscallContext,
  type TransactionSyscalls,
} from "./syscall_extension.ts";
import { identityFailureOf } from "../errors/mod.ts";
import {
  type StreamBatch,
  SyscallError,
  type TableInfo,
  type TransactionHost,
  type TransactionOutcome,
} from "./types.ts";

const MAX_QUERY_OPERATORS = 256;
const SYSTEM_FIELDS = new Set(["_id", "_creationTime"]);

type Args = SyscallArgs;

function badArgument(message: string): SyscallError {
  return new SyscallError("BadArgument", message);
}

function requireString(args: Args, field: string, op: string): string {
  const value = args[field];
  if (typeof value !== "string") throw badArgument(`${op}: \`${field}\` must be a string`);
  return value;
}

/** What `DatabaseSyscalls` is opened with: a transaction's options, plus the syscalls other layers add. */
export interface DatabaseSyscallsOptions extends TransactionOptions {
  /** Syscalls of other layers (the scheduler's, storage's) this transaction answers too. */
  syscalls?: TransactionSyscalls;
}

/** Opens a transaction on a reader (in a runner process, or in the server for direct engine use). */
export function openTransaction(options: DatabaseSyscallsOptions): TransactionHost {
  return new DatabaseSyscalls(options);
}

/** The TransactionHost the runtime drives: syscalls plus nested-call savepoints. */
export class DatabaseSyscalls implements TransactionHost {
  readonly transaction: Transaction;
  readonly #streams = new Map<number, QueryStream | SearchStream>();
  #nextQueryId = 0;
  #paginated = false;
  readonly #creationTimes = new CreationTimes();
  /** Syscalls started and not yet answered (see `syscall`). */
  #syscallsInFlight = 0;
  /** The end cursor the previous run's page ended at, from its journal. */
  readonly #journalEndCursor: string | null;
  /** The end cursor this run's page ended at: the journal of this run. */
  #producedJournal: string | null = null;
  readonly #syscalls: TransactionSyscalls;
  /** The runner's link to the server (set by the runner): searches ask the server's index through it. */
  serverCall: ((op: string, argsJson: string) => Promise<string>) | null = null;

  constructor(options: DatabaseSyscallsOptions) {
    this.transaction = new Transaction(options);
    this.#syscalls = options.syscalls ?? {};
    this.#journalEndCursor = decodeJournal(options.journal ?? null);
  }

  /** What a syscall of another layer reaches of this transaction (`services`: the runner's link to the server). */
  syscallContext(services: SyscallServices | null): TransactionSyscallContext {
    return { transaction: this.transaction, nextCreationTimeMs: () => this.#creationTimes.next(), services };
  }

  get snapshotTs(): bigint {
    return this.transaction.snapshotTs;
  }

  beginNested(): void {
    this.transaction.beginNested();
  }

  endNested(commit: boolean): void {
    this.transaction.endNested(commit);
  }

  outcome(): TransactionOutcome {
    const outcome = this.transaction.outcome();
    if (this.#producedJournal !== null) outcome.journal = encodeJournal(this.#producedJournal);
    return outcome;
  }

  syscall(op: string, argsJson: string, componentPath = ""): Promise<string> {
    return this.#inNamespace(componentPath, () => this.#dispatch(op, parseSyscallArgs(argsJson)));
  }

  nextDocuments(queryId: number, maxDocuments: number, componentPath = ""): Promise<StreamBatch> {
    return this.#inNamespace(componentPath, () => this.#nextBatch(queryId, maxDocuments));
  }

  /** Runs `work` (a syscall) in the namespace of `componentPath`. */
  #inNamespace<T>(componentPath: string, work: () => Promise<T>): Promise<T> {
    // The namespace is the transaction's state for the length of a syscall. That is sound because syscalls of one
    // transaction that overlap always share a namespace: a runner's worker blocks in the sync channel until each
    // syscall is answered, and direct engine users (tests) overlap only calls of one component. The check keeps it so.
    if (this.#syscallsInFlight > 0 && componentPath !== this.transaction.componentPath) {
      return Promise.reject(new Error("invariant broken: overlapping syscalls of one transaction in two namespaces"));
    }
    this.#syscallsInFlight++;
    try {
      this.transaction.componentPath = componentPath;
      return work().finally(() => this.#syscallsInFlight--);
    } catch (error) {
      this.#syscallsInFlight--;
      return Promise.reject(error);
    }
  }

  #dispatch(op: string, args: Args): Promise<string> {
    switch (op) {
      case "1.0/get":
        return this.#get(args);
      case "1.0/insert":
        return this.#insert(args);
      case "1.0/shallowMerge":
        return this.#update(args, "patch");
      case "1.0/replace":
        return this.#update(args, "replace");
      case "1.0/remove":
        return this.#remove(args);
      case "1.0/queryStream":
        return Promise.resolve(this.#queryStream(args));
      case "1.0/queryStreamNext":
        return this.#queryStreamNext(args);
      case "1.0/queryCleanup":
        return Promise.resolve(JSON.stringify(this.#streams.delete(Number(args.queryId))));
      case "1.0/queryPage":
        return this.#queryPage(args);
      case "1.0/count":
        return this.#count(args);
      case "1.0/db/normalizeId":
        return Promise.resolve(this.#normalizeId(args));
      case "1.0/getSnapshotTs":
        return Promise.resolve(JSON.stringify({ $integer: int64ToBase64(this.transaction.snapshotTs) }));
      case "1.0/getUserIdentity": {
        // Called from an HTTP action whose Bearer token did not verify: throw why (errors/identity_failure.ts).
        const failure = identityFailureOf(this.transaction.identityJson);
        if (failure !== null) return Promise.reject(new SyscallError(failure.code, failure.message));
        return Promise.resolve(this.transaction.identityJson ?? "null");
      }
      case "1.0/getTransactionMetrics":
        return Promise.resolve(JSON.stringify(this.#metrics()));
      default: {
        const handler = syscallHandler(this.#syscalls, op);
        if (handler) return handler(this.syscallContext(null), args);
        return Promise.reject(new SyscallError("UnknownAsyncOperation", `Unknown async operation ${op}`));
      }
    }
  }

  // ---- documents ----

  /** Resolves the table of `id`, honouring the optional explicit `table` argument and system-table rules. */
  #tableFor(id: string, explicitTable: unknown, isSystem: boolean, op: string): TableInfo | undefined {
    const found = this.transaction.tableOfId(id);
    const table = found && INTERNAL_TABLE_NAMES.has(found.name) ? undefined : found;
    if (typeof explicitTable === "string") {
      if (!table || table.name !== explicitTable) {
        const expectedTable = this.transaction.catalog.tableByName(explicitTable);
        if (!expectedTable && !table) return undefined;
        throw badArgument(
          `${op}: the ID "${id}" is not an ID of table "${explicitTable}"` +
            (table ? ` (it belongs to "${table.name}")` : ""),
        );
      }
    }
    if (table && table.name.startsWith("_") !== isSystem) {
      if (isSystem) throw badArgument(`${op}: "${id}" is not an ID of a system table; use ctx.db.get`);
      throw badArgument(`${op}: "${id}" is an ID of system table "${table.name}"; use ctx.db.system.get`);
    }
    return table;
  }

  async #get(args: Args): Promise<string> {
    const id = requireString(args, "id", "db.get");
    const table = this.#tableFor(id, args.table, args.isSystem === true, "db.get");
    if (!table) return "null";
    const document = await this.transaction.readDocument(table, id);
    return document === null ? "null" : document.json;
  }

  async #insert(args: Args): Promise<string> {
    const tableName = requireString(args, "table", "db.insert");
    const value = args.value;
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw badArgument("db.insert: the document must be an object");
    }
    for (const field of Object.keys(value)) {
      if (SYSTEM_FIELDS.has(field)) throw badArgument(`db.insert: system field \`${field}\` cannot be set`);
    }
    const table = await this.transaction.tableForInsert(tableName);
    const id = this.transaction.newId(table);
    const fields = jsonToValue(value) as Record<string, Value>;
    const document: Record<string, Value> = { _id: id, _creationTime: this.#creationTimes.next(), ...fields };
    this.transaction.checkNewDocument(table, document);
    this.transaction.write(table, id, null, document);
    return JSON.stringify({ _id: id });
  }

  async #update(args: Args, mode: "patch" | "replace"): Promise<string> {
    const op = mode === "patch" ? "db.patch" : "db.replace";
    const id = requireString(args, "id", op);
    const table = this.#tableFor(id, args.table, false, op);
    const value = args.value;
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw badArgument(`${op}: the value must be an object`);
    }
    const before = table ? await this.transaction.readDocument(table, id) : null;
    if (!table || !before) throw badArgument(`${op}: update on nonexistent document ID ${id}`);
    const current = (before.value ?? parseConvexJsonText(before.json)) as Record<string, Value>;
    const next: Record<string, Value> = mode === "patch"
      ? { ...current }
      : { _id: current._id, _creationTime: current._creationTime };
    for (const [field, fieldJson] of Object.entries(value as Record<string, unknown>)) {
      if (SYSTEM_FIELDS.has(field)) {
        const given = jsonToValue(fieldJson as never);
        if (given !== current[field]) throw badArgument(`${op}: system field \`${field}\` cannot be changed`);
        continue;
      }
      if (isUndefinedMarker(fieldJson)) {
        if (mode === "replace") throw badArgument(`${op}: a replacement document cannot hold undefined fields`);
        delete next[field];
        continue;
      }
      next[field] = jsonToValue(fieldJson as never);
    }
    this.transaction.checkNewDocument(table, next);
    return this.transaction.write(table, id, before, next);
  }

  async #remove(args: Args): Promise<string> {
    const id = requireString(args, "id", "db.delete");
    const table = this.#tableFor(id, args.table, false, "db.delete");
    const before = table ? await this.transaction.readDocument(table, id) : null;
    if (!table || !before) throw badArgument(`db.delete: delete on nonexistent document ID ${id}`);
    this.transaction.write(table, id, before, null);
    return before.json;
  }

  #normalizeId(args: Args): string {
    const tableName = requireString(args, "table", "db.normalizeId");
    const idString = requireString(args, "idString", "db.normalizeId");
    return JSON.stringify({ id: this.transaction.isIdOfTable(idString, tableName) ? idString : null });
  }

  // ---- queries ----

  /** Compiles a serialized query (convex-compat.md §4.5) into a stream; null when its table does not exist. */
  #openStream(query: Args): QueryStream | SearchStream | null {
    const source = query?.source;
    if (!source || typeof source !== "object") throw badArgument("query: missing `source`");
    const operators = compileOperators(query.operators);
    const order = source.order === "desc" ? "desc" : "asc";
    let indexName: string;
    let rangeExpressions: RangeExpression[] = [];
    if (source.type === "FullTableScan") {
      if (typeof source.tableName !== "string") throw badArgument("query: FullTableScan needs a tableName");
      indexName = `${source.tableName}.by_creation_time`;
    } else if (source.type === "IndexRange") {
      if (typeof source.indexName !== "string") throw badArgument("query: IndexRange needs an indexName");
      indexName = source.indexName;
      rangeExpressions = source.range;
    } else if (source.type === "Search") {
      return this.#openSearch(source, operators);
    } else {
      throw badArgument(`query: unknown source type ${JSON.stringify(source.type)}`);
    }
    const tableName = indexName.slice(0, indexName.indexOf("."));
    if (INTERNAL_TABLE_NAMES.has(tableName)) return null;
    const found = this.transaction.catalog.index(indexName);
    if (!found) {
      if (!this.transaction.catalog.tableByName(tableName) && !indexName.endsWith(".by_id")) {
        const isBuiltin = indexName.endsWith(".by_creation_time");
        if (isBuiltin || source.type === "IndexRange") {
          // Reading a table that does not exist yet returns nothing, as on Convex (the index name is validated by
          // the schema at push time); the read of "no such table" is recorded, so creating it invalidates this.
          this.transaction.recordMissingTable(tableName);
          return null;
        }
      }
      throw badArgument(`Index ${indexName} not found.`);
    }
    if (!found.index.ready) {
      throw new SyscallError("IndexBackfilling", `Index ${indexName} is currently backfilling and not available yet`);
    }
    const range = compileIndexRange(found.index, rangeExpressions);
    const stream = new QueryStream(
      this.#streamContext(),
      found.index,
      found.table.tableNumber,
      range,
      order,
      operators,
    );
    this.transaction.addStream(stream);
    return stream;
  }

  /** A full-text search (convex-compat.md §4.5): a ranked stream over a full scan of the table. */
  #openSearch(source: Args, operators: QueryOperator[]): SearchStream {
    const indexName = source.indexName;
    if (typeof indexName !== "string") throw badArgument("query: Search needs an indexName");
    const tableName = indexName.slice(0, Math.max(0, indexName.indexOf(".")));
    const catalog = this.transaction.catalog;
    const table = INTERNAL_TABLE_NAMES.has(tableName) ? undefined : catalog.tableByName(tableName);
    const searchIndex = table?.searchIndexes?.find((candidate) => candidate.name === indexName);
    const byCreationTime = catalog.index(`${tableName}.by_creation_time`);
    if (!table || !searchIndex || !byCreationTime) {
      throw badArgument(`Search index ${indexName} not found. Declare it in the schema with .searchIndex(...)`);
    }
    const filters = parseSearchFilters(searchIndex, source.filters);
    const scan = new QueryStream(
      this.#streamContext(),
      byCreationTime.index,
      table.tableNumber,
      compileIndexRange(byCreationTime.index, []),
      "asc",
      [],
    );
    this.transaction.addStream(scan);
    return new SearchStream(searchIndex, scan, filters, operators, {
      transaction: this.transaction,
      table,
      serverCall: this.serverCall,
    });
  }

  #streamContext() {
    const transaction = this.transaction;
    return {
      reader: transaction.reader,
      snapshotTs: transaction.snapshotTs,
      overlay: (tableNumber: number) => transaction.overlay(tableNumber),
      hasWrite: (id: string) => transaction.hasWrite(id),
      chargeRead: (sizeBytes: number) => transaction.chargeRead(sizeBytes),
    };
  }

  #queryStream(args: Args): string {
    const stream = this.#openStream(args.query);
    const queryId = this.#nextQueryId++;
    this.#streams.set(queryId, stream ?? EMPTY_STREAM);
    return JSON.stringify({ queryId });
  }

  async #queryStreamNext(args: Args): Promise<string> {
    const batched = typeof args.batchSize === "number";
    const { documentsJson, done } = await this.#nextBatch(Number(args.queryId), batched ? args.batchSize : 1);
    if (batched) return `{"values":[${documentsJson.join(",")}],"done":${done}}`;
    if (documentsJson.length === 0) return `{"value":null,"done":true}`;
    return `{"value":${documentsJson[0]},"done":false}`;
  }

  async #nextBatch(queryId: number, maxDocuments: number): Promise<StreamBatch> {
    const stream = this.#streams.get(queryId);
    if (!stream) throw badArgument(`queryStreamNext: unknown query ${queryId}`);
    // A batch size that is not a number (a malformed internal request) reads one document, as an unbatched next does.
    const floored = Math.floor(maxDocuments);
    const max = Number.isNaN(floored) ? 1 : Math.max(1, Math.min(MAX_STREAM_BATCH, floored));
    const documents = stream === EMPTY_STREAM ? [] : await stream.next(max);
    // A batch may end the stream and still hold documents: the reader serves them, then stops.
    const done = stream === EMPTY_STREAM || stream.done || documents.length === 0;
    return { documentsJson: documents.map((document) => document.json), done };
  }

  async #queryPage(args: Args): Promise<string> {
    if (this.#paginated) {
      throw badArgument(
        "This query or mutation function ran multiple paginated queries. Convex only supports a single paginated " +
          "query in each function.",
      );
    }
    this.#paginated = true;
    const pageSize = args.pageSize;
    if (typeof pageSize !== "number" || !Number.isFinite(pageSize) || pageSize <= 0) {
      throw badArgument(`paginate: numItems must be a positive number, got ${JSON.stringify(pageSize)}`);
    }
    const maximumRowsRead = typeof args.maximumRowsRead === "number" ? args.maximumRowsRead : Infinity;
    const stream = this.#openStream(args.query);
    if (stream instanceof SearchStream) return await this.#searchPage(stream, args, pageSize, maximumRowsRead);
    if (!stream) {
      return JSON.stringify({
        page: [],
        isDone: true,
        continueCursor: "dvx1.0.end",
        splitCursor: null,
        pageStatus: null,
      });
    }
    const indexId = stream.index.indexId;
    const start = args.cursor === null || args.cursor === undefined ? null : decodeCursor(args.cursor, indexId);
    // Without an explicit end, a re-run ends where the previous run's page ended (its journal), so a subscribed page
    // keeps its boundary as documents come and go. A journal of another query is ignored rather than an error.
    let endCursor: string | null = typeof args.endCursor === "string" ? args.endCursor : null;
    if (endCursor === null && this.#journalEndCursor !== null && isCursorOf(this.#journalEndCursor, indexId)) {
      endCursor = this.#journalEndCursor;
    }
    const end = endCursor === null ? null : decodeCursor(endCursor, indexId);
    const bounded = boundStream(stream, start, end, this.#streamContext(), this.transaction);
    if (!bounded) {
      return JSON.stringify({
        page: [],
        isDone: true,
        continueCursor: encodeCursor(indexId, { kind: "end" }),
        splitCursor: null,
        pageStatus: null,
      });
    }
    const limit = end ? Infinity : Math.min(Math.floor(pageSize), MAX_PAGE_SIZE);
    const page: string[] = [];
    let rowsRead = 0;
    let lastKey: Uint8Array | null = null;
    let reachedEnd = false;
    while (page.length < limit && rowsRead < maximumRowsRead) {
      const scanned = await bounded.nextScanned();
      if (scanned === null) {
        reachedEnd = true;
        break;
      }
      rowsRead++;
      lastKey = scanned.document.key;
      if (scanned.verdict === "pass") page.push(scanned.document.json);
    }
    let isDone: boolean;
    let continueCursor: string;
    if (end) {
      // An explicit end cursor fixes the page's boundary: everything up to it, whatever the page size.
      isDone = end.kind === "end" && reachedEnd;
      continueCursor = endCursor!;
    } else if (reachedEnd) {
      isDone = true;
      continueCursor = encodeCursor(indexId, { kind: "end" });
    } else {
      isDone = false;
      continueCursor = lastKey ? encodeCursor(indexId, { kind: "key", key: lastKey }) : args.cursor;
    }
    this.#producedJournal = continueCursor;
    return `{"page":[${page.join(",")}],"isDone":${isDone},"continueCursor":${JSON.stringify(continueCursor)},` +
      `"splitCursor":null,"pageStatus":null}`;
  }

  /** `paginate()` over a search: the ranked list is the sequence, a cursor is a position in it. */
  async #searchPage(stream: SearchStream, args: Args, pageSize: number, maximumRowsRead: number): Promise<string> {
    const indexName = stream.index.name;
    const start = args.cursor === null || args.cursor === undefined ? 0 : decodeSearchCursor(args.cursor, indexName);
    let endCursor: string | null = typeof args.endCursor === "string" ? args.endCursor : null;
    if (endCursor === null && this.#journalEndCursor !== null && isSearchCursorOf(this.#journalEndCursor, indexName)) {
      endCursor = this.#journalEndCursor;
    }
    const end = endCursor === null ? null : decodeSearchCursor(endCursor, indexName);
    const page: string[] = [];
    let reachedEnd = false;
    if (start !== "end") {
      stream.skip(start);
      const limit = end !== null ? Infinity : Math.min(Math.floor(pageSize), MAX_PAGE_SIZE);
      let rowsRead = 0;
      while (page.length < limit && rowsRead < maximumRowsRead && (typeof end !== "number" || stream.position < end)) {
        const scanned = await stream.nextScanned();
        if (scanned === null) {
          reachedEnd = true;
          break;
        }
        rowsRead++;
        if (scanned.verdict === "pass") page.push(scanned.document.json);
      }
      if (!reachedEnd && end === null) reachedEnd = await stream.exhausted();
    } else {
      reachedEnd = true;
    }
    let isDone: boolean;
    let continueCursor: string;
    if (end !== null) {
      isDone = end === "end" && reachedEnd;
      continueCursor = endCursor!;
    } else if (reachedEnd) {
      isDone = true;
      continueCursor = encodeSearchCursor(indexName, "end");
    } else {
      isDone = false;
      continueCursor = encodeSearchCursor(indexName, stream.position);
    }
    this.#producedJournal = continueCursor;
    return `{"page":[${page.join(",")}],"isDone":${isDone},"continueCursor":${JSON.stringify(continueCursor)},` +
      `"splitCursor":null,"pageStatus":null}`;
  }

  async #count(args: Args): Promise<string> {
    const tableName = requireString(args, "table", "count");
    const stream = this.#openStream({ source: { type: "FullTableScan", tableName, order: null }, operators: [] });
    if (!stream) return "0";
    let count = 0;
    while (!stream.done) {
      const batch = await stream.next(MAX_STREAM_BATCH);
      count += batch.length;
      if (batch.length === 0) break;
    }
    return String(count);
  }

  #metrics(): Record<string, { used: number; remaining: number }> {
    const metrics = this.transaction.metrics;
    const entry = (used: number, limit: number) => ({ used, remaining: Math.max(0, limit - used) });
    return {
      bytesRead: entry(metrics.bytesRead, TRANSACTION_LIMITS.bytesRead),
      bytesWritten: entry(metrics.bytesWritten, TRANSACTION_LIMITS.bytesWritten),
      databaseQueries: entry(this.#nextQueryId, TRANSACTION_LIMITS.indexRanges),
      documentsRead: entry(metrics.documentsRead, TRANSACTION_LIMITS.documentsRead),
      documentsWritten: entry(metrics.documentsWritten, TRANSACTION_LIMITS.documentsWritten),
      functionsScheduled: entry(this.transaction.scheduled.functions, MAX_FUNCTIONS_SCHEDULED),
      scheduledFunctionArgsBytes: entry(this.transaction.scheduled.argsBytes, MAX_SCHEDULED_ARGS_BYTES),
      filesRead: entry(0, 0),
      fileReadBytes: entry(0, 0),
      filesWritten: entry(0, 0),
      fileWriteBytes: entry(0, 0),
    };
  }
}

/** Stands for a query over a table that does not exist: always empty. */
const EMPTY_STREAM = Object.freeze({}) as unknown as QueryStream;

function isUndefinedMarker(json: unknown): boolean {
  return json !== null && typeof json === "object" && !Array.isArray(json) && Object.keys(json).length === 1 &&
    "$undefined" in json;
}

function compileOperators(json: unknown): QueryOperator[] {
  if (json === undefined || json === null) return [];
  if (!Array.isArray(json)) throw badArgument("query: `operators` must be an array");
  if (json.length > MAX_QUERY_OPERATORS) throw badArgument(`query: more than ${MAX_QUERY_OPERATORS} operators`);
  return json.map((operator) => {
    if (operator && typeof operator === "object" && "filter" in operator) {
      return { filter: compileExpression(operator.filter) };
    }
    if (operator && typeof operator === "object" && "limit" in operator) {
      const limit = operator.limit;
      if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 0) {
        throw badArgument(`query: limit must be a non-negative integer, got ${JSON.stringify(limit)}`);
      }
      return { limit };
    }
    throw badArgument(`query: unknown operator ${JSON.stringify(operator)}`);
  });
}

/** Narrows a stream to the part after `start` and up to `end` (inclusive); null when nothing is left. */
function boundStream(
  stream: QueryStream,
  start: ReturnType<typeof decodeCursor> | null,
  end: ReturnType<typeof decodeCursor> | null,
  context: ConstructorParameters<typeof QueryStream>[0],
  transaction: Transaction,
): QueryStream | null {
  if (start?.kind === "end") return null;
  const asc = stream.order === "asc";
  let { lowKey, highKey } = stream.range;
  if (start?.kind === "key") {
    if (asc) lowKey = maxKey(lowKey, keyAfter(start.key));
    else highKey = highKey === null ? start.key : minKey(highKey, start.key);
  }
  if (end?.kind === "key") {
    if (asc) highKey = highKey === null ? keyAfter(end.key) : minKey(highKey, keyAfter(end.key));
    else lowKey = maxKey(lowKey, end.key);
  }
  if (highKey !== null && compareKeys(lowKey, highKey) >= 0) return null;
  const range: KeyRange = { lowKey, highKey };
  const bounded = new QueryStream(context, stream.index, stream.tableNumber, range, stream.order, stream.operators);
  transaction.addStream(bounded);
  return bounded;
}

function maxKey(a: Uint8Array, b: Uint8Array): Uint8Array {
  return compareKeys(a, b) >= 0 ? a : b;
}

function minKey(a: Uint8Array, b: Uint8Array): Uint8Array {
  return compareKeys(a, b) <= 0 ? a : b;
}

/** Base64 of the 8 little-endian bytes of a u64/i64 (convex-JSON `$integer`, wire timestamps). */
export function int64ToBase64(value: bigint): string {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, BigInt.asUintN(64, value), true);
  return bytes.toBase64();
}
