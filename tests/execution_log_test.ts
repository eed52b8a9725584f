/**
 * The execution log behind `npx convex logs` and the dashboard: a bounded ring read with a cursor. Appends past the
 * capacity drop the oldest entries, and readers see every kept entry after their cursor, oldest first.
 */
import { assertEquals } from "./helpers/assert.ts";
import { ExecutionLog } from "../src/functions/mod.ts";

function record(name: string) {
  return {
    udfType: "query" as const,
    displayName: name,
    modulePath: "m.js",
    exportName: name,
    ok: true,
    logLines: [],
    startedAtMs: 0,
    executionTimeMs: 1,
    requestId: `r-${name}`,
  };
}

Deno.test("execution log: entries after a cursor, oldest first; full, it keeps the newest", () => {
  const log = new ExecutionLog(3);
  assertEquals(log.after(0), []);
  assertEquals(log.headCursor, 0);
  for (const name of ["a", "b"]) log.append(record(name));
  assertEquals(log.after(0).map((entry) => [entry.cursor, entry.displayName]), [[1, "a"], [2, "b"]]);
  assertEquals(log.after(1).map((entry) => entry.displayName), ["b"]);
  assertEquals(log.after(2), []);
  for (const name of ["c", "d", "e", "f", "g"]) log.append(record(name));
  assertEquals(log.headCursor, 7);
  assertEquals(log.after(0).map((entry) => [entry.cursor, entry.displayName]), [[5, "e"], [6, "f"], [7, "g"]]);
  assertEquals(log.after(5).map((entry) => entry.displayName), ["f", "g"]);
  assertEquals(log.after(6.5).map((entry) => entry.displayName), ["g"], "a fractional cursor reads like a filter");
  assertEquals(log.after(-10).length, 3);
  assertEquals(log.after(7), []);
  assertEquals(log.after(100), []);
  assertEquals(log.after(Number.NaN), []);
});

Deno.test("execution log: a long poll wakes on the next append", async () => {
  const log = new ExecutionLog(2);
  log.append(record("a"));
  const waiting = log.waitAfter(1, 10_000);
  log.append(record("b"));
  assertEquals((await waiting).map((entry) => entry.displayName), ["b"]);
  assertEquals((await log.waitAfter(0, 10_000)).map((entry) => entry.displayName), ["a", "b"]);
});
