/**
 * An index of read ranges for reactivity: which live queries does a written index key invalidate? Ranges are kept
 * per index ID; each index's ranges form a static interval tree (ranges sorted by low key, a balanced tree over them
 * holding the largest high key of each subtree), rebuilt lazily after changes. A probe costs O((1 + hits) · log n)
 * and never looks at ranges of other indexes. Keys are compared as lowercase hex, which orders like the bytes.
 */
import type { ReadRange } from "../database/types.ts";
import { decodeBase64 } from "../values/mod.ts";

/** Sorts after every hex key: stands for an unbounded high end. */
const UNBOUNDED = "\uffff";

/** Hex of a key, order-preserving. */
export function keyToHex(key: Uint8Array): string {
  let hex = "";
  for (const byte of key) hex += (byte < 16 ? "0" : "") + byte.toString(16);
  return hex;
}

interface Interval<T> {
  low: string;
  high: string;
  owner: T;
}

/** The ranges of one index. */
class IndexTree<T> {
  readonly ranges = new Map<T, Interval<T>[]>();
  #sorted: Interval<T>[] = [];
  /** Segment tree over `#sorted`: the largest `high` in each node's span. */
  #maxHigh: string[] = [];
  #dirty = false;

  add(owner: T, interval: Interval<T>): void {
    let list = this.ranges.get(owner);
    if (!list) this.ranges.set(owner, list = []);
    list.push(interval);
    this.#dirty = true;
  }

  remove(owner: T): void {
    if (this.ranges.delete(owner)) this.#dirty = true;
  }

  #rebuild(): void {
    const sorted: Interval<T>[] = [];
    for (const list of this.ranges.values()) for (const interval of list) sorted.push(interval);
    sorted.sort((a, b) => (a.low < b.low ? -1 : a.low > b.low ? 1 : 0));
    this.#sorted = sorted;
    this.#maxHigh = new Array(Math.max(1, 4 * sorted.length));
    if (sorted.length > 0) this.#build(1, 0, sorted.length - 1);
    this.#dirty = false;
  }

  #build(node: number, lo: number, hi: number): string {
    if (lo === hi) return this.#maxHigh[node] = this.#sorted[lo].high;
    const mid = (lo + hi) >> 1;
    const left = this.#build(2 * node, lo, mid);
    const right = this.#build(2 * node + 1, mid + 1, hi);
    return this.#maxHigh[node] = left > right ? left : right;
  }

  /** Adds the owner of every range holding `key` to `hits`. */
  probe(key: string, hits: Set<T>): void {
    if (this.#dirty) this.#rebuild();
    const sorted = this.#sorted;
    if (sorted.length === 0) return;
    // The last range whose low key is ≤ key; ranges after it cannot hold the key.
    let lo = 0;
    let hi = sorted.length - 1;
    let last = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid].low <= key) {
        last = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (last >= 0) this.#collect(1, 0, sorted.length - 1, last, key, hits);
  }

  #collect(node: number, lo: number, hi: number, last: number, key: string, hits: Set<T>): void {
    if (lo > last || this.#maxHigh[node] <= key) return;
    if (lo === hi) {
      hits.add(this.#sorted[lo].owner);
      return;
    }
    const mid = (lo + hi) >> 1;
    this.#collect(2 * node, lo, mid, last, key, hits);
    this.#collect(2 * node + 1, mid + 1, hi, last, key, hits);
  }
}

/** Read ranges of many owners (cached query results), probed with written keys. */
export class ReadRangeIndex<T> {
  readonly #trees = new Map<number, IndexTree<T>>();
  /** Which indexes each owner has ranges in, for removal. */
  readonly #indexesOf = new Map<T, Set<number>>();
  /** Owners whose read set is unknown: every commit hits them. */
  readonly #everything = new Set<T>();
  /** Each owner's read set as registered, so re-registering the same ranges (the common re-run) changes nothing. */
  readonly #signatures = new Map<T, string>();

  /** Owners registered. */
  get size(): number {
    return this.#indexesOf.size + this.#everything.size;
  }

  /** Registers `owner`'s read set; null means "unknown", matched by every commit. */
  add(owner: T, readSet: ReadRange[] | null): void {
    // A re-run usually reads exactly what the previous run read; keeping the trees as they are then avoids an
    // O(n log n) rebuild of every tree the owner is in on the next probe.
    const signature = readSet === null ? null : signatureOf(readSet);
    if (signature !== null && this.#signatures.get(owner) === signature) return;
    this.remove(owner);
    if (signature !== null) this.#signatures.set(owner, signature);
    if (readSet === null) {
      this.#everything.add(owner);
      return;
    }
    const indexes = new Set<number>();
    for (const range of readSet) {
      let tree = this.#trees.get(range.indexId);
      if (!tree) this.#trees.set(range.indexId, tree = new IndexTree());
      tree.add(owner, {
        low: keyToHex(decodeBase64(range.lowKey)),
        high: range.highKey === null ? UNBOUNDED : keyToHex(decodeBase64(range.highKey)),
        owner,
      });
      indexes.add(range.indexId);
    }
    this.#indexesOf.set(owner, indexes);
  }

  /** Forgets `owner`. */
  remove(owner: T): void {
    this.#everything.delete(owner);
    this.#signatures.delete(owner);
    const indexes = this.#indexesOf.get(owner);
    if (!indexes) return;
    this.#indexesOf.delete(owner);
    for (const indexId of indexes) {
      const tree = this.#trees.get(indexId)!;
      tree.remove(owner);
      if (tree.ranges.size === 0) this.#trees.delete(indexId);
    }
  }

  /** The owners whose read sets hold any of the written keys. */
  affected(keysByIndex: Map<number, Uint8Array[]>): Set<T> {
    const hits = new Set<T>(this.#everything);
    for (const [indexId, keys] of keysByIndex) {
      const tree = this.#trees.get(indexId);
      if (!tree) continue;
      for (const key of keys) tree.probe(keyToHex(key), hits);
    }
    return hits;
  }
}

function signatureOf(readSet: ReadRange[]): string {
  let signature = "";
  for (const range of readSet) signature += `${range.indexId}:${range.lowKey}:${range.highKey ?? ""};`;
  return signature;
}
