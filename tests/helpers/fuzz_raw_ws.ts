/**
 * A raw WebSocket client over TCP for the fuzz test. The `WebSocket` class only sends well-formed frames; this one
 * also sends text frames with invalid UTF-8, unmasked frames, reserved opcodes and bits, stray continuations and
 * oversized control frames, and records everything the server sends back (text messages and the close frame).
 */
import { concat } from "./fuzz_values.ts";

/** Frame opcodes (RFC 6455 §5.2). */
export const OPCODE = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

/** One frame as the fuzzer writes it. */
export interface FrameSpec {
  opcode: number;
  payload: Uint8Array;
  /** Default true. */
  fin?: boolean;
  /** Clients must mask; default true. */
  masked?: boolean;
  /** The three reserved bits (must be 0 without an extension). */
  rsv?: number;
}

/** Longest the handshake may take. */
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** Most bytes kept from the server (the sync protocol's answers to the fuzz app are small). */
const MAX_RECEIVED_BYTES = 16 * 1024 * 1024;

/** Encodes one frame. */
export function encodeFrame(frame: FrameSpec, maskKey: Uint8Array): Uint8Array {
  const { opcode, payload } = frame;
  const masked = frame.masked ?? true;
  const first = ((frame.fin ?? true) ? 0x80 : 0) | ((frame.rsv ?? 0) << 4) | (opcode & 0x0f);
  const length = payload.length;
  const header = length < 126 ? [first, length] : length < 65536 ? [first, 126, length >> 8, length & 0xff] : [
    first,
    127,
    0,
    0,
    0,
    0,
    (length >>> 24) & 0xff,
    (length >>> 16) & 0xff,
    (length >>> 8) & 0xff,
    length & 0xff,
  ];
  if (masked) header[1] |= 0x80;
  const body = masked ? payload.map((byte, i) => byte ^ maskKey[i % 4]) : payload;
  return concat(new Uint8Array(header), masked ? maskKey : new Uint8Array(), body);
}

/** The result of a handshake that was not a 101. */
export interface RefusedHandshake {
  status: number;
  contentType: string;
  body: string;
}

/** An open raw WebSocket connection. */
export class RawWs {
  readonly #conn: Deno.TcpConn;
  #buffer: Uint8Array;
  #fragments: Uint8Array[] = [];
  /** The opcode of the message whose fragments are being collected. */
  #messageOpcode: number = OPCODE.text;
  #received = 0;
  /** Text messages from the server, in order. */
  readonly texts: string[] = [];
  /** Binary messages from the server (the sync protocol has none). */
  binaryCount = 0;
  /** The server's close frame, if one came. */
  closeFrame: { code: number; reason: string } | null = null;
  /** The TCP connection ended. */
  ended = false;
  /** When anything was last sent or received (performance.now()). */
  lastActivityMs = performance.now();
  readonly #reading: Promise<void>;

  private constructor(conn: Deno.TcpConn, leftover: Uint8Array) {
    this.#conn = conn;
    this.#buffer = leftover;
    this.#parse();
    this.#reading = this.#readLoop();
  }

  /**
   * Connects and performs the handshake for `path`. `headers` replaces the standard upgrade headers when given (to
   * send broken handshakes). Resolves with a client, or with the HTTP response that refused the upgrade.
   */
  static async open(port: number, path: string, headers?: [string, string][]): Promise<RawWs | RefusedHandshake> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const key = crypto.getRandomValues(new Uint8Array(16)).toBase64();
    const lines = [`GET ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`];
    const upgrade: [string, string][] = headers ??
      [["Upgrade", "websocket"], ["Connection", "Upgrade"], ["Sec-WebSocket-Key", key], [
        "Sec-WebSocket-Version",
        "13",
      ]];
    for (const [name, value] of upgrade) lines.push(`${name}: ${value}`);
    await conn.write(new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n"));
    const timer = setTimeout(() => conn.close(), HANDSHAKE_TIMEOUT_MS);
    let received: Uint8Array = new Uint8Array();
    const chunk = new Uint8Array(16 * 1024);
    try {
      while (true) {
        const end = headEnd(received);
        if (end >= 0) {
          const head = new TextDecoder().decode(received.subarray(0, end));
          const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
          if (status === 101) return new RawWs(conn, received.slice(end + 4));
          const contentType = /^content-type:\s*(.*)$/im.exec(head)?.[1]?.trim() ?? "";
          const length = Number(/^content-length:\s*(\d+)/im.exec(head)?.[1] ?? 0);
          let rest: Uint8Array = received.slice(end + 4);
          while (rest.length < length) {
            const n = await conn.read(chunk);
            if (n === null) break;
            rest = concat(rest, chunk.slice(0, n));
          }
          conn.close();
          return { status, contentType, body: new TextDecoder().decode(rest) };
        }
        const n = await conn.read(chunk);
        if (n === null) {
          conn.close();
          return { status: 0, contentType: "", body: "(connection closed during the handshake)" };
        }
        received = concat(received, chunk.slice(0, n));
      }
    } catch {
      return { status: 0, contentType: "", body: "(handshake timed out or failed)" };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Writes frames; a failed write (the server closed) is recorded as the connection's end. */
  async send(frames: FrameSpec[]): Promise<void> {
    const maskKey = crypto.getRandomValues(new Uint8Array(4));
    const bytes = concat(...frames.map((frame) => encodeFrame(frame, maskKey)));
    try {
      for (let offset = 0; offset < bytes.length;) offset += await this.#conn.write(bytes.subarray(offset));
    } catch {
      this.ended = true;
    }
    // Quiet is counted from the last exchange either way.
    this.lastActivityMs = performance.now();
  }

  /** Waits until the connection ended, the server was quiet for `quietMs`, or `maxMs` passed. */
  async settle(quietMs: number, maxMs: number, done: () => boolean = () => false): Promise<void> {
    const deadline = performance.now() + maxMs;
    while (!this.ended && !done() && performance.now() < deadline) {
      if (performance.now() - this.lastActivityMs >= quietMs) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Closes the TCP connection and waits for the read loop. */
  async close(): Promise<void> {
    try {
      this.#conn.close();
    } catch { /* closed already */ }
    await this.#reading;
  }

  async #readLoop(): Promise<void> {
    const chunk = new Uint8Array(64 * 1024);
    try {
      while (this.#received < MAX_RECEIVED_BYTES) {
        const n = await this.#conn.read(chunk);
        if (n === null) break;
        this.#received += n;
        this.#buffer = concat(this.#buffer, chunk.slice(0, n));
        this.lastActivityMs = performance.now();
        this.#parse();
      }
    } catch { /* reset or closed by us */ }
    this.ended = true;
  }

  #parse(): void {
    while (this.#buffer.length >= 2) {
      const b = this.#buffer;
      const opcode = b[0] & 0x0f;
      const fin = (b[0] & 0x80) !== 0;
      let length = b[1] & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (b.length < 4) return;
        length = (b[2] << 8) | b[3];
        offset = 4;
      } else if (length === 127) {
        if (b.length < 10) return;
        length = Number(new DataView(b.buffer, b.byteOffset + 2, 8).getBigUint64(0));
        offset = 10;
      }
      if (b.length < offset + length) return;
      const payload = b.slice(offset, offset + length);
      this.#buffer = b.slice(offset + length);
      this.#frame(opcode, fin, payload);
    }
  }

  #frame(opcode: number, fin: boolean, payload: Uint8Array): void {
    if (opcode === OPCODE.close) {
      const code = payload.length >= 2 ? (payload[0] << 8) | payload[1] : 1005;
      this.closeFrame = { code, reason: new TextDecoder().decode(payload.subarray(2)) };
      return;
    }
    if (opcode === OPCODE.ping || opcode === OPCODE.pong) return;
    if (opcode !== OPCODE.continuation) this.#messageOpcode = opcode;
    this.#fragments.push(payload);
    if (!fin) return;
    const message = concat(...this.#fragments);
    this.#fragments = [];
    if (this.#messageOpcode === OPCODE.binary) this.binaryCount++;
    else this.texts.push(new TextDecoder().decode(message));
  }
}

function headEnd(bytes: Uint8Array): number {
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) return i;
  }
  return -1;
}
