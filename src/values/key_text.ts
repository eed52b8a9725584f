/** Index keys as text (cursors, logs, JSON): standard padded base64 of the key bytes. */
import { decodeBase64, encodeBase64 } from "./base64.ts";

/** Encodes an index key as standard padded base64. */
export function keyToBase64(key: Uint8Array): string {
  return encodeBase64(key);
}

/** Decodes {@link keyToBase64} output; throws a ValueError for malformed base64. */
export function keyFromBase64(s: string): Uint8Array {
  return decodeBase64(s);
}
