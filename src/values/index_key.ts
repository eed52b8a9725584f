/**
 * Order-preserving binary index keys. For tuples of values xs and ys,
 * `compareKeys(encodeIndexKey(xs), encodeIndexKey(ys))` has the sign of comparing xs and ys lexicographically with
 * `compareValues` (a shorter tuple that is a prefix of a longer one sorts first), so SQLite and PostgreSQL can order
 * and range-scan keys with a plain BLOB/bytea comparison.
 *
 * Every component is self-delimiting, so the encoding of a tuple prefix is a byte prefix of the encoding of the
 * whole tuple, and `prefixSuccessor` turns an equality prefix into a range end. Layout of one component:
 *
 * | type      | bytes                                                                                        |
 * |-----------|----------------------------------------------------------------------------------------------|
 * | missing   | 0x01                                                                                         |
 * | null      | 0x02                                                                                         |
 * | int64     | 0x03, 8 bytes big-endian with the sign bit flipped                                           |
 * | float64   | 0x04, 8 bytes big-endian: negative → all bits flipped, else sign bit flipped; NaN canonical  |
 * | boolean   | 0x05, 0x00 or 0x01                                                                           |
 * | string    | 0x06, UTF-8 with 0x00 escaped as 0x00 0xFF, then 0x00 0x00                                   |
 * | bytes     | 0x07, the bytes with 0x00 escaped as 0x00 0xFF, then 0x00 0x00                               |
 * | array     | 0x08, each element's encoding, then 0x00                                                     |
 * | object    | 0x09, per field in sorted order the name encoded as a string then the value, then 0x00      |
 *
 * The 0x00 end marker of arrays and objects sorts below every type tag, so a container sorts before any longer
 * container it is a prefix of. Type tags follow the total order, so different types compare by tag.
 */
import { ByteWriter, copyToPooledArray } from "./byte_writer.ts";
import { compareBytes } from "./compare.ts";
import { ValueError } from "./errors.ts";
import { isInt64, Kind, kindOf, sortedFieldNames } from "./kind.ts";
import { MAX_VALUE_NESTING } from "./limits.ts";
import { isHighSurrogate, isLowSurrogate } from "./strings.ts";
import type { Value } from "./types.ts";

const END = 0x00;
const TAG_MISSING = 0x01;
const TAG_NULL = 0x02;
const TAG_INT64 = 0x03;
const TAG_FLOAT64 = 0x04;
const TAG_BOOLEAN = 0x05;
const TAG_STRING = 0x06;
const TAG_BYTES = 0x07;
const TAG_ARRAY = 0x08;
const TAG_OBJECT = 0x09;
/** Follows an escaped 0x00 inside a string or bytes; the terminator is 0x00 0x00, which sorts below it. */
const ESCAPED_ZERO = 0xff;

// Encoding is synchronous and never re-entered, so one module-level buffer serves every call.
const writer = new ByteWriter();

/** Encodes a tuple of values (`undefined` = missing field) as an order-preserving index key. */
export function encodeIndexKey(values: (Value | undefined)[]): Uint8Array {
  writer.reset();
  for (let i = 0; i < values.length; i++) writeComponent(writer, values[i], 0);
  return writer.finish();
}

function writeComponent(out: ByteWriter, value: Value | undefined, depth: number): void {
  switch (typeof value) {
    case "string":
      out.push(TAG_STRING);
      writeEscapedString(out, value);
      return;
    case "number":
      writeFloat64(out, value);
      return;
    case "bigint":
      if (!isInt64(value)) throw new ValueError(`BigInt ${value} does not fit into a 64-bit signed integer.`);
      out.reserve(9);
      out.pushUnchecked(TAG_INT64);
      out.view.setBigInt64(out.length, value);
      out.bytes[out.length] ^= 0x80;
      out.length += 8;
      return;
    case "boolean":
      out.reserve(2);
      out.pushUnchecked(TAG_BOOLEAN);
      out.pushUnchecked(value ? 1 : 0);
      return;
    case "undefined":
      out.push(TAG_MISSING);
      return;
  }
  if (value === null) {
    out.push(TAG_NULL);
    return;
  }
  if (depth >= MAX_VALUE_NESTING) throw new ValueError(`Value is too nested (maximum nesting ${MAX_VALUE_NESTING})`);
  switch (kindOf(value)) {
    case Kind.Array: {
      const elements = value as Value[];
      out.push(TAG_ARRAY);
      for (let i = 0; i < elements.length; i++) {
        const element = elements[i];
        if (element === undefined) throw new ValueError("undefined is not a valid Convex value (in an array).");
        writeComponent(out, element, depth + 1);
      }
      out.push(END);
      return;
    }
    case Kind.Bytes:
      out.push(TAG_BYTES);
      writeEscapedBytes(out, new Uint8Array(value as ArrayBuffer));
      return;
    case Kind.Object: {
      const object = value as { [field: string]: Value };
      const names = sortedFieldNames(object);
      out.push(TAG_OBJECT);
      for (let i = 0; i < names.length; i++) {
        out.push(TAG_STRING);
        writeEscapedString(out, names[i]);
        writeComponent(out, object[names[i]], depth + 1);
      }
      out.push(END);
      return;
    }
  }
}

function writeFloat64(out: ByteWriter, value: number): void {
  out.reserve(9);
  out.pushUnchecked(TAG_FLOAT64);
  const start = out.length;
  const bytes = out.bytes;
  if (value !== value) {
    // Every NaN is the canonical quiet NaN 0x7FF8_0000_0000_0000, sign bit flipped: above +Infinity.
    bytes[start] = 0xff;
    bytes[start + 1] = 0xf8;
    for (let i = 2; i < 8; i++) bytes[start + i] = 0;
  } else {
    out.view.setFloat64(start, value);
    if (bytes[start] & 0x80) {
      // Negative: flipping every bit reverses their order and puts them below the positives.
      for (let i = 0; i < 8; i++) bytes[start + i] ^= 0xff;
    } else {
      bytes[start] ^= 0x80;
    }
  }
  out.length = start + 8;
}

/** Writes `s` as UTF-8 (unpaired surrogates as their 3-byte form) with 0x00 escaped, then the 0x00 0x00 terminator. */
function writeEscapedString(out: ByteWriter, s: string): void {
  const length = s.length;
  // Worst case 3 bytes per code unit, plus the terminator.
  out.reserve(length * 3 + 2);
  const bytes = out.bytes;
  let o = out.length;
  for (let i = 0; i < length; i++) {
    const unit = s.charCodeAt(i);
    if (unit < 0x80) {
      if (unit === 0) {
        bytes[o++] = 0;
        bytes[o++] = ESCAPED_ZERO;
      } else {
        bytes[o++] = unit;
      }
    } else if (unit < 0x800) {
      bytes[o++] = 0xc0 | (unit >> 6);
      bytes[o++] = 0x80 | (unit & 0x3f);
    } else if (isHighSurrogate(unit) && i + 1 < length && isLowSurrogate(s.charCodeAt(i + 1))) {
      const codePoint = 0x10000 + ((unit - 0xd800) << 10) + (s.charCodeAt(++i) - 0xdc00);
      bytes[o++] = 0xf0 | (codePoint >> 18);
      bytes[o++] = 0x80 | ((codePoint >> 12) & 0x3f);
      bytes[o++] = 0x80 | ((codePoint >> 6) & 0x3f);
      bytes[o++] = 0x80 | (codePoint & 0x3f);
    } else {
      bytes[o++] = 0xe0 | (unit >> 12);
      bytes[o++] = 0x80 | ((unit >> 6) & 0x3f);
      bytes[o++] = 0x80 | (unit & 0x3f);
    }
  }
  bytes[o++] = END;
  bytes[o++] = END;
  out.length = o;
}

function writeEscapedBytes(out: ByteWriter, data: Uint8Array): void {
  const length = data.length;
  if (data.indexOf(0) === -1) {
    out.reserve(length + 2);
    out.bytes.set(data, out.length);
    out.length += length;
  } else {
    out.reserve(length * 2 + 2);
    const bytes = out.bytes;
    let o = out.length;
    for (let i = 0; i < length; i++) {
      const byte = data[i];
      bytes[o++] = byte;
      if (byte === 0) bytes[o++] = ESCAPED_ZERO;
    }
    out.length = o;
  }
  out.bytes[out.length++] = END;
  out.bytes[out.length++] = END;
}

/**
 * Compares two keys byte by byte (unsigned); a proper prefix sorts first. Returns -1, 0 or 1. Keys are order-preserving
 * byte strings, so this is {@link compareBytes} under the name key code reads best with.
 */
export const compareKeys: (a: Uint8Array, b: Uint8Array) => number = compareBytes;

/**
 * The smallest key greater than every key that starts with `prefix` (the exclusive end of a prefix range), or null if
 * there is none (empty prefix, or all 0xFF bytes).
 */
export function prefixSuccessor(prefix: Uint8Array): Uint8Array | null {
  let end = prefix.length;
  while (end > 0 && prefix[end - 1] === 0xff) end--;
  if (end === 0) return null;
  const successor = copyToPooledArray(prefix, end);
  successor[end - 1]++;
  return successor;
}
