/**
 * One running query: an index range read at the transaction's snapshot, merged with the transaction's own pending
 * writes, passed through the query's filter and limit operators in order.
 */
import { compareKeys, parseConvexJsonText, type Value } from "../values/mod.ts";
import type { IndexScanRow, PersistenceReader } from "../persistence/mod.ts";
import type { IndexInfo } from "./types.ts";
import { documentIndexKey, keyAfter, type KeyRange } from "./index_range.ts";
import type { CompiledExpression } from "./filter.ts";

/**
 * A document the stream produced: its text as stored, its key in the scanned index, and its parsed value — parsed
 * only when a filter needs it (results travel on as the stored text).
 */
export interface StreamedDocument {
  id: string;
  json: string;
  value: Value | null;
  key: Uint8Array;
}

/**
 * A document of a scanned row: its key is the row's, read from it only when asked for. Readers may hand keys over
 * undecoded (SQLite's as hex text): a stream asks for the key of the document its position ends on, not of every one
 * (issue 14: ~1 µs per row).
 */
class PersistedDocument implements StreamedDocument {
  readonly id: string;
  readonly json: string;
  readonly value: Value | null;
  readonly #row: IndexScanRow;

  constructor(row: IndexScanRow, json: string, value: Value | null) {
    this.id = row.document.id;
    this.json = json;
    this.value = value;
    this.#row = row;
  }

  get key(): Uint8Array {
    return this.#row.key;
  }
}

/** A pending write as the stream sees it: the transaction's current version of a document (null = deleted). */
export interface OverlayDocument {
  id: string;
  tableNumber: number;
  json: string | null;
  value: Value | null;
}

/** Operators of a serialized query, compiled. */
export type QueryOperator = { filter: CompiledExpression } | { limit: number };

/** What the stream needs from its transaction. */
export interface StreamContext {
  reader: PersistenceReader;
  snapshotTs: bigint;
  /** The transaction's writes to the scanned table. */
  overlay(tableNumber: number): Iterable<OverlayDocument>;
  /** True when the transaction wrote `id` (its persisted revision is hidden by the overlay). */
  hasWrite(id: string): boolean;
  /** Counts one scanned document against the transaction's limits. */
  chargeRead(sizeBytes: number): void;
}

/** The context of a stream that never reads (`QueryStream.readRecord`). */
const NO_READS: StreamContext = {
  reader: {
    getDocument: () => Promise.reject(new Error("invariant: a recorded range is never read")),
    scanIndex: () => Promise.reject(new Error("invariant: a recorded range is never read")),
    close: () => Promise.resolve(),
  },
  snapshotTs: 0n,
  overlay: () => [],
  hasWrite: () => false,
  chargeRead: () => {},
};

const FIRST_CHUNK_ROWS = 16;
const MAX_CHUNK_ROWS = 512;

/** A streaming index scan with operators. Records how far it read, for the read set. */
export class QueryStream {
  readonly index: IndexInfo;
  readonly tableNumber: number;
  readonly range: KeyRange;
  readonly order: "asc" | "desc";
  readonly #operators: QueryOperator[];
  readonly #limitCounts: number[];
  readonly #context: StreamContext;
  /**
   * What holds the last key scanned (exclusive resume point), null before the first read: the document itself, whose
   * key is decoded only when the position is read (once per chunk or per stream, not once per document).
   */
  #positionOf: { readonly key: Uint8Array } | null = null;
  #exhausted = false;
  #finished = false;
  #pending: StreamedDocument[] = [];
  #chunkRows = FIRST_CHUNK_ROWS;
  readonly #needsValues: boolean;

  constructor(
    context: StreamContext,
    index: IndexInfo,
    tableNumber: number,
    range: KeyRange,
    order: "asc" | "desc",
    operators: QueryOperator[],
  ) {
    this.#context = context;
    this.index = index;
    this.tableNumber = tableNumber;
    this.range = range;
    this.order = order;
    this.#operators = operators;
    this.#limitCounts = operators.map(() => 0);
    this.#needsValues = operators.some((operator) => "filter" in operator);
  }

  /**
   * A stream that only records `range` of `index` as read, without reading it: the read set of a search answered by
   * the in-memory index, whose term keys live in no persisted index.
   */
  static readRecord(index: IndexInfo, tableNumber: number, range: KeyRange): QueryStream {
    const stream = new QueryStream(NO_READS, index, tableNumber, range, "asc", []);
    stream.#exhausted = true;
    stream.#finished = true;
    return stream;
  }

  /** The compiled operators, for deriving a narrower stream of the same query. */
  get operators(): QueryOperator[] {
    return this.#operators;
  }

  /** True once no more documents can come. */
  get done(): boolean {
    return this.#finished;
  }

  /** The last key scanned, or null. */
  get position(): Uint8Array | null {
    return this.#positionOf?.key ?? null;
  }

  /** Whether the scan reached the end of its range. */
  get exhausted(): boolean {
    return this.#exhausted && this.#pending.length === 0;
  }

  /**
   * The key range this stream has read so far (for the read set), or null if it consumed nothing. Documents fetched
   * but not yet consumed were never observed, so the range ends at the last consumed key.
   */
  readRange(): KeyRange | null {
    if (this.#exhausted && this.#pending.length === 0) return this.range;
    const position = this.position;
    if (position === null) return null;
    if (this.order === "asc") return { lowKey: this.range.lowKey, highKey: keyAfter(position) };
    return { lowKey: position, highKey: this.range.highKey };
  }

  /** Produces up to `max` documents that pass every operator. */
  async next(max: number): Promise<StreamedDocument[]> {
    const out: StreamedDocument[] = [];
    while (out.length < max && !this.#finished) {
      if (this.#limitReached()) {
        this.#finished = true;
        break;
      }
      if (this.#pending.length === 0) {
        if (this.#exhausted) {
          this.#finished = true;
          break;
        }
        await this.#fetchChunk();
        continue;
      }
      const document = this.#pending.shift()!;
      this.#positionOf = document;
      const verdict = this.#apply(document.value);
      if (verdict === "pass") out.push(document);
      else if (verdict === "stop") this.#finished = true;
    }
    // Known now without reading on: a `take(n)` whose n documents this batch holds, or a range read to its end, ends
    // here, and the caller learns it with this batch instead of asking for another (a worker↔runner crossing per
    // query, issue 14). Nothing more is read either way, so the read set is the same.
    if (this.#limitReached() || (this.#exhausted && this.#pending.length === 0)) this.#finished = true;
    return out;
  }

  /** Consumes the next scanned document and says whether it passes the operators; null at the end. */
  async nextScanned(): Promise<{ document: StreamedDocument; verdict: "pass" | "skip" | "stop" } | null> {
    if (this.#limitReached()) this.#finished = true;
    while (this.#pending.length === 0 || this.#finished) {
      if (this.#exhausted || this.#finished) return null;
      await this.#fetchChunk();
    }
    const document = this.#pending.shift()!;
    this.#positionOf = document;
    const verdict = this.#apply(document.value);
    if (verdict === "stop") this.#finished = true;
    return { document, verdict };
  }

  #limitReached(): boolean {
    return limitReached(this.#operators, this.#limitCounts);
  }

  #apply(value: Value | null): "pass" | "skip" | "stop" {
    return applyOperators(this.#operators, this.#limitCounts, value);
  }

  async #fetchChunk(): Promise<void> {
    const context = this.#context;
    const asc = this.order === "asc";
    const position = this.position;
    const lowKey = asc && position ? keyAfter(position) : this.range.lowKey;
    const highKey = !asc && position ? position : this.range.highKey;
    if (highKey !== null && compareKeys(lowKey, highKey) >= 0) {
      this.#exhausted = true;
      return;
    }
    const limit = this.#chunkRows;
    this.#chunkRows = Math.min(this.#chunkRows * 4, MAX_CHUNK_ROWS);
    const rows = await context.reader.scanIndex({
      indexId: this.index.indexId,
      lowKey,
      highKey,
      order: this.order,
      snapshotTs: context.snapshotTs,
      limit,
    });
    const persisted: StreamedDocument[] = [];
    for (const row of rows) {
      const json = row.document.json;
      if (json === null || context.hasWrite(row.document.id)) continue;
      context.chargeRead(json.length);
      const value = this.#needsValues ? parseConvexJsonText(json) : null;
      persisted.push(new PersistedDocument(row, json, value));
    }
    const reachedEnd = rows.length < limit;
    // The chunk covers keys up to the last row returned (or the range end when the scan ran out).
    const boundary = reachedEnd ? null : rows[rows.length - 1];
    const merged = this.#mergeOverlay(persisted, lowKey, highKey, boundary);
    this.#pending.push(...merged);
    if (reachedEnd) this.#exhausted = true;
    else if (merged.length === 0) {
      // Every row of the chunk was shadowed by a pending write: move the position past it so the next fetch advances.
      this.#positionOf = boundary;
    }
  }

  /** Adds the transaction's own writes that fall inside the chunk's key span, in scan order. */
  #mergeOverlay(
    persisted: StreamedDocument[],
    lowKey: Uint8Array,
    highKey: Uint8Array | null,
    boundaryRow: IndexScanRow | null,
  ): StreamedDocument[] {
    const asc = this.order === "asc";
    const extra: StreamedDocument[] = [];
    let boundary: Uint8Array | null | undefined; // read from boundaryRow once a write needs it
    for (const write of this.#context.overlay(this.tableNumber)) {
      if (write.json === null || write.value === null) continue;
      const key = documentIndexKey(this.index, write.value);
      if (compareKeys(key, lowKey) < 0) continue;
      if (highKey !== null && compareKeys(key, highKey) >= 0) continue;
      boundary ??= boundaryRow?.key ?? null;
      if (boundary !== null && (asc ? compareKeys(key, boundary) > 0 : compareKeys(key, boundary) < 0)) continue;
      extra.push({ id: write.id, json: write.json, value: write.value, key });
    }
    if (extra.length === 0) return persisted;
    const all = persisted.concat(extra);
    all.sort((a, b) => asc ? compareKeys(a.key, b.key) : compareKeys(b.key, a.key));
    return all;
  }
}

/** A document reaches the output only through every limit, so one used-up limit ends the stream. */
export function limitReached(operators: QueryOperator[], limitCounts: number[]): boolean {
  for (let i = 0; i < operators.length; i++) {
    const operator = operators[i];
    if ("limit" in operator && limitCounts[i] >= operator.limit) return true;
  }
  return false;
}

/** Applies the operators, in order, to one scanned document (`limitCounts` holds each limit's count so far). */
export function applyOperators(
  operators: QueryOperator[],
  limitCounts: number[],
  value: Value | null,
): "pass" | "skip" | "stop" {
  for (let i = 0; i < operators.length; i++) {
    const operator = operators[i];
    if ("filter" in operator) {
      if (operator.filter(value!) !== true) return "skip";
    } else {
      if (limitCounts[i] >= operator.limit) return "stop";
      limitCounts[i]++;
    }
  }
  return "pass";
}
