/** The one assertion kit of the tests (JSR's @std/assert is unreachable here). */
import { inspect, isDeepStrictEqual } from "node:util";

/** How deep `inspect` prints values in a failure message. */
const INSPECT_DEPTH = 8;

function prefix(message: string | undefined): string {
  return message ? message + ": " : "";
}

export function assert(condition: unknown, message = "assertion failed"): asserts condition {
  if (!condition) throw new Error(message);
}

export function assertEquals(actual: unknown, expected: unknown, message?: string): void {
  if (isDeepStrictEqual(actual, expected)) return;
  throw new Error(
    `${prefix(message)}values differ\n  actual:   ${inspect(actual, { depth: INSPECT_DEPTH })}\n  expected: ${
      inspect(expected, { depth: INSPECT_DEPTH })
    }`,
  );
}

/** Asserts `actual` is `expected` itself (`Object.is`): the same primitive or the same object. */
export function assertStrictEquals(actual: unknown, expected: unknown, message?: string): void {
  if (Object.is(actual, expected)) return;
  throw new Error(`${prefix(message)}not the same\n  actual:   ${inspect(actual)}\n  expected: ${inspect(expected)}`);
}

export function assertNotEquals(actual: unknown, expected: unknown, message?: string): void {
  if (isDeepStrictEqual(actual, expected)) throw new Error(message ?? `expected values to differ: ${inspect(actual)}`);
}

export function assertMatch(actual: string, pattern: RegExp, message?: string): void {
  if (!pattern.test(actual)) throw new Error(`${prefix(message)}${inspect(actual)} does not match ${pattern}`);
}

export function assertStringIncludes(actual: string, expected: string, message?: string): void {
  if (!actual.includes(expected)) {
    throw new Error(`${prefix(message)}${inspect(actual)} does not include ${inspect(expected)}`);
  }
}

/** Asserts `text` (trailing newlines aside) is exactly one line, and returns it. */
export function assertOneLine(text: string): string {
  const lines = text.trimEnd().split("\n");
  assertEquals(lines.length, 1, `expected one line, got:\n${text}`);
  return lines[0];
}

/** A constructor of errors, as `instanceof` takes it. */
type ErrorClass<E extends Error> = abstract new (...args: never[]) => E;

/** Checks a caught `error` is an instance of `ErrorClass` (if given) whose message contains `includes`. */
function expectError<E extends Error>(error: unknown, ErrorClass: ErrorClass<E> | undefined, includes: string): E {
  if (ErrorClass && !(error instanceof ErrorClass)) {
    throw new Error(`expected ${ErrorClass.name}, got ${inspect(error)}`);
  }
  const message = error instanceof Error ? error.message : String(error);
  assert(message.includes(includes), `expected message containing ${includes}, got: ${message}`);
  return error as E;
}

/** Calls `run`, expecting it to throw (an instance of `ErrorClass` if given, whose message contains `includes`). */
export function assertThrows<E extends Error = Error>(
  run: () => unknown,
  ErrorClass?: ErrorClass<E>,
  includes = "",
): E {
  try {
    run();
  } catch (error) {
    return expectError(error, ErrorClass, includes);
  }
  throw new Error("expected an exception");
}

/**
 * Awaits `run`, expecting a rejection (an instance of `ErrorClass` if given, whose message contains `includes`);
 * returns the error.
 */
export async function assertRejects<E extends Error = Error>(
  run: () => Promise<unknown>,
  ErrorClass?: ErrorClass<E>,
  includes = "",
): Promise<E> {
  try {
    await run();
  } catch (error) {
    return expectError(error, ErrorClass, includes);
  }
  throw new Error("expected a rejection");
}

/**
 * Polls `read` every `pollMs` until `done` accepts its value, and returns that value; throws with the last value read
 * once `timeoutMs` passed (for effects that land in the background: scheduled jobs, crons, live queries).
 */
export async function waitFor<T>(
  what: string,
  read: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 20_000,
  pollMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await read();
    if (done(last)) return last;
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
  throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(last)}`);
}

/** mulberry32: a small seeded PRNG in [0, 1), so a randomized test's failure replays from its seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
