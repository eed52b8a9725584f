/**
 * An index of read ranges for reactivity: which live queries does a written index key invalidate? Ranges are kept
 * per index ID; each index's ranges form a static interval tree (ranges sorted by low key, a balanced tree over them
 * holding the largest high key of each subtree), rebuilt lazily after changes. A probe costs O((1 + hits) · log n)
 * and never looks at ranges of other indexes.
 *
 * Keys are held as "byte text" (one UTF-16 unit per key byte, built flat): it compares like the bytes and costs one
 * byte of memory per key byte. (Hex built by `+=` made a rope of one heap object per byte: about 60 bytes of memory
 * per key byte, 120 MB for the two ends of one range over a 1 MB string argument.)
 */
import type { ReadRange } from "../database/mod.ts";
import { decodeBase64 } from "../values/mod.ts";

/** Sorts after every byte text: stands for an unbounded high end. */
const UNBOUNDED = "\uffff";
/** Bytes converted per `String.fromCharCode` call (stays far below the engine's argument count limit). */
const TEXT_CHUNK_BYTES = 8192;
/** Memory of one registered range besides its key text (interval object, array slots, tree node), an estimate. */
const INTERVAL_OVERHEAD_BYTES = 96;

/** A key as flat byte text: one character per byte, ordered like the bytes. */
export function keyToByteText(key: Uint8Array): string {
  if (key.length <= TEXT_CHUNK_BYTES) return String.fromCharCode(...key);
  const parts: string[] = [];
  for (let offset = 0; offset < key.length; offset += TEXT_CHUNK_BYTES) {
    parts.push(String.fromCharCode(...key.subarray(offset, offset + TEXT_CHUNK_BYTES)));
  }
  // `join` builds one flat string (a chain of `+=` would keep every part alive as a rope).
  return parts.join("");
}

/**
 * A read range's base64 key as byte text; null (unbounded) as {@link UNBOUNDED}. `atob` yields exactly one
 * Latin-1 character per decoded byte, as one flat string, with no intermediate byte array.
 */
function base64ToByteText(key: string | null): string {
  if (key === null) return UNBOUNDED;
  try {
    return atob(key);
  } catch {
    // Not standard base64 (never produced by the database): decode leniently like every other key reader.
    return keyToByteText(decodeBase64(key));
  }
}

/** Hex of a key, order-preserving (for logs and tests; the index itself uses {@link keyToByteText}). */
export function keyToHex(key: Uint8Array): string {
  const parts = new Array<string>(key.length);
  for (let i = 0; i < key.length; i++) parts[i] = (key[i] < 16 ? "0" : "") + key[i].toString(16);
  return parts.join("");
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
  readonly #onRebuild: () => void;

  constructor(onRebuild: () => void) {
    this.#onRebuild = onRebuild;
  }

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
    this.#onRebuild();
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

/** One registered range of an owner, as held in its index's tree. */
interface OwnedRange<T> {
  indexId: number;
  interval: Interval<T>;
}

/** Read ranges of many owners (cached query results), probed with written keys. */
export class ReadRangeIndex<T> {
  readonly #trees = new Map<number, IndexTree<T>>();
  /** Each owner's ranges in registration order: for removal, and so re-registering the same ranges changes nothing. */
  readonly #rangesOf = new Map<T, OwnedRange<T>[]>();
  /** Owners whose read set is unknown: every commit hits them. */
  readonly #everything = new Set<T>();
  /** Memory held for each owner's ranges (key text and overhead), an estimate. */
  readonly #bytesOf = new Map<T, number>();
  #totalBytes = 0;
  #treeRebuilds = 0;

  /** Per-index trees rebuilt so far (each costs O(n log n) in that index's ranges): for tests and monitoring. */
  get treeRebuilds(): number {
    return this.#treeRebuilds;
  }

  /** Owners registered. */
  get size(): number {
    return this.#rangesOf.size + this.#everything.size;
  }

  /** Memory held by all registered ranges, an estimate in bytes. */
  get retainedBytes(): number {
    return this.#totalBytes;
  }

  /** Memory held by `owner`'s ranges, an estimate in bytes (0 when unregistered). */
  bytesOf(owner: T): number {
    return this.#bytesOf.get(owner) ?? 0;
  }

  /** Registers `owner`'s read set (null means "unknown", matched by every commit); returns the bytes it holds. */
  add(owner: T, readSet: ReadRange[] | null): number {
    if (readSet === null) {
      this.remove(owner);
      this.#everything.add(owner);
      return 0;
    }
    const ranges = readSet.map((range): OwnedRange<T> => ({
      indexId: range.indexId,
      interval: { low: base64ToByteText(range.lowKey), high: base64ToByteText(range.highKey), owner },
    }));
    // A re-run usually reads exactly what the previous run read; keeping the trees as they are then avoids an
    // O(n log n) rebuild of every tree the owner is in on the next probe.
    if (sameRanges(this.#rangesOf.get(owner), ranges)) return this.bytesOf(owner);
    this.remove(owner);
    let bytes = 0;
    for (const { indexId, interval } of ranges) {
      let tree = this.#trees.get(indexId);
      if (!tree) this.#trees.set(indexId, tree = new IndexTree(() => this.#treeRebuilds++));
      tree.add(owner, interval);
      bytes += interval.low.length + interval.high.length + INTERVAL_OVERHEAD_BYTES;
    }
    this.#rangesOf.set(owner, ranges);
    this.#bytesOf.set(owner, bytes);
    this.#totalBytes += bytes;
    return bytes;
  }

  /** Forgets `owner`. */
  remove(owner: T): void {
    this.#everything.delete(owner);
    const ranges = this.#rangesOf.get(owner);
    if (!ranges) return;
    this.#rangesOf.delete(owner);
    this.#totalBytes -= this.#bytesOf.get(owner) ?? 0;
    this.#bytesOf.delete(owner);
    for (const indexId of new Set(ranges.map((range) => range.indexId))) {
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
      for (const key of keys) tree.probe(keyToByteText(key), hits);
    }
    return hits;
  }
}

function sameRanges<T>(previous: OwnedRange<T>[] | undefined, next: OwnedRange<T>[]): boolean {
  if (previous === undefined || previous.length !== next.length) return false;
  for (let i = 0; i < next.length; i++) {
    const a = previous[i];
    const b = next[i];
    if (a.indexId !== b.indexId || a.interval.low !== b.interval.low || a.interval.high !== b.interval.high) {
      return false;
    }
  }
  return true;
}
