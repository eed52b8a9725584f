/**
 * Dashboard sessions: signing in with the admin key yields a random token kept in a bounded in-memory map and handed to
 * the browser as an HttpOnly, SameSite=Strict cookie that expires. The token never leaves the cookie (scripts cannot
 * read it), and a restart signs everyone out, which is the point of keeping no session on disk.
 */

/** The cookie's name. */
export const SESSION_COOKIE = "denvex_dashboard";
/** How long a session lasts from sign-in (it is not extended by use: an operator signs in again each working day). */
export const SESSION_LIFETIME_MS = 12 * 60 * 60 * 1000;
/** Most live sessions; signing in past it drops the oldest (a loop of sign-ins cannot grow the map). */
export const MAX_SESSIONS = 256;
const TOKEN_BYTES = 32;

/** See the module comment. */
export class SessionStore {
  /** token → expiry (ms since the epoch); a Map keeps insertion order, so the first entry is the oldest. */
  readonly #expiresAtMs = new Map<string, number>();
  readonly #lifetimeMs: number;

  constructor(lifetimeMs = SESSION_LIFETIME_MS) {
    this.#lifetimeMs = lifetimeMs;
  }

  /** Starts a session; returns its token. */
  create(nowMs = Date.now()): string {
    this.#dropExpired(nowMs);
    while (this.#expiresAtMs.size >= MAX_SESSIONS) {
      this.#expiresAtMs.delete(this.#expiresAtMs.keys().next().value!);
    }
    const token = crypto.getRandomValues(new Uint8Array(TOKEN_BYTES)).toHex();
    this.#expiresAtMs.set(token, nowMs + this.#lifetimeMs);
    return token;
  }

  /** True when `token` names a live session. */
  isValid(token: string | null, nowMs = Date.now()): boolean {
    if (token === null) return false;
    const expiresAtMs = this.#expiresAtMs.get(token);
    if (expiresAtMs === undefined) return false;
    if (expiresAtMs <= nowMs) {
      this.#expiresAtMs.delete(token);
      return false;
    }
    return true;
  }

  /** Ends a session (sign-out). */
  remove(token: string | null): void {
    if (token !== null) this.#expiresAtMs.delete(token);
  }

  get size(): number {
    return this.#expiresAtMs.size;
  }

  #dropExpired(nowMs: number): void {
    for (const [token, expiresAtMs] of this.#expiresAtMs) {
      if (expiresAtMs <= nowMs) this.#expiresAtMs.delete(token);
    }
  }
}

/** The session token in a `Cookie` header, or null. */
export function sessionTokenOf(cookieHeader: string | null | undefined): string | null {
  if (!cookieHeader) return null;
  for (const part of cookieHeader.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === SESSION_COOKIE) return rest.join("=") || null;
  }
  return null;
}

/**
 * The `Set-Cookie` value that stores `token` for `lifetimeMs`, scoped to the dashboard's paths; `secure` (the page
 * came over HTTPS, e.g. through a proxy) keeps the browser from ever sending it over plain HTTP.
 */
export function sessionCookie(token: string, lifetimeMs = SESSION_LIFETIME_MS, secure = false): string {
  const maxAgeSeconds = Math.floor(lifetimeMs / 1000);
  return `${SESSION_COOKIE}=${token}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}` +
    (secure ? "; Secure" : "");
}

/** The `Set-Cookie` value that deletes the cookie. */
export function clearedSessionCookie(): string {
  return `${SESSION_COOKIE}=; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=0`;
}
