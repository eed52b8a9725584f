/**
 * Authentication failures, one class for every way a caller's credentials are refused, and the two admin-key
 * refusals every admin endpoint shares (HTTP admin API, function calls as admin, sync `Authenticate`).
 *
 * A missing or wrong admin key is 403 everywhere, as Convex's own backend answers (`forbidden`): the official CLI
 * then prints the server's message, while for a 401 it prints "Authenticate with `npx convex dev`", advice that
 * does not apply to a self-hosted deployment's admin key.
 */
import { DenvexError } from "../errors/mod.ts";

/** An authentication failure; `code` is the short code of the HTTP error body. */
export class AuthenticationError extends DenvexError {
  /** 401 for a user token or header the server cannot accept, 403 for admin keys. */
  declare readonly httpStatus: 401 | 403;
  constructor(code: string, message: string, httpStatus: 401 | 403 = 401) {
    super(code, message, { httpStatus });
    this.name = "AuthenticationError";
  }
}

/** The status of every admin-key refusal. */
export const ADMIN_KEY_REFUSED_STATUS = 403;

/** An admin endpoint was called without an admin key. */
export function missingAdminKeyError(): AuthenticationError {
  return new AuthenticationError(
    "MissingAdminKey",
    "This endpoint needs the deployment's admin key (header `Authorization: Convex <admin key>`)",
    ADMIN_KEY_REFUSED_STATUS,
  );
}

/** The admin key given is not this deployment's. */
export function badAdminKeyError(): AuthenticationError {
  return new AuthenticationError(
    "BadAdminKey",
    "The provided admin key is not valid for this deployment",
    ADMIN_KEY_REFUSED_STATUS,
  );
}
