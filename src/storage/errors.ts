/**
 * Storage failures with Convex's codes and messages: a delete of a file that does not exist, a `sha256` that does not
 * match the bytes, a malformed `Digest` header.
 *
 * Private to `src/storage`: other folders use its `mod.ts`.
 */
import { DenvexError } from "../errors/mod.ts";

/** `storage.delete` of an ID with no file (never stored, already deleted, or another component's). */
export class StorageIdNotFoundError extends DenvexError {
  constructor(storageId: string) {
    super("StorageIdNotFound", `storage id ${storageId} not found`, { httpStatus: 400 });
    this.name = "StorageIdNotFoundError";
  }
}

/** An upload or `store` whose declared SHA-256 is not the bytes': nothing was kept. */
export class Sha256MismatchError extends DenvexError {
  constructor(expectedBase64: string, actualBase64: string) {
    super("Sha256Mismatch", `Sha256 mismatch. Expected: ${expectedBase64} Actual: ${actualBase64}`, {
      httpStatus: 400,
    });
    this.name = "Sha256MismatchError";
  }
}

/** A `Digest` request header that is not `sha-256=<base64 of 32 bytes>`. */
export class BadDigestHeaderError extends DenvexError {
  constructor() {
    super("BadHeader", "Bad header for digest: invalid HTTP header", { httpStatus: 400 });
    this.name = "BadDigestHeaderError";
  }
}

/**
 * The SHA-256 a caller declared, as base64, from `store(blob, {sha256})` (hex or base64 accepted) or null when none;
 * throws for a value that is neither.
 */
export function expectedSha256Base64(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== "string") throw new Sha256FormatError();
  if (/^[0-9a-fA-F]{64}$/.test(value)) return Uint8Array.fromHex(value).toBase64();
  try {
    const bytes = Uint8Array.fromBase64(value);
    if (bytes.length === 32) return bytes.toBase64();
  } catch {
    // Neither encoding: refused below.
  }
  throw new Sha256FormatError();
}

/** The SHA-256 of a `Digest: sha-256=<base64>` header (null without one); throws `BadDigestHeaderError`. */
export function digestHeaderSha256(header: string | null | undefined): string | null {
  if (header === null || header === undefined) return null;
  const value = header.trim();
  if (!value.startsWith("sha-256=")) throw new BadDigestHeaderError();
  try {
    const bytes = Uint8Array.fromBase64(value.slice("sha-256=".length));
    if (bytes.length === 32) return bytes.toBase64();
  } catch {
    // Refused below.
  }
  throw new BadDigestHeaderError();
}

/** A `sha256` option that is not a SHA-256 in hex or base64. */
class Sha256FormatError extends DenvexError {
  constructor() {
    super("InvalidSha256", "sha256 must be the SHA-256 of the file in hex or base64", { httpStatus: 400 });
    this.name = "Sha256FormatError";
  }
}
