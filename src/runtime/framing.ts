/**
 * Message framing of the server ⇄ runner bridge: a 4-byte big-endian length, then that many bytes of UTF-8 JSON.
 * Length prefixes (rather than newline-delimited JSON) let a reader take a whole message with one allocation.
 */

/** Largest message either side accepts; a bigger length means a corrupted stream and ends it. */
export const MAX_FRAME_BYTES = 256 * 1024 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes one message as a frame. */
export function encodeFrame(message: unknown): Uint8Array {
  const body = encoder.encode(JSON.stringify(message));
  if (body.length > MAX_FRAME_BYTES) throw new Error(`Message of ${body.length} bytes exceeds ${MAX_FRAME_BYTES}`);
  const frame = new Uint8Array(4 + body.length);
  new DataView(frame.buffer).setUint32(0, body.length);
  frame.set(body, 4);
  return frame;
}

/** Yields the messages of a byte stream of frames; ends with the stream. Throws on a corrupted length. */
export async function* readFrames(stream: ReadableStream<Uint8Array>): AsyncGenerator<unknown> {
  const queue = new ByteQueue();
  let needed = 4;
  let readingLength = true;
  for await (const chunk of stream) {
    queue.push(chunk);
    while (queue.size >= needed) {
      const bytes = queue.take(needed);
      if (readingLength) {
        needed = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0);
        if (needed > MAX_FRAME_BYTES) throw new Error(`Frame of ${needed} bytes exceeds ${MAX_FRAME_BYTES}`);
        readingLength = false;
      } else {
        yield JSON.parse(decoder.decode(bytes));
        needed = 4;
        readingLength = true;
      }
    }
  }
}

/** Chunks received but not consumed yet; every byte is copied at most once. */
class ByteQueue {
  #chunks: Uint8Array[] = [];
  size = 0;

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.size += chunk.length;
  }

  /** Removes and returns the first `count` bytes (`count <= size`). */
  take(count: number): Uint8Array {
    this.size -= count;
    const first = this.#chunks[0];
    if (count === 0) return new Uint8Array(0);
    if (first.length >= count) {
      if (first.length === count) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(count);
      return first.subarray(0, count);
    }
    const out = new Uint8Array(count);
    let filled = 0;
    while (filled < count) {
      const chunk = this.#chunks[0];
      const part = Math.min(chunk.length, count - filled);
      out.set(chunk.subarray(0, part), filled);
      filled += part;
      if (part === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(part);
    }
    return out;
  }
}

/** Serializes writes of frames to one writer so concurrent senders never interleave bytes. */
export class FrameWriter {
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  #tail: Promise<void> = Promise.resolve();

  constructor(stream: WritableStream<Uint8Array>) {
    this.#writer = stream.getWriter();
  }

  /** Queues `message`; resolves once written. Rejects if the stream is closed. */
  send(message: unknown): Promise<void> {
    const frame = encodeFrame(message);
    const write = this.#tail.then(() => this.#writer.write(frame));
    // Keep the chain alive after a failed write; the caller of that write sees the error.
    this.#tail = write.catch(() => {});
    return write;
  }

  /** Closes the stream after pending writes. */
  async close(): Promise<void> {
    await this.#tail;
    await this.#writer.close().catch(() => {});
  }
}
