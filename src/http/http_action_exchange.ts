/**
 * The server side of one HTTP action's streams: pulls the client's request body in bounded chunks for the runner,
 * and turns the runner's response head and chunks into a `Response` whose body the client reads as it arrives.
 */
import { HTTP_CHUNK_BYTES, HTTP_RESPONSE_WINDOW_CHUNKS } from "../runtime/http_action_protocol.ts";
import type { HttpExchange, HttpResponseHead } from "../runtime/http_action_protocol.ts";

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
  #closed = false;

  constructor(request: Request) {
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
        // The client went away: let the runner finish (its chunks are dropped) rather than block it.
        this.#cancelled = true;
        this.#waitingForRoom?.();
        this.#waitingForRoom = null;
      },
    }, new CountQueuingStrategy({ highWaterMark: HTTP_RESPONSE_WINDOW_CHUNKS }));
  }

  async pullBody(): Promise<Uint8Array | null> {
    if (this.#leftover === null) {
      if (this.#reader === null) return null;
      const { value, done } = await this.#reader.read();
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
