/**
 * Document IDs in the official Convex format (convex-compat.md §1.6):
 * base32( VInt(tableNumber) ‖ 16 random bytes ‖ footer ), footer = Fletcher-16 of the preceding bytes XOR version 0,
 * little-endian. 31 characters for table numbers below 128, 32 below 16384.
 */
import { base32EncodedLength, decodeBase32Into, encodeBase32 } from "./base32.ts";
import { ValueError } from "./errors.ts";

const INTERNAL_ID_BYTES = 16;
const FOOTER_BYTES = 2;
const MAX_VINT_BYTES = 5;
const ID_VERSION = 0;
const MAX_TABLE_NUMBER = 0xffffffff;
const MIN_ID_LENGTH = base32EncodedLength(1 + INTERNAL_ID_BYTES + FOOTER_BYTES);
const MAX_ID_LENGTH = base32EncodedLength(MAX_VINT_BYTES + INTERNAL_ID_BYTES + FOOTER_BYTES);

// Random bytes are drawn from the OS in blocks: one getRandomValues call per 256 IDs instead of one per ID.
const RANDOM_POOL_BYTES = 4096;
const randomPool = new Uint8Array(RANDOM_POOL_BYTES);
let randomPoolOffset = RANDOM_POOL_BYTES;

/** Copies `count` random bytes into `out` at `offset`. */
function fillRandom(out: Uint8Array, offset: number, count: number): void {
  if (randomPoolOffset + count > RANDOM_POOL_BYTES) {
    crypto.getRandomValues(randomPool);
    randomPoolOffset = 0;
  }
  for (let i = 0; i < count; i++) out[offset + i] = randomPool[randomPoolOffset + i];
  randomPoolOffset += count;
}

// IDs are built and decoded in these scratch buffers, which never escape: no allocation per ID.
const scratch = new Uint8Array(MAX_VINT_BYTES + INTERNAL_ID_BYTES + FOOTER_BYTES);
const decodeScratch = new Uint8Array(MAX_VINT_BYTES + INTERNAL_ID_BYTES + FOOTER_BYTES);

function checkTableNumber(tableNumber: number): void {
  if (!Number.isInteger(tableNumber) || tableNumber < 1 || tableNumber > MAX_TABLE_NUMBER) {
    throw new ValueError(`Invalid table number ${tableNumber}: expected an integer from 1 to ${MAX_TABLE_NUMBER}.`);
  }
}

/** Writes VInt(n) (7 bits per byte, low bits first, high bit = more bytes follow) at the start of `out`. */
function writeVInt(n: number, out: Uint8Array): number {
  let length = 0;
  while (n >= 0x80) {
    out[length++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  out[length++] = n;
  return length;
}

/** Fletcher-16 with modulus 256 over `bytes[0, end)`: (c1 << 8) | c0. */
function fletcher16(bytes: Uint8Array, end: number): number {
  let c0 = 0;
  let c1 = 0;
  for (let i = 0; i < end; i++) {
    c0 = (c0 + bytes[i]) & 0xff;
    c1 = (c1 + c0) & 0xff;
  }
  return (c1 << 8) | c0;
}

/** Encodes the ID of the document `internalId` (16 bytes) in table `tableNumber`. */
export function encodeDocumentId(tableNumber: number, internalId: Uint8Array): string {
  checkTableNumber(tableNumber);
  if (internalId.length !== INTERNAL_ID_BYTES) {
    throw new ValueError(`Invalid internal ID: expected ${INTERNAL_ID_BYTES} bytes, got ${internalId.length}.`);
  }
  const vintLength = writeVInt(tableNumber, scratch);
  scratch.set(internalId, vintLength);
  return finishId(vintLength + INTERNAL_ID_BYTES);
}

/** Appends the footer to the `length` bytes in `scratch` and encodes the whole. */
function finishId(length: number): string {
  const footer = fletcher16(scratch, length) ^ ID_VERSION;
  scratch[length] = footer & 0xff;
  scratch[length + 1] = footer >>> 8;
  return encodeBase32(scratch, length + FOOTER_BYTES);
}

/**
 * A new document ID for a table; throws a ValueError unless `tableNumber` is an integer in 1..2^32-1.
 *
 * The internal ID is the wall-clock millisecond (TIME_PREFIX_BYTES, big-endian) followed by random bytes. Base32 keeps
 * byte order, so a table's new IDs sort after its older ones, and an insert lands at the end of the `documents` and
 * `by_id` b-trees, in pages the previous commits already wrote, instead of in a random page each (issue 14: a commit
 * group of two inserts took 110–120 instead of 150–160 µs of SQLite work). The ID reveals the creation time to the
 * millisecond, which `_creationTime` already tells; RANDOM_ID_BYTES (80 bits) keep IDs unguessable.
 */
export function generateDocumentId(tableNumber: number): string {
  checkTableNumber(tableNumber);
  const vintLength = writeVInt(tableNumber, scratch);
  writeTimePrefix(Date.now(), scratch, vintLength);
  fillRandom(scratch, vintLength + TIME_PREFIX_BYTES, RANDOM_ID_BYTES);
  return finishId(vintLength + INTERNAL_ID_BYTES);
}

/** Bytes of a generated ID's time prefix: milliseconds up to 2^48 (the year 10889). */
const TIME_PREFIX_BYTES = 6;
const RANDOM_ID_BYTES = INTERNAL_ID_BYTES - TIME_PREFIX_BYTES;

/** Writes `timeMs` as TIME_PREFIX_BYTES big-endian bytes at `offset`. */
function writeTimePrefix(timeMs: number, out: Uint8Array, offset: number): void {
  let rest = Math.max(0, Math.floor(timeMs));
  for (let i = TIME_PREFIX_BYTES - 1; i >= 0; i--) {
    out[offset + i] = rest % 256;
    rest = Math.floor(rest / 256);
  }
}

/**
 * Decodes a document ID strictly (re-encoding reproduces the input): lowercase alphabet, zero padding bits, minimal
 * VInt, table number ≥ 1, correct footer. Returns null for anything that is not such an ID.
 */
export function decodeDocumentId(id: string): { tableNumber: number } | null {
  // Length first: rejecting a long non-ID must not cost a decode.
  if (typeof id !== "string" || id.length < MIN_ID_LENGTH || id.length > MAX_ID_LENGTH) return null;
  const byteLength = decodeBase32Into(id, decodeScratch);
  if (byteLength === -1) return null;
  const bytes = decodeScratch;
  let tableNumber = 0;
  let vintLength = 0;
  for (;;) {
    if (vintLength === MAX_VINT_BYTES || vintLength >= byteLength) return null;
    const byte = bytes[vintLength];
    tableNumber += (byte & 0x7f) * 2 ** (7 * vintLength);
    vintLength++;
    if (byte < 0x80) {
      // A trailing zero group means a shorter VInt exists: not the canonical form.
      if (byte === 0 && vintLength > 1) return null;
      break;
    }
  }
  if (tableNumber < 1 || tableNumber > MAX_TABLE_NUMBER) return null;
  const footerStart = vintLength + INTERNAL_ID_BYTES;
  if (byteLength !== footerStart + FOOTER_BYTES) return null;
  const footer = bytes[footerStart] | (bytes[footerStart + 1] << 8);
  if (footer !== (fletcher16(bytes, footerStart) ^ ID_VERSION)) return null;
  return { tableNumber };
}

/** True if `id` is a valid document ID of table number `tableNumber`. */
export function isDocumentIdOfTable(id: string, tableNumber: number): boolean {
  const decoded = decodeDocumentId(id);
  return decoded !== null && decoded.tableNumber === tableNumber;
}
