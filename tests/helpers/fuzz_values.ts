/**
 * Random and mutated JSON for the fuzz test: values of every JSON type (with Convex's encoded specials, odd numbers,
 * odd strings, deep nesting and big strings, all bounded), structural mutations of valid request objects, and
 * byte-level mutations of encoded bodies (truncation, invalid UTF-8, flipped bytes).
 */
import type { Rng } from "./fuzz_rng.ts";

/** A JSON value as the fuzzer builds it. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Deepest nesting of the "deep" bodies (Convex allows 16 levels; the parser must refuse, not overflow). */
export const MAX_FUZZ_DEPTH = 20_000;
/** Largest random string: Convex's argument limit is 16 MiB, 1 MiB is plenty to hit per-byte costs. */
export const MAX_FUZZ_STRING_BYTES = 1024 * 1024;

const ODD_NUMBERS: readonly number[] = [
  0,
  -0,
  -1,
  1e308,
  -1e308,
  5e-324,
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 63),
  2 ** 64,
  4294967296,
  -2147483649,
  0.1,
  1e21,
];

const ODD_STRINGS: readonly string[] = [
  "",
  "\u0000",
  "\ud800",
  "\udfff\ud800",
  "😀",
  "..",
  "../../etc/passwd",
  "%00",
  "a".repeat(1025),
  "$integer",
  "_id",
  "__proto__",
  "constructor",
  "messages:list",
  "messages:secret",
  "_system/cli/tables",
  "<script>",
  "\r\nX-Injected: 1",
];

/** Keys worth trying in objects: Convex reserves `$`-prefixed and `_`-prefixed names. */
const ODD_KEYS: readonly string[] = ["$integer", "$float", "$bytes", "_id", "__proto__", "", "a.b", "$", "💥"];

/** A random string of a random kind (short by default, rarely large). */
export function randomString(rng: Rng): string {
  switch (rng.int(6)) {
    case 0:
      return rng.pick(ODD_STRINGS);
    case 1:
      return String.fromCharCode(...Array.from({ length: rng.int(16) }, () => rng.int(0x10000)));
    case 2:
      return "x".repeat(rng.chance(0.05) ? rng.range(64 * 1024, MAX_FUZZ_STRING_BYTES) : rng.int(300));
    default:
      return Array.from({ length: rng.range(1, 12) }, () => String.fromCharCode(rng.range(0x20, 0x7e))).join("");
  }
}

/** A Convex-encoded special value, valid or broken (`$integer` wants 8 bytes of base64, `$float` likewise). */
function encodedSpecial(rng: Rng): Json {
  const payloads = ["AAAAAAAAAAA=", "AQAAAAAAAAA=", "////////////", "!!", "", "AAAAAAAAAPh/", "AAAAAAAA"];
  switch (rng.int(4)) {
    case 0:
      return { $integer: rng.pick(payloads) };
    case 1:
      return { $float: rng.pick(payloads) };
    case 2:
      return { $bytes: rng.pick(payloads) };
    default:
      return { [rng.pick(ODD_KEYS)]: randomValue(rng, 1) };
  }
}

/** A random JSON value at most `depth` levels deep. */
export function randomValue(rng: Rng, depth = 4): Json {
  const kind = depth <= 0 ? rng.int(5) : rng.int(8);
  switch (kind) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.chance(0.5) ? rng.pick(ODD_NUMBERS) : rng.range(-1000, 1000);
    case 3:
    case 4:
      return randomString(rng);
    case 5:
      return Array.from({ length: rng.int(5) }, () => randomValue(rng, depth - 1));
    case 6:
      return encodedSpecial(rng);
    default: {
      const object: Record<string, Json> = {};
      for (let i = rng.int(5); i > 0; i--) {
        object[rng.chance(0.3) ? rng.pick(ODD_KEYS) : randomString(rng).slice(0, 40)] = randomValue(rng, depth - 1);
      }
      return object;
    }
  }
}

/** JSON text of `inner` nested `levels` deep in arrays or objects (built as text: no recursion here). */
export function deeplyNested(rng: Rng, levels: number, inner = "1"): string {
  const useArrays = rng.chance(0.5);
  const open = useArrays ? "[" : '{"a":';
  const close = useArrays ? "]" : "}";
  return open.repeat(levels) + inner + close.repeat(levels);
}

/** A copy of `object` with one structural change: a field dropped, retyped, replaced or added. */
export function mutateObject(rng: Rng, object: Record<string, Json>): Record<string, Json> {
  const copy: Record<string, Json> = { ...object };
  const keys = Object.keys(copy);
  const key = keys.length > 0 ? rng.pick(keys) : "x";
  switch (rng.int(5)) {
    case 0:
      delete copy[key];
      break;
    case 1:
      copy[key] = randomValue(rng, 3);
      break;
    case 2:
      copy[rng.chance(0.5) ? rng.pick(ODD_KEYS) : randomString(rng).slice(0, 40)] = randomValue(rng, 2);
      break;
    case 3: {
      // Go one level down when the field is an object (args are where most of the interest is).
      const inner = copy[key];
      copy[key] = inner !== null && typeof inner === "object" && !Array.isArray(inner)
        ? mutateObject(rng, inner)
        : [inner];
      break;
    }
    default:
      copy[key] = rng.pick<Json>([null, "", 0, [], {}, true, -1, [copy[key], copy[key]]]);
  }
  return copy;
}

/** Bytes that are never valid UTF-8 (lone continuation, overlong NUL, surrogate, 0xFF, a cut 4-byte sequence). */
const INVALID_UTF8: readonly number[][] = [[0x80], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xff], [0xf0, 0x9f, 0x98]];

/** A byte-level mutation of an encoded body: truncation, invalid UTF-8, flipped or inserted bytes, NUL bytes. */
export function mutateBytes(rng: Rng, bytes: Uint8Array): Uint8Array {
  const at = bytes.length === 0 ? 0 : rng.int(bytes.length);
  switch (rng.int(5)) {
    case 0:
      return bytes.slice(0, at);
    case 1:
      return concat(bytes.slice(0, at), new Uint8Array(rng.pick(INVALID_UTF8)), bytes.slice(at));
    case 2: {
      const copy = bytes.slice();
      for (let i = rng.range(1, 4); i > 0 && copy.length > 0; i--) copy[rng.int(copy.length)] ^= 1 << rng.int(8);
      return copy;
    }
    case 3:
      return concat(bytes.slice(0, at), rng.bytes(rng.range(1, 8)), bytes.slice(at));
    default:
      return concat(bytes.slice(0, at), new Uint8Array([0]), bytes.slice(at));
  }
}

/** The bytes of `parts`, one after the other. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
