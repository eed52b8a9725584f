/**
 * The error model, the lowest layer: {@link DenvexError} (a stable code, an HTTP status, whether retrying may help)
 * is the base of every error class in `src/`, and each edge maps it in one function: HTTP in `src/http/errors.ts`,
 * syscalls and failed calls (the sync protocol's error messages) in `runtime_edges.ts`.
 *
 * @module
 */
export { DenvexError, type DenvexErrorOptions, errorCodeOf, isRetryable } from "./denvex_error.ts";
export { failedIdentityJson, type IdentityFailure, identityFailureOf } from "./identity_failure.ts";
export {
  type CallFailure,
  callFailureOf,
  framedFunctionError,
  newRequestId,
  type SyscallFailure,
  syscallFailureOf,
} from "./runtime_edges.ts";
