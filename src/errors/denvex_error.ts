/**
 * The one base class of every error denvex throws on purpose. It carries what each edge needs to report the failure
 * without knowing the class: a stable `code` (Convex-style PascalCase, the string clients see), the HTTP status the
 * HTTP edge answers with, and whether the same request may succeed if retried later.
 */

/** What a {@link DenvexError} carries besides its code and message. */
export interface DenvexErrorOptions {
  /** The status the HTTP edge answers with; 500 (a fault of ours) unless the caller or the load is to blame. */
  httpStatus?: number;
  /** True when retrying later may succeed (database unavailable, a queue full, optimistic conflicts). */
  retryable?: boolean;
  /** The underlying error, for the server log only: it never reaches a client. */
  cause?: unknown;
}

/** See the module comment. Subclasses add fields; the three below are the contract with the edges. */
export class DenvexError extends Error {
  /** Stable and machine-readable, e.g. `BadAdminKey`, `DatabaseUnavailable`. Part of the API: never rename one. */
  readonly code: string;
  /** The HTTP status for this failure (4xx: the caller's mistake, 5xx: ours or the load's). */
  readonly httpStatus: number;
  /** Retrying the same request later may succeed. */
  readonly retryable: boolean;

  constructor(code: string, message: string, options: DenvexErrorOptions = {}) {
    super(message, "cause" in options ? { cause: options.cause } : undefined);
    this.name = "DenvexError";
    this.code = code;
    this.httpStatus = options.httpStatus ?? 500;
    this.retryable = options.retryable ?? false;
  }
}

/** True when `error` is a {@link DenvexError} marked retryable; anything else is not known to be. */
export function isRetryable(error: unknown): boolean {
  return error instanceof DenvexError && error.retryable;
}

/** The code of a {@link DenvexError}, or null for any other thrown value. */
export function errorCodeOf(error: unknown): string | null {
  return error instanceof DenvexError ? error.code : null;
}
