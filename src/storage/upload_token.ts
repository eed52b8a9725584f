/**
 * Upload tokens of `generateUploadUrl()`: `<expiry ms>.<HMAC-SHA256(expiry) in base64url>`, keyed by a secret derived
 * from the admin key, so tokens survive a restart, cannot be forged without the key, and expire on their own.
 */

/** How long an upload URL stays valid (Convex documents one hour). */
export const UPLOAD_TOKEN_LIFETIME_MS = 60 * 60 * 1000;
const MAX_TOKEN_LENGTH = 128;

/** Signs and checks upload tokens. */
export class UploadTokens {
  readonly #key: Promise<CryptoKey>;

  constructor(adminKey: string) {
    this.#key = (async () => {
      // A key of its own (not the admin key itself): a leaked upload token reveals nothing about admin access.
      const material = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`denvex-upload|${adminKey}`));
      return await crypto.subtle.importKey("raw", material, { name: "HMAC", hash: "SHA-256" }, false, [
        "sign",
        "verify",
      ]);
    })();
  }

  /** A token valid until `nowMs + UPLOAD_TOKEN_LIFETIME_MS`. */
  async issue(nowMs = Date.now()): Promise<string> {
    const expiry = String(nowMs + UPLOAD_TOKEN_LIFETIME_MS);
    const signature = await crypto.subtle.sign("HMAC", await this.#key, new TextEncoder().encode(expiry));
    return `${expiry}.${new Uint8Array(signature).toBase64({ alphabet: "base64url", omitPadding: true })}`;
  }

  /** null if `token` is valid now, else why not. */
  async check(token: string | undefined, nowMs = Date.now()): Promise<string | null> {
    if (!token || token.length > MAX_TOKEN_LENGTH) return "missing or malformed upload token";
    const dot = token.indexOf(".");
    const expiry = token.slice(0, dot);
    if (dot <= 0 || !/^\d{1,16}$/.test(expiry)) return "malformed upload token";
    let signature: Uint8Array<ArrayBuffer>;
    try {
      signature = Uint8Array.fromBase64(token.slice(dot + 1), { alphabet: "base64url" }) as Uint8Array<ArrayBuffer>;
    } catch {
      return "malformed upload token";
    }
    const valid = await crypto.subtle.verify("HMAC", await this.#key, signature, new TextEncoder().encode(expiry));
    if (!valid) return "invalid upload token";
    if (Number(expiry) < nowMs) return "the upload URL has expired";
    return null;
  }
}
