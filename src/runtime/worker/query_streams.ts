/**
 * Worker-side read-ahead for `1.0/queryStreamNext`. The runtime asks for one document at a time; crossing to the
 * runner's main thread for each would make `collect()` of 1,000 documents cost 1,000 crossings. Instead the shim asks
 * the transaction for a growing batch (8, 32, 128, 256: small first so `first()`-style reads do not over-read) and
 * serves the runtime from that buffer.
 */

/** First batch size and largest batch size of a stream. */
export const FIRST_BATCH = 8;
export const MAX_BATCH = 256;
/** Factor by which each next batch grows: 8, 32, 128, 256, … */
export const BATCH_GROWTH = 4;

interface StreamBuffer {
  documents: unknown[];
  position: number;
  done: boolean;
  nextBatch: number;
}

/** Fetches up to `batchSize` documents of a stream from the transaction: `{values, done}`. */
export type FetchBatch = (queryId: number, batchSize: number) => { values: unknown[]; done: boolean };

/** The read-ahead buffers of one execution's streams. */
export class QueryStreams {
  readonly #streams = new Map<number, StreamBuffer>();

  /** The `queryStreamNext` answer (`{"value": doc | null, "done": bool}`) for `queryId`. */
  next(queryId: number, fetch: FetchBatch): string {
    let stream = this.#streams.get(queryId);
    if (stream === undefined) {
      stream = { documents: [], position: 0, done: false, nextBatch: FIRST_BATCH };
      this.#streams.set(queryId, stream);
    }
    if (stream.position === stream.documents.length && !stream.done) {
      const batch = fetch(queryId, stream.nextBatch);
      stream.documents = batch.values;
      stream.position = 0;
      stream.done = batch.done;
      stream.nextBatch = Math.min(MAX_BATCH, stream.nextBatch * BATCH_GROWTH);
    }
    if (stream.position < stream.documents.length) {
      const value = stream.documents[stream.position];
      stream.documents[stream.position++] = undefined; // let documents already served be collected
      return JSON.stringify({ value, done: false });
    }
    return '{"value":null,"done":true}';
  }

  /** Forgets the buffer of a stream (`queryCleanup`). */
  cleanup(queryId: number): void {
    this.#streams.delete(queryId);
  }

  /** Forgets every stream (a new execution starts). */
  clear(): void {
    this.#streams.clear();
  }
}
