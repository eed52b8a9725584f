/**
 * Errors the runtime throws to its callers. Failures of user code are not errors: they come back as
 * `ExecutionResult` with `ok: false`.
 */

import { DenvexError } from "../errors/mod.ts";

/** A pushed module cannot be written or loaded: bad path, forbidden import specifier, syntax error at analysis. */
export class ModuleLoadError extends DenvexError {
  /** The module's path inside the deployment (`messages.js`). */
  readonly modulePath: string;
  constructor(modulePath: string, message: string) {
    // The pushed code's fault: the push answers 400 `InvalidModules` (src/deploy/push.ts).
    super("InvalidModules", message, { httpStatus: 400 });
    this.name = "ModuleLoadError";
    this.modulePath = modulePath;
  }
}

/** The pool's queue is full (or the pool is closed); the caller should answer "overloaded". */
export class RunnerPoolFullError extends DenvexError {
  constructor(message: string) {
    super("TooManyConcurrentRequests", message, { httpStatus: 503, retryable: true });
    this.name = "RunnerPoolFullError";
  }
}

/** Analysis of a deployment failed (a module throws at import time, a special export is malformed, ...). */
export class AnalyzeError extends DenvexError {
  constructor(message: string) {
    super("InvalidModules", message, { httpStatus: 400 });
    this.name = "AnalyzeError";
  }
}
