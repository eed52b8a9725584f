/**
 * The in-memory vector index (src/search/vector_index.ts): exact results against a hand computation, filters, and
 * the clustered (IVF) search against exact search: recall, writes and deletes during and after the cluster build.
 */
import { assert, assertEquals, seededRandom } from "./helpers/assert.ts";
import { CLUSTER_MIN_DOCUMENTS, normalized, VectorIndex } from "../src/search/vector_index.ts";
import { filterValueKey } from "../src/database/mod.ts";

const DIMENSIONS = 16;

function documentJson(id: string, vector: number[], kind = "k"): string {
  return JSON.stringify({ _id: id, _creationTime: 1, kind, embedding: vector });
}

Deno.test("vector index: exact cosine scores, limit, filters, updates and deletes", () => {
  const index = new VectorIndex({ name: "t.v", vectorField: "embedding", dimensions: 2, filterFields: ["kind"] });
  index.apply("a", documentJson("a", [1, 0], "x"));
  index.apply("b", documentJson("b", [3, 4], "y")); // cos with [1, 0] = 0.6
  index.apply("c", documentJson("c", [0, -2], "x")); // 0
  index.apply("z", documentJson("z", [0, 0], "x")); // no direction: not indexed
  index.apply("w", documentJson("w", [1, 2, 3], "x")); // wrong size: not indexed
  const query = normalized([2, 0])!;
  const results = index.search(query, 10, null);
  assertEquals(results.map((r) => r._id), ["a", "b", "c"]);
  assert(Math.abs(results[1]._score - 0.6) < 1e-6);
  assertEquals(index.search(query, 1, null).map((r) => r._id), ["a"]);
  assertEquals(index.search(query, 10, [{ at: 0, key: filterValueKey("y") }]).map((r) => r._id), ["b"]);
  index.apply("a", documentJson("a", [-1, 0], "x"));
  index.apply("b", null);
  assertEquals(index.search(query, 10, null).map((r) => r._id), ["c", "a"]);
  assertEquals(index.documentCount, 2);
});

Deno.test("vector index: clustered search keeps recall@10 >= 0.95 and sees writes made during and after the build", async () => {
  const random = seededRandom(42);
  const centres = Array.from({ length: 40 }, () => Array.from({ length: DIMENSIONS }, () => random() * 2 - 1));
  const sample = () => {
    const centre = centres[Math.floor(random() * centres.length)];
    return centre.map((x) => x + (random() * 2 - 1) * 0.5);
  };
  const index = new VectorIndex({ name: "t.v", vectorField: "embedding", dimensions: DIMENSIONS, filterFields: [] });
  const count = CLUSTER_MIN_DOCUMENTS + 1000;
  for (let i = 0; i < count; i++) index.apply(`d${i}`, documentJson(`d${i}`, sample()));
  assert(index.needsClusters);
  // Writes while the clusters are built: a new document and a deleted one.
  const fresh = sample();
  let pauses = 0;
  await index.buildClusters(() => {
    pauses++;
    if (pauses === 5) {
      index.apply("fresh", documentJson("fresh", fresh));
      index.apply("d0", null);
    }
    return Promise.resolve();
  });
  assert(!index.needsClusters);
  assertEquals(index.search(normalized(fresh)!, 1, null)[0]._id, "fresh");
  let hits = 0;
  const queries = 50;
  for (let q = 0; q < queries; q++) {
    const query = normalized(sample())!;
    const exact = new Set(index.searchExact(query, 10, null).map((r) => r._id));
    const found = index.search(query, 10, null);
    assertEquals(new Set(found.map((r) => r._id)).size, found.length, "no document twice");
    assert(!found.some((r) => r._id === "d0"), "a deleted document is never found");
    hits += found.filter((r) => exact.has(r._id)).length;
  }
  assert(hits / (queries * 10) >= 0.95, `recall@10 ${hits / (queries * 10)}`);
  // After the build: an update moves a vector to another list; the search follows it.
  const moved = sample();
  index.apply("d1", documentJson("d1", moved));
  assertEquals(index.search(normalized(moved)!, 1, null)[0]._id, "d1");
});
