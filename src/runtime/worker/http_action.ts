/**
 * Running an HTTP action in the worker: route the request with the deployment's `http.js` router (`lookup`, which
 * matches exact paths first, then the longest prefix, and treats HEAD as GET), call `invokeHttpAction`, and stream
 * the response back. Request bodies are pulled from the server on demand; response chunks wait for acknowledgements
 * beyond a small window, so neither side ever holds a whole body.
 */
import {
  HTTP_CHUNK_BYTES,
  HTTP_RESPONSE_WINDOW_CHUNKS,
  type HttpInlineResponse,
  type HttpRequestHead,
  type HttpResponseAckMessage,
  type WorkerHttpBodyChunkMessage,
} from "../http_action_protocol.ts";
import type { FromWorkerMessage } from "./protocol.ts";
import { loadModule } from "./functions.ts";
import { concatBytes } from "../bytes.ts";

/** The `http.js` default export, as `convex/server`'s HttpRouter builds it (convex-compat.md §4.2). */
interface HttpRouter {
  isRouter?: boolean;
  lookup(path: string, method: string): [HttpHandler, string, string] | null;
}

interface HttpHandler {
  invokeHttpAction(request: Request): Promise<Response>;
}

const BODYLESS_METHODS = new Set(["GET", "HEAD"]);
/**
 * Microtask turns a response body read may take and still count as ready at once: a body built from a string or
 * bytes (or piped through a transform) is complete in a few; one that waits for I/O or a timer never is.
 */
const IMMEDIATE_READ_TICKS = 32;
const NOT_READY = Symbol("not ready");

async function afterImmediateTicks(): Promise<typeof NOT_READY> {
  for (let i = 0; i < IMMEDIATE_READ_TICKS; i++) await null;
  return NOT_READY;
}

/** The HTTP action in progress: the pending body pull and the response window. */
class HttpSession {
  readonly #executionId: string;
  readonly #post: (message: FromWorkerMessage, transfer?: Transferable[]) => void;
  #pendingPull: PromiseWithResolvers<Uint8Array | null> | null = null;
  #unacked = 0;
  #windowOpen: PromiseWithResolvers<void> | null = null;

  constructor(executionId: string, post: (message: FromWorkerMessage, transfer?: Transferable[]) => void) {
    this.#executionId = executionId;
    this.#post = post;
  }

  receive(message: WorkerHttpBodyChunkMessage | HttpResponseAckMessage): void {
    if (message.executionId !== this.#executionId) return;
    if (message.type === "httpResponseAck") {
      this.#unacked--;
      this.#windowOpen?.resolve();
      this.#windowOpen = null;
      return;
    }
    const pull = this.#pendingPull;
    this.#pendingPull = null;
    if (message.error !== undefined) pull?.reject(new Error(`Reading the request body failed: ${message.error}`));
    else pull?.resolve(message.data);
  }

  /** The request body as a stream that pulls one chunk from the server per read. */
  body(): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        this.#pendingPull = Promise.withResolvers();
        this.#post({ type: "httpBodyPull", executionId: this.#executionId });
        const data = await this.#pendingPull.promise;
        if (data === null) controller.close();
        else controller.enqueue(data);
      },
    }, { highWaterMark: 0 });
  }

  /**
   * Sends `response`, or returns it whole when its body is small and complete at once (then it travels with the
   * result, see `HttpInlineResponse`). A body still being produced is streamed as it comes.
   */
  async sendResponse(response: Response): Promise<HttpInlineResponse | null> {
    const head = { status: response.status, statusText: response.statusText, headers: [...response.headers.entries()] };
    if (response.body === null) return { ...head, bodyBase64: null };
    const reader = response.body.getReader();
    const early: Uint8Array[] = [];
    let earlyBytes = 0;
    let pending: Promise<ReadableStreamReadResult<Uint8Array>> | null = null;
    while (earlyBytes <= HTTP_CHUNK_BYTES) {
      const read = reader.read();
      const next = await Promise.race([read, afterImmediateTicks()]);
      if (next === NOT_READY) {
        pending = read;
        break;
      }
      if (next.done) return { ...head, bodyBase64: concatBytes(early, earlyBytes).toBase64() };
      early.push(next.value);
      earlyBytes += next.value.length;
    }
    this.#post({ type: "httpResponseHead", executionId: this.#executionId, ...head });
    for (const chunk of early) await this.#sendChunk(chunk);
    for (;;) {
      const next = await (pending ?? reader.read());
      pending = null;
      if (next.done) return null;
      await this.#sendChunk(next.value);
    }
  }

  async #sendChunk(chunk: Uint8Array): Promise<void> {
    for (let offset = 0; offset < chunk.length; offset += HTTP_CHUNK_BYTES) {
      while (this.#unacked >= HTTP_RESPONSE_WINDOW_CHUNKS) {
        this.#windowOpen = Promise.withResolvers();
        await this.#windowOpen.promise;
      }
      // A copy we own, so it can be transferred (user code may reuse its buffer).
      const data = chunk.slice(offset, offset + HTTP_CHUNK_BYTES);
      this.#unacked++;
      this.#post({ type: "httpResponseChunk", executionId: this.#executionId, data }, [data.buffer]);
    }
  }
}

let session: HttpSession | null = null;

/** Delivers a body chunk or an acknowledgement to the HTTP action in progress. */
export function receiveHttpMessage(message: WorkerHttpBodyChunkMessage | HttpResponseAckMessage): void {
  session?.receive(message);
}

/**
 * Runs the HTTP action for `head` with the `http.js` of the instance whose modules are at `modulesUrl`, and streams its
 * response; resolves once the last chunk is sent, with the whole
 * response when it is small enough to travel with the result instead.
 * Throws what the handler throws (the runner reports it; the server answers 500).
 */
export async function runHttpAction(
  executionId: string,
  modulesUrl: string,
  head: HttpRequestHead,
  post: (message: FromWorkerMessage, transfer?: Transferable[]) => void,
): Promise<HttpInlineResponse | null> {
  const current = new HttpSession(executionId, post);
  session = current;
  try {
    const module = await loadModule(modulesUrl, "http.js");
    const router = module.default as HttpRouter | undefined;
    if (!router || router.isRouter !== true || typeof router.lookup !== "function") {
      throw new Error("The default export of convex/http.js is not an HttpRouter");
    }
    const url = new URL(head.url);
    const withBody = head.hasBody && !BODYLESS_METHODS.has(head.method);
    const request = new Request(url, {
      method: head.method,
      headers: head.headers,
      ...(withBody ? { body: current.body(), duplex: "half" } : {}),
    } as RequestInit);
    // A mounted component's router sees the path below its mount (Convex's routed path); the request keeps its URL.
    const routedPath = head.routedPath ?? url.pathname;
    const match = router.lookup(routedPath, head.method);
    const response = match === null
      ? new Response(`No HttpAction routed for ${routedPath}`, { status: 404 })
      : await match[0].invokeHttpAction(request);
    if (!(response instanceof Response)) throw new Error("The HTTP action did not return a Response");
    return await current.sendResponse(response);
  } finally {
    if (session === current) session = null;
  }
}
