/**
 * Errors the runtime throws to its callers. Failures of user code are not errors: they come back as
 * `ExecutionResult` with `ok: false`.
 */

/** A pushed module cannot be written or loaded: bad path, forbidden import specifier, syntax error at analysis. */
export class ModuleLoadError extends Error {
  /** The module's path inside the deployment (`messages.js`). */
  readonly modulePath: string;
  constructor(modulePath: string, message: string) {
    super(message);
    this.name = "ModuleLoadError";
    this.modulePath = modulePath;
  }
}

/** The pool's queue is full (or the pool is closed); the caller should answer "overloaded". */
export class RunnerPoolFullError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RunnerPoolFullError";
  }
}

/** Analysis of a deployment failed (a module throws at import time, a special export is malformed, ...). */
export class AnalyzeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AnalyzeError";
  }
}
