/**
 * 64-bit timestamps on the wire (convex-compat.md §1.10): unsigned, nanoseconds since the Unix epoch, sent as the
 * standard padded base64 of their 8 little-endian bytes.
 */
import { decodeBase64To8Bytes, uint64ToBase64 } from "./base64.ts";
import { ValueError } from "./errors.ts";

const MAX_UINT64 = (1n << 64n) - 1n;

/** Encodes a uint64 timestamp for the wire: 0n → "AAAAAAAAAAA=", 15n → "DwAAAAAAAAA=". */
export function timestampToBase64(ts: bigint): string {
  if (ts < 0n || ts > MAX_UINT64) throw new ValueError(`Timestamp ${ts} does not fit into an unsigned 64-bit integer.`);
  return uint64ToBase64(ts);
}

/** Decodes a wire timestamp; throws a ValueError unless `s` is base64 of exactly 8 bytes. */
export function timestampFromBase64(s: string): bigint {
  if (typeof s !== "string") throw new ValueError("Timestamp must be a base64 string.");
  return decodeBase64To8Bytes(s, "a timestamp").getBigUint64(0, true);
}
