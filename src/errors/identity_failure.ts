/**
 * An identity that failed to verify. Convex lets an HTTP action run whatever its `Authorization: Bearer …` header
 * holds (the route may check a webhook secret of its own), and keeps the verification error to throw when code asks
 * for the identity: `ctx.auth.getUserIdentity()` throws it there, and in the queries, mutations and actions the HTTP
 * action calls (the `convex` package documents `getUserIdentity` as throwing in HTTP actions).
 *
 * It travels where an identity's JSON does (`identityJson`), as an object no real identity can be: identity fields
 * never start with `$` (Convex field names cannot), so `{"$identityFailure": …}` is unambiguous, and every layer that
 * answers `1.0/getUserIdentity` recognises it with {@link identityFailureOf}.
 */

/** Why a caller's credentials did not verify. */
export interface IdentityFailure {
  /** Convex's short code, e.g. `InvalidAuthHeader`, `NoAuthProvider`. */
  code: string;
  /** What `getUserIdentity()` throws, Convex's message for the refusal. */
  message: string;
}

const MARKER = '{"$identityFailure":';
/** Longest message kept: a verification message is a sentence or two; an echo of a huge header is cut. */
const MAX_MESSAGE_CHARS = 4096;

/** The `identityJson` of a caller whose credentials failed to verify for `failure`. */
export function failedIdentityJson(failure: IdentityFailure): string {
  const message = failure.message.slice(0, MAX_MESSAGE_CHARS);
  return `${MARKER}${JSON.stringify({ code: failure.code, message })}}`;
}

/** The failure an `identityJson` carries, or null for a real identity or none. */
export function identityFailureOf(identityJson: string | null | undefined): IdentityFailure | null {
  if (identityJson === null || identityJson === undefined || !identityJson.startsWith(MARKER)) return null;
  const parsed = JSON.parse(identityJson) as { $identityFailure?: Partial<IdentityFailure> };
  const failure = parsed.$identityFailure;
  return {
    code: typeof failure?.code === "string" ? failure.code : "Unauthenticated",
    message: typeof failure?.message === "string" ? failure.message : "The request's credentials did not verify",
  };
}
