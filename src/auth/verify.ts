/**
 * User token verification in Convex's order, with Convex's codes and messages, so an app's error handling (and a
 * developer reading the client's "Failed to authenticate" line) sees what Convex would say:
 * 1. the payload must parse and name an issuer (`InvalidAuthHeader`);
 * 2. the first provider whose issuer matches, and whose applicationID is among the audiences when it has one, is the
 *    token's provider; none is `NoAuthProvider` with the configured providers listed;
 * 3. OIDC (`domain`/`applicationID`): any failure to verify is `Unauthenticated` "Could not verify OIDC token claim";
 * 4. custom JWT: the key is chosen by `kid` (without one, only a single-key JWKS can choose), then the times are
 *    checked with a 5 s allowance (`InvalidAuthHeader` "Could not validate token: …").
 *
 * Private to `src/auth`: other folders use its `mod.ts`.
 */
import { AuthenticationError } from "./errors.ts";
import { type Jwk, type ParsedJwt, parseJwt, verifySignature } from "./jwt.ts";
import type { AuthProvider, KeySetCache } from "./providers.ts";

/** Convex's allowance for clock differences on a custom JWT's `exp`, `nbf` and `iat`. */
const CUSTOM_JWT_SKEW_MS = 5_000;

const PARSE_MESSAGE = "Could not parse JWT payload. Check that the token is a valid JWT format with three " +
  "base64-encoded parts separated by dots.";
const MISSING_ISSUER_MESSAGE = "Missing issuer claim ('iss') in JWT payload. The JWT must include an 'iss' claim " +
  "that matches one of your configured auth providers.";
const OIDC_PARSE_MESSAGE = "Could not parse as OIDC ID token. Token might not be an OIDC-compliant JWT.";
const OIDC_VERIFY_MESSAGE = "Could not verify OIDC token claim. Check that the token signature is valid and the " +
  "token hasn't expired.";
const CUSTOM_CLAIMS_MESSAGE = "Could not verify token claim. Check that the JWT contains valid claims and matches " +
  "your auth provider configuration.";
const MISSING_KID_MESSAGE = "Could not decode token. JWT may be missing a 'kid' (key ID) header.";

function invalidHeader(message: string): AuthenticationError {
  return new AuthenticationError("InvalidAuthHeader", message);
}

/** The verified claims of `token`; throws AuthenticationError with Convex's code and message otherwise. */
export async function verifyUserToken(
  token: string,
  providers: readonly AuthProvider[],
  keys: KeySetCache,
  nowMs: number,
): Promise<Record<string, unknown>> {
  const jwt = parseOrRefuse(token);
  const { claims } = jwt;
  if (typeof claims.iss !== "string") throw invalidHeader(MISSING_ISSUER_MESSAGE);
  const audiences = audiencesOf(claims.aud);
  const provider = providers.find((candidate) => providerMatches(candidate, claims.iss as string, audiences));
  if (provider === undefined) throw new AuthenticationError("NoAuthProvider", noProviderMessage(providers));
  if (provider.kind === "oidc") await verifyOidc(provider, jwt, keys, nowMs);
  else await verifyCustomJwt(provider, jwt, keys, nowMs);
  return claims;
}

/** Parses the token; registered time claims that are not numbers make the payload unparsable, as in Convex. */
function parseOrRefuse(token: string): ParsedJwt {
  let jwt: ParsedJwt;
  try {
    jwt = parseJwt(token);
  } catch {
    throw invalidHeader(PARSE_MESSAGE);
  }
  for (const claim of ["exp", "nbf", "iat"]) {
    const value = jwt.claims[claim];
    if (value !== undefined && typeof value !== "number") throw invalidHeader(PARSE_MESSAGE);
  }
  return jwt;
}

function audiencesOf(aud: unknown): string[] {
  if (typeof aud === "string") return [aud];
  if (Array.isArray(aud)) return aud.filter((entry): entry is string => typeof entry === "string");
  return [];
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, "");
}

/** A custom JWT issuer without a scheme compares as `https://` (Convex normalizes it so). */
function withScheme(issuer: string): string {
  return /^https?:\/\//.test(issuer) ? issuer : `https://${issuer}`;
}

function providerMatches(provider: AuthProvider, issuer: string, audiences: string[]): boolean {
  if (provider.kind === "oidc") {
    return provider.applicationID !== null && audiences.includes(provider.applicationID) &&
      trimSlash(provider.issuer) === trimSlash(issuer);
  }
  const issuerOk = trimSlash(withScheme(issuer)) === trimSlash(withScheme(provider.issuer));
  return issuerOk && (provider.applicationID === null || audiences.includes(provider.applicationID));
}

/** Convex's message, naming what is configured so a mismatched issuer or audience is easy to spot. */
function noProviderMessage(providers: readonly AuthProvider[]): string {
  if (providers.length === 0) {
    return "No auth provider found matching the given token (no providers configured). Check convex/auth.config.ts.";
  }
  const listed = providers.map((provider) =>
    provider.kind === "oidc"
      ? `OIDC(domain=${provider.issuer}, app_id=${provider.applicationID})`
      : `CustomJWT(issuer=${provider.issuer}, app_id=${provider.applicationID ?? "none"})`
  );
  return "No auth provider found matching the given token. Check that your JWT's issuer and audience match one of " +
    `your configured providers: [${listed.join(", ")}]`;
}

async function verifyOidc(provider: AuthProvider, jwt: ParsedJwt, keys: KeySetCache, nowMs: number): Promise<void> {
  const { claims, header } = jwt;
  // An ID token always has a subject, an expiry and an issue time.
  if (typeof claims.sub !== "string" || typeof claims.exp !== "number" || typeof claims.iat !== "number") {
    throw invalidHeader(OIDC_PARSE_MESSAGE);
  }
  const alg = typeof header.alg === "string" ? header.alg : "";
  const kid = typeof header.kid === "string" ? header.kid : undefined;
  const verified = provider.algorithms.includes(alg) &&
    await signedByProvider(
      provider,
      jwt,
      alg,
      keys,
      (set) => set.filter((key) => kid === undefined || key.kid === kid),
    );
  if (!verified || claims.exp * 1000 <= nowMs) {
    throw new AuthenticationError("Unauthenticated", OIDC_VERIFY_MESSAGE);
  }
}

async function verifyCustomJwt(
  provider: AuthProvider,
  jwt: ParsedJwt,
  keys: KeySetCache,
  nowMs: number,
): Promise<void> {
  const { claims, header } = jwt;
  const alg = typeof header.alg === "string" ? header.alg : "";
  const kid = typeof header.kid === "string" ? header.kid : undefined;
  const decodeError = kid === undefined ? invalidHeader(MISSING_KID_MESSAGE) : invalidHeader(
    `Could not decode token. The JWT's 'kid' (key ID) header is '${kid}', does this key match any key in the ` +
      "provider's JWKS?",
  );
  // Without a `kid`, only a key set of one key says which key signed the token.
  const pick = (set: Jwk[]) => kid === undefined ? (set.length === 1 ? set : []) : set.filter((key) => key.kid === kid);
  if (!provider.algorithms.includes(alg) || !await signedByProvider(provider, jwt, alg, keys, pick)) throw decodeError;
  checkTimes(claims, nowMs);
  if (typeof claims.sub !== "string") throw invalidHeader(CUSTOM_CLAIMS_MESSAGE);
}

/** `exp`, then `nbf`, then `iat` (none in the future), each with the 5 s allowance; whole seconds in the message. */
function checkTimes(claims: Record<string, unknown>, nowMs: number): void {
  const seconds = (ms: number) => Math.floor(ms / 1000);
  const exp = claims.exp as number | undefined;
  if (exp !== undefined && nowMs - exp * 1000 > CUSTOM_JWT_SKEW_MS) {
    throw invalidHeader(`Could not validate token: Token expired ${seconds(nowMs - exp * 1000)} seconds ago`);
  }
  for (const claim of ["nbf", "iat"]) {
    const at = claims[claim] as number | undefined;
    if (at !== undefined && at * 1000 - nowMs > CUSTOM_JWT_SKEW_MS) {
      throw invalidHeader(`Could not validate token: Token will be valid in ${seconds(at * 1000 - nowMs)} seconds`);
    }
  }
}

/** Whether a key of the provider that `pick` selects verifies the token (the key set refetched once if none does). */
async function signedByProvider(
  provider: AuthProvider,
  jwt: ParsedJwt,
  alg: string,
  keys: KeySetCache,
  pick: (set: Jwk[]) => Jwk[],
): Promise<boolean> {
  for (const refresh of [false, true]) {
    let set: Jwk[];
    try {
      set = await keys.keys(provider, refresh);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new AuthenticationError(
        "AuthProviderDiscoveryFailed",
        `Auth provider discovery of ${provider.issuer} failed: ${message}`,
      );
    }
    for (const key of pick(set)) if (await verifySignature(jwt, key, alg)) return true;
  }
  return false;
}
