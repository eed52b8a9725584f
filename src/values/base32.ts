/**
 * Base32 with the lowercase Crockford alphabet, most significant bits first, no padding: the text form of document
 * IDs (convex-compat.md §1.6). Decoding is strict (lowercase only, zero padding bits, a length some byte string
 * encodes to) so that every byte string has exactly one text form.
 *
 * Private to `src/values`: other folders use its `mod.ts`.
 */

const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";
const ENCODE_CODES: number[] = Array.from(ALPHABET, (character) => character.charCodeAt(0));
/** Char code → 5-bit value, or -1 when the character is not in the alphabet. */
const DECODE = new Int8Array(128).fill(-1);
for (let i = 0; i < 32; i++) {
  DECODE[ALPHABET.charCodeAt(i)] = i;
}

/** The number of characters `byteLength` bytes encode to. */
export function base32EncodedLength(byteLength: number): number {
  return Math.ceil((byteLength * 8) / 5);
}

// Reused char-code arrays, one per output length: `String.fromCharCode.apply` on them builds a flat string faster than
// concatenating characters (which builds a rope that is flattened on first use as a Map key or in a comparison).
const codeArrays: number[][] = [];
/** Longer outputs (never IDs) go through a byte array, as `apply` takes one argument per character. */
const MAX_APPLY_LENGTH = 64;
const asciiDecoder = new TextDecoder();

/** Encodes `bytes[0, length)` as lowercase Crockford base32 without padding. */
export function encodeBase32(bytes: Uint8Array, length = bytes.length): string {
  const outLength = base32EncodedLength(length);
  const codes: { [index: number]: number } = outLength > MAX_APPLY_LENGTH
    ? new Uint8Array(outLength)
    : codeArrays[outLength] ?? (codeArrays[outLength] = new Array(outLength).fill(0));
  let o = 0;
  let buffer = 0;
  let bufferedBits = 0;
  for (let i = 0; i < length; i++) {
    buffer = ((buffer << 8) | bytes[i]) & 0xfff; // at most 4 + 8 live bits
    bufferedBits += 8;
    while (bufferedBits >= 5) {
      bufferedBits -= 5;
      codes[o++] = ENCODE_CODES[(buffer >>> bufferedBits) & 31];
    }
  }
  if (bufferedBits > 0) codes[o++] = ENCODE_CODES[(buffer << (5 - bufferedBits)) & 31];
  return codes instanceof Uint8Array ? asciiDecoder.decode(codes) : String.fromCharCode.apply(null, codes as number[]);
}

/** Decodes strict lowercase Crockford base32; null if `s` is not the encoding of some byte string. */
export function decodeBase32(s: string): Uint8Array | null {
  const out = new Uint8Array(Math.floor((s.length * 5) / 8));
  return decodeBase32Into(s, out) === -1 ? null : out;
}

/**
 * Decodes strict lowercase Crockford base32 into `out` (which must be long enough) without allocating; returns the
 * number of bytes written, or -1 if `s` is not the encoding of some byte string.
 */
export function decodeBase32Into(s: string, out: Uint8Array): number {
  const length = s.length;
  const byteLength = Math.floor((length * 5) / 8);
  if (base32EncodedLength(byteLength) !== length || byteLength > out.length) return -1;
  let o = 0;
  let buffer = 0;
  let bufferedBits = 0;
  for (let i = 0; i < length; i++) {
    const code = s.charCodeAt(i);
    const value = code < 128 ? DECODE[code] : -1;
    if (value < 0) return -1;
    buffer = ((buffer << 5) | value) & 0xfff; // at most 7 + 5 live bits
    bufferedBits += 5;
    if (bufferedBits >= 8) {
      bufferedBits -= 8;
      out[o++] = (buffer >>> bufferedBits) & 255;
    }
  }
  // The leftover padding bits must be zero, or a second string would decode to the same bytes.
  if ((buffer & ((1 << bufferedBits) - 1)) !== 0) return -1;
  return byteLength;
}
