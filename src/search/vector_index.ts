/**
 * One vector index in memory: every document's vector, normalized, in one flat Float32Array (a slot per document,
 * freed slots reused), with its filter value keys. Vector search runs in actions, which read the latest state, so
 * there is one version per document.
 *
 * Small indexes (and filtered searches) are searched exactly: the cosine similarity of the query with every vector
 * that passes the filter. From {@link CLUSTER_MIN_DOCUMENTS} documents on, an inverted file (IVF) is built in the
 * background: k-means centroids over a sample, every vector listed under its nearest centroid; a search scores the
 * centroids and scans the lists of the best {@link probeCount} of them (plus vectors written since the build), which
 * reads about a fifth of the vectors. scripts/bench/search_bench.ts measures its recall@10 against exact search.
 *
 * Private to `src/search`: other folders use its `mod.ts`.
 */
import type { VectorIndexInfo } from "../database/mod.ts";
import { filterValueKey } from "../database/mod.ts";
import { getFieldPath, parseConvexJsonText, type Value } from "../values/mod.ts";

const INITIAL_SLOTS = 256;
/** Documents from which a clustered (IVF) index pays off. */
export const CLUSTER_MIN_DOCUMENTS = 20_000;
/** k-means iterations over the sample, and sample vectors per centroid. */
const KMEANS_ITERATIONS = 5;
const SAMPLE_PER_CENTROID = 32;
/** Vectors assigned between pauses of a background build (each pause lets other work run). */
const ASSIGN_CHUNK = 200;

/** Centroids for `documents` vectors: about sqrt(n)/2.5, within [16, 256]. */
function centroidCount(documents: number): number {
  return Math.max(16, Math.min(256, Math.round(Math.sqrt(documents) / 2.5)));
}

/** Lists a search scans: a fifth of them, at least 8 (recall@10 ≥ 0.95 even on topics that overlap a lot). */
export function probeCount(centroids: number): number {
  return Math.min(centroids, Math.max(8, Math.ceil(centroids / 5)));
}

/** The IVF: centroids, each slot's list (-1: not listed), and the lists. */
interface Clusters {
  centroids: Float32Array;
  count: number;
  listOf: Int32Array;
  lists: { slots: Int32Array; size: number }[];
  /** Documents when built: a rebuild comes when the index has grown fourfold. */
  builtAt: number;
}

/** One `q.eq` of a filter: the filter field's position in the index and the value's key. */
export interface VectorFilterTerm {
  at: number;
  key: string;
}

/** A search result as Convex returns it. */
export interface VectorResult {
  _id: string;
  _score: number;
}

/** `vector` scaled to length 1, or null for a zero (or non-finite) vector, which has no direction. */
export function normalized(vector: ArrayLike<number>): Float32Array | null {
  let norm = 0;
  for (let i = 0; i < vector.length; i++) norm += vector[i] * vector[i];
  if (!(norm > 0) || !Number.isFinite(norm)) return null;
  const scale = 1 / Math.sqrt(norm);
  const out = new Float32Array(vector.length);
  for (let i = 0; i < vector.length; i++) out[i] = vector[i] * scale;
  return out;
}

/** See the module comment. */
export class VectorIndex {
  readonly info: VectorIndexInfo;
  readonly #dimensions: number;
  #vectors: Float32Array;
  #ids: (string | null)[] = [];
  #filters: string[][] = [];
  readonly #slotOf = new Map<string, number>();
  readonly #free: number[] = [];
  #clusters: Clusters | null = null;
  /** Slots written since the clusters were built (or during a build): scanned exactly by every search. */
  #unlisted = new Set<number>();
  /** Slots written while a build runs: listed again once it is done (the build may have read an older vector). */
  #writtenDuringBuild = new Set<number>();
  #building = false;

  constructor(info: VectorIndexInfo) {
    this.info = info;
    this.#dimensions = info.dimensions;
    this.#vectors = new Float32Array(INITIAL_SLOTS * info.dimensions);
  }

  /** Documents indexed. */
  get documentCount(): number {
    return this.#slotOf.size;
  }

  /** Bytes of vector storage allocated, and an estimate of the per-document bookkeeping. */
  get sizeBytes(): number {
    return this.#vectors.byteLength + this.#ids.length * (64 + 32 * (this.info.filterFields.length + 1));
  }

  /** Applies the write of document `id` (new convex-JSON text, null when deleted). */
  apply(id: string, json: string | null): void {
    const value: Value | null = json === null ? null : parseConvexJsonText(json);
    const vector = value === null ? null : this.#vectorOf(value);
    const existing = this.#slotOf.get(id);
    if (vector === null) {
      if (existing === undefined) return;
      this.#slotOf.delete(id);
      this.#ids[existing] = null;
      this.#free.push(existing);
      this.#unlisted.delete(existing);
      if (this.#clusters !== null && existing < this.#clusters.listOf.length) this.#clusters.listOf[existing] = -1;
      return;
    }
    const slot = existing ?? this.#newSlot();
    this.#vectors.set(vector, slot * this.#dimensions);
    this.#ids[slot] = id;
    this.#filters[slot] = this.info.filterFields.map((field) => filterValueKey(getFieldPath(value!, field)));
    this.#slotOf.set(id, slot);
    this.#list(slot);
  }

  /** Lists a written slot under its nearest centroid (or among the unlisted while there are none or one is built). */
  #list(slot: number): void {
    const clusters = this.#clusters;
    if (clusters !== null && slot >= clusters.listOf.length) {
      const grown = new Int32Array(Math.max(slot + 1, clusters.listOf.length * 2)).fill(-1);
      grown.set(clusters.listOf);
      clusters.listOf = grown;
    }
    if (clusters !== null) clusters.listOf[slot] = -1;
    if (this.#building) this.#writtenDuringBuild.add(slot);
    if (clusters === null || this.#building) {
      this.#unlisted.add(slot);
      return;
    }
    this.#unlisted.delete(slot);
    const list = nearestCentroid(clusters, this.#vectors, slot * this.#dimensions, this.#dimensions);
    clusters.listOf[slot] = list;
    pushSlot(clusters.lists[list], slot);
  }

  /** Whether a (re)build of the clusters is due: enough documents, none yet or the index grew fourfold. */
  get needsClusters(): boolean {
    if (this.#building || this.#slotOf.size < CLUSTER_MIN_DOCUMENTS) return false;
    return this.#clusters === null || this.#slotOf.size >= this.#clusters.builtAt * 4;
  }

  /**
   * Builds the clusters: k-means over a sample, then every vector listed under its nearest centroid, `pause`d every
   * few hundred vectors so the server keeps serving; searches stay exact until it is done. Writes during the build
   * are listed at the end.
   */
  async buildClusters(pause: () => Promise<void>): Promise<void> {
    if (this.#building) return;
    this.#building = true;
    try {
      const dimensions = this.#dimensions;
      const live = [...this.#slotOf.values()];
      const count = centroidCount(live.length);
      const sample = sampleOf(live, count * SAMPLE_PER_CENTROID);
      const centroids = new Float32Array(count * dimensions);
      sample.slice(0, count).forEach((slot, c) =>
        centroids.set(this.#vectors.subarray(slot * dimensions, (slot + 1) * dimensions), c * dimensions)
      );
      const draft: Clusters = { centroids, count, listOf: new Int32Array(0), lists: [], builtAt: live.length };
      for (let iteration = 0; iteration < KMEANS_ITERATIONS; iteration++) {
        const sums = new Float64Array(count * dimensions);
        for (let i = 0; i < sample.length; i++) {
          const offset = sample[i] * dimensions;
          const c = nearestCentroid(draft, this.#vectors, offset, dimensions);
          for (let d = 0; d < dimensions; d++) sums[c * dimensions + d] += this.#vectors[offset + d];
          if (i % ASSIGN_CHUNK === 0) await pause();
        }
        for (let c = 0; c < count; c++) {
          const unit = normalized(sums.subarray(c * dimensions, (c + 1) * dimensions));
          if (unit !== null) centroids.set(unit, c * dimensions); // an empty cluster keeps its centroid
        }
      }
      const capacity = this.#ids.length;
      draft.listOf = new Int32Array(capacity).fill(-1);
      draft.lists = Array.from({ length: count }, () => ({ slots: new Int32Array(16), size: 0 }));
      const groups = groupCentroids(draft, dimensions);
      for (let slot = 0; slot < capacity; slot++) {
        if (slot % ASSIGN_CHUNK === 0) await pause();
        if (this.#ids[slot] === null || this.#writtenDuringBuild.has(slot)) continue; // listed at the end
        const list = groups.nearest(this.#vectors, slot * dimensions);
        draft.listOf[slot] = list;
        pushSlot(draft.lists[list], slot);
      }
      // Slots written during the build hold vectors the draft may have listed from their old value: list them again.
      const written = [...this.#writtenDuringBuild];
      this.#clusters = draft;
      this.#building = false;
      this.#writtenDuringBuild = new Set();
      this.#unlisted = new Set();
      for (const slot of written) if (this.#ids[slot] !== null) this.#list(slot);
    } finally {
      this.#building = false;
      this.#writtenDuringBuild.clear();
    }
  }

  /** The normalized vector of a document, or null when its vector field is not a vector of the index's size. */
  #vectorOf(document: Value): Float32Array | null {
    const field = getFieldPath(document, this.info.vectorField);
    if (!Array.isArray(field) || field.length !== this.#dimensions) return null;
    if (!field.every((x) => typeof x === "number")) return null;
    return normalized(field as number[]);
  }

  #newSlot(): number {
    const reused = this.#free.pop();
    if (reused !== undefined) return reused;
    const slot = this.#ids.length;
    this.#ids.push(null);
    if ((slot + 1) * this.#dimensions > this.#vectors.length) {
      const grown = new Float32Array(this.#vectors.length * 2);
      grown.set(this.#vectors);
      this.#vectors = grown;
    }
    return slot;
  }

  /**
   * The `limit` documents most similar to `query` (already normalized, of the index's size) by cosine similarity,
   * best first; `filter` (alternatives: any one matching passes) restricts the candidates when not null. Through the
   * clusters when built and the search is not filtered (a filter may leave too few candidates in the probed lists).
   */
  search(query: Float32Array, limit: number, filter: VectorFilterTerm[] | null): VectorResult[] {
    const clusters = this.#clusters;
    if (clusters === null || filter !== null) return this.searchExact(query, limit, filter);
    const top = new TopList(limit);
    const probed = nearestCentroids(clusters, query, probeCount(clusters.count));
    for (const list of probed) {
      const { slots, size } = clusters.lists[list];
      for (let i = 0; i < size; i++) {
        const slot = slots[i];
        if (clusters.listOf[slot] !== list || this.#ids[slot] === null) continue; // moved or deleted since
        top.offer(slot, dot(query, this.#vectors, slot * this.#dimensions, this.#dimensions));
      }
    }
    for (const slot of this.#unlisted) {
      top.offer(slot, dot(query, this.#vectors, slot * this.#dimensions, this.#dimensions));
    }
    return top.slots.map((slot, i) => ({ _id: this.#ids[slot]!, _score: top.scores[i] }));
  }

  /** Exact search over every vector (that passes `filter`). */
  searchExact(query: Float32Array, limit: number, filter: VectorFilterTerm[] | null): VectorResult[] {
    const dimensions = this.#dimensions;
    const vectors = this.#vectors;
    const topSlots: number[] = [];
    const topScores: number[] = [];
    for (let slot = 0; slot < this.#ids.length; slot++) {
      if (this.#ids[slot] === null) continue;
      if (filter !== null) {
        const filters = this.#filters[slot];
        if (!filter.some((term) => filters[term.at] === term.key)) continue;
      }
      const score = dot(query, vectors, slot * dimensions, dimensions);
      if (topSlots.length === limit && score <= topScores[limit - 1]) continue;
      // Insertion into the sorted top list (limit ≤ 256, and most candidates stop at the check above).
      let at = topSlots.length === limit ? limit - 1 : topSlots.length;
      while (at > 0 && topScores[at - 1] < score) {
        if (at < limit) {
          topScores[at] = topScores[at - 1];
          topSlots[at] = topSlots[at - 1];
        }
        at--;
      }
      topScores[at] = score;
      topSlots[at] = slot;
    }
    return topSlots.map((slot, i) => ({ _id: this.#ids[slot]!, _score: topScores[i] }));
  }
}

/** The best `limit` (slot, score) pairs offered, best first. */
class TopList {
  readonly slots: number[] = [];
  readonly scores: number[] = [];
  readonly #limit: number;

  constructor(limit: number) {
    this.#limit = limit;
  }

  offer(slot: number, score: number): void {
    const limit = this.#limit;
    if (this.slots.length === limit && score <= this.scores[limit - 1]) return;
    // A slot listed twice (written while the clusters were built) is offered twice: keep it once.
    if (this.slots.includes(slot)) return;
    let at = this.slots.length === limit ? limit - 1 : this.slots.length;
    while (at > 0 && this.scores[at - 1] < score) {
      this.scores[at] = this.scores[at - 1];
      this.slots[at] = this.slots[at - 1];
      at--;
    }
    this.scores[at] = score;
    this.slots[at] = slot;
  }
}

/** The centroid nearest (by dot product: vectors and centroids are unit length) to the vector at `offset`. */
function nearestCentroid(clusters: Clusters, vectors: Float32Array, offset: number, dimensions: number): number {
  let best = 0;
  let bestScore = -Infinity;
  for (let c = 0; c < clusters.count; c++) {
    const score = dotAt(clusters.centroids, c * dimensions, vectors, offset, dimensions);
    if (score > bestScore) {
      bestScore = score;
      best = c;
    }
  }
  return best;
}

/** Groups of centroids searched first when listing every vector of a build. */
const CENTROID_GROUPS_PROBED = 3;

/**
 * The centroids grouped around about sqrt(k) group centres (one k-means pass over the centroids), so listing a
 * vector scores the group centres, then only the centroids of the nearest {@link CENTROID_GROUPS_PROBED} groups:
 * about a third of the dot products of scoring every centroid, for the build's pass over every vector. (A vector
 * written later is listed against every centroid.)
 */
function groupCentroids(clusters: Clusters, dimensions: number) {
  const groupCount = Math.max(1, Math.round(Math.sqrt(clusters.count)));
  const centres: Clusters = {
    centroids: clusters.centroids.slice(0, groupCount * dimensions),
    count: groupCount,
    listOf: new Int32Array(0),
    lists: [],
    builtAt: 0,
  };
  let members: number[][] = [];
  for (let pass = 0; pass < 2; pass++) {
    members = Array.from({ length: groupCount }, () => []);
    for (let c = 0; c < clusters.count; c++) {
      members[nearestCentroid(centres, clusters.centroids, c * dimensions, dimensions)].push(c);
    }
    members.forEach((group, g) => {
      if (group.length === 0) return;
      const sum = new Float64Array(dimensions);
      for (const c of group) for (let d = 0; d < dimensions; d++) sum[d] += clusters.centroids[c * dimensions + d];
      const unit = normalized(sum);
      if (unit !== null) centres.centroids.set(unit, g * dimensions);
    });
  }
  return {
    nearest(vectors: Float32Array, offset: number): number {
      const top = new TopList(Math.min(CENTROID_GROUPS_PROBED, groupCount));
      for (let g = 0; g < groupCount; g++) {
        top.offer(g, dotAt(centres.centroids, g * dimensions, vectors, offset, dimensions));
      }
      let best = 0;
      let bestScore = -Infinity;
      for (const g of top.slots) {
        for (const c of members[g]) {
          const score = dotAt(clusters.centroids, c * dimensions, vectors, offset, dimensions);
          if (score > bestScore) {
            bestScore = score;
            best = c;
          }
        }
      }
      return best;
    },
  };
}

/** The `probes` centroids nearest to `query`. */
function nearestCentroids(clusters: Clusters, query: Float32Array, probes: number): number[] {
  const top = new TopList(probes);
  const dimensions = query.length;
  for (let c = 0; c < clusters.count; c++) top.offer(c, dot(query, clusters.centroids, c * dimensions, dimensions));
  return top.slots;
}

function pushSlot(list: { slots: Int32Array; size: number }, slot: number): void {
  if (list.size === list.slots.length) {
    const grown = new Int32Array(list.size * 2);
    grown.set(list.slots);
    list.slots = grown;
  }
  list.slots[list.size++] = slot;
}

/** Up to `count` distinct members of `items`, spread evenly (deterministic: a rebuild gives the same clusters). */
function sampleOf(items: number[], count: number): number[] {
  if (items.length <= count) return items;
  const step = items.length / count;
  return Array.from({ length: count }, (_, i) => items[Math.floor(i * step)]);
}

/** The dot product of the vectors at `offsetA` of `a` and `offsetB` of `b`. */
function dotAt(a: Float32Array, offsetA: number, b: Float32Array, offsetB: number, dimensions: number): number {
  let sum0 = 0;
  let sum1 = 0;
  let i = 0;
  for (; i + 1 < dimensions; i += 2) {
    sum0 += a[offsetA + i] * b[offsetB + i];
    sum1 += a[offsetA + i + 1] * b[offsetB + i + 1];
  }
  if (i < dimensions) sum0 += a[offsetA + i] * b[offsetB + i];
  return sum0 + sum1;
}

/** The dot product of `query` with the vector at `offset` of `vectors`, four lanes at a time. */
function dot(query: Float32Array, vectors: Float32Array, offset: number, dimensions: number): number {
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  let i = 0;
  for (; i + 3 < dimensions; i += 4) {
    a += query[i] * vectors[offset + i];
    b += query[i + 1] * vectors[offset + i + 1];
    c += query[i + 2] * vectors[offset + i + 2];
    d += query[i + 3] * vectors[offset + i + 3];
  }
  for (; i < dimensions; i++) a += query[i] * vectors[offset + i];
  return a + b + c + d;
}
