/**
 * Standard base64 with padding (RFC 4648 §4), the encoding of `$bytes`, `$integer`, `$float` and wire timestamps.
 * The decoder also accepts the URL-safe `-`/`_`, as the Convex client's does, but requires a length that is a
 * multiple of 4.
 */
import { ValueError } from "./errors.ts";

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const ENCODE_CHARS: string[] = ALPHABET.split("");
const ENCODE_CODES = new Uint8Array(64);
/** Char code → 6-bit value, or -1 when the character is not in the alphabet. */
const DECODE = new Int8Array(128).fill(-1);
for (let i = 0; i < 64; i++) {
  ENCODE_CODES[i] = ALPHABET.charCodeAt(i);
  DECODE[ALPHABET.charCodeAt(i)] = i;
}
DECODE["-".charCodeAt(0)] = 62;
DECODE["_".charCodeAt(0)] = 63;
const PAD = "=".charCodeAt(0);

/** Past this many input bytes, build the output in a byte array instead of by string concatenation. */
const SHORT_INPUT_BYTES = 96;
const asciiDecoder = new TextDecoder();

/** Encodes bytes as standard padded base64. */
export function encodeBase64(bytes: Uint8Array): string {
  const length = bytes.length;
  if (length > SHORT_INPUT_BYTES) return encodeLong(bytes);
  let out = "";
  let i = 0;
  for (; i + 2 < length; i += 3) {
    const triple = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += ENCODE_CHARS[triple >>> 18] + ENCODE_CHARS[(triple >>> 12) & 63] + ENCODE_CHARS[(triple >>> 6) & 63] +
      ENCODE_CHARS[triple & 63];
  }
  const rest = length - i;
  if (rest === 1) {
    const b0 = bytes[i];
    out += ENCODE_CHARS[b0 >>> 2] + ENCODE_CHARS[(b0 & 3) << 4] + "==";
  } else if (rest === 2) {
    const pair = (bytes[i] << 8) | bytes[i + 1];
    out += ENCODE_CHARS[pair >>> 10] + ENCODE_CHARS[(pair >>> 4) & 63] + ENCODE_CHARS[(pair & 15) << 2] + "=";
  }
  return out;
}

function encodeLong(bytes: Uint8Array): string {
  const length = bytes.length;
  const out = new Uint8Array(Math.ceil(length / 3) * 4);
  let o = 0;
  let i = 0;
  for (; i + 2 < length; i += 3) {
    const triple = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out[o++] = ENCODE_CODES[triple >>> 18];
    out[o++] = ENCODE_CODES[(triple >>> 12) & 63];
    out[o++] = ENCODE_CODES[(triple >>> 6) & 63];
    out[o++] = ENCODE_CODES[triple & 63];
  }
  const rest = length - i;
  if (rest === 1) {
    const b0 = bytes[i];
    out[o++] = ENCODE_CODES[b0 >>> 2];
    out[o++] = ENCODE_CODES[(b0 & 3) << 4];
    out[o++] = PAD;
    out[o++] = PAD;
  } else if (rest === 2) {
    const pair = (bytes[i] << 8) | bytes[i + 1];
    out[o++] = ENCODE_CODES[pair >>> 10];
    out[o++] = ENCODE_CODES[(pair >>> 4) & 63];
    out[o++] = ENCODE_CODES[(pair & 15) << 2];
    out[o++] = PAD;
  }
  return asciiDecoder.decode(out);
}

/** The number of bytes `s` decodes to; throws a ValueError for a malformed length or padding. */
function decodedLength(s: string): number {
  const length = s.length;
  if (length % 4 !== 0) throw new ValueError(`Invalid base64 string (length ${length} is not a multiple of 4).`);
  if (length === 0) return 0;
  let padding = 0;
  if (s.charCodeAt(length - 1) === PAD) padding = s.charCodeAt(length - 2) === PAD ? 2 : 1;
  return (length / 4) * 3 - padding;
}

function sextet(s: string, i: number): number {
  const code = s.charCodeAt(i);
  const value = code < 128 ? DECODE[code] : -1;
  if (value < 0) throw new ValueError(`Invalid base64 string (unexpected character ${JSON.stringify(s[i])}).`);
  return value;
}

/** Decodes standard or URL-safe padded base64 into `out` (which must have the decoded length). */
function decodeInto(s: string, out: Uint8Array): void {
  const outLength = out.length;
  let o = 0;
  let i = 0;
  // Whole groups of 4 characters that decode to 3 bytes each.
  const wholeGroups = Math.floor(outLength / 3);
  for (let g = 0; g < wholeGroups; g++, i += 4) {
    const quad = (sextet(s, i) << 18) | (sextet(s, i + 1) << 12) | (sextet(s, i + 2) << 6) | sextet(s, i + 3);
    out[o++] = quad >>> 16;
    out[o++] = (quad >>> 8) & 255;
    out[o++] = quad & 255;
  }
  const rest = outLength - o;
  if (rest === 1) {
    out[o] = (sextet(s, i) << 2) | (sextet(s, i + 1) >>> 4);
  } else if (rest === 2) {
    const triple = (sextet(s, i) << 12) | (sextet(s, i + 1) << 6) | sextet(s, i + 2);
    out[o] = triple >>> 10;
    out[o + 1] = (triple >>> 2) & 255;
  }
}

/** Decodes padded base64 (standard or URL-safe alphabet); throws a ValueError for anything malformed. */
export function decodeBase64(s: string): Uint8Array {
  const out = new Uint8Array(decodedLength(s));
  decodeInto(s, out);
  return out;
}

// A scratch buffer for 8-byte numbers; never escapes this module.
const scratch8 = new Uint8Array(8);
const scratch8View = new DataView(scratch8.buffer);

/** Decodes base64 that must hold exactly 8 bytes into a scratch view (valid until the next call). */
export function decodeBase64To8Bytes(s: string, what: string): DataView {
  const length = decodedLength(s);
  if (length !== 8) throw new ValueError(`Received ${length} bytes, expected 8 for ${what}`);
  decodeInto(s, scratch8);
  return scratch8View;
}

/** Base64 of a float64's 8 little-endian IEEE-754 bytes; NaN is written as the canonical quiet NaN. */
export function float64ToBase64(value: number): string {
  if (value !== value) {
    scratch8View.setUint32(0, 0, true);
    scratch8View.setUint32(4, 0x7ff80000, true);
  } else {
    scratch8View.setFloat64(0, value, true);
  }
  return encodeBase64(scratch8);
}

/** Base64 of an int64's 8 little-endian two's-complement bytes. The caller has checked the range. */
export function int64ToBase64(value: bigint): string {
  scratch8View.setBigInt64(0, value, true);
  return encodeBase64(scratch8);
}

/** Base64 of a uint64's 8 little-endian bytes. The caller has checked the range. */
export function uint64ToBase64(value: bigint): string {
  scratch8View.setBigUint64(0, value, true);
  return encodeBase64(scratch8);
}
