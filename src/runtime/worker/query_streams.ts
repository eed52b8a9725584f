/**
 * Worker-side read-ahead for `1.0/queryStreamNext`. The runtime asks for one document at a time; crossing to the
 * runner's main thread for each would make `collect()` of 1,000 documents cost 1,000 crossings. Instead the shim asks
 * the transaction for a growing batch (8, 32, 128, 256: small first so `first()`-style reads do not over-read) and
 * serves the runtime from that buffer.
 *
 * Documents cross as their JSON texts, sliced out of one message (`encodeStreamBatch`), and reach the runtime inside
 * the `{"value": …}` answer text it parses anyway: the worker neither parses nor re-serializes them (two JSON passes
 * per document fewer, issue 14).
 */
import type { StreamBatch } from "../../database/mod.ts";

/** First batch size and largest batch size of a stream. */
export const FIRST_BATCH = 8;
export const MAX_BATCH = 256;
/** Factor by which each next batch grows: 8, 32, 128, 256, … */
export const BATCH_GROWTH = 4;

/**
 * The first batch of a stream opened with `queryStream` args `args`: all of it when the query ends in a small `limit`
 * (`take(n)`, `first()`, `unique()` send one), so such a query reads in one crossing; `FIRST_BATCH` otherwise.
 */
export function firstBatchSize(args: unknown): number {
  const operators = (args as { query?: { operators?: unknown } } | null)?.query?.operators;
  if (!Array.isArray(operators)) return FIRST_BATCH;
  const last = operators[operators.length - 1] as { limit?: unknown } | null;
  const limit = last?.limit;
  return typeof limit === "number" && Number.isInteger(limit) && limit >= 1 && limit <= MAX_BATCH ? limit : FIRST_BATCH;
}

/**
 * The text of a batch as it crosses from the runner's main thread: a JSON header line (`queryId`, `done`, the length
 * of each document's text), then the documents' texts back to back.
 */
export function encodeStreamBatch(queryId: number, batch: StreamBatch): string {
  const lengths = batch.documentsJson.map((json) => json.length);
  return `{"queryId":${queryId},"done":${batch.done},"lengths":[${lengths.join(",")}]}\n${
    batch.documentsJson.join("")
  }`;
}

/** Reads `encodeStreamBatch`'s text; throws when its lengths do not add up (a corrupted message). */
export function decodeStreamBatch(text: string): StreamBatch & { queryId: number } {
  const headerEnd = text.indexOf("\n");
  if (headerEnd === -1) throw new Error("A query stream batch has no header");
  const header = JSON.parse(text.slice(0, headerEnd)) as { queryId: number; done: boolean; lengths: number[] };
  const documentsJson = new Array<string>(header.lengths.length);
  let offset = headerEnd + 1;
  for (let i = 0; i < header.lengths.length; i++) {
    documentsJson[i] = text.slice(offset, offset + header.lengths[i]);
    offset += header.lengths[i];
  }
  if (offset !== text.length) throw new Error("A query stream batch does not add up");
  return { queryId: header.queryId, documentsJson, done: header.done };
}

interface StreamBuffer {
  /** JSON texts, slices of one batch's text (which lives until every slice is dropped); each is dropped once served. */
  documents: (string | undefined)[];
  position: number;
  done: boolean;
  nextBatch: number;
}

/** Fetches up to `batchSize` documents of a stream from the transaction. */
export type FetchBatch = (queryId: number, batchSize: number) => StreamBatch;

/** The read-ahead buffers of one execution's streams. */
export class QueryStreams {
  readonly #streams = new Map<number, StreamBuffer>();
  /** Streams cleaned up in this execution: cleanup never crosses to the transaction, so reads of them fail here. */
  readonly #cleaned = new Set<number>();

  /** Registers a stream opened together with its first batch (`QUERY_STREAM_FIRST_OP`). */
  open(queryId: number, first: StreamBatch): void {
    this.#streams.set(queryId, {
      documents: first.documentsJson,
      position: 0,
      done: first.done,
      nextBatch: FIRST_BATCH * BATCH_GROWTH,
    });
  }

  /** The `queryStreamNext` answer (`{"value": doc | null, "done": bool}`) for `queryId`. */
  next(queryId: number, fetch: FetchBatch): string {
    if (this.#cleaned.has(queryId)) throw new Error(`queryStreamNext: unknown query ${queryId}`);
    let stream = this.#streams.get(queryId);
    if (stream === undefined) {
      stream = { documents: [], position: 0, done: false, nextBatch: FIRST_BATCH };
      this.#streams.set(queryId, stream);
    }
    if (stream.position === stream.documents.length && !stream.done) {
      const batch = fetch(queryId, stream.nextBatch);
      stream.documents = batch.documentsJson;
      stream.position = 0;
      stream.done = batch.done;
      stream.nextBatch = Math.min(MAX_BATCH, stream.nextBatch * BATCH_GROWTH);
    }
    if (stream.position < stream.documents.length) {
      const json = stream.documents[stream.position];
      stream.documents[stream.position++] = undefined; // served: the batch's text goes once the last one is
      return `{"value":${json},"done":false}`;
    }
    return '{"value":null,"done":true}';
  }

  /**
   * Forgets the buffer of a stream (`queryCleanup`). Returns whether it was open. The transaction keeps its side of
   * the stream until the execution ends (bounded by the index-range limit), which saves a crossing per query.
   */
  cleanup(queryId: number): boolean {
    const open = this.#streams.delete(queryId);
    if (open) this.#cleaned.add(queryId);
    return open;
  }

  /** Forgets every stream (a new execution starts). */
  clear(): void {
    this.#streams.clear();
    this.#cleaned.clear();
  }
}
