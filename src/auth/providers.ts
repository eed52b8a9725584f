/**
 * Auth providers of `auth.config.ts` and their signing keys. OIDC providers publish their JWKS through the discovery
 * document at `<domain>/.well-known/openid-configuration`; `customJwt` providers name the JWKS URL (or a `data:` URI)
 * directly. Key sets are cached and refetched when a token names an unknown `kid` (key rotation), at most once per
 * {@link MIN_REFETCH_INTERVAL_MS}.
 */
import type { Jwk } from "./jwt.ts";

/** A provider as `auth.config.ts` declares it, normalized. */
export interface AuthProvider {
  kind: "oidc" | "customJwt";
  issuer: string;
  /** Required audience (`aud` must contain it); null to skip the check (customJwt without applicationID). */
  applicationID: string | null;
  /** Where the key set comes from: a JWKS URL, or the OIDC discovery document to find it. */
  jwksUrl: string | null;
  discoveryUrl: string | null;
  /** Allowed algorithms: RS256/ES256 for OIDC; exactly the configured one for customJwt. */
  algorithms: string[];
}

/** How long a fetched key set is trusted. */
const KEY_SET_TTL_MS = 10 * 60_000;
/** The fastest a key set is refetched for an unknown `kid`, so forged kids cannot make us hammer the provider. */
const MIN_REFETCH_INTERVAL_MS = 10_000;
/** Key sets remembered at once (one per provider in practice). */
const MAX_CACHED_KEY_SETS = 64;
/** The largest discovery document or JWKS read. */
const MAX_DOCUMENT_BYTES = 1024 * 1024;
/** How long a provider may take to answer. */
const FETCH_TIMEOUT_MS = 10_000;

function trimSlash(url: string): string {
  return url.endsWith("/") ? url.slice(0, -1) : url;
}

/** Reads the providers from an `auth.config.ts` default export; ignores entries it cannot use. */
export function parseAuthConfig(config: unknown): AuthProvider[] {
  if (config === null || typeof config !== "object") return [];
  const providers = (config as { providers?: unknown }).providers;
  if (!Array.isArray(providers)) return [];
  const out: AuthProvider[] = [];
  for (const provider of providers) {
    if (provider === null || typeof provider !== "object") continue;
    const p = provider as Record<string, unknown>;
    if (p.type === "customJwt") {
      if (typeof p.issuer !== "string" || typeof p.jwks !== "string") continue;
      const algorithm = typeof p.algorithm === "string" ? p.algorithm : "RS256";
      out.push({
        kind: "customJwt",
        issuer: p.issuer,
        applicationID: typeof p.applicationID === "string" ? p.applicationID : null,
        jwksUrl: p.jwks,
        discoveryUrl: null,
        algorithms: [algorithm],
      });
    } else if (typeof p.domain === "string" && typeof p.applicationID === "string") {
      out.push({
        kind: "oidc",
        issuer: p.domain,
        applicationID: p.applicationID,
        jwksUrl: null,
        discoveryUrl: `${trimSlash(p.domain)}/.well-known/openid-configuration`,
        algorithms: ["RS256", "ES256"],
      });
    }
  }
  return out;
}

/** True if the token's `iss` names this provider (OIDC domains compare without a trailing slash). */
export function issuerMatches(provider: AuthProvider, iss: string): boolean {
  if (provider.kind === "customJwt") return provider.issuer === iss;
  return trimSlash(provider.issuer) === trimSlash(iss);
}

interface CachedKeys {
  keys: Jwk[];
  fetchedAtMs: number;
}

/** Fetches and caches key sets. */
export class KeySetCache {
  readonly #fetch: typeof fetch;
  readonly #cache = new Map<string, CachedKeys>();
  readonly #inFlight = new Map<string, Promise<CachedKeys>>();

  constructor(fetchImpl: typeof fetch = fetch) {
    this.#fetch = fetchImpl;
  }

  /** The keys of `provider`; with `refresh`, refetched unless fetched very recently. */
  async keys(provider: AuthProvider, refresh = false): Promise<Jwk[]> {
    const cacheKey = provider.jwksUrl ?? provider.discoveryUrl ?? "";
    const cached = this.#cache.get(cacheKey);
    const ageMs = cached ? Date.now() - cached.fetchedAtMs : Infinity;
    if (cached && ageMs < KEY_SET_TTL_MS && (!refresh || ageMs < MIN_REFETCH_INTERVAL_MS)) return cached.keys;
    let pending = this.#inFlight.get(cacheKey);
    if (!pending) {
      pending = this.#load(provider).finally(() => this.#inFlight.delete(cacheKey));
      this.#inFlight.set(cacheKey, pending);
    }
    try {
      const loaded = await pending;
      if (this.#cache.size >= MAX_CACHED_KEY_SETS && !this.#cache.has(cacheKey)) {
        this.#cache.delete(this.#cache.keys().next().value!);
      }
      this.#cache.set(cacheKey, loaded);
      return loaded.keys;
    } catch (error) {
      if (cached) return cached.keys;
      throw error;
    }
  }

  async #load(provider: AuthProvider): Promise<CachedKeys> {
    let jwksUrl = provider.jwksUrl;
    if (!jwksUrl) {
      const discovery = await this.#getJson(provider.discoveryUrl!) as { jwks_uri?: unknown };
      if (typeof discovery.jwks_uri !== "string") {
        throw new Error(`The OIDC discovery document of ${provider.issuer} has no jwks_uri`);
      }
      jwksUrl = discovery.jwks_uri;
    }
    const jwks = await this.#getJson(jwksUrl) as { keys?: unknown };
    if (!Array.isArray(jwks.keys)) throw new Error(`The JWKS at ${jwksUrl} has no keys array`);
    const keys = jwks.keys.filter((key): key is Jwk => key !== null && typeof key === "object");
    return { keys, fetchedAtMs: Date.now() };
  }

  async #getJson(url: string): Promise<unknown> {
    const response = await this.#fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`${url} answered ${response.status}`);
    }
    const text = await response.text();
    if (text.length > MAX_DOCUMENT_BYTES) throw new Error(`${url} returned a document larger than 1 MiB`);
    return JSON.parse(text);
  }
}
