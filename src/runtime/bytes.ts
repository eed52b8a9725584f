/** Byte helpers shared by the runtime's channels. */

/** `parts` joined into one array of `totalBytes` (the first part itself when it is the only one). */
export function concatBytes(parts: Uint8Array[], totalBytes: number): Uint8Array {
  if (parts.length === 1 && parts[0].length === totalBytes) return parts[0];
  const out = new Uint8Array(totalBytes);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
