/**
 * The execution a worker is running (one at a time) and the stack of nested `ctx.runQuery`/`ctx.runMutation` frames,
 * tracked with AsyncLocalStorage so a syscall knows which function issued it even when calls interleave.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { componentModulesSubdir } from "../../components/mod.ts";
import type { UdfType } from "../types.ts";
import type { WorkerExecuteMessage } from "./protocol.ts";

/** Serializes async tasks (nested calls of one parent run one after another). */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(task);
    this.#tail = result.catch(() => {});
    return result;
  }
}

/** One function invocation: the top-level one or a nested call. */
export interface Frame {
  udfType: UdfType;
  /**
   * The component the function belongs to (`""`: the app): its syscalls run in that component's namespace, its
   * modules load from that component's folder, and it sees that component's `process.env`.
   */
  componentPath: string;
  /** `messages:list` style (no `.js`, no `:default`), as `getFunctionMetadata` reports it. */
  functionName: string;
  depth: number;
  /** Nested calls made by this frame, one at a time (the transaction's savepoints form a stack). */
  children: SerialQueue;
}

/** The execution in progress. */
export interface Execution {
  executionId: string;
  requestId: string;
  deploymentUrl: string;
  root: Frame;
  /** `process.env` of each component's functions, by component path (one not listed gets the deployment URLs only). */
  envs: Map<string, Record<string, string>>;
  /** What `ctx.meta` reports about the deployment, the request and the snapshot. */
  metadata: WorkerExecuteMessage["metadata"];
}

const frames = new AsyncLocalStorage<Frame>();
let current: Execution | null = null;

/** Makes `execution` current (null when the worker is idle). */
export function setCurrentExecution(execution: Execution | null): void {
  current = execution;
}

/** The execution in progress, or null. */
export function currentExecution(): Execution | null {
  return current;
}

/** The frame that issued the running code: a nested call's frame, else the execution's root. */
export function currentFrame(): Frame | null {
  if (current === null) return null;
  return frames.getStore() ?? current.root;
}

/** Runs `task` as the body of `frame`. */
export function runInFrame<T>(frame: Frame, task: () => Promise<T>): Promise<T> {
  return frames.run(frame, task);
}

/**
 * The URL of the folder of `componentPath`'s modules in the deployment at `deploymentUrl`. The folder's name on disk is
 * `@components/<encodeURIComponent(path)>` (components/layout.ts), whose only character a URL path must escape is `%`
 * itself: `a%2Fb` on disk is `a%252Fb` in a URL.
 */
export function componentModulesUrl(deploymentUrl: string, componentPath: string): string {
  if (componentPath === "") return deploymentUrl;
  return deploymentUrl + componentModulesSubdir(componentPath).replaceAll("%", "%25");
}

/** `dir/file.js` + `fn` → `dir/file:fn`; the default export is just `dir/file`. */
export function functionName(modulePath: string, exportName: string): string {
  const module = modulePath.endsWith(".js") ? modulePath.slice(0, -3) : modulePath;
  return exportName === "default" ? module : `${module}:${exportName}`;
}
