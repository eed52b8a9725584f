/**
 * Work an execution leaves behind is dropped when it ends, as Convex does: timers and intervals it set are cleared
 * and `fetch` requests still in flight are aborted. Otherwise a timer of one action could fire (and block, or spend
 * CPU) during the next, unrelated call on the same runner. The runner's probe (worker_main.ts) catches what cannot
 * be tracked here, such as a detached microtask loop.
 */

type TimerCallback = (...args: unknown[]) => void;
type TimerId = number;

/** The web timer functions (Deno's globals return numeric ids; the Node typings say otherwise). */
type SetTimer = (callback: TimerCallback, delayMs?: number, ...args: unknown[]) => TimerId;

const realSetTimeout = globalThis.setTimeout as unknown as SetTimer;
const realSetInterval = globalThis.setInterval as unknown as SetTimer;
const realClearTimeout = globalThis.clearTimeout as unknown as (id?: TimerId) => void;
const realFetch = globalThis.fetch;

/** Timers and intervals set since the execution started and not yet fired (timeouts) or cleared. */
const liveTimers = new Set<TimerId>();
let callAbort = new AbortController();
/** Whether the execution in progress called `fetch` (its requests are then aborted when it ends). */
let callFetched = false;

/** `setTimeout` that the end of the execution clears. */
export function trackedSetTimeout(callback: TimerCallback | string, delayMs?: number, ...args: unknown[]): TimerId {
  if (typeof callback !== "function") return realSetTimeout(callback as unknown as TimerCallback, delayMs, ...args);
  const id = realSetTimeout(
    (...callArgs: unknown[]) => {
      liveTimers.delete(id);
      callback(...callArgs);
    },
    delayMs,
    ...args,
  );
  liveTimers.add(id);
  return id;
}

/** `setInterval` that the end of the execution clears. */
export function trackedSetInterval(callback: TimerCallback | string, delayMs?: number, ...args: unknown[]): TimerId {
  const id = realSetInterval(callback as TimerCallback, delayMs, ...args);
  liveTimers.add(id);
  return id;
}

/** `clearTimeout` / `clearInterval` (the same in Deno) that forgets the timer. */
export function trackedClearTimer(id?: TimerId): void {
  if (id !== undefined) liveTimers.delete(id);
  realClearTimeout(id);
}

/** `fetch` whose request the end of the execution aborts. */
export function trackedFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  callFetched = true;
  const own = init?.signal ?? (input instanceof Request ? input.signal : null);
  const signal = own ? AbortSignal.any([own, callAbort.signal]) : callAbort.signal;
  return realFetch(input, { ...init, signal });
}

/** Installs the tracked `clearTimeout`/`clearInterval` (the setters and fetch are installed by determinism.ts). */
export function installCallResources(): void {
  for (const name of ["clearTimeout", "clearInterval"]) {
    Object.defineProperty(globalThis, name, {
      value: trackedClearTimer,
      writable: true,
      configurable: true,
      enumerable: true,
    });
  }
}

/** Drops everything the finished execution left running. */
export function dropCallResources(): void {
  for (const id of liveTimers) realClearTimeout(id);
  liveTimers.clear();
  // Only when the execution fetched: building the DOMException and a new controller showed in every call's profile.
  if (!callFetched) return;
  callFetched = false;
  callAbort.abort(new DOMException("The function finished before this request did", "AbortError"));
  callAbort = new AbortController();
}
