/**
 * The authenticator: turns an `Authorization` header or a sync `Authenticate` message into a {@link Caller}, checking
 * user JWTs against the active deployment's providers and admin keys in constant time.
 */
import { ADMIN_KEY_REFUSED_STATUS, AuthenticationError, badAdminKeyError } from "./errors.ts";
import { identityFromAttributes, identityFromClaims } from "./identity.ts";
import { type AuthProvider, KeySetCache, parseAuthConfig } from "./providers.ts";
import { verifyUserToken } from "./verify.ts";

/** Who is calling. */
export interface Caller {
  /** JSON of the user identity functions see, or null. */
  identityJson: string | null;
  /** Admins may call internal and `_system/` functions. */
  isAdmin: boolean;
  /** When the user's token expires (ms since epoch), if it does. */
  expiresAtMs: number | null;
}

/** The anonymous caller. */
export const ANONYMOUS: Caller = Object.freeze({ identityJson: null, isAdmin: false, expiresAtMs: null });

/** Longest `Authorization` header examined. */
const MAX_HEADER_LENGTH = 128 * 1024;

/** Compares two strings in time that depends only on their lengths. */
export function constantTimeEqual(a: string, b: string): boolean {
  const left = new TextEncoder().encode(a);
  const right = new TextEncoder().encode(b);
  let diff = left.length ^ right.length;
  for (let i = 0; i < left.length; i++) diff |= left[i] ^ (right[i % Math.max(right.length, 1)] ?? 0);
  return diff === 0;
}

/** What the authenticator needs. */
export interface AuthenticatorOptions {
  adminKey: string;
  /** The active deployment's `auth.config.ts` default export (it changes with each push). */
  authConfig(): unknown;
  fetch?: typeof fetch;
}

/** See the module comment. */
export class Authenticator {
  readonly #adminKey: string;
  readonly #authConfig: () => unknown;
  readonly #keys: KeySetCache;
  #providersFor: unknown = undefined;
  #providers: AuthProvider[] = [];

  constructor(options: AuthenticatorOptions) {
    this.#adminKey = options.adminKey;
    this.#authConfig = options.authConfig;
    this.#keys = new KeySetCache(options.fetch);
  }

  /** The caller an HTTP `Authorization` header names; throws AuthenticationError for bad credentials. */
  fromAuthorizationHeader(header: string | null | undefined): Promise<Caller> {
    if (!header) return Promise.resolve(ANONYMOUS);
    if (header.length > MAX_HEADER_LENGTH) {
      return Promise.reject(new AuthenticationError("BadAuthHeader", "The Authorization header is too long"));
    }
    const space = header.indexOf(" ");
    const scheme = space < 0 ? header : header.slice(0, space);
    const value = space < 0 ? "" : header.slice(space + 1).trim();
    if (scheme === "Bearer") return this.fromUserToken(value);
    if (scheme === "Convex") {
      try {
        return Promise.resolve(this.fromAdminHeaderValue(value));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return Promise.reject(
      new AuthenticationError("BadAuthHeader", "The Authorization header must be `Bearer <token>` or `Convex <key>`"),
    );
  }

  /** `Convex <adminKey>` or `Convex <adminKey>:<base64 JSON identity>` (an optional `prod:`-style prefix ignored). */
  fromAdminHeaderValue(value: string): Caller {
    if (constantTimeEqual(value, this.#adminKey)) return this.fromAdminKey(value);
    // An admin key holds no ':'; whatever follows the first one after the key is the impersonated identity.
    let rest = value;
    const prefixed = /^(prod|dev|preview):/.exec(rest);
    if (prefixed && !rest.slice(prefixed[0].length).startsWith(":")) rest = rest.slice(prefixed[0].length);
    const colon = rest.indexOf(":");
    const key = colon < 0 ? rest : rest.slice(0, colon);
    if (colon < 0) return this.fromAdminKey(key);
    let attributes: unknown;
    try {
      const bytes = Uint8Array.fromBase64(rest.slice(colon + 1));
      attributes = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      throw new AuthenticationError(
        "BadAdminKey",
        "The impersonated identity is not base64 of a JSON object",
        ADMIN_KEY_REFUSED_STATUS,
      );
    }
    return this.fromAdminKey(key, attributes);
  }

  /** An admin caller, optionally acting as a user; throws AuthenticationError unless `key` is the admin key. */
  fromAdminKey(key: string, impersonating?: unknown): Caller {
    if (!constantTimeEqual(key, this.#adminKey)) {
      throw badAdminKeyError();
    }
    if (impersonating === undefined || impersonating === null) {
      return { identityJson: null, isAdmin: true, expiresAtMs: null };
    }
    try {
      return { identityJson: JSON.stringify(identityFromAttributes(impersonating)), isAdmin: true, expiresAtMs: null };
    } catch (error) {
      throw new AuthenticationError("BadAdminKey", (error as Error).message, ADMIN_KEY_REFUSED_STATUS);
    }
  }

  /** A user caller from a JWT; throws AuthenticationError for invalid, expired or unknown-issuer tokens. */
  async fromUserToken(token: string, nowMs = Date.now()): Promise<Caller> {
    try {
      const claims = await this.#verify(token, nowMs);
      return {
        identityJson: JSON.stringify(identityFromClaims(claims)),
        isAdmin: false,
        expiresAtMs: typeof claims.exp === "number" ? claims.exp * 1000 : null,
      };
    } catch (error) {
      if (error instanceof AuthenticationError) throw error;
      const message = error instanceof Error ? error.message : String(error);
      throw new AuthenticationError("InvalidAuthHeader", `Could not verify the auth token: ${message}`);
    }
  }

  #currentProviders(): AuthProvider[] {
    const config = this.#authConfig();
    if (config !== this.#providersFor) {
      this.#providersFor = config;
      this.#providers = parseAuthConfig(config);
    }
    return this.#providers;
  }

  #verify(token: string, nowMs: number): Promise<Record<string, unknown>> {
    return verifyUserToken(token, this.#currentProviders(), this.#keys, nowMs);
  }
}
