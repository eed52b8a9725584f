/** Test helpers: index keys from literal bytes, and read ranges over them as the database records them. */
import type { ReadRange } from "../../src/database/mod.ts";

/** An index key made of `bytes`. */
export function key(...bytes: number[]): Uint8Array {
  return new Uint8Array(bytes);
}

function base64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

/** The read range [low, high) of `indexId`; `high` null is unbounded. */
export function readRange(indexId: number, low: Uint8Array, high: Uint8Array | null): ReadRange {
  return { indexId, lowKey: base64(low), highKey: high === null ? null : base64(high) };
}

/** The read range of a point lookup: exactly `bytes` (the next key up is `bytes` followed by a zero byte). */
export function pointRange(indexId: number, bytes: Uint8Array): ReadRange {
  return readRange(indexId, bytes, key(...bytes, 0));
}
