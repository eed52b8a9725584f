/** Assertions of the runtime tests (JSR's @std/assert is unreachable here). */
import { inspect, isDeepStrictEqual } from "node:util";

export function assert(condition: unknown, message = "assertion failed"): asserts condition {
  if (!condition) throw new Error(message);
}

export function assertEquals(actual: unknown, expected: unknown, message?: string): void {
  if (isDeepStrictEqual(actual, expected)) return;
  throw new Error(
    `${message ? message + ": " : ""}values differ\n  actual:   ${inspect(actual, { depth: 8 })}\n  expected: ${
      inspect(expected, { depth: 8 })
    }`,
  );
}

export function assertMatch(actual: string, pattern: RegExp, message?: string): void {
  if (!pattern.test(actual)) {
    throw new Error(`${message ? message + ": " : ""}${inspect(actual)} does not match ${pattern}`);
  }
}

export function assertStringIncludes(actual: string, expected: string, message?: string): void {
  if (!actual.includes(expected)) {
    throw new Error(`${message ? message + ": " : ""}${inspect(actual)} does not include ${inspect(expected)}`);
  }
}

/** Awaits `run`, expecting a rejection (of class `ErrorClass` if given); returns the error. */
export async function assertRejects<E extends Error = Error>(
  run: () => Promise<unknown>,
  // deno-lint-ignore no-explicit-any
  ErrorClass?: new (...args: any[]) => E,
): Promise<E> {
  try {
    await run();
  } catch (error) {
    if (ErrorClass && !(error instanceof ErrorClass)) {
      throw new Error(`expected ${ErrorClass.name}, got ${inspect(error)}`);
    }
    return error as E;
  }
  throw new Error("expected a rejection");
}
