/**
 * A lean closed-loop HTTP/1.1 load client for the call-path benches (issue 14): one keep-alive TCP connection per
 * client, requests written as raw bytes, responses parsed in place from a buffer the connection reuses.
 *
 * Why not `fetch`: the benches run their clients in their own process on the same 2 cores as the server under test,
 * so what the client costs is taken from the server, and its pauses are counted as the server's latency. Measured on
 * call_path_bench's query load (issue 14, one run with each client, back to back): the machine's CPU per call beyond
 * the server's (the client, the loopback traffic) was 84 µs against the bare handler and 170 µs against denvex with
 * `fetch`, 34 and 105 µs with this client. Against denvex, whose answers take ~10 ms, the objects of each `fetch`
 * (Request, Headers, Response, body streams, promises) outlive a young-generation collection and are copied: with
 * `--v8-flags=--trace-gc` the bench stopped for 11–17 ms scavenges every 0.7–1 s, each delaying all 32 calls in
 * flight, ~2 % of the calls, which set the p99 (query p99 29.1 ms with `fetch`, 23.3 ms with this client; the bare
 * handler's 11.1 and 3.4 ms). This client allocates a request string and its bytes, the response text and a few small
 * objects per call; its scavenges took under 4 ms.
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const CRLF_CRLF = [13, 10, 13, 10];
/** A connection's first read buffer; it grows (doubling) for a bigger response. */
const INITIAL_BUFFER_BYTES = 16 * 1024;
/** The biggest response a bench expects; anything larger is a bug in the bench, not a load to measure. */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

/** One response: the status code and the body as text. */
export interface HttpResponse {
  status: number;
  body: string;
}

/** One keep-alive HTTP/1.1 connection that sends one request at a time (a closed-loop client). */
export class KeepAliveClient {
  readonly #conn: Deno.TcpConn;
  readonly #host: string;
  #buffer = new Uint8Array(INITIAL_BUFFER_BYTES);
  /** Bytes of `#buffer` filled so far (the start of the response being read). */
  #filled = 0;

  private constructor(conn: Deno.TcpConn, host: string) {
    this.#conn = conn;
    this.#host = host;
  }

  /** Connects to the origin of `url` (http only). */
  static async connect(url: string): Promise<KeepAliveClient> {
    const { protocol, hostname, port, host } = new URL(url);
    if (protocol !== "http:") throw new Error(`KeepAliveClient speaks plain HTTP only, not ${protocol}`);
    const conn = await Deno.connect({ hostname, port: Number(port || 80) });
    conn.setNoDelay(true);
    return new KeepAliveClient(conn, host);
  }

  /** POSTs `jsonBody` to `path` and reads the whole response. */
  async postJson(path: string, jsonBody: string): Promise<HttpResponse> {
    const body = encoder.encode(jsonBody);
    const head = `POST ${path} HTTP/1.1\r\nHost: ${this.#host}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${body.length}\r\n\r\n`;
    const request = new Uint8Array(head.length + body.length);
    const { written } = encoder.encodeInto(head, request);
    if (written !== head.length) throw new Error("a request head must be ASCII");
    request.set(body, head.length);
    await this.#writeAll(request);
    return await this.#readResponse();
  }

  close(): void {
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }

  async #writeAll(bytes: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < bytes.length) offset += await this.#conn.write(bytes.subarray(offset));
  }

  /** Reads until one whole response is in the buffer (Content-Length or chunked), then drops it from the buffer. */
  async #readResponse(): Promise<HttpResponse> {
    let headEnd = -1;
    while ((headEnd = indexOfSequence(this.#buffer, this.#filled, CRLF_CRLF)) === -1) await this.#fill();
    const head = decoder.decode(this.#buffer.subarray(0, headEnd));
    const status = Number(head.slice(9, 12));
    const bodyStart = headEnd + 4;
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    if (length !== null) {
      const end = bodyStart + Number(length[1]);
      while (this.#filled < end) await this.#fill();
      const body = decoder.decode(this.#buffer.subarray(bodyStart, end));
      this.#consume(end);
      return { status, body };
    }
    if (!/\r\ntransfer-encoding: *chunked/i.test(head)) throw new Error(`a response without a length:\n${head}`);
    return { status, body: await this.#readChunked(bodyStart) };
  }

  /** A chunked body from `start`: each chunk is `<hex size>\r\n<bytes>\r\n`, the last has size 0. */
  async #readChunked(start: number): Promise<string> {
    let position = start;
    let text = "";
    while (true) {
      let lineEnd = -1;
      while ((lineEnd = indexOfSequence(this.#buffer, this.#filled, [13, 10], position)) === -1) await this.#fill();
      const size = parseInt(decoder.decode(this.#buffer.subarray(position, lineEnd)), 16);
      if (!Number.isFinite(size)) throw new Error("a malformed chunk size");
      const dataStart = lineEnd + 2;
      const dataEnd = dataStart + size;
      while (this.#filled < dataEnd + 2) await this.#fill();
      if (size === 0) {
        // No trailers from Deno.serve: the empty line after the last chunk ends the response.
        this.#consume(dataEnd + 2);
        return text;
      }
      text += decoder.decode(this.#buffer.subarray(dataStart, dataEnd));
      position = dataEnd + 2;
    }
  }

  /** Reads more bytes into the buffer, growing it when full. */
  async #fill(): Promise<void> {
    if (this.#filled === this.#buffer.length) {
      if (this.#buffer.length * 2 > MAX_RESPONSE_BYTES) throw new Error("a response over the bench's limit");
      const bigger = new Uint8Array(this.#buffer.length * 2);
      bigger.set(this.#buffer);
      this.#buffer = bigger;
    }
    const read = await this.#conn.read(this.#buffer.subarray(this.#filled));
    if (read === null) throw new Error("the server closed the connection");
    this.#filled += read;
  }

  /** Drops the first `bytes` (one response) and keeps anything after them. */
  #consume(bytes: number): void {
    this.#buffer.copyWithin(0, bytes, this.#filled);
    this.#filled -= bytes;
  }
}

/** The index of `sequence` in `buffer[from, end)`, or -1. */
function indexOfSequence(buffer: Uint8Array, end: number, sequence: number[], from = 0): number {
  const first = sequence[0];
  for (let i = buffer.indexOf(first, from); i !== -1 && i + sequence.length <= end; i = buffer.indexOf(first, i + 1)) {
    let match = true;
    for (let j = 1; j < sequence.length; j++) {
      if (buffer[i + j] !== sequence[j]) {
        match = false;
        break;
      }
    }
    if (match) return i;
  }
  return -1;
}
