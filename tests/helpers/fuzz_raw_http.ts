/**
 * A raw HTTP/1.1 client over TCP for the fuzz test: `fetch` normalizes paths, refuses odd headers and always frames
 * bodies correctly, so it cannot send `..` segments, `%00`, huge or malformed headers, or a body shorter than its
 * `Content-Length`. One request per connection (`Connection: close`); the response is read to EOF, bounded.
 */
import { concat } from "./fuzz_values.ts";

/** How a body is framed on the wire. */
export type BodyFraming =
  /** `Content-Length` of the bytes sent (the normal case). */
  | "length"
  /** `Transfer-Encoding: chunked`, in a few chunks. */
  | "chunked"
  /** A `Content-Length` larger than what is sent; the client then half-closes: a truncated upload. */
  | "truncated"
  /** No length header at all. */
  | "none";

/** One request as the fuzzer sends it. */
export interface RawRequest {
  method: string;
  /** The request target exactly as written on the request line (path and query, not normalized). */
  target: string;
  headers: [string, string][];
  body?: Uint8Array | undefined;
  framing?: BodyFraming;
}

/** A parsed response. */
export interface RawResponse {
  status: number;
  /** Header names lowercased; repeated headers joined with ", ". */
  headers: Map<string, string>;
  body: Uint8Array;
  /** The body was longer than {@link MAX_RESPONSE_BYTES} and was cut. */
  cut: boolean;
}

/** The outcome of one request: a response, or how the connection ended without one. */
export type RawOutcome = { response: RawResponse } | { noResponse: "closed" | "timeout" | "reset" };

/** Most response bytes read; the fuzz app never answers more, a runaway response is cut here. */
export const MAX_RESPONSE_BYTES = 8 * 1024 * 1024;
/** How long one request may take before it counts as hung. */
export const REQUEST_TIMEOUT_MS = 10_000;

const encoder = new TextEncoder();

function head(request: RawRequest, host: string): Uint8Array {
  const body = request.body ?? new Uint8Array();
  const framing = request.framing ?? "length";
  const lines = [`${request.method} ${request.target} HTTP/1.1`, `Host: ${host}`, "Connection: close"];
  for (const [name, value] of request.headers) lines.push(`${name}: ${value}`);
  if (framing === "length") lines.push(`Content-Length: ${body.length}`);
  if (framing === "truncated") lines.push(`Content-Length: ${body.length * 2 + 10}`);
  if (framing === "chunked") lines.push("Transfer-Encoding: chunked");
  // Header values may hold any byte the fuzzer chose; latin1 keeps them as bytes, like a raw socket would.
  const text = lines.join("\r\n") + "\r\n\r\n";
  return Uint8Array.from(text, (char) => char.charCodeAt(0) & 0xff);
}

function chunked(body: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  const chunkBytes = Math.max(1, Math.ceil(body.length / 3));
  for (let offset = 0; offset < body.length; offset += chunkBytes) {
    const chunk = body.subarray(offset, offset + chunkBytes);
    parts.push(encoder.encode(`${chunk.length.toString(16)}\r\n`), chunk, encoder.encode("\r\n"));
  }
  parts.push(encoder.encode("0\r\n\r\n"));
  return concat(...parts);
}

/** Sends `request` to `127.0.0.1:port` and reads the whole response. */
export async function sendRaw(port: number, request: RawRequest): Promise<RawOutcome> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
  } catch {
    return { noResponse: "reset" };
  }
  let timedOut = false;
  // A hung server never ends a read: closing the connection does.
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      conn.close();
    } catch { /* closed already */ }
  }, REQUEST_TIMEOUT_MS);
  try {
    const body = request.body ?? new Uint8Array();
    const wire = request.framing === "chunked" ? chunked(body) : body;
    await writeAll(conn, head(request, `127.0.0.1:${port}`));
    // The server may answer (413, 401) and close before reading the body: a failed write is not a failure.
    await writeAll(conn, wire).catch(() => {});
    if (request.framing === "truncated") await conn.closeWrite().catch(() => {});
    const { bytes, cut } = await readAll(conn);
    if (bytes.length === 0) return { noResponse: timedOut ? "timeout" : "closed" };
    const response = parseResponse(bytes, cut);
    return response === null ? { noResponse: timedOut ? "timeout" : "closed" } : { response };
  } catch {
    return { noResponse: timedOut ? "timeout" : "reset" };
  } finally {
    clearTimeout(timer);
    try {
      if (!timedOut) conn.close();
    } catch { /* closed already */ }
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let offset = 0; offset < bytes.length;) offset += await conn.write(bytes.subarray(offset));
}

async function readAll(conn: Deno.Conn): Promise<{ bytes: Uint8Array; cut: boolean }> {
  const parts: Uint8Array[] = [];
  let total = 0;
  const buffer = new Uint8Array(64 * 1024);
  while (total <= MAX_RESPONSE_BYTES) {
    let n: number | null;
    try {
      n = await conn.read(buffer);
    } catch {
      break;
    }
    if (n === null) return { bytes: concat(...parts), cut: false };
    parts.push(buffer.slice(0, n));
    total += n;
  }
  return { bytes: concat(...parts), cut: total > MAX_RESPONSE_BYTES };
}

/** Parses a status line, headers and (de-chunked) body; null when not even a status line arrived. */
export function parseResponse(bytes: Uint8Array, cut: boolean): RawResponse | null {
  let end = -1;
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) {
      end = i;
      break;
    }
  }
  if (end < 0) return null;
  const lines = new TextDecoder().decode(bytes.subarray(0, end)).split("\r\n");
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
  if (!status) return null;
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
  }
  let body = bytes.subarray(end + 4);
  if (headers.get("transfer-encoding")?.toLowerCase().includes("chunked")) body = dechunk(body);
  return { status: Number(status[1]), headers, body, cut };
}

function dechunk(bytes: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    let lineEnd = offset;
    while (lineEnd + 1 < bytes.length && !(bytes[lineEnd] === 13 && bytes[lineEnd + 1] === 10)) lineEnd++;
    const size = parseInt(new TextDecoder().decode(bytes.subarray(offset, lineEnd)), 16);
    if (!Number.isFinite(size) || size <= 0) break;
    parts.push(bytes.subarray(lineEnd + 2, lineEnd + 2 + size));
    offset = lineEnd + 2 + size + 2;
  }
  return concat(...parts);
}
