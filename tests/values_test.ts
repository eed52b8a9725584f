/**
 * Tests of src/values. Expected values are written by hand from convex-compat.md §1 (or, where marked, taken from
 * the official backend's own test vectors); randomized tests use a seeded PRNG and compare against an independent
 * oracle: the other encoding, TextEncoder, or the official `convex` 1.48.0 client's implementation.
 */
import { assert, assertEquals, assertStrictEquals, assertThrows, seededRandom } from "./helpers/assert.ts";
import {
  compareValues as officialCompareValues,
  convexToJson as officialConvexToJson,
  getConvexSize as officialGetConvexSize,
  jsonToConvex as officialJsonToConvex,
} from "convex/values";
import {
  checkDocument,
  checkTableName,
  checkUserTableName,
  checkValue,
  compareKeys,
  compareStrings,
  compareValues,
  decodeDocumentId,
  encodeDocumentId,
  encodeIndexKey,
  generateDocumentId,
  getFieldPath,
  getFieldPathParts,
  jsonToValue,
  jsonToValueOrUndefined,
  type JsonValue,
  keyFromBase64,
  keyToBase64,
  parseConvexJsonText,
  parseValidatorJson,
  prefixSuccessor,
  timestampFromBase64,
  timestampToBase64,
  validateValue,
  type ValidatorJson,
  type Value,
  ValueError,
  valueOrUndefinedToJson,
  valuesEqual,
  valueSizeBytes,
  valueToJson,
  valueToJsonText,
} from "../src/values/mod.ts";
import { decodeBase32, encodeBase32 } from "../src/values/base32.ts";

// ---------------------------------------------------------------------------------------------------------------------
// Helpers

function bytes(...values: number[]): ArrayBuffer {
  return new Uint8Array(values).buffer;
}

function sign(n: number): number {
  return n < 0 ? -1 : n > 0 ? 1 : 0;
}

function throwsValueError(fn: () => unknown, messagePart?: string | RegExp): void {
  const error = assertThrows(fn);
  assert(error instanceof ValueError, `expected a ValueError, got ${error}`);
  if (typeof messagePart === "string") assert(error.message.includes(messagePart), error.message);
  if (messagePart instanceof RegExp) assert(messagePart.test(error.message), error.message);
}

/** Lexicographic order of tuples by compareValues; a proper prefix sorts first. */
function compareTuples(a: (Value | undefined)[], b: (Value | undefined)[]): number {
  for (let i = 0; i < a.length && i < b.length; i++) {
    const order = compareValues(a[i], b[i]);
    if (order !== 0) return order;
  }
  return sign(a.length - b.length);
}

const FLOATS = [-Infinity, -1e308, -2.5, -1, -5e-324, -0, 0, 5e-324, 1, 2.5, 1e308, Infinity, NaN];
const INTS = [-(2n ** 63n), -256n, -1n, 0n, 1n, 255n, 256n, 2n ** 63n - 1n];
const STRING_PIECES = ["a", "b", "\0", "\x01", "\x7f", "é", "\u0800", "\ud7ff", "\ue000", "\uffff", "😀", "\ud800"];
const BYTE_VALUES = [0x00, 0x01, 0x7f, 0xfe, 0xff];
const FIELD_NAMES = ["a", "b", "ab", "_x", " ", "~"];

function randomString(random: () => number): string {
  let s = "";
  const length = Math.floor(random() * 4);
  for (let i = 0; i < length; i++) s += STRING_PIECES[Math.floor(random() * STRING_PIECES.length)];
  return s;
}

/** A random value with many ties and shared prefixes, so comparisons reach deep. */
function randomValue(random: () => number, depth = 0, wellFormedStrings = false): Value {
  const pick = Math.floor(random() * (depth >= 3 ? 7 : 9));
  switch (pick) {
    case 0:
      return null;
    case 1:
      return INTS[Math.floor(random() * INTS.length)];
    case 2:
      return FLOATS[Math.floor(random() * FLOATS.length)];
    case 3:
      return random() < 0.5;
    case 4:
    case 5: {
      const s = randomString(random);
      return wellFormedStrings ? s.toWellFormed() : s;
    }
    case 6: {
      const length = Math.floor(random() * 4);
      return bytes(...Array.from({ length }, () => BYTE_VALUES[Math.floor(random() * BYTE_VALUES.length)]));
    }
    case 7: {
      const length = Math.floor(random() * 4);
      return Array.from({ length }, () => randomValue(random, depth + 1, wellFormedStrings));
    }
    default: {
      const object: { [field: string]: Value } = {};
      for (const name of FIELD_NAMES) {
        if (random() < 0.3) object[name] = randomValue(random, depth + 1, wellFormedStrings);
      }
      return object;
    }
  }
}

function randomTuple(random: () => number): (Value | undefined)[] {
  const length = Math.floor(random() * 4);
  return Array.from({ length }, () => (random() < 0.1 ? undefined : randomValue(random)));
}

// ---------------------------------------------------------------------------------------------------------------------
// convex-JSON (§1.1)

Deno.test("convex-JSON: the spec's examples and every type round-trip", () => {
  const cases: [Value, JsonValue][] = [
    [null, null],
    [true, true],
    [false, false],
    ["hi", "hi"],
    [1.5, 1.5],
    [0, 0],
    [5n, { $integer: "BQAAAAAAAAA=" }],
    [0n, { $integer: "AAAAAAAAAAA=" }],
    [-1n, { $integer: "//////////8=" }],
    // 6 bytes 0xFF give "////////", then 0xFF 0x7F give "/38=".
    [2n ** 63n - 1n, { $integer: "////////" + "/38=" }],
    [-(2n ** 63n), { $integer: "AAAAAAAAAIA=" }],
    [NaN, { $float: "AAAAAAAA+H8=" }],
    [Infinity, { $float: "AAAAAAAA8H8=" }],
    [-Infinity, { $float: "AAAAAAAA8P8=" }],
    [-0, { $float: "AAAAAAAAAIA=" }],
    [bytes(1, 2, 3), { $bytes: "AQID" }],
    [bytes(), { $bytes: "" }],
    [[1, "a", [null]], [1, "a", [null]]],
    [{ b: 1n, a: [bytes(255)] }, { a: [{ $bytes: "/w==" }], b: { $integer: "AQAAAAAAAAA=" } }],
  ];
  for (const [value, json] of cases) {
    assertEquals(valueToJson(value), json);
    const decoded = jsonToValue(json);
    assert(valuesEqual(decoded, value), `round trip of ${JSON.stringify(json)}`);
    assert(valuesEqual(parseConvexJsonText(valueToJsonText(value)), value));
  }
  // -0 survives as -0, not 0.
  assert(Object.is(jsonToValue({ $float: "AAAAAAAAAIA=" }), -0));
  // Bytes decode to an ArrayBuffer of exactly the right length.
  const decodedBytes = jsonToValue({ $bytes: "AQID" });
  assert(decodedBytes instanceof ArrayBuffer);
  assertEquals([...new Uint8Array(decodedBytes)], [1, 2, 3]);
});

Deno.test("convex-JSON: keys are emitted sorted and undefined fields are dropped", () => {
  const value = { zeta: 1, alpha: { y: 2, x: undefined }, mid: undefined } as unknown as Value;
  assertStrictEquals(valueToJsonText(value), '{"alpha":{"y":2},"zeta":1}');
  assertEquals(valueOrUndefinedToJson(undefined), { $undefined: null });
  assertStrictEquals(jsonToValueOrUndefined({ $undefined: null }), undefined);
  assertEquals(jsonToValueOrUndefined({ $integer: "BQAAAAAAAAA=" }), 5n);
});

Deno.test("convex-JSON: malformed input is rejected", () => {
  // $float holding an ordinary finite number (1.0).
  throwsValueError(() => jsonToValue({ $float: "AAAAAAAA8D8=" }), "should be encoded as a number");
  // $integer of 4 bytes, $float of 9.
  throwsValueError(() => jsonToValue({ $integer: "AAAAAA==" }), "expected 8");
  throwsValueError(() => jsonToValue({ $float: "AAAAAAAAAAAA" }), "expected 8");
  throwsValueError(() => jsonToValue({ $integer: 5 }), "$integer");
  throwsValueError(() => jsonToValue({ $bytes: "AQI" }), "base64"); // length not a multiple of 4
  throwsValueError(() => jsonToValue({ $bytes: "AQ*D" }), "base64");
  throwsValueError(() => jsonToValue({ $set: [] }), "no longer supported");
  throwsValueError(() => jsonToValue({ $map: [] }), "no longer supported");
  throwsValueError(() => jsonToValue({ $undefined: null }));
  throwsValueError(() => jsonToValue({ $foo: 1 }), "reserved");
  // Special keys next to other keys are just invalid field names.
  throwsValueError(() => jsonToValue({ $integer: "BQAAAAAAAAA=", a: 1 }), "reserved");
  throwsValueError(() => jsonToValue({ a: { "b\n": 1 } }), "non-control ASCII");
  throwsValueError(() => jsonToValue({ "é": 1 }), "non-control ASCII");
  throwsValueError(() => jsonToValue({ "": 1 }), "empty");
  throwsValueError(() => jsonToValue({ ["x".repeat(1025)]: 1 }), "too long");
  throwsValueError(() => parseConvexJsonText("{"), "Invalid JSON");
  // The client's decoder also accepts the URL-safe alphabet.
  assertEquals([...new Uint8Array(jsonToValue({ $bytes: "-_8=" }) as ArrayBuffer)], [0xfb, 0xff]);
});

Deno.test("convex-JSON: encoding rejects what is not a Convex value", () => {
  throwsValueError(() => valueToJson(2n ** 63n), "does not fit");
  throwsValueError(() => valueToJson(-(2n ** 63n) - 1n), "does not fit");
  throwsValueError(() => valueToJson([1, undefined] as unknown as Value), "undefined");
  throwsValueError(() => valueToJson(new Map() as unknown as Value), "not a supported Convex type");
  throwsValueError(() => valueToJson(new Uint8Array(2) as unknown as Value), "not a supported Convex type");
  throwsValueError(() => valueToJson((() => 1) as unknown as Value), "not a supported Convex type");
  throwsValueError(() => valueToJson({ $x: 1 }), "reserved");
  throwsValueError(() => valueToJson(undefined as unknown as Value));
  // Nesting is capped at 64 levels both ways.
  let deep: Value = 1;
  for (let i = 0; i < 64; i++) deep = [deep];
  valueToJson(deep);
  throwsValueError(() => valueToJson([deep]), "too nested");
  let deepJson: JsonValue = 1;
  for (let i = 0; i < 65; i++) deepJson = [deepJson];
  throwsValueError(() => jsonToValue(deepJson), "too nested");
});

Deno.test("convex-JSON: a field named __proto__ stays a plain data field", () => {
  const value = parseConvexJsonText('{"__proto__": {"polluted": 1}, "a": 1}') as { [field: string]: Value };
  assertStrictEquals(Object.getPrototypeOf(value), Object.prototype);
  assert(Object.hasOwn(value, "__proto__"));
  assertStrictEquals(({} as Record<string, unknown>).polluted, undefined);
  assertStrictEquals(valueToJsonText(value), '{"__proto__":{"polluted":1},"a":1}');
});

Deno.test("convex-JSON: agrees with the official client on random values", () => {
  const random = seededRandom(7);
  for (let i = 0; i < 2000; i++) {
    const value = randomValue(random, 0, true);
    const ours = valueToJson(value);
    assertEquals(ours, officialConvexToJson(value as never));
    assert(valuesEqual(jsonToValue(ours), officialJsonToConvex(ours as never) as Value));
    assert(valuesEqual(parseConvexJsonText(valueToJsonText(value)), value));
  }
});

// ---------------------------------------------------------------------------------------------------------------------
// Order (§1.5) and index keys

/** Strictly increasing, written by hand from §1.5. */
const SORTED: (Value | undefined)[] = [
  undefined,
  null,
  -(2n ** 63n),
  -1n,
  0n,
  1n,
  2n ** 63n - 1n,
  -Infinity,
  -1e308,
  -1,
  -5e-324,
  -0,
  0,
  5e-324,
  1,
  1e308,
  Infinity,
  NaN,
  false,
  true,
  "",
  "\0",
  "\0\0",
  "\x01",
  "A",
  "a",
  "a\0",
  "ab",
  "b",
  "é", // U+00E9: C3 A9
  "\ue000", // EE 80 80
  "\uffff", // EF BF BF: above U+E000, below every supplementary character in UTF-8 (not in UTF-16)
  "😀", // U+1F600: F0 9F 98 80
  bytes(),
  bytes(0),
  bytes(0, 0),
  bytes(0, 1),
  bytes(1),
  bytes(255),
  bytes(255, 0),
  [],
  [null],
  [null, null],
  [0n],
  [1],
  [1, 2],
  [1, "a"],
  ["a"],
  [[]],
  [{}],
  {},
  { a: null },
  { a: 1 },
  { a: 1, b: 1 },
  { a: 2 },
  { ab: 0 },
  { b: 0 },
  { b: 0, c: 0 },
];

Deno.test("order: compareValues follows the hand-sorted list, and so do index keys", () => {
  for (let i = 0; i < SORTED.length; i++) {
    for (let j = 0; j < SORTED.length; j++) {
      const expected = sign(i - j);
      assertStrictEquals(compareValues(SORTED[i], SORTED[j]), expected, `compare #${i} with #${j}`);
      assertStrictEquals(
        compareKeys(encodeIndexKey([SORTED[i]]), encodeIndexKey([SORTED[j]])),
        expected,
        `keys #${i} and #${j}`,
      );
      assertStrictEquals(valuesEqual(SORTED[i], SORTED[j]), expected === 0);
    }
  }
});

Deno.test("order: index key order equals tuple order for random nested values", () => {
  const random = seededRandom(20240601);
  for (let i = 0; i < 4000; i++) {
    const a = randomTuple(random);
    // Half the time, make b share a prefix with a so prefix cases and deep ties are common.
    const b = random() < 0.5
      ? [...a.slice(0, Math.floor(random() * (a.length + 1))), ...randomTuple(random)]
      : randomTuple(random);
    const expected = compareTuples(a, b);
    const keyA = encodeIndexKey(a);
    const keyB = encodeIndexKey(b);
    assertStrictEquals(compareKeys(keyA, keyB), expected, `${Deno.inspect(a)} vs ${Deno.inspect(b)}`);
    assertStrictEquals(compareTuples(b, a), -expected || 0, "antisymmetry");
    // The key of a tuple prefix is a byte prefix of the key of the whole tuple.
    const prefix = encodeIndexKey(a.slice(0, a.length - 1));
    assertEquals(keyA.subarray(0, prefix.length), prefix);
  }
});

Deno.test("order: compareValues agrees with the official client", () => {
  const random = seededRandom(99);
  for (let i = 0; i < 4000; i++) {
    const a = randomValue(random);
    const b = random() < 0.3 ? structuredClone(a) : randomValue(random);
    assertStrictEquals(
      compareValues(a, b),
      sign(officialCompareValues(a as never, b as never)),
      `${Deno.inspect([a, b])}`,
    );
  }
});

Deno.test("order: strings compare by UTF-8 bytes", () => {
  const random = seededRandom(3);
  const encoder = new TextEncoder();
  const compareByteArrays = (x: Uint8Array, y: Uint8Array) => {
    for (let i = 0; i < x.length && i < y.length; i++) if (x[i] !== y[i]) return sign(x[i] - y[i]);
    return sign(x.length - y.length);
  };
  for (let i = 0; i < 3000; i++) {
    const a = randomString(random).toWellFormed();
    const b = randomString(random).toWellFormed();
    assertStrictEquals(
      compareStrings(a, b),
      compareByteArrays(encoder.encode(a), encoder.encode(b)),
      Deno.inspect([a, b]),
    );
  }
  // A surrogate pair sorts after U+FFFF in UTF-8, though before it in UTF-16.
  assertStrictEquals(compareStrings("😀", "\uffff"), 1);
  assertStrictEquals(compareStrings("x😀", "x\uffff"), 1);
});

Deno.test("order: valuesEqual distinguishes what the total order distinguishes", () => {
  assert(valuesEqual(NaN, NaN));
  assert(!valuesEqual(0, -0));
  assert(!valuesEqual(5n, 5));
  assert(valuesEqual(5n, 5n));
  assert(valuesEqual({ a: [1, bytes(1)] }, { a: [1, bytes(1)] }));
  assert(!valuesEqual({ a: 1 }, { a: 1, b: 2 }));
  assert(valuesEqual(undefined, undefined));
  assert(!valuesEqual(undefined, null));
});

Deno.test("index keys: the stored byte layout is pinned", () => {
  // Keys persist in the database, so the layout is a file format; these bytes follow the table in index_key.ts.
  const cases: [Value | undefined, number[]][] = [
    [undefined, [0x01]],
    [null, [0x02]],
    [1n, [0x03, 0x80, 0, 0, 0, 0, 0, 0, 0x01]],
    [-1n, [0x03, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]],
    [1, [0x04, 0xbf, 0xf0, 0, 0, 0, 0, 0, 0]], // 0x3FF0… with the sign bit flipped
    [-0, [0x04, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]], // 0x8000… with every bit flipped
    [NaN, [0x04, 0xff, 0xf8, 0, 0, 0, 0, 0, 0]],
    [false, [0x05, 0x00]],
    [true, [0x05, 0x01]],
    ["a\0", [0x06, 0x61, 0x00, 0xff, 0x00, 0x00]],
    ["é", [0x06, 0xc3, 0xa9, 0x00, 0x00]],
    [bytes(0, 7), [0x07, 0x00, 0xff, 0x07, 0x00, 0x00]],
    [[], [0x08, 0x00]],
    [[null], [0x08, 0x02, 0x00]],
    [{ a: null }, [0x09, 0x06, 0x61, 0x00, 0x00, 0x02, 0x00]],
  ];
  for (const [value, expected] of cases) assertEquals([...encodeIndexKey([value])], expected, Deno.inspect(value));
  assertEquals([...encodeIndexKey([null, true])], [0x02, 0x05, 0x01]);
});

Deno.test("index keys: layout details", () => {
  // NaN is normalized: a NaN with another bit pattern encodes like the canonical one.
  const otherNaN = new DataView(new ArrayBuffer(8));
  otherNaN.setUint32(0, 0xfff80000);
  otherNaN.setUint32(4, 1);
  assertEquals(encodeIndexKey([otherNaN.getFloat64(0)]), encodeIndexKey([NaN]));
  // Missing sorts below null.
  assertStrictEquals(compareKeys(encodeIndexKey([undefined]), encodeIndexKey([null])), -1);
  // Each call returns a fresh array the caller owns.
  const first = encodeIndexKey(["x"]);
  encodeIndexKey(["y"]);
  assertEquals([...first], [0x06, 0x78, 0x00, 0x00]);
  assertEquals([...encodeIndexKey([])], []);
  // Long strings and bytes grow the buffer.
  const long = "é".repeat(100_000);
  assertStrictEquals(compareKeys(encodeIndexKey([long]), encodeIndexKey([long + "a"])), -1);
  throwsValueError(() => encodeIndexKey([2n ** 64n]), "does not fit");
});

Deno.test("index keys: prefixSuccessor bounds equality-prefix ranges", () => {
  assertEquals(prefixSuccessor(new Uint8Array([1, 2, 3])), new Uint8Array([1, 2, 4]));
  assertEquals(prefixSuccessor(new Uint8Array([1, 0xff, 0xff])), new Uint8Array([2]));
  assertStrictEquals(prefixSuccessor(new Uint8Array([0xff, 0xff])), null);
  assertStrictEquals(prefixSuccessor(new Uint8Array([])), null);
  const random = seededRandom(11);
  for (let i = 0; i < 3000; i++) {
    const eq = [randomValue(random)];
    const start = encodeIndexKey(eq);
    const end = prefixSuccessor(start)!;
    assert(end !== null);
    // Every index entry [eq, creationTime, id] is inside [start, end).
    const inside = encodeIndexKey([...eq, randomValue(random), randomValue(random)]);
    assert(compareKeys(start, inside) <= 0 && compareKeys(inside, end) < 0);
    // Entries of another value are outside, on the side the value order says.
    const other = randomValue(random);
    const outside = encodeIndexKey([other, randomValue(random)]);
    const order = compareValues(other, eq[0]);
    if (order < 0) assert(compareKeys(outside, start) < 0);
    if (order > 0) assert(compareKeys(outside, end) >= 0);
    if (order === 0) assert(compareKeys(start, outside) <= 0 && compareKeys(outside, end) < 0);
  }
});

Deno.test("index keys: base64 text form", () => {
  assertStrictEquals(keyToBase64(new Uint8Array([0, 1, 2, 255])), "AAEC/w==");
  assertEquals(keyFromBase64("AAEC/w=="), new Uint8Array([0, 1, 2, 255]));
  const key = encodeIndexKey(["hello", 1n, { a: bytes(0, 0xff) }]);
  assertEquals(keyFromBase64(keyToBase64(key)), key);
  const long = new Uint8Array(1000).map((_, i) => (i * 37) & 255);
  assertEquals(keyFromBase64(keyToBase64(long)), long);
  throwsValueError(() => keyFromBase64("AAE"), "base64");
});

// ---------------------------------------------------------------------------------------------------------------------
// Wire timestamps (§1.10)

Deno.test("timestamps: u64 little-endian base64", () => {
  assertStrictEquals(timestampToBase64(0n), "AAAAAAAAAAA=");
  assertStrictEquals(timestampToBase64(15n), "DwAAAAAAAAA=");
  assertStrictEquals(timestampFromBase64("DwAAAAAAAAA="), 15n);
  assertStrictEquals(timestampFromBase64(timestampToBase64(2n ** 64n - 1n)), 2n ** 64n - 1n);
  throwsValueError(() => timestampToBase64(-1n));
  throwsValueError(() => timestampFromBase64("AAAA"), "expected 8");
});

// ---------------------------------------------------------------------------------------------------------------------
// Document IDs (§1.6)

/** The official backend's stability vector (`test_document_id_stability` in crates/value/src/id_v6.rs). */
function officialInternalId(): Uint8Array {
  const internalId = new Uint8Array(16);
  internalId[0] = 251;
  for (let i = 1; i < 16; i++) internalId[i] = (internalId[i - 1] * 251) & 255;
  return internalId;
}
const OFFICIAL_ID = "z43zp6c3e75gkmz1kfwj6mbbx5sw281h";

Deno.test("ids: matches the official encoding", () => {
  assertStrictEquals(encodeDocumentId(1017, officialInternalId()), OFFICIAL_ID);
  assertEquals(decodeDocumentId(OFFICIAL_ID), { tableNumber: 1017 });
});

Deno.test("ids: lengths and round trips", () => {
  for (const [tableNumber, length] of [[1, 31], [127, 31], [128, 32], [16383, 32], [16384, 34], [2 ** 32 - 1, 37]]) {
    const id = generateDocumentId(tableNumber);
    assertStrictEquals(id.length, length, `table ${tableNumber}`);
    assert(/^[0-9a-hjkmnp-tv-z]+$/.test(id));
    assertEquals(decodeDocumentId(id), { tableNumber });
  }
  const ids = new Set(Array.from({ length: 1000 }, () => generateDocumentId(5)));
  assertStrictEquals(ids.size, 1000);
  // A later millisecond's ID sorts after an earlier one's (inserts append to the b-trees), whatever the random part.
  const earlier = generateDocumentId(5);
  const waitUntil = Date.now() + 2;
  while (Date.now() < waitUntil) { /* the next millisecond */ }
  const later = Array.from({ length: 100 }, () => generateDocumentId(5));
  assert(later.every((id) => id > earlier), "IDs of a later millisecond sort after");
  assert(new Set(later.map((id) => id.slice(10))).size === 100, "the random part differs within one millisecond");
  throwsValueError(() => generateDocumentId(0), "table number");
  throwsValueError(() => generateDocumentId(1.5), "table number");
  throwsValueError(() => generateDocumentId(2 ** 32), "table number");
});

Deno.test("ids: every corrupted character, a wrong footer and non-canonical forms are rejected", () => {
  const alphabet = "0123456789abcdefghjkmnpqrstvwxyz";
  for (let position = 0; position < OFFICIAL_ID.length; position++) {
    for (const replacement of alphabet) {
      if (replacement === OFFICIAL_ID[position]) continue;
      const corrupted = OFFICIAL_ID.slice(0, position) + replacement + OFFICIAL_ID.slice(position + 1);
      assertStrictEquals(decodeDocumentId(corrupted), null, corrupted);
    }
  }
  // Wrong footer: flip one bit of the last byte and re-encode.
  const raw = decodeBase32(OFFICIAL_ID)!;
  raw[raw.length - 1] ^= 1;
  assertStrictEquals(decodeDocumentId(encodeBase32(raw)), null);
  // Uppercase, characters outside the alphabet, wrong lengths, non-strings.
  assertStrictEquals(decodeDocumentId(OFFICIAL_ID.toUpperCase()), null);
  assertStrictEquals(decodeDocumentId(OFFICIAL_ID.slice(0, 31) + "i"), null);
  assertStrictEquals(decodeDocumentId(OFFICIAL_ID.slice(1)), null);
  assertStrictEquals(decodeDocumentId(OFFICIAL_ID + "0"), null);
  assertStrictEquals(decodeDocumentId(""), null);
  assertStrictEquals(decodeDocumentId(5 as unknown as string), null);
  // Non-zero padding bits: a 31-character ID carries 3 of them in its last character.
  const short = generateDocumentId(3);
  const lastValue = alphabet.indexOf(short[30]);
  assertStrictEquals(lastValue & 7, 0);
  assertStrictEquals(decodeDocumentId(short.slice(0, 30) + alphabet[lastValue | 1]), null);
  // Table number 0, and a non-minimal VInt for table 1 (0x81 0x00), each with a correct footer.
  const withFooter = (prefix: number[]) => {
    const body = [...prefix, ...new Array(16).fill(7)];
    let c0 = 0;
    let c1 = 0;
    for (const b of body) {
      c0 = (c0 + b) % 256;
      c1 = (c1 + c0) % 256;
    }
    return encodeBase32(new Uint8Array([...body, c0, c1]));
  };
  assertEquals(decodeDocumentId(withFooter([1])), { tableNumber: 1 });
  assertStrictEquals(decodeDocumentId(withFooter([0])), null);
  assertStrictEquals(decodeDocumentId(withFooter([0x81, 0x00])), null);
});

// ---------------------------------------------------------------------------------------------------------------------
// Field paths, names, limits (§1.3, §1.4)

Deno.test("getFieldPath: dotted paths into nested objects", () => {
  const doc: Value = { a: { b: { c: 1n } }, arr: [{ x: 1 }], s: "str", n: null };
  assertStrictEquals(getFieldPath(doc, "a.b.c"), 1n);
  assertEquals(getFieldPath(doc, "a.b"), { c: 1n });
  assertStrictEquals(getFieldPath(doc, "s"), "str");
  assertStrictEquals(getFieldPath(doc, "n"), null);
  assertStrictEquals(getFieldPath(doc, "missing"), undefined);
  assertStrictEquals(getFieldPath(doc, "a.x.c"), undefined);
  assertStrictEquals(getFieldPath(doc, "a.b.c.d"), undefined);
  assertStrictEquals(getFieldPath(doc, "s.length"), undefined);
  assertStrictEquals(getFieldPath(doc, "arr.0"), undefined);
  assertStrictEquals(getFieldPath(doc, "constructor"), undefined);
  assertStrictEquals(getFieldPath(doc, "a.__proto__"), undefined);
  assertStrictEquals(getFieldPathParts(doc, ["a", "b", "c"]), 1n);
  assertStrictEquals(getFieldPathParts(doc, ["a", "toString"]), undefined);
});

Deno.test("names: table names", () => {
  for (const name of ["messages", "a", "A_1", "_storage", "x".repeat(64)]) checkTableName(name);
  for (
    const [name, part] of [
      ["", "empty"],
      ["1abc", "must start"],
      ["a-b", "invalid character"],
      ["a b", "invalid character"],
      ["é", "must start"],
      ["___", "only of underscores"],
      ["x".repeat(65), "too long"],
    ]
  ) {
    throwsValueError(() => checkTableName(name), part);
    throwsValueError(() => checkTableName(name), JSON.stringify(name));
  }
  checkUserTableName("messages");
  throwsValueError(() => checkUserTableName("_storage"), "read-only");
  throwsValueError(() => checkUserTableName("_storage"), '"_storage"');
  throwsValueError(() => checkUserTableName("bad-name"), "invalid character");
});

/** An object nested `levels` deep: 1 is `{}`, 2 is `{a: {}}`. */
function nestedObject(levels: number): { [field: string]: Value } {
  let value: { [field: string]: Value } = {};
  for (let i = 1; i < levels; i++) value = { a: value };
  return value;
}

Deno.test("limits: each document limit, just under and just over", () => {
  checkDocument({ list: new Array(8192).fill(0) });
  throwsValueError(
    () => checkDocument({ list: new Array(8193).fill(0) }),
    "Array length is too long (8193 > maximum length 8192)",
  );
  const fields = (count: number) => Object.fromEntries(Array.from({ length: count }, (_, i) => [`f${i}`, i]));
  checkDocument(fields(1024));
  throwsValueError(() => checkDocument(fields(1025)), "Object has too many fields (1025 > maximum number 1024)");
  checkDocument({ inner: fields(1024) });
  throwsValueError(() => checkDocument({ inner: fields(1025) }), "Path: .inner");
  checkDocument(nestedObject(16));
  throwsValueError(() => checkDocument(nestedObject(17)), "maximum nesting 16");
  checkDocument({ ["x".repeat(1024)]: 1 });
  throwsValueError(() => checkDocument({ ["x".repeat(1025)]: 1 }), "too long");
  // {s: "x"*k} has size 2 + (1 + 1 + (2 + k)) = k + 6 bytes.
  checkDocument({ s: "x".repeat((1 << 20) - 6) });
  throwsValueError(() => checkDocument({ s: "x".repeat((1 << 20) - 5) }), "too large");
  // Arbitrary values may nest 64 deep.
  let deep: Value = 0;
  for (let i = 0; i < 64; i++) deep = [deep];
  checkValue(deep);
  throwsValueError(() => checkValue([deep]), "maximum nesting 64");
});

Deno.test("limits: field names and system fields in documents", () => {
  checkDocument({ _id: "abc", _creationTime: 1, a: { _nested: 1, "with space": [1] }, "top level ok": 1 });
  throwsValueError(
    () => checkDocument({ _secret: 1 }),
    "Field '_secret' starts with an underscore, which is only allowed for system fields like '_id'",
  );
  throwsValueError(() => checkDocument({ _id: 5 }), "_id");
  throwsValueError(() => checkDocument({ _creationTime: "now" }), "_creationTime");
  throwsValueError(() => checkDocument({ a: { b: [{ $c: 1 }] } }), /starts with '\$'[\s\S]*Path: \.a\.b\[0\]$/);
  throwsValueError(() => checkDocument({ a: { "tab\t": 1 } }), "non-control ASCII");
  throwsValueError(() => checkDocument({ a: { "ü": 1 } }), "non-control ASCII");
  throwsValueError(() => checkDocument({ a: [1, undefined] } as unknown as Value), "Path: .a[1]");
  throwsValueError(() => checkDocument({ a: 2n ** 63n }), "does not fit");
  throwsValueError(() => checkDocument({ a: "\ud800" }), "unpaired surrogate");
  throwsValueError(() => checkDocument({ a: new Date() } as unknown as Value), "not a supported Convex type");
  throwsValueError(() => checkDocument([1] as Value), "must be an object");
  throwsValueError(() => checkDocument(null), "must be an object");
  // Fields holding undefined are absent, as in convex-JSON.
  checkDocument({ a: undefined, _x: undefined } as unknown as Value);
});

Deno.test("limits: valueSizeBytes follows the §1.4 formula", () => {
  assertStrictEquals(valueSizeBytes(null), 1);
  assertStrictEquals(valueSizeBytes(true), 1);
  assertStrictEquals(valueSizeBytes(5n), 9);
  assertStrictEquals(valueSizeBytes(1.5), 9);
  assertStrictEquals(valueSizeBytes("abc"), 5);
  assertStrictEquals(valueSizeBytes("é"), 4);
  assertStrictEquals(valueSizeBytes("😀"), 6);
  assertStrictEquals(valueSizeBytes(bytes(1, 2, 3)), 5);
  assertStrictEquals(valueSizeBytes([1, 2]), 20);
  assertStrictEquals(valueSizeBytes({ a: 1, bc: null }), 2 + (1 + 1 + 9) + (2 + 1 + 1));
  const random = seededRandom(5);
  for (let i = 0; i < 1000; i++) {
    const value = randomValue(random, 0, true);
    assertStrictEquals(valueSizeBytes(value), officialGetConvexSize(value as never));
  }
});

// ---------------------------------------------------------------------------------------------------------------------
// Validators (§1.8)

const userIds = new Set<string>();
const isIdOfTable = (id: string, tableName: string) => tableName === "users" && userIds.has(id);
const str: ValidatorJson = { type: "string" };
const num: ValidatorJson = { type: "number" };
const obj = (fields: Record<string, ValidatorJson>, optional: string[] = []): ValidatorJson => ({
  type: "object",
  value: Object.fromEntries(
    Object.entries(fields).map(([name, fieldType]) => [name, { fieldType, optional: optional.includes(name) }]),
  ),
});

Deno.test("validators: objects report missing and extra fields", () => {
  const validator = obj({ a: str });
  assertStrictEquals(validateValue(validator, { a: "x" }, isIdOfTable), null);
  assertStrictEquals(
    validateValue(validator, {}, isIdOfTable),
    "Object is missing the required field `a`. Consider wrapping the field validator in `v.optional(...)` if this " +
      "is expected.\n\nObject: {}\nValidator: v.object({a: v.string()})",
  );
  assertStrictEquals(
    validateValue(validator, { a: "x", c: 1, b: 1n }, isIdOfTable),
    'Object contains extra field `b` that is not in the validator.\n\nObject: {a: "x", b: 1, c: 1.0}\n' +
      "Validator: v.object({a: v.string()})",
  );
  assertStrictEquals(
    validateValue(obj({ outer: validator }), { outer: {} }, isIdOfTable),
    "Object is missing the required field `a`. Consider wrapping the field validator in `v.optional(...)` if this " +
      "is expected.\nPath: .outer\nObject: {}\nValidator: v.object({a: v.string()})",
  );
});

Deno.test("validators: paths, optional fields and type mismatches", () => {
  const validator = obj({ a: obj({ b: { type: "array", value: num } }), note: str }, ["note"]);
  assertStrictEquals(validateValue(validator, { a: { b: [1, 2] } }, isIdOfTable), null);
  assertStrictEquals(validateValue(validator, { a: { b: [] }, note: "n" }, isIdOfTable), null);
  assertStrictEquals(
    validateValue(validator, { a: { b: [1, "x"] } }, isIdOfTable),
    'Value does not match validator.\nPath: .a.b[1]\nValue: "x"\nValidator: v.float64()',
  );
  assertStrictEquals(
    validateValue(validator, { a: { b: [] }, note: 1 }, isIdOfTable),
    "Value does not match validator.\nPath: .note\nValue: 1.0\nValidator: v.string()",
  );
  assertStrictEquals(
    validateValue(obj({ x: str }, ["x"]), 5, isIdOfTable),
    "Value does not match validator.\n\nValue: 5.0\nValidator: v.object({x: v.optional(v.string())})",
  );
});

Deno.test("validators: number rejects int64 and int64 rejects number", () => {
  assertStrictEquals(validateValue(num, 1.5, isIdOfTable), null);
  assertStrictEquals(validateValue(num, NaN, isIdOfTable), null);
  assertStrictEquals(
    validateValue(num, 1n, isIdOfTable),
    "Value does not match validator.\n\nValue: 1\nValidator: v.float64()",
  );
  assertStrictEquals(validateValue({ type: "bigint" }, 1n, isIdOfTable), null);
  assertStrictEquals(
    validateValue({ type: "bigint" }, 1, isIdOfTable),
    "Value does not match validator.\n\nValue: 1.0\nValidator: v.int64()",
  );
  assertStrictEquals(validateValue({ type: "bytes" }, bytes(1), isIdOfTable), null);
  assertStrictEquals(validateValue({ type: "null" }, null, isIdOfTable), null);
  assertStrictEquals(validateValue({ type: "boolean" }, false, isIdOfTable), null);
  assertStrictEquals(validateValue({ type: "any" }, { x: [1n] }, isIdOfTable), null);
  assert(validateValue({ type: "boolean" }, 0, isIdOfTable) !== null);
});

Deno.test("validators: unions and literals", () => {
  const nullableString: ValidatorJson = { type: "union", value: [str, { type: "null" }] };
  assertStrictEquals(validateValue(nullableString, "x", isIdOfTable), null);
  assertStrictEquals(validateValue(nullableString, null, isIdOfTable), null);
  assertStrictEquals(
    validateValue(nullableString, 1, isIdOfTable),
    "Value does not match validator.\n\nValue: 1.0\nValidator: v.union(v.string(), v.null())",
  );
  const kind: ValidatorJson = { type: "literal", value: "a" };
  assertStrictEquals(validateValue(kind, "a", isIdOfTable), null);
  assertStrictEquals(
    validateValue(obj({ kind }), { kind: "b" }, isIdOfTable),
    '`"b"` does not match literal validator `v.literal("a")`.\nPath: .kind',
  );
  const five: ValidatorJson = { type: "literal", value: { $integer: "BQAAAAAAAAA=" } };
  assertStrictEquals(validateValue(five, 5n, isIdOfTable), null);
  assertStrictEquals(
    validateValue(five, 5, isIdOfTable),
    "`5.0` does not match literal validator `v.literal(<bigint>)`.",
  );
  const two: ValidatorJson = { type: "literal", value: 2 };
  assertStrictEquals(validateValue(two, 2, isIdOfTable), null);
  assertStrictEquals(validateValue(two, 2n, isIdOfTable), "`2` does not match literal validator `v.literal(2.0)`.");
  assertStrictEquals(
    validateValue({ type: "literal", value: true }, false, isIdOfTable),
    "`false` does not match literal validator `v.literal(true)`.",
  );
  // A union of literals reports the union.
  const ab: ValidatorJson = {
    type: "union",
    value: [{ type: "literal", value: "a" }, { type: "literal", value: "b" }],
  };
  assertStrictEquals(validateValue(ab, "b", isIdOfTable), null);
  assertStrictEquals(
    validateValue(ab, "c", isIdOfTable),
    'Value does not match validator.\n\nValue: "c"\nValidator: v.union(v.literal("a"), v.literal("b"))',
  );
});

Deno.test("validators: ids of a table", () => {
  const id = generateDocumentId(10);
  userIds.add(id);
  const userId: ValidatorJson = { type: "id", tableName: "users" };
  assertStrictEquals(validateValue(userId, id, isIdOfTable), null);
  assertStrictEquals(
    validateValue(obj({ owner: userId }), { owner: "not-an-id" }, isIdOfTable),
    'Value does not match validator.\nPath: .owner\nValue: "not-an-id"\nValidator: v.id("users")',
  );
  assertStrictEquals(
    validateValue({ type: "id", tableName: "posts" }, id, isIdOfTable)?.startsWith("Value does not match"),
    true,
  );
  assertStrictEquals(validateValue(userId, 5, isIdOfTable)?.includes('v.id("users")'), true);
});

Deno.test("validators: records", () => {
  const scores: ValidatorJson = { type: "record", keys: str, values: { fieldType: num, optional: false } };
  assertStrictEquals(validateValue(scores, {}, isIdOfTable), null);
  assertStrictEquals(validateValue(scores, { alice: 1, bob: 2 }, isIdOfTable), null);
  assertStrictEquals(
    validateValue(scores, { alice: 1, bob: "x" }, isIdOfTable),
    'Value does not match validator.\nPath: .values()\nValue: "x"\nValidator: v.float64()',
  );
  const byUser: ValidatorJson = {
    type: "record",
    keys: { type: "id", tableName: "users" },
    values: { fieldType: num, optional: false },
  };
  assertStrictEquals(
    validateValue(byUser, { someone: 1 }, isIdOfTable),
    'Value does not match validator.\nPath: .keys()\nValue: "someone"\nValidator: v.id("users")',
  );
  assert(validateValue(scores, [1], isIdOfTable)?.includes("v.record(v.string(), v.float64())"));
});

Deno.test("validators: parseValidatorJson checks untrusted validator JSON", () => {
  const good = {
    type: "object",
    value: { a: { fieldType: { type: "union", value: [{ type: "string" }] }, optional: true } },
  };
  assertEquals(parseValidatorJson(good), good);
  parseValidatorJson({ type: "literal", value: { $integer: "BQAAAAAAAAA=" } });
  parseValidatorJson({
    type: "record",
    keys: { type: "id", tableName: "t" },
    values: { fieldType: { type: "any" }, optional: false },
  });
  throwsValueError(() => parseValidatorJson({ type: "wat" }), "unknown validator type");
  throwsValueError(
    () => parseValidatorJson({ type: "object", value: { "a-b": { fieldType: { type: "any" }, optional: false } } }),
    "field name",
  );
  throwsValueError(() => parseValidatorJson({ type: "object", value: { a: { type: "string" } } }), "fieldType");
  throwsValueError(
    () =>
      parseValidatorJson({
        type: "record",
        keys: { type: "number" },
        values: { fieldType: { type: "any" }, optional: false },
      }),
    "record keys",
  );
  throwsValueError(
    () =>
      parseValidatorJson({
        type: "record",
        keys: { type: "string" },
        values: { fieldType: { type: "any" }, optional: true },
      }),
    "optional",
  );
  throwsValueError(() => parseValidatorJson({ type: "literal", value: null }), "literal");
  throwsValueError(() => parseValidatorJson({ type: "array" }), "expected an object");
});
