/**
 * String order and size. Convex orders strings by their UTF-8 bytes, which is code point order; JavaScript compares
 * UTF-16 code units, which differs once surrogate pairs meet characters in U+E000..U+FFFF.
 */

/**
 * Compares two strings by code point (= UTF-8 byte order). An unpaired surrogate counts as its own code point, which
 * is the order its 3-byte generalized UTF-8 form has in index keys.
 */
export function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  const sharedLength = a.length < b.length ? a.length : b.length;
  let i = 0;
  while (i < sharedLength && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  if (i === sharedLength) return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
  const unitA = a.charCodeAt(i);
  const unitB = b.charCodeAt(i);
  // Below the surrogate range code unit order is code point order.
  if (unitA < 0xd800 && unitB < 0xd800) return unitA < unitB ? -1 : 1;
  // The units differ inside a pair whose high half is shared: compare from that high half.
  if (i > 0 && isHighSurrogate(a.charCodeAt(i - 1))) i--;
  return compareCodePointsFrom(a, b, i);
}

function compareCodePointsFrom(a: string, b: string, start: number): number {
  let i = start;
  for (;;) {
    if (i >= a.length) return i >= b.length ? 0 : -1;
    if (i >= b.length) return 1;
    const pointA = a.codePointAt(i)!;
    const pointB = b.codePointAt(i)!;
    if (pointA !== pointB) return pointA < pointB ? -1 : 1;
    i += pointA > 0xffff ? 2 : 1;
  }
}

/** True for a UTF-16 high (leading) surrogate code unit. */
export function isHighSurrogate(unit: number): boolean {
  return unit >= 0xd800 && unit <= 0xdbff;
}

/** True for a UTF-16 low (trailing) surrogate code unit. */
export function isLowSurrogate(unit: number): boolean {
  return unit >= 0xdc00 && unit <= 0xdfff;
}

/** The length of `s` in UTF-8 bytes (an unpaired surrogate counts 3, as its replacement character would). */
export function utf8ByteLength(s: string): number {
  const length = s.length;
  let sizeBytes = length;
  for (let i = 0; i < length; i++) {
    const unit = s.charCodeAt(i);
    if (unit < 0x80) continue;
    if (unit < 0x800) {
      sizeBytes += 1;
    } else if (isHighSurrogate(unit) && i + 1 < length && isLowSurrogate(s.charCodeAt(i + 1))) {
      // 4 bytes for the pair's 2 units.
      sizeBytes += 2;
      i++;
    } else {
      sizeBytes += 2;
    }
  }
  return sizeBytes;
}
