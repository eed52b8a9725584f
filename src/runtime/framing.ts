/**
 * Message framing of the server ⇄ runner bridge: a 4-byte big-endian length, then that many bytes of UTF-8 JSON.
 * Length prefixes (rather than newline-delimited JSON) let a reader take a whole message with one allocation.
 *
 * Both ends sit on the latency path of every call, so reading is push-style (`FrameDecoder` hands each message to a
 * callback in the same task that read the bytes, no async generator hops) and writing starts at once when no earlier
 * write is pending.
 *
 * Private to `src/runtime`: other folders use its `mod.ts`.
 */

/** Largest message either side accepts; a bigger length means a corrupted stream and ends it. */
export const MAX_FRAME_BYTES = 256 * 1024 * 1024;
/** Size of the reusable buffer a `pumpFrames` reader reads into. */
const READ_BUFFER_BYTES = 64 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes one message as a frame. */
export function encodeFrame(message: unknown): Uint8Array {
  const text = JSON.stringify(message);
  // Encode straight after the length prefix: at most 3 bytes per UTF-16 unit, so one allocation, no copy.
  const frame = new Uint8Array(4 + text.length * 3);
  const { written } = encoder.encodeInto(text, frame.subarray(4));
  if (written > MAX_FRAME_BYTES) throw new Error(`Message of ${written} bytes exceeds ${MAX_FRAME_BYTES}`);
  new DataView(frame.buffer).setUint32(0, written);
  return frame.subarray(0, 4 + written);
}

/**
 * Splits a byte stream into messages. `push` may be given any chunking of the stream and calls `onMessage` for every
 * message it completes; it keeps (copies of) only the bytes of an incomplete frame, so callers may reuse their buffer.
 * Throws on a corrupted length.
 */
export class FrameDecoder {
  readonly #onMessage: (message: unknown) => void;
  /** Bytes of the incomplete frame (length prefix included) and how many of them are filled. */
  #pending: Uint8Array | null = null;
  #pendingFilled = 0;

  constructor(onMessage: (message: unknown) => void) {
    this.#onMessage = onMessage;
  }

  push(chunk: Uint8Array): void {
    let offset = 0;
    if (this.#pending !== null) {
      offset = this.#fillPending(chunk);
      if (this.#pending !== null) return;
    }
    while (chunk.length - offset >= 4) {
      const length = frameLength(chunk, offset);
      if (chunk.length - offset - 4 < length) break;
      this.#onMessage(JSON.parse(decoder.decode(chunk.subarray(offset + 4, offset + 4 + length))));
      offset += 4 + length;
    }
    if (offset < chunk.length) {
      // Start an incomplete frame: sized to the whole frame once its length is known.
      const rest = chunk.subarray(offset);
      this.#pending = new Uint8Array(rest.length >= 4 ? 4 + frameLength(rest, 0) : 4);
      this.#pending.set(rest);
      this.#pendingFilled = rest.length;
    }
  }

  /** Whether bytes of an incomplete frame are waiting (a stream that ends now was cut). */
  get incomplete(): boolean {
    return this.#pending !== null;
  }

  /** Adds the head of `chunk` to the incomplete frame; returns how many bytes of `chunk` it took. */
  #fillPending(chunk: Uint8Array): number {
    let taken = 0;
    let pending = this.#pending!;
    if (this.#pendingFilled < 4) {
      taken = Math.min(4 - this.#pendingFilled, chunk.length);
      pending.set(chunk.subarray(0, taken), this.#pendingFilled);
      this.#pendingFilled += taken;
      if (this.#pendingFilled < 4) return taken;
      const whole = new Uint8Array(4 + frameLength(pending, 0));
      whole.set(pending);
      pending = this.#pending = whole;
    }
    const part = Math.min(pending.length - this.#pendingFilled, chunk.length - taken);
    pending.set(chunk.subarray(taken, taken + part), this.#pendingFilled);
    this.#pendingFilled += part;
    taken += part;
    if (this.#pendingFilled === pending.length) {
      this.#pending = null;
      this.#pendingFilled = 0;
      this.#onMessage(JSON.parse(decoder.decode(pending.subarray(4))));
    }
    return taken;
  }
}

function frameLength(bytes: Uint8Array, offset: number): number {
  const length = new DataView(bytes.buffer, bytes.byteOffset + offset, 4).getUint32(0);
  if (length > MAX_FRAME_BYTES) throw new Error(`Frame of ${length} bytes exceeds ${MAX_FRAME_BYTES}`);
  return length;
}

/**
 * Reads frames from `source` until it ends, calling `onMessage` for each. Resolves at the end of the stream, rejects
 * on a corrupted or cut-off stream (or when `onMessage` throws).
 */
export async function pumpFrames(
  source: ReadableStream<Uint8Array> | { read(buffer: Uint8Array): Promise<number | null> },
  onMessage: (message: unknown) => void,
): Promise<void> {
  const frames = new FrameDecoder(onMessage);
  if (source instanceof ReadableStream) {
    const reader = source.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        frames.push(value);
      }
    } finally {
      reader.releaseLock();
    }
  } else {
    const buffer = new Uint8Array(READ_BUFFER_BYTES);
    for (;;) {
      const count = await source.read(buffer);
      if (count === null) break;
      frames.push(buffer.subarray(0, count));
    }
  }
  if (frames.incomplete) throw new Error("The stream ended inside a frame");
}

/** Yields the messages of a byte stream of frames; ends with the stream. Throws on a corrupted length. */
export async function* readFrames(stream: ReadableStream<Uint8Array>): AsyncGenerator<unknown> {
  const ready: unknown[] = [];
  const frames = new FrameDecoder((message) => ready.push(message));
  for await (const chunk of stream) {
    frames.push(chunk);
    yield* ready.splice(0);
  }
  if (frames.incomplete) throw new Error("The stream ended inside a frame");
}

/** Where a `FrameWriter` writes: a stream, or a raw writer that may write part of a buffer (`Deno.stdout`). */
export type FrameSink = WritableStream<Uint8Array> | { write(bytes: Uint8Array): Promise<number> };

/** Serializes writes of frames to one sink so concurrent senders never interleave bytes. */
export class FrameWriter {
  readonly #write: (frame: Uint8Array) => Promise<void>;
  readonly #close: () => Promise<void>;
  /** The last write in progress, or null when none is (then a new one starts at once). */
  #tail: Promise<void> | null = null;

  constructor(sink: FrameSink) {
    if (sink instanceof WritableStream) {
      const writer = sink.getWriter();
      this.#write = (frame) => writer.write(frame);
      this.#close = () => writer.close();
    } else {
      this.#write = async (frame) => {
        for (let offset = 0; offset < frame.length;) offset += await sink.write(frame.subarray(offset));
      };
      this.#close = () => Promise.resolve();
    }
  }

  /** Queues `message`; resolves once written. Rejects if the sink is closed. */
  send(message: unknown): Promise<void> {
    const frame = encodeFrame(message);
    const previous = this.#tail;
    const write = previous === null ? this.#write(frame) : previous.then(() => this.#write(frame));
    // Keep the chain alive after a failed write; the caller of that write sees the error.
    const tail = write.then(() => {}, () => {}).then(() => {
      if (this.#tail === tail) this.#tail = null;
    });
    this.#tail = tail;
    return write;
  }

  /** Closes the sink after pending writes. */
  async close(): Promise<void> {
    await this.#tail;
    await this.#close().catch(() => {});
  }
}
