/**
 * How a thrown error reaches user code and the clients of a call, in one function per edge (the HTTP edge is
 * `src/http/errors.ts`):
 *
 * - a syscall that fails inside a function: user code sees an `Error` with the message, or a `ConvexError` with the
 *   data when the failure carries some;
 * - a call whose execution failed outside user code (commit refused, database unavailable, a runner gone): the
 *   failed call's `errorMessage` (what the sync protocol's `MutationResponse`/`ActionResponse`/`QueryFailed` and the
 *   HTTP function API send) and whether it may be retried.
 */
import { DenvexError } from "./denvex_error.ts";

/** What a failed syscall answers to the function that made it. */
export interface SyscallFailure {
  message: string;
  /** convex-JSON data of a ConvexError, when the failure carries one. */
  data?: unknown;
}

/** The syscall edge: the message (and ConvexError data) user code sees for `error`. */
export function syscallFailureOf(error: unknown): SyscallFailure {
  if (error instanceof DenvexError) {
    const data = (error as { data?: unknown }).data;
    return data === undefined ? { message: error.message } : { message: error.message, data };
  }
  return { message: error instanceof Error ? error.message : String(error) };
}

/** How a call that failed outside user code is reported. */
export interface CallFailure {
  errorMessage: string;
  /** True when retrying the call may succeed: its code either never ran or ran without committing. */
  retryable: boolean;
}

/**
 * The call edge: `error` stopped a call outside user code. `retryableByDefault` says whether an error of no known
 * kind counts as retryable (true where the code ran but the commit did not happen, so nothing took effect).
 */
export function callFailureOf(error: unknown, retryableByDefault: boolean): CallFailure {
  if (error instanceof DenvexError) {
    return { errorMessage: error.message, retryable: error.retryable || retryableByDefault };
  }
  return { errorMessage: error instanceof Error ? error.message : String(error), retryable: retryableByDefault };
}

/** Random bytes drawn at once for request IDs: one call into the runtime per 512 IDs rather than per ID (issue 14). */
const REQUEST_ID_POOL = new Uint8Array(4096);
const REQUEST_ID_BYTES = 8;
/** Where the next ID's bytes start in the pool; at its end, the pool is refilled. */
let requestIdOffset = REQUEST_ID_POOL.length;

/** A request ID as Convex shows them: 16 lowercase hex digits, random (each ID's bytes are used once). */
export function newRequestId(): string {
  if (requestIdOffset + REQUEST_ID_BYTES > REQUEST_ID_POOL.length) {
    crypto.getRandomValues(REQUEST_ID_POOL);
    requestIdOffset = 0;
  }
  const bytes = REQUEST_ID_POOL.subarray(requestIdOffset, requestIdOffset + REQUEST_ID_BYTES);
  requestIdOffset += REQUEST_ID_BYTES;
  return bytes.toHex();
}

/**
 * The client edge of a failed function call, as Convex frames it for every client (`[Request ID: <id>] Server Error`
 * on its own line, then the failure as the execution reported it, e.g. `Uncaught Error: boom` and its frames). Logs and
 * nested callers see the failure unframed, so the framing appears once, however deep the call was.
 */
export function framedFunctionError(errorMessage: string, requestId: string = newRequestId()): string {
  if (errorMessage.startsWith("[Request ID: ")) return errorMessage;
  return `[Request ID: ${requestId}] Server Error\n${errorMessage}`;
}
