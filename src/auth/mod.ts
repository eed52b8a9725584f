/**
 * Authentication: who is calling. HTTP requests carry an `Authorization` header (`Bearer <jwt>` for users,
 * `Convex <adminKey>[:<b64 identity>]` for admins), sync sockets send `Authenticate` messages; both end up here.
 * User JWTs are checked against the providers of the active deployment's `auth.config.ts` (signature, issuer,
 * audience, expiry); admin keys are compared in constant time.
 *
 * @module
 */
export { ADMIN_KEY_REFUSED_STATUS, AuthenticationError, badAdminKeyError, missingAdminKeyError } from "./errors.ts";
export { identityFromAttributes, identityFromClaims } from "./identity.ts";
export { base64UrlDecode, base64UrlEncode, parseJwt, TokenError } from "./jwt.ts";
export { type AuthProvider, parseAuthConfig } from "./providers.ts";
export {
  ANONYMOUS,
  Authenticator,
  type AuthenticatorOptions,
  type Caller,
  constantTimeEqual,
} from "./authenticator.ts";
