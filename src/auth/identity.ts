/**
 * User identities as functions see them (`ctx.auth.getUserIdentity()`, convex-compat.md §4.4.2): camelCase OIDC
 * claims, `tokenIdentifier = "<iss>|<sub>"`, custom claims passed through.
 */

/** Standard OIDC claims and their names in the identity object. */
const STANDARD_CLAIMS: Record<string, string> = {
  name: "name",
  given_name: "givenName",
  family_name: "familyName",
  nickname: "nickname",
  preferred_username: "preferredUsername",
  profile: "profileUrl",
  picture: "pictureUrl",
  email: "email",
  email_verified: "emailVerified",
  gender: "gender",
  birthdate: "birthday",
  zoneinfo: "timezone",
  locale: "language",
  phone_number: "phoneNumber",
  phone_number_verified: "phoneNumberVerified",
  address: "address",
  updated_at: "updatedAt",
};

/** Registered JWT claims that never reach the identity. */
const REGISTERED_CLAIMS = new Set(["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "azp", "nonce", "at_hash"]);

/** A field name a Convex object may hold (no `$` prefix, printable ASCII, ≤ 1024 chars). */
function isValidFieldName(name: string): boolean {
  return name.length > 0 && name.length <= 1024 && !name.startsWith("$") && /^[\x20-\x7e]+$/.test(name);
}

/** Whether a decoded claim value can travel as a Convex value (plain JSON without `$` keys). */
function isConvexCompatible(value: unknown, depth = 0): boolean {
  if (depth > 16) return false;
  if (value === null || typeof value === "string" || typeof value === "boolean") return true;
  if (typeof value === "number") return Number.isFinite(value);
  if (Array.isArray(value)) return value.every((item) => isConvexCompatible(item, depth + 1));
  if (typeof value === "object") {
    return Object.entries(value as Record<string, unknown>).every(([key, item]) =>
      isValidFieldName(key) && isConvexCompatible(item, depth + 1)
    );
  }
  return false;
}

/** The identity object for verified JWT claims. */
export function identityFromClaims(claims: Record<string, unknown>): Record<string, unknown> {
  const issuer = String(claims.iss);
  const subject = String(claims.sub);
  const identity: Record<string, unknown> = { tokenIdentifier: `${issuer}|${subject}`, issuer, subject };
  for (const [claim, value] of Object.entries(claims)) {
    if (REGISTERED_CLAIMS.has(claim) || value === undefined) continue;
    const name = STANDARD_CLAIMS[claim] ?? claim;
    if (!isValidFieldName(name) || !isConvexCompatible(value)) continue;
    // Convex hands `updated_at` to functions as a string, whatever the provider sent.
    identity[name] = claim === "updated_at" && typeof value !== "string" ? String(value) : value;
  }
  return identity;
}

/**
 * The identity an admin impersonates (`Convex <key>:<b64 JSON>` or `Authenticate.impersonating`): a
 * `UserIdentityAttributes` object; `tokenIdentifier` may be derived from `issuer` + `subject`. Throws for bad input.
 */
export function identityFromAttributes(attributes: unknown): Record<string, unknown> {
  if (attributes === null || typeof attributes !== "object" || Array.isArray(attributes)) {
    throw new Error("The impersonated identity must be a JSON object");
  }
  if (!isConvexCompatible(attributes)) throw new Error("The impersonated identity holds values Convex cannot store");
  const identity = { ...(attributes as Record<string, unknown>) };
  if (typeof identity.tokenIdentifier !== "string") {
    if (typeof identity.issuer !== "string" || typeof identity.subject !== "string") {
      throw new Error("The impersonated identity needs `tokenIdentifier`, or `issuer` and `subject`");
    }
    identity.tokenIdentifier = `${identity.issuer}|${identity.subject}`;
  }
  return identity;
}
