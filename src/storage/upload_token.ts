/**
 * Upload tokens of `generateUploadUrl()`: `<payload>.<HMAC-SHA256(payload) in base64url>`, keyed by a secret derived
 * from the admin key, so tokens survive a restart, cannot be forged without the key, and expire on their own. The
 * payload is the expiry in ms, followed for a component's upload URL by `~<component path in base64url>`: the upload
 * stores its file in the namespace that generated the URL, and the path is signed with the expiry.
 */

/** How long an upload URL stays valid (Convex documents one hour). */
export const UPLOAD_TOKEN_LIFETIME_MS = 60 * 60 * 1000;
/** Room for a deep component path (each path byte is 4/3 of a character in base64url). */
const MAX_TOKEN_LENGTH = 2048;
const PATH_SEPARATOR = "~";

/** What a token grants: an upload into the namespace `componentPath` (`""` the app), or why not. */
export type UploadTokenCheck = { ok: true; componentPath: string } | { ok: false; problem: string };

const EXPIRED_PROBLEM = "the upload URL has expired";

/**
 * Convex's answer to an upload with a token that is refused (401 either way): `StorageTokenExpired` for an expired
 * one, `StorageTokenInvalid` for anything that does not decode or verify (missing, malformed, forged).
 */
export function uploadTokenRefusal(check: { ok: false; problem: string }): { code: string; message: string } {
  return check.problem === EXPIRED_PROBLEM
    ? { code: "StorageTokenExpired", message: "Store File Authorization expired" }
    : { code: "StorageTokenInvalid", message: "Couldn't decode the StoreFileAuthorization token" };
}

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

  /** A token for an upload into `componentPath`, valid until `nowMs + UPLOAD_TOKEN_LIFETIME_MS`. */
  async issue(componentPath = "", nowMs = Date.now()): Promise<string> {
    const expiry = String(nowMs + UPLOAD_TOKEN_LIFETIME_MS);
    const path = new TextEncoder().encode(componentPath).toBase64({ alphabet: "base64url", omitPadding: true });
    const payload = componentPath === "" ? expiry : `${expiry}${PATH_SEPARATOR}${path}`;
    const signature = await crypto.subtle.sign("HMAC", await this.#key, new TextEncoder().encode(payload));
    return `${payload}.${new Uint8Array(signature).toBase64({ alphabet: "base64url", omitPadding: true })}`;
  }

  /** The namespace `token` uploads into if it is valid now, else why it is not. */
  async check(token: string | undefined, nowMs = Date.now()): Promise<UploadTokenCheck> {
    const refuse = (problem: string): UploadTokenCheck => ({ ok: false, problem });
    if (!token || token.length > MAX_TOKEN_LENGTH) return refuse("missing or malformed upload token");
    const dot = token.indexOf(".");
    const payload = token.slice(0, Math.max(dot, 0));
    const match = /^(\d{1,16})(?:~([A-Za-z0-9_-]+))?$/.exec(payload);
    if (dot <= 0 || match === null) return refuse("malformed upload token");
    let signature: Uint8Array<ArrayBuffer>;
    let componentPath = "";
    try {
      signature = Uint8Array.fromBase64(token.slice(dot + 1), { alphabet: "base64url" }) as Uint8Array<ArrayBuffer>;
      if (match[2] !== undefined) {
        componentPath = new TextDecoder("utf-8", { fatal: true }).decode(
          Uint8Array.fromBase64(match[2], { alphabet: "base64url" }),
        );
      }
    } catch {
      return refuse("malformed upload token");
    }
    const valid = await crypto.subtle.verify("HMAC", await this.#key, signature, new TextEncoder().encode(payload));
    if (!valid) return refuse("invalid upload token");
    if (Number(match[1]) < nowMs) return refuse(EXPIRED_PROBLEM);
    return { ok: true, componentPath };
  }
}
