/**
 * The read-range index of reactivity as a unit: which owners a written key hits (ranges, points, bounds, other
 * indexes, unknown read sets), and when it rebuilds its per-index trees.
 */
import { assertEquals } from "./helpers/assert.ts";
import { keyToByteText, ReadRangeIndex } from "../src/subscriptions/mod.ts";
import { key, pointRange as point, readRange as range } from "./helpers/read_ranges.ts";

const INDEX_A = 3;
const INDEX_B = 4;

function hits<T>(index: ReadRangeIndex<T>, indexId: number, ...keys: Uint8Array[]): T[] {
  return [...index.affected(new Map([[indexId, keys]]))].sort();
}

Deno.test("range index: a write inside a range hits its owner, outside not; low inclusive, high exclusive", () => {
  const index = new ReadRangeIndex<string>();
  index.add("q1", [range(INDEX_A, key(10), key(20))]);
  index.add("q2", [range(INDEX_A, key(15), null)]);
  assertEquals(hits(index, INDEX_A, key(12)), ["q1"]);
  assertEquals(hits(index, INDEX_A, key(10)), ["q1"], "low key is inclusive");
  assertEquals(hits(index, INDEX_A, key(20)), ["q2"], "high key is exclusive");
  assertEquals(hits(index, INDEX_A, key(17)), ["q1", "q2"]);
  assertEquals(hits(index, INDEX_A, key(9, 255)), []);
  assertEquals(hits(index, INDEX_A, key(255, 255, 255)), ["q2"], "unbounded high end");
  assertEquals(hits(index, INDEX_B, key(12)), [], "ranges of another index are never hit");
  assertEquals(hits(index, INDEX_A, key(5), key(30)), ["q2"], "several keys in one probe");
});

Deno.test("range index: a point read is hit only by its own key, not by its neighbours or extensions", () => {
  const index = new ReadRangeIndex<string>();
  index.add("point", [point(INDEX_A, key(7, 1))]);
  index.add("range", [range(INDEX_A, key(7), key(8))]);
  assertEquals(hits(index, INDEX_A, key(7, 1)), ["point", "range"]);
  assertEquals(hits(index, INDEX_A, key(7, 2)), ["range"]);
  assertEquals(hits(index, INDEX_A, key(7, 1, 5)), ["range"]);
  assertEquals(hits(index, INDEX_A, key(7, 0, 255)), ["range"]);
});

Deno.test("range index: an unknown read set is hit by every commit; removal forgets an owner", () => {
  const index = new ReadRangeIndex<string>();
  index.add("everything", null);
  index.add("some", [range(INDEX_A, key(1), key(2))]);
  assertEquals(index.size, 2);
  assertEquals(hits(index, INDEX_B, key(200)), ["everything"]);
  assertEquals([...index.affected(new Map())], ["everything"], "even a commit with no keys");
  index.remove("everything");
  index.remove("some");
  assertEquals(index.size, 0);
  assertEquals(index.retainedBytes, 0);
  assertEquals(hits(index, INDEX_A, key(1)), []);
});

Deno.test("range index: memory is accounted per owner and given back on removal", () => {
  const index = new ReadRangeIndex<string>();
  const bytes = index.add("q", [range(INDEX_A, key(1, 2, 3), key(1, 2, 4)), range(INDEX_B, key(0), null)]);
  assertEquals(index.bytesOf("q"), bytes);
  assertEquals(index.retainedBytes, bytes);
  index.add("q", [range(INDEX_A, key(1), key(2))]);
  assertEquals(index.retainedBytes, index.bytesOf("q"), "re-registering replaces the old ranges");
  index.remove("q");
  assertEquals(index.bytesOf("q"), 0);
  assertEquals(index.retainedBytes, 0);
});

Deno.test("range index: re-registering the same read set rebuilds nothing", () => {
  const index = new ReadRangeIndex<number>();
  for (let owner = 0; owner < 100; owner++) index.add(owner, [point(INDEX_A, key(owner))]);
  assertEquals(hits(index, INDEX_A, key(42)), [42]);
  const rebuilds = index.treeRebuilds;
  // A re-run that read exactly what it read before (the common case) leaves the trees as they are.
  for (let owner = 0; owner < 100; owner++) index.add(owner, [point(INDEX_A, key(owner))]);
  assertEquals(hits(index, INDEX_A, key(42)), [42]);
  assertEquals(index.treeRebuilds, rebuilds);
});

Deno.test("range index: a subscription change rebuilds only its own index's tree, once, lazily at the next probe", () => {
  const index = new ReadRangeIndex<string>();
  index.add("a", [range(INDEX_A, key(0), key(10))]);
  index.add("b", [range(INDEX_B, key(0), key(10))]);
  hits(index, INDEX_A, key(1));
  hits(index, INDEX_B, key(1));
  const settled = index.treeRebuilds;
  hits(index, INDEX_A, key(2));
  assertEquals(index.treeRebuilds, settled, "probing a clean tree does not rebuild it");

  index.add("b2", [range(INDEX_B, key(5), key(6))]);
  index.add("b3", [range(INDEX_B, key(6), key(7))]);
  index.remove("b");
  assertEquals(index.treeRebuilds, settled, "adding and removing builds nothing by itself");
  assertEquals(hits(index, INDEX_A, key(5)), ["a"]);
  assertEquals(index.treeRebuilds, settled, "the other index's tree is untouched");
  assertEquals(hits(index, INDEX_B, key(5), key(6)), ["b2", "b3"]);
  assertEquals(index.treeRebuilds, settled + 1, "three changes, one rebuild");
  index.remove("a");
  assertEquals(hits(index, INDEX_A, key(5)), []);
  assertEquals(index.treeRebuilds, settled + 1, "removing an index's last owner drops its tree");
});

Deno.test("range index: key text keeps the byte order, for long keys too", () => {
  const long = new Uint8Array(20_000).map((_, i) => i % 251);
  assertEquals(keyToByteText(long).length, long.length);
  assertEquals(keyToByteText(key(1, 255)) < keyToByteText(key(2)), true);
  assertEquals(keyToByteText(key(1)) < keyToByteText(key(1, 0)), true);
});
