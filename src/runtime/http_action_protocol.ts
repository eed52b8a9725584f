/**
 * Messages that stream an HTTP action's request and response bodies between the server and a runner (and, with raw
 * bytes instead of base64, between the runner's main thread and its worker). Both directions are bounded: the request
 * body is pulled one chunk at a time, and at most `HTTP_RESPONSE_WINDOW_CHUNKS` response chunks are unacknowledged.
 */

/** Largest body chunk in one message (bytes before base64). */
export const HTTP_CHUNK_BYTES = 64 * 1024;
/** Response chunks the worker may send before the server acknowledges one (so ~512 KiB in flight at most). */
export const HTTP_RESPONSE_WINDOW_CHUNKS = 8;

/** The request an HTTP action runs for; its body, if any, is pulled with `httpBodyPull`. */
export interface HttpRequestHead {
  method: string;
  /** Absolute URL as user code sees it (`request.url`); on the API origin, without the `/http` mount prefix. */
  url: string;
  headers: [string, string][];
  hasBody: boolean;
  /** The path a mounted component's router looks up (its mount prefix removed); absent: the URL's path. */
  routedPath?: string;
}

/** Status and headers of an HTTP action's response. */
export interface HttpResponseHead {
  status: number;
  statusText: string;
  headers: [string, string][];
}

/**
 * A complete response whose body fits in one chunk, sent with the execution's result instead of as head and chunk
 * messages: the common small answer then costs no extra message (and no acknowledgement).
 */
export interface HttpInlineResponse extends HttpResponseHead {
  /** The whole body; null when the response has none. */
  bodyBase64: string | null;
}

/** Runner/worker → server: send the next chunk of the request body. */
export interface HttpBodyPullMessage {
  type: "httpBodyPull";
  executionId: string;
}

/** Server → runner: the next request body chunk; `dataBase64: null` ends the body (`error` set if it failed). */
export interface HttpBodyChunkMessage {
  type: "httpBodyChunk";
  executionId: string;
  dataBase64: string | null;
  error?: string;
}

/** Runner → server: the response's status and headers (sent once, before any chunk). */
export interface HttpResponseHeadMessage extends HttpResponseHead {
  type: "httpResponseHead";
  executionId: string;
}

/** Runner → server: one response body chunk. The end of the body is the execution's `result` message. */
export interface HttpResponseChunkMessage {
  type: "httpResponseChunk";
  executionId: string;
  dataBase64: string;
}

/** Server → runner (→ worker): one response chunk was taken by the client; another may be sent. */
export interface HttpResponseAckMessage {
  type: "httpResponseAck";
  executionId: string;
}

/** Worker → runner main thread: like `HttpResponseChunkMessage`, with the bytes transferred rather than encoded. */
export interface WorkerHttpResponseChunkMessage {
  type: "httpResponseChunk";
  executionId: string;
  data: Uint8Array;
}

/** Runner main thread → worker: like `HttpBodyChunkMessage`, with bytes. */
export interface WorkerHttpBodyChunkMessage {
  type: "httpBodyChunk";
  executionId: string;
  data: Uint8Array | null;
  error?: string;
}

/** The server side of one HTTP action execution, given to `RunnerProcess.execute`. */
export interface HttpExchange {
  /** The next request body chunk (at most `HTTP_CHUNK_BYTES`), or null at the end. */
  pullBody(): Promise<Uint8Array | null>;
  onHead(head: HttpResponseHead): void;
  /** Queues a response chunk; resolves when another may be sent (the acknowledgement). */
  onChunk(data: Uint8Array): Promise<void>;
  /** The whole response at once (`HttpInlineResponse`), instead of `onHead` and `onChunk`. */
  onWhole(head: HttpResponseHead, body: Uint8Array<ArrayBuffer> | null): void;
}
