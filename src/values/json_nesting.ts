/**
 * Nesting of parsed JSON, measured without recursion, so a hostile body nested thousands of levels deep is refused
 * with a clear error before any recursive code (canonical JSON, convex-JSON decoding, validators) sees it.
 */
import { MAX_VALUE_NESTING } from "./limits.ts";

/**
 * Deepest JSON nesting allowed in function arguments: {@link MAX_VALUE_NESTING} levels of Convex values, plus one for
 * the convex-JSON wrapper objects (`{"$integer": ...}`, `{"$bytes": ...}`) a deepest leaf may be encoded as.
 */
export const MAX_JSON_ARGS_NESTING = MAX_VALUE_NESTING + 1;

/**
 * Whether `value` (parsed JSON: arrays, plain objects, scalars) nests arrays and objects more than `maxDepth` levels
 * deep (a scalar is 0, `[1]` is 1). Iterative; stops at the first path past the limit.
 */
export function jsonNestingExceeds(value: unknown, maxDepth: number): boolean {
  const stack: { value: unknown; depth: number }[] = [{ value, depth: 0 }];
  while (stack.length > 0) {
    const { value: current, depth } = stack.pop()!;
    if (current === null || typeof current !== "object") continue;
    if (depth + 1 > maxDepth) return true;
    const children = Array.isArray(current) ? current : Object.values(current as Record<string, unknown>);
    for (const child of children) {
      if (child !== null && typeof child === "object") stack.push({ value: child, depth: depth + 1 });
    }
  }
  return false;
}
