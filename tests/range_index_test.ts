/**
 * The read-range index of reactivity as a unit: which owners a written key hits (ranges, points, bounds, other
 * indexes, unknown read sets), and that a subscription change costs O(log n), with no rebuild.
 */
import { assert, assertEquals, seededRandom } from "./helpers/assert.ts";
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

Deno.test("range index: re-registering the same read set touches no tree node", () => {
  const index = new ReadRangeIndex<number>();
  for (let owner = 0; owner < 100; owner++) index.add(owner, [point(INDEX_A, key(owner))]);
  assertEquals(hits(index, INDEX_A, key(42)), [42]);
  const touched = index.nodesTouched;
  // A re-run that read exactly what it read before (the common case) leaves the trees as they are.
  for (let owner = 0; owner < 100; owner++) index.add(owner, [point(INDEX_A, key(owner))]);
  assertEquals(hits(index, INDEX_A, key(42)), [42]);
  assertEquals(index.nodesTouched, touched);
});

Deno.test("range index: a subscription change costs O(log n) tree nodes, not a rebuild of the index", () => {
  const index = new ReadRangeIndex<number>();
  const owners = 20_000;
  for (let owner = 0; owner < owners; owner++) index.add(owner, [range(INDEX_A, key(owner >> 8, owner & 255), null)]);
  const before = index.nodesTouched;
  index.add(owners, [range(INDEX_A, key(40, 1), key(40, 2))]);
  index.remove(7);
  const perChange = (index.nodesTouched - before) / 2;
  // A rebuild visits every one of the 20,000 ranges; a treap change visits about 2-4 · log2(n) ≈ 30-60 nodes.
  assert(perChange < 300, `one subscription change touched ${perChange} tree nodes`);
  assertEquals(hits(index, INDEX_A, key(0, 7)).includes(7), false, "the removed owner is gone");
  assertEquals(hits(index, INDEX_A, key(40, 1, 9)).includes(owners), true, "the added owner is found");
  index.add(10_000_000, [range(INDEX_B, key(0), null)]);
  assertEquals(hits(index, INDEX_B, key(5)), [10_000_000], "another index has its own tree");
});

Deno.test("range index: agrees with a brute-force scan under random adds, removes and probes", () => {
  const rng = seededRandom(20261130);
  const index = new ReadRangeIndex<number>();
  const live = new Map<number, [number, number | null][]>();
  const byte = () => Math.floor(rng() * 64);
  for (let step = 0; step < 4_000; step++) {
    const owner = Math.floor(rng() * 300);
    const roll = rng();
    if (roll < 0.45) {
      const ranges: [number, number | null][] = [];
      for (let i = 0, n = 1 + Math.floor(rng() * 3); i < n; i++) {
        const low = byte();
        ranges.push([low, rng() < 0.1 ? null : low + 1 + byte()]);
      }
      index.add(owner, ranges.map(([low, high]) => range(INDEX_A, key(low), high === null ? null : key(high))));
      live.set(owner, ranges);
    } else if (roll < 0.6) {
      index.remove(owner);
      live.delete(owner);
    } else {
      const probe = byte() + (rng() < 0.5 ? 0 : 0.5);
      const probeKey = Number.isInteger(probe) ? key(probe) : key(Math.floor(probe), 128);
      const expected = [...live].filter(([, ranges]) =>
        ranges.some(([low, high]) => low <= probe && (high === null || probe < high))
      ).map(([owner]) => owner).sort((a, b) => a - b);
      const actual = [...index.affected(new Map([[INDEX_A, [probeKey]]]))].sort((a, b) => a - b);
      assertEquals(actual, expected, `step ${step}: probe ${probe}`);
    }
  }
});

Deno.test("range index: key text keeps the byte order, for long keys too", () => {
  const long = new Uint8Array(20_000).map((_, i) => i % 251);
  assertEquals(keyToByteText(long).length, long.length);
  assertEquals(keyToByteText(key(1, 255)) < keyToByteText(key(2)), true);
  assertEquals(keyToByteText(key(1)) < keyToByteText(key(1, 0)), true);
});
