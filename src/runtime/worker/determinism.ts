/**
 * Queries and mutations must be deterministic (convex-compat.md §4.7): `Date.now()` / `new Date()` frozen at the
 * start of the execution, `Math.random()` seeded, no `fetch` and no timers. Actions get the real ones. The globals are
 * swapped per execution, which is safe because a worker runs one execution at a time.
 */

import { trackedFetch, trackedSetInterval, trackedSetTimeout } from "./call_resources.ts";

const RealDate = Date;
/** Captured before the shape guards wrap it (global_snapshot.ts): our own per-call globals are no shape change. */
const defineProperty = Object.defineProperty;
const realRandom = Math.random;
/** What actions get: the real ones, tracked so that the end of the execution drops what is left (call_resources.ts). */
const realGlobals = {
  fetch: trackedFetch,
  setTimeout: trackedSetTimeout,
  setInterval: trackedSetInterval,
} as const;
type GuardedGlobal = keyof typeof realGlobals;

let frozenNowMs: number | null = null;
let seededRandom: (() => number) | null = null;

function now(): number {
  return frozenNowMs ?? RealDate.now();
}

/** Installs the switchable `Date` and `Math.random` (once, before user code loads). */
export function installDeterminismShims(): void {
  function DateShim(this: unknown, ...args: unknown[]): unknown {
    if (new.target === undefined) return new RealDate(now()).toString();
    return Reflect.construct(RealDate, args.length === 0 ? [now()] : args, new.target);
  }
  Object.setPrototypeOf(DateShim, RealDate); // Date.parse, Date.UTC
  DateShim.prototype = RealDate.prototype;
  Object.defineProperty(DateShim, "now", { value: now, writable: true, configurable: true });
  Object.defineProperty(DateShim, "name", { value: "Date" });
  Object.defineProperty(RealDate.prototype, "constructor", { value: DateShim, writable: true, configurable: true });
  Object.defineProperty(globalThis, "Date", { value: DateShim, writable: true, configurable: true });
  Math.random = () => (seededRandom ?? realRandom)();
}

/** Query/mutation mode: time frozen at `nowMs`, randomness from `seed`, no fetch or timers. */
export function enterDeterministicMode(nowMs: number, seed: number): void {
  frozenNowMs = nowMs;
  seededRandom = seededGenerator(seed);
  for (const name of Object.keys(realGlobals) as GuardedGlobal[]) {
    setGlobal(name, function forbidden(): never {
      throw new Error(`${name} is not allowed in queries and mutations. Use an action instead.`);
    });
  }
}

/** Action mode (and idle): the real clock, randomness, fetch and timers. */
export function enterActionMode(): void {
  frozenNowMs = null;
  seededRandom = null;
  for (const name of Object.keys(realGlobals) as GuardedGlobal[]) setGlobal(name, realGlobals[name]);
}

/**
 * Enters action mode until the returned function is called, which re-enters the mode that was active (same frozen
 * time, same random sequence). For taking the global snapshot, which must see the idle globals, mid-execution.
 */
export function suspendDeterminism(): () => void {
  const savedNowMs = frozenNowMs;
  const savedRandom = seededRandom;
  enterActionMode();
  return () => {
    if (savedNowMs === null || savedRandom === null) return;
    enterDeterministicMode(savedNowMs, 0);
    seededRandom = savedRandom;
  };
}

function setGlobal(name: string, value: unknown): void {
  defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: true });
}

/**
 * A small 128-bit xorshift-style generator: the same seed gives the same sequence (so a retried mutation sees the
 * same values); not for cryptography (crypto.getRandomValues stays real).
 */
function seededGenerator(seed: number): () => number {
  let a = (seed ^ 0x9e3779b9) >>> 0;
  let b = (seed * 0x85ebca6b) >>> 0 || 1;
  let c = (seed * 0xc2b2ae35) >>> 0 || 2;
  let d = (seed + 0x27d4eb2f) >>> 0 || 3;
  const next32 = () => {
    const t = a ^ (a << 11);
    a = b;
    b = c;
    c = d;
    d = (d ^ (d >>> 19) ^ t ^ (t >>> 8)) >>> 0;
    return d;
  };
  for (let i = 0; i < 16; i++) next32(); // mix away weak seeds
  return () => (next32() * 2 ** 21 + (next32() >>> 11)) / 2 ** 53;
}
