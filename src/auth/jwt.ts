/**
 * JSON Web Tokens: parsing and signature checks with WebCrypto (RS256 and ES256, the algorithms Convex accepts).
 */

import { DenvexError } from "../errors/mod.ts";

/** A JWT split into its parts; the signature is not checked yet. */
export interface ParsedJwt {
  header: { alg?: unknown; kid?: unknown; typ?: unknown };
  claims: Record<string, unknown>;
  signingInput: Uint8Array;
  signature: Uint8Array;
}

/** A public key of a JWKS document. */
export interface Jwk extends JsonWebKey {
  kid?: string;
  use?: string;
}

/** The longest token accepted; real ones are a few KiB. */
export const MAX_JWT_LENGTH = 64 * 1024;

/** Thrown for every malformed or unverifiable token; `message` is shown to the client. */
export class TokenError extends DenvexError {
  constructor(message: string) {
    // Reaches clients as `AuthenticationError` `InvalidAuthHeader` (src/auth/mod.ts), with this message inside.
    super("InvalidAuthHeader", message, { httpStatus: 401 });
    this.name = "TokenError";
  }
}

/** Decodes base64url (no padding) to bytes. */
export function base64UrlDecode(text: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new TokenError("Token is not valid base64url");
  try {
    return Uint8Array.fromBase64(text, { alphabet: "base64url" });
  } catch {
    throw new TokenError("Token is not valid base64url");
  }
}

/** Encodes bytes as base64url without padding. */
export function base64UrlEncode(bytes: Uint8Array): string {
  return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
}

function decodeJsonPart(part: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(base64UrlDecode(part)));
  } catch {
    throw new TokenError(`Could not parse the JWT ${what}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new TokenError(`The JWT ${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** Splits and decodes a compact JWS; throws TokenError when it is not one. */
export function parseJwt(token: string): ParsedJwt {
  if (token.length > MAX_JWT_LENGTH) throw new TokenError("Token is too long");
  const parts = token.split(".");
  if (parts.length !== 3) throw new TokenError("Token is not a JWT (expected three dot-separated parts)");
  return {
    header: decodeJsonPart(parts[0], "header"),
    claims: decodeJsonPart(parts[1], "payload"),
    signingInput: new TextEncoder().encode(`${parts[0]}.${parts[1]}`),
    signature: base64UrlDecode(parts[2]),
  };
}

/** WebCrypto parameters for a JWS algorithm, or null if unsupported. */
export function algorithmParams(
  alg: string,
): { importParams: RsaHashedImportParams | EcKeyImportParams; verify: AlgorithmIdentifier | EcdsaParams } | null {
  switch (alg) {
    case "RS256":
      return {
        importParams: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
        verify: { name: "RSASSA-PKCS1-v1_5" },
      };
    case "ES256":
      return { importParams: { name: "ECDSA", namedCurve: "P-256" }, verify: { name: "ECDSA", hash: "SHA-256" } };
    default:
      return null;
  }
}

/** True if `jwt`'s signature verifies under `jwk` with `alg`. */
export async function verifySignature(jwt: ParsedJwt, jwk: Jwk, alg: string): Promise<boolean> {
  const params = algorithmParams(alg);
  if (!params) return false;
  let key: CryptoKey;
  try {
    const { kid: _kid, use: _use, alg: _alg, key_ops: _ops, ...material } = jwk;
    key = await crypto.subtle.importKey("jwk", material, params.importParams, false, ["verify"]);
  } catch {
    return false;
  }
  try {
    return await crypto.subtle.verify(
      params.verify,
      key,
      jwt.signature as Uint8Array<ArrayBuffer>,
      jwt.signingInput as Uint8Array<ArrayBuffer>,
    );
  } catch {
    return false;
  }
}
