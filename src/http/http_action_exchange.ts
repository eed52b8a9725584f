/**
 * The server side of one HTTP action's streams: pulls the client's request body in bounded chunks for the runner,
 * and turns the runner's response head and chunks into a `Response` whose body the client reads as it arrives.
 *
 * Private to `src/http`: other folders use its `mod.ts`.
 */
import {
  HTTP_CHUNK_BYTES,
  HTTP_RESPONSE_WINDOW_CHUNKS,
  type HttpExchange,
  type HttpResponseHead,
} from "../runtime/mod.ts";

/** See the module comment. */
export class ResponseRelay implements HttpExchange {
  /** The response head; `whole` is set when the runner sent the complete body with it (then `body` is unused). */
  readonly head = Promise.withResolvers<HttpResponseHead & { whole?: Uint8Array<ArrayBuffer> | null }>();
  readonly body: ReadableStream<Uint8Array>;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array> | null;
  #leftover: Uint8Array | null = null;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #waitingForRoom: (() => void) | null = null;
  #cancelled = false;
  #droppedByServer = false;
  #closed = false;

  /** `onClientGone` runs when the client stops reading a streamed response (it disconnected). */
  constructor(request: Request, onClientGone: () => void = () => {}) {
    this.#reader = request.body?.getReader() ?? null;
    this.body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
      },
      pull: () => {
        this.#waitingForRoom?.();
        this.#waitingForRoom = null;
      },
      cancel: () => {
        // Unblock the runner (its chunks are dropped from now on). If the client went away, nobody wants the rest:
        // the action is stopped (its runner recycled) and the call fails.
        this.#cancelled = true;
        this.#waitingForRoom?.();
        this.#waitingForRoom = null;
        if (!this.#droppedByServer && !this.#closed) onClientGone();
      },
    }, new CountQueuingStrategy({ highWaterMark: HTTP_RESPONSE_WINDOW_CHUNKS }));
  }

  /** Reading the client's request body failed (it ended before its declared length): the client's fault. */
  requestBodyFailed = false;

  async pullBody(): Promise<Uint8Array | null> {
    if (this.#leftover === null) {
      if (this.#reader === null) return null;
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await this.#reader.read();
      } catch (error) {
        this.requestBodyFailed = true;
        throw error;
      }
      const { value, done } = result;
      if (done) return null;
      this.#leftover = value;
    }
    const chunk = this.#leftover.subarray(0, HTTP_CHUNK_BYTES);
    this.#leftover = this.#leftover.length > HTTP_CHUNK_BYTES ? this.#leftover.subarray(HTTP_CHUNK_BYTES) : null;
    return chunk;
  }

  onHead(head: HttpResponseHead): void {
    this.head.resolve(head);
  }

  onWhole(head: HttpResponseHead, body: Uint8Array<ArrayBuffer> | null): void {
    this.head.resolve({ ...head, whole: body });
  }

  onChunk(data: Uint8Array): Promise<void> {
    if (this.#cancelled || this.#closed) return Promise.resolve();
    this.#controller.enqueue(data);
    if ((this.#controller.desiredSize ?? 0) > 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#waitingForRoom = resolve;
    });
  }

  /** Discards the response body because the response has none (HEAD, 204, 304); the action keeps running. */
  dropBody(): void {
    this.#droppedByServer = true;
    this.body.cancel().catch(() => {});
  }

  /** Ends the response body: cleanly after a successful run, with an error (a cut-off body) after a failed one. */
  finish(error?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#reader?.cancel().catch(() => {});
    if (this.#cancelled) return;
    if (error) this.#controller.error(error);
    else this.#controller.close();
  }
}
