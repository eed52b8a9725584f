/** Small assertion helpers (JSR's @std/assert is unreachable here). */
import { inspect, isDeepStrictEqual } from "node:util";

export function assert(condition: unknown, message = "assertion failed"): asserts condition {
  if (!condition) throw new Error(message);
}

export function assertEquals(actual: unknown, expected: unknown, message?: string): void {
  if (!isDeepStrictEqual(actual, expected)) {
    throw new Error(
      `${message ? message + ": " : ""}values differ\n  actual:   ${inspect(actual, { depth: 6 })}\n  expected: ${
        inspect(expected, { depth: 6 })
      }`,
    );
  }
}

export function assertNotEquals(actual: unknown, expected: unknown, message?: string): void {
  if (isDeepStrictEqual(actual, expected)) throw new Error(message ?? `expected values to differ: ${inspect(actual)}`);
}
