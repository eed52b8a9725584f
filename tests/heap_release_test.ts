/**
 * The sync hub's full collection after a wave of disconnects (src/sync/heap_release.ts): only after enough released
 * subscriptions, only once the releases have stopped, at most once per interval; and the server really exposes `gc`.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import {
  COLLECT_AFTER_RELEASED_QUERIES,
  HeapRelease,
  MIN_COLLECT_INTERVAL_MS,
  QUIET_BEFORE_COLLECT_MS,
} from "../src/sync/heap_release.ts";
import { SERVER_V8_FLAGS } from "../src/server/launcher.ts";

Deno.test("heap release: one collection once a large wave of releases is over, then none for the interval", () => {
  let collections = 0;
  const release = new HeapRelease(() => collections++);
  const t0 = 1_000_000;
  release.noteReleased(COLLECT_AFTER_RELEASED_QUERIES - 1, t0);
  assertEquals(release.maybeCollect(t0 + QUIET_BEFORE_COLLECT_MS), false, "too few released");
  release.noteReleased(1, t0 + 10);
  assertEquals(release.maybeCollect(t0 + 10 + QUIET_BEFORE_COLLECT_MS - 1), false, "the wave is still going");
  assertEquals(release.maybeCollect(t0 + 10 + QUIET_BEFORE_COLLECT_MS), true);
  assertEquals(collections, 1);
  const t1 = t0 + 10 + QUIET_BEFORE_COLLECT_MS;
  release.noteReleased(COLLECT_AFTER_RELEASED_QUERIES * 5, t1 + 1);
  assertEquals(release.maybeCollect(t1 + MIN_COLLECT_INTERVAL_MS - 1), false, "within the interval");
  assertEquals(release.maybeCollect(t1 + MIN_COLLECT_INTERVAL_MS), true);
  assertEquals(collections, 2);
  assertEquals(release.maybeCollect(t1 + 3 * MIN_COLLECT_INTERVAL_MS), false, "nothing released since");
  assertEquals(new HeapRelease(null).maybeCollect(t0), false);
});

Deno.test("heap release: the server's V8 flags expose gc, and a process started with them has it", async () => {
  assert(SERVER_V8_FLAGS.split(",").includes("--expose-gc"));
  const { stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", `--v8-flags=${SERVER_V8_FLAGS}`, "console.log(typeof globalThis.gc)"],
  }).output();
  assertEquals(new TextDecoder().decode(stdout).trim(), "function");
});
