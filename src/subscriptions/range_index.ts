/**
 * An index of read ranges for reactivity: which live queries does a written index key invalidate? Ranges are kept
 * per index ID; each index's ranges form an interval treap (ordered by low key, each node holding the largest high
 * key of its subtree). Adding or removing a subscription costs expected O(log n) per range, with no rebuild; a probe
 * costs O((1 + hits) · log n) and never looks at ranges of other indexes.
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

/**
 * A node of an index's interval treap: ordered by (low key, sequence number), heap-ordered by a random priority (so
 * the expected depth is O(log n) whatever order ranges arrive in), each holding the largest high key of its subtree.
 */
interface TreapNode<T> {
  readonly interval: Interval<T>;
  /** Unique per tree: orders ranges with equal low keys and makes each node's key unique. */
  readonly seq: number;
  readonly priority: number;
  left: TreapNode<T> | null;
  right: TreapNode<T> | null;
  maxHigh: string;
}

/**
 * The ranges of one index, as an interval treap: a subscription change inserts or deletes its own nodes in expected
 * O(log n) and never rebuilds the tree (a sorted, static tree had to be rebuilt in O(n log n) after every change).
 */
class IndexTree<T> {
  readonly ranges = new Map<T, TreapNode<T>[]>();
  #root: TreapNode<T> | null = null;
  #nextSeq = 0;
  readonly #onTouch: () => void;

  /** `onTouch` is called once per node an insertion or deletion visits (a cost gauge for tests). */
  constructor(onTouch: () => void) {
    this.#onTouch = onTouch;
  }

  add(owner: T, interval: Interval<T>): void {
    const node: TreapNode<T> = {
      interval,
      seq: this.#nextSeq++,
      priority: Math.random(),
      left: null,
      right: null,
      maxHigh: interval.high,
    };
    let list = this.ranges.get(owner);
    if (!list) this.ranges.set(owner, list = []);
    list.push(node);
    const [before, after] = this.#split(this.#root, interval.low, node.seq);
    this.#root = this.#merge(this.#merge(before, node), after);
  }

  remove(owner: T): void {
    const list = this.ranges.get(owner);
    if (!list) return;
    this.ranges.delete(owner);
    for (const node of list) {
      const [before, rest] = this.#split(this.#root, node.interval.low, node.seq);
      const [found, after] = this.#split(rest, node.interval.low, node.seq + 1);
      assertInvariant(found === node && node.left === null && node.right === null, "the node was in its tree");
      this.#root = this.#merge(before, after);
    }
  }

  /** Splits `node`'s subtree into the nodes ordered before (low, seq) and the rest. */
  #split(node: TreapNode<T> | null, low: string, seq: number): [TreapNode<T> | null, TreapNode<T> | null] {
    if (node === null) return [null, null];
    this.#onTouch();
    const key = node.interval.low;
    if (key < low || (key === low && node.seq < seq)) {
      const [left, right] = this.#split(node.right, low, seq);
      node.right = left;
      updateMaxHigh(node);
      return [node, right];
    }
    const [left, right] = this.#split(node.left, low, seq);
    node.left = right;
    updateMaxHigh(node);
    return [left, node];
  }

  /** Joins two treaps where every node of `a` is ordered before every node of `b`. */
  #merge(a: TreapNode<T> | null, b: TreapNode<T> | null): TreapNode<T> | null {
    if (a === null) return b;
    if (b === null) return a;
    this.#onTouch();
    if (a.priority > b.priority) {
      a.right = this.#merge(a.right, b);
      updateMaxHigh(a);
      return a;
    }
    b.left = this.#merge(a, b.left);
    updateMaxHigh(b);
    return b;
  }

  /** Adds the owner of every range holding `key` (low ≤ key < high) to `hits`. */
  probe(key: string, hits: Set<T>): void {
    collect(this.#root, key, hits);
  }
}

function updateMaxHigh<T>(node: TreapNode<T>): void {
  let max = node.interval.high;
  if (node.left !== null && node.left.maxHigh > max) max = node.left.maxHigh;
  if (node.right !== null && node.right.maxHigh > max) max = node.right.maxHigh;
  node.maxHigh = max;
}

/** Visits only subtrees whose largest high key is past `key`, and no node whose low key is after it. */
function collect<T>(start: TreapNode<T> | null, key: string, hits: Set<T>): void {
  let node = start;
  while (node !== null && node.maxHigh > key) {
    collect(node.left, key, hits);
    if (node.interval.low > key) return;
    if (key < node.interval.high) hits.add(node.interval.owner);
    node = node.right;
  }
}

function assertInvariant(condition: boolean, what: string): asserts condition {
  if (!condition) throw new Error(`range index invariant broken: ${what}`);
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
  #nodesTouched = 0;

  /**
   * Tree nodes visited by insertions and deletions so far: a subscription change costs O(log n) of them per range in
   * the index it reads, never a pass over the index (for tests and monitoring).
   */
  get nodesTouched(): number {
    return this.#nodesTouched;
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
    // A re-run usually reads exactly what the previous run read: keep its nodes as they are.
    if (sameRanges(this.#rangesOf.get(owner), ranges)) return this.bytesOf(owner);
    this.remove(owner);
    let bytes = 0;
    for (const { indexId, interval } of ranges) {
      let tree = this.#trees.get(indexId);
      if (!tree) this.#trees.set(indexId, tree = new IndexTree(() => this.#nodesTouched++));
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
