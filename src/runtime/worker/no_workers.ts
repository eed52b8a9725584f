/**
 * User code must not start workers. A nested worker runs outside the call's time and heap limits, keeps running after
 * the call (a busy worker cannot be terminated in Deno 2.9.6), and has real timers, `Date.now()` and `Math.random()`,
 * which would break a mutation's determinism. Both constructors are disabled before user code loads:
 * the global `Worker` is removed, and `node:worker_threads`' `Worker` is made to fail in its `super()` call (its
 * module namespace cannot be changed, but the class's parent can), then locked so user code cannot undo it.
 */
import * as workerThreads from "node:worker_threads";

const FORBIDDEN_TEXT = "Workers are not available in Convex functions";

function WorkerForbidden(): never {
  throw new Error(FORBIDDEN_TEXT);
}

/** Disables `Worker` and `node:worker_threads`' `Worker` (once, before user code loads). */
export function disableWorkers(): void {
  if (!Reflect.deleteProperty(globalThis, "Worker")) {
    throw new Error("The global Worker could not be removed");
  }
  const nodeWorker = workerThreads.Worker as unknown as object;
  // `class Worker extends EventEmitter` calls its parent first: the parent now throws, before any thread exists.
  const locked = Reflect.setPrototypeOf(nodeWorker, WorkerForbidden) && Reflect.preventExtensions(nodeWorker);
  if (!locked) throw new Error("node:worker_threads' Worker could not be disabled");
  Object.freeze(WorkerForbidden);
}
