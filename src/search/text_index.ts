/**
 * One full-text search index in memory: an inverted index with multi-version postings, so a search reads it at any
 * retained snapshot, consistent with the transaction that asks.
 *
 * Every indexed version of a document is a slot: its visibility interval in commit sequence numbers (`begin` ≤ s <
 * `end`; a live slot ends at Infinity), its word count, `_creationTime`, filter value keys and distinct words with
 * their counts. A write ends the old slot and starts a new one; postings (word → slots, with counts) only grow, and a
 * search skips slots not visible at its snapshot. Commit timestamps map to sequence numbers (plain numbers compare
 * faster than bigints); the document count and total length at a snapshot come from the current totals minus the
 * deltas of later commits. `compact` drops slots no retained snapshot can see and rebuilds the postings.
 *
 * Ranking is the BM25 of src/database/search.ts's scan, with the same arithmetic in the same order, so both give
 * identical results (tests/search_index_test.ts compares them).
 *
 * Private to `src/search`: other folders use its `mod.ts`.
 */
import type { SearchIndexInfo } from "../database/mod.ts";
import {
  BM25_B,
  BM25_K1,
  MAX_SEARCH_RESULTS,
  searchedFields,
  type SearchTerm,
  searchTerms,
  type TextSearchRequest,
  tokenize,
} from "../database/mod.ts";
import { getFieldPath, parseConvexJsonText, type Value } from "../values/mod.ts";

/** Postings of one word: slots and the word's count in each. */
interface Posting {
  slots: Int32Array;
  counts: Uint16Array;
  size: number;
}

/** A document version a search scores: a slot, or a document of the transaction's own writes. */
interface Scored {
  id: string;
  creationTime: number;
  score: number;
}

const INITIAL_SLOTS = 1024;
/** Word counts saturate here (a word repeated more often scores as if it appeared this often). */
const MAX_COUNT = 65_535;

/** Distinct words of `text` with their counts, and the word count. */
function wordCounts(text: string): { counts: Map<string, number>; length: number } {
  const tokens = tokenize(text);
  const counts = new Map<string, number>();
  for (const token of tokens) counts.set(token, Math.min(MAX_COUNT, (counts.get(token) ?? 0) + 1));
  return { counts, length: tokens.length };
}

/** The filter keys of slots of an index without filter fields (shared: one array, not one per document). */
const NO_FILTERS: string[] = [];

/** Two FNV-1a hashes (different offsets) of a document's search text and filter value keys. */
function contentHashes(text: string, filters: string[]): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ text.length;
  const mix = (input: string) => {
    for (let i = 0; i < input.length; i++) {
      const code = input.charCodeAt(i);
      a = Math.imul(a ^ code, 0x01000193);
      b = Math.imul(b ^ code, 0x5bd1e995);
      b ^= b >>> 13;
    }
    a = Math.imul(a ^ 0xff, 0x01000193); // a separator between the text and each filter key
    b = Math.imul(b ^ 0x1ff, 0x5bd1e995);
  };
  mix(text);
  for (const key of filters) mix(key);
  return [a >>> 0, b >>> 0];
}

/** See the module comment. */
export class TextIndex {
  readonly info: SearchIndexInfo;
  // ---- slots (struct of arrays) ----
  #slotCount = 0;
  #ids: string[] = [];
  #begin = new Float64Array(INITIAL_SLOTS);
  #end = new Float64Array(INITIAL_SLOTS);
  #length = new Uint32Array(INITIAL_SLOTS);
  #creationTime = new Float64Array(INITIAL_SLOTS);
  /** Two 32-bit hashes of each slot's search text and filter values: a rewrite that hashes the same is no change. */
  #contentHash = new Uint32Array(INITIAL_SLOTS * 2);
  #slotFilters: string[][] = [];
  /** The live slot of each indexed document. */
  #live = new Map<string, number>();
  // ---- dictionary ----
  #termIds = new Map<string, number>();
  #sortedTerms: string[] = [];
  #postings: Posting[] = [];
  // ---- commits ----
  /** Commit ts of each sequence number from `#firstSeq` on. */
  #commitTs: bigint[] = [];
  #firstSeq = 1;
  #docCount = 0;
  #totalLength = 0;
  /** Per sequence number from `#firstSeq`: the document count and total length it added. */
  #docDeltas: number[] = [];
  #lengthDeltas: number[] = [];
  /** Snapshots below this ts may miss versions compaction dropped. */
  #horizonTs = 0n;
  /** Scratch of `search`: the candidate number of each slot, tagged with the search's epoch. */
  #candidateOf = new Int32Array(INITIAL_SLOTS);
  #candidateEpoch = new Int32Array(INITIAL_SLOTS);
  #epoch = 0;

  constructor(info: SearchIndexInfo, horizonTs: bigint) {
    this.info = info;
    this.#horizonTs = horizonTs;
  }

  /** Refuses snapshots below `ts` (a build read the table at `ts`: older versions are not here). */
  rebase(ts: bigint): void {
    if (this.#commitTs.length > 0) throw new Error("invariant: rebase before the first write");
    this.#horizonTs = ts;
  }

  /** Documents indexed now. */
  get documentCount(): number {
    return this.#live.size;
  }

  /** The newest commit ts applied. */
  get appliedTs(): bigint {
    return this.#commitTs.length === 0 ? this.#horizonTs : this.#commitTs[this.#commitTs.length - 1];
  }

  /** Approximate bytes held (typed arrays and per-slot arrays; Map and string overheads estimated). */
  get sizeBytes(): number {
    // Per slot: the typed arrays' 36 bytes, the ID string and its Map entry (~80), the filter keys.
    let bytes = this.#slotCount * (36 + 80 + 24 * this.info.filterFields.length);
    for (const posting of this.#postings) bytes += posting.slots.byteLength + posting.counts.byteLength + 60;
    return bytes;
  }

  /** Applies the write of document `id` (its new convex-JSON text, null when deleted) committed at `ts`. */
  apply(ts: bigint, id: string, json: string | null): void {
    const seq = this.#sequence(ts);
    const value: Value | null = json === null ? null : parseConvexJsonText(json);
    const fields = searchedFields(this.info, value);
    const hashes = fields === null ? null : contentHashes(fields.text, fields.filters);
    const current = this.#live.get(id);
    if (current !== undefined) {
      // A rewrite with the same text and filter values (a patch of another field) changes nothing here.
      if (
        hashes !== null && this.#contentHash[2 * current] === hashes[0] &&
        this.#contentHash[2 * current + 1] === hashes[1]
      ) return;
      this.#end[current] = seq;
      this.#live.delete(id);
      this.#addDelta(-1, -this.#length[current]);
    }
    if (fields === null || value === null || hashes === null) return;
    const { counts, length } = wordCounts(fields.text);
    const slot = this.#newSlot();
    this.#ids[slot] = id;
    this.#begin[slot] = seq;
    this.#end[slot] = Infinity;
    this.#length[slot] = length;
    const creationTime = getFieldPath(value, "_creationTime");
    this.#creationTime[slot] = typeof creationTime === "number" ? creationTime : 0;
    this.#slotFilters[slot] = fields.filters.length === 0 ? NO_FILTERS : fields.filters;
    this.#contentHash[2 * slot] = hashes[0];
    this.#contentHash[2 * slot + 1] = hashes[1];
    for (const [word, count] of counts) addPosting(this.#postings[this.#termId(word)], slot, count);
    this.#live.set(id, slot);
    this.#addDelta(1, length);
  }

  /** The sequence number of commit `ts` (a new one when `ts` is newer than every applied commit). */
  #sequence(ts: bigint): number {
    const last = this.#commitTs.length === 0 ? null : this.#commitTs[this.#commitTs.length - 1];
    if (last !== null && ts < last) throw new Error("invariant: commits reach the search index out of order");
    if (last !== null && ts === last) return this.#firstSeq + this.#commitTs.length - 1;
    this.#commitTs.push(ts);
    this.#docDeltas.push(0);
    this.#lengthDeltas.push(0);
    return this.#firstSeq + this.#commitTs.length - 1;
  }

  #addDelta(documents: number, length: number): void {
    const at = this.#commitTs.length - 1;
    this.#docDeltas[at] += documents;
    this.#lengthDeltas[at] += length;
    this.#docCount += documents;
    this.#totalLength += length;
  }

  /** The sequence number a snapshot at `ts` sees (the newest commit at or before it); -1 when too old. */
  #sequenceAt(ts: bigint): number {
    if (ts < this.#horizonTs) return -1;
    let low = 0;
    let high = this.#commitTs.length; // first index with commitTs > ts
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.#commitTs[mid] <= ts) low = mid + 1;
      else high = mid;
    }
    return this.#firstSeq + low - 1;
  }

  #newSlot(): number {
    const slot = this.#slotCount++;
    if (slot >= this.#begin.length) this.#grow(this.#begin.length * 2);
    return slot;
  }

  #grow(capacity: number): void {
    const grow = <T extends Float64Array | Uint32Array | Int32Array>(array: T, make: (n: number) => T): T => {
      const next = make(capacity);
      next.set(array.subarray(0, Math.min(array.length, capacity)) as never);
      return next;
    };
    this.#begin = grow(this.#begin, (n) => new Float64Array(n));
    this.#end = grow(this.#end, (n) => new Float64Array(n));
    this.#length = grow(this.#length, (n) => new Uint32Array(n));
    this.#creationTime = grow(this.#creationTime, (n) => new Float64Array(n));
    const hashes = new Uint32Array(capacity * 2);
    hashes.set(this.#contentHash.subarray(0, Math.min(this.#contentHash.length, capacity * 2)));
    this.#contentHash = hashes;
    this.#candidateOf = new Int32Array(capacity);
    this.#candidateEpoch = new Int32Array(capacity);
  }

  #termId(word: string): number {
    let termId = this.#termIds.get(word);
    if (termId !== undefined) return termId;
    termId = this.#postings.length;
    this.#termIds.set(word, termId);
    this.#postings.push({ slots: new Int32Array(4), counts: new Uint16Array(4), size: 0 });
    this.#sortedTerms.splice(lowerBound(this.#sortedTerms, word), 0, word);
    return termId;
  }

  /** The term IDs a query term reads: the word, or every indexed word it is a prefix of. */
  #expand(term: SearchTerm): number[] {
    if (!term.prefix) {
      const termId = this.#termIds.get(term.text);
      return termId === undefined ? [] : [termId];
    }
    const out: number[] = [];
    for (let i = lowerBound(this.#sortedTerms, term.text); i < this.#sortedTerms.length; i++) {
      const word = this.#sortedTerms[i];
      if (!word.startsWith(term.text)) break;
      out.push(this.#termIds.get(word)!);
    }
    return out;
  }

  /**
   * The IDs of the best documents for `request` at its snapshot (best first, ties in `_creationTime` order, at most
   * MAX_SEARCH_RESULTS), with the request's overlay laid over; null when the snapshot is older than the index holds.
   */
  search(request: TextSearchRequest): string[] | null {
    // Every commit up to the latest reaches the index as it lands (the service's commit listener), so any snapshot a
    // transaction holds is covered: commits after the last write to this table simply did not change it.
    const seq = this.#sequenceAt(BigInt(request.snapshotTs));
    if (seq < 0) return null;
    const terms = searchTerms(request.query);
    const overlay = this.#overlay(request.overlay);
    let total = this.#docCount;
    let totalLength = this.#totalLength;
    for (let i = this.#commitTs.length - 1; i >= 0 && this.#firstSeq + i > seq; i--) {
      total -= this.#docDeltas[i];
      totalLength -= this.#lengthDeltas[i];
    }
    for (const id of overlay.shadowed) {
      const slot = this.#live.get(id);
      if (slot !== undefined && this.#begin[slot] <= seq) {
        total--;
        totalLength -= this.#length[slot];
      }
    }
    for (const document of overlay.documents) {
      total++;
      totalLength += document.length;
    }
    if (terms.length === 0 || total === 0) return [];
    const averageLength = totalLength / total || 1;
    const filterAt = request.filters.map((filter) => ({
      at: this.info.filterFields.indexOf(filter.fieldPath),
      key: filter.key,
    }));
    const scored = this.#scoreSlots(terms, seq, overlay.shadowed, total, averageLength, filterAt, overlay.documents);
    return topResults(scored);
  }

  /** The overlay's documents, parsed and counted, and the IDs whose persisted versions it hides. */
  #overlay(overlay: TextSearchRequest["overlay"]) {
    const shadowed = new Set<string>();
    const documents: {
      id: string;
      creationTime: number;
      length: number;
      counts: Map<string, number>;
      filters: string[];
    }[] = [];
    for (const write of overlay) {
      shadowed.add(write.id);
      if (write.json === null) continue;
      const value = parseConvexJsonText(write.json);
      const fields = searchedFields(this.info, value);
      if (fields === null) continue;
      const { counts, length } = wordCounts(fields.text);
      const creationTime = getFieldPath(value, "_creationTime");
      documents.push({
        id: write.id,
        creationTime: typeof creationTime === "number" ? creationTime : 0,
        length,
        counts,
        filters: fields.filters,
      });
    }
    return { shadowed, documents };
  }

  #scoreSlots(
    terms: SearchTerm[],
    seq: number,
    shadowed: Set<string>,
    total: number,
    averageLength: number,
    filterAt: { at: number; key: string }[],
    overlayDocuments: {
      id: string;
      creationTime: number;
      length: number;
      counts: Map<string, number>;
      filters: string[];
    }[],
  ): Scored[] {
    if (this.#epoch >= 2 ** 30) {
      // The scratch tags are Int32: start them over long before they could wrap.
      this.#candidateEpoch.fill(0);
      this.#epoch = 0;
    }
    const epoch = ++this.#epoch;
    const candidates: number[] = [];
    const expanded = terms.map((term) => this.#expand(term));
    const visible = (slot: number) =>
      this.#begin[slot] <= seq && this.#end[slot] > seq && (shadowed.size === 0 || !shadowed.has(this.#ids[slot]));
    // Pass 1: the candidate slots (visible at the snapshot, not hidden by the overlay).
    for (const termIds of expanded) {
      for (const termId of termIds) {
        const posting = this.#postings[termId];
        for (let p = 0; p < posting.size; p++) {
          const slot = posting.slots[p];
          if (this.#candidateEpoch[slot] === epoch || !visible(slot)) continue;
          this.#candidateEpoch[slot] = epoch;
          this.#candidateOf[slot] = candidates.length;
          candidates.push(slot);
        }
      }
    }
    // Pass 2: each candidate's count of each query term, and each term's document frequency.
    const termCount = terms.length;
    const counts = new Float64Array(candidates.length * termCount);
    const frequencies = new Array<number>(termCount).fill(0);
    expanded.forEach((termIds, t) => {
      for (const termId of termIds) {
        const posting = this.#postings[termId];
        for (let p = 0; p < posting.size; p++) {
          const slot = posting.slots[p];
          if (this.#candidateEpoch[slot] !== epoch) continue;
          const at = this.#candidateOf[slot] * termCount + t;
          if (counts[at] === 0) frequencies[t]++;
          counts[at] += posting.counts[p];
        }
      }
    });
    const overlayCounts = overlayDocuments.map((document) =>
      terms.map((term, t) => {
        let count = 0;
        for (const [word, n] of document.counts) {
          if (term.prefix ? word.startsWith(term.text) : word === term.text) count += n;
        }
        if (count > 0) frequencies[t]++;
        return count;
      })
    );
    const idf = frequencies.map((df) => Math.log(1 + (total - df + 0.5) / (df + 0.5)));
    const score = (termCounts: ArrayLike<number>, offset: number, length: number) => {
      const lengthNorm = BM25_K1 * (1 - BM25_B + BM25_B * length / averageLength);
      let sum = 0;
      for (let t = 0; t < termCount; t++) {
        const tf = termCounts[offset + t];
        if (tf === 0) continue;
        sum += idf[t] * tf * (BM25_K1 + 1) / (tf + lengthNorm);
      }
      return sum;
    };
    const scored: Scored[] = [];
    for (let c = 0; c < candidates.length; c++) {
      const slot = candidates[c];
      const filters = this.#slotFilters[slot];
      if (!filterAt.every((filter) => filters[filter.at] === filter.key)) continue;
      scored.push({
        id: this.#ids[slot],
        creationTime: this.#creationTime[slot],
        score: score(counts, c * termCount, this.#length[slot]),
      });
    }
    overlayDocuments.forEach((document, d) => {
      if (!overlayCounts[d].some((count) => count > 0)) return;
      if (!filterAt.every((filter) => document.filters[filter.at] === filter.key)) return;
      scored.push({
        id: document.id,
        creationTime: document.creationTime,
        score: score(overlayCounts[d], 0, document.length),
      });
    });
    return scored;
  }

  /**
   * Drops the versions no snapshot at or after `horizonTs` can see and rebuilds the postings without them, when they
   * are a large enough share to be worth it (the rebuild touches every posting).
   */
  compact(horizonTs: bigint): boolean {
    const horizonSeq = this.#sequenceAt(horizonTs);
    if (horizonSeq < 0) return false;
    let dead = 0;
    for (let slot = 0; slot < this.#slotCount; slot++) if (this.#end[slot] <= horizonSeq) dead++;
    if (dead < 1024 || dead * 4 < this.#slotCount) return this.#trimCommits(horizonTs, horizonSeq);
    // Slots keep their order, renumbered; postings are filtered in place (their slot order stays ascending).
    const newSlotOf = new Int32Array(this.#slotCount).fill(-1);
    let kept = 0;
    for (let slot = 0; slot < this.#slotCount; slot++) {
      if (this.#end[slot] <= horizonSeq) continue;
      newSlotOf[slot] = kept;
      this.#ids[kept] = this.#ids[slot];
      this.#begin[kept] = this.#begin[slot];
      this.#end[kept] = this.#end[slot];
      this.#length[kept] = this.#length[slot];
      this.#creationTime[kept] = this.#creationTime[slot];
      this.#contentHash[2 * kept] = this.#contentHash[2 * slot];
      this.#contentHash[2 * kept + 1] = this.#contentHash[2 * slot + 1];
      this.#slotFilters[kept] = this.#slotFilters[slot];
      if (this.#end[kept] === Infinity) this.#live.set(this.#ids[kept], kept);
      kept++;
    }
    this.#ids.length = kept;
    this.#slotFilters.length = kept;
    for (const posting of this.#postings) {
      let size = 0;
      for (let p = 0; p < posting.size; p++) {
        const slot = newSlotOf[posting.slots[p]];
        if (slot === -1) continue;
        posting.slots[size] = slot;
        posting.counts[size++] = posting.counts[p];
      }
      posting.size = size;
    }
    this.#candidateEpoch.fill(0);
    this.#slotCount = kept;
    this.#trimCommits(horizonTs, horizonSeq);
    return true;
  }

  /** Forgets commit timestamps and deltas older than the horizon (snapshots below it are refused). */
  #trimCommits(horizonTs: bigint, horizonSeq: number): boolean {
    const drop = horizonSeq - this.#firstSeq; // keep the horizon's own commit: it maps snapshots at the horizon
    if (drop <= 0) return false;
    this.#commitTs.splice(0, drop);
    this.#docDeltas.splice(0, drop);
    this.#lengthDeltas.splice(0, drop);
    this.#firstSeq += drop;
    this.#horizonTs = horizonTs > this.#horizonTs ? horizonTs : this.#horizonTs;
    return false;
  }
}

function addPosting(posting: Posting, slot: number, count: number): void {
  if (posting.size === posting.slots.length) {
    const slots = new Int32Array(posting.size * 2);
    slots.set(posting.slots);
    const counts = new Uint16Array(posting.size * 2);
    counts.set(posting.counts);
    posting.slots = slots;
    posting.counts = counts;
  }
  posting.slots[posting.size] = slot;
  posting.counts[posting.size++] = count;
}

/** The first index of `sorted` whose word is not below `word`. */
function lowerBound(sorted: string[], word: string): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (sorted[mid] < word) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** Better first: higher score, then earlier `_creationTime`, then smaller ID (the scan's order for ties). */
function better(a: Scored, b: Scored): boolean {
  if (a.score !== b.score) return a.score > b.score;
  if (a.creationTime !== b.creationTime) return a.creationTime < b.creationTime;
  return a.id < b.id;
}

/** The IDs of the best MAX_SEARCH_RESULTS of `scored`, best first: a bounded heap, then a sort of what it kept. */
function topResults(scored: Scored[]): string[] {
  const heap: Scored[] = []; // min-heap by `better`: the worst kept entry on top
  const worse = (i: number, j: number) => better(heap[j], heap[i]);
  const swap = (i: number, j: number) => ([heap[i], heap[j]] = [heap[j], heap[i]]);
  for (const entry of scored) {
    if (heap.length < MAX_SEARCH_RESULTS) {
      heap.push(entry);
      for (let i = heap.length - 1; i > 0;) {
        const parent = (i - 1) >> 1;
        if (!worse(i, parent)) break;
        swap(i, parent);
        i = parent;
      }
      continue;
    }
    if (!better(entry, heap[0])) continue;
    heap[0] = entry;
    for (let i = 0;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let worst = i;
      if (left < heap.length && worse(left, worst)) worst = left;
      if (right < heap.length && worse(right, worst)) worst = right;
      if (worst === i) break;
      swap(i, worst);
      i = worst;
    }
  }
  heap.sort((a, b) => (better(a, b) ? -1 : better(b, a) ? 1 : 0));
  return heap.map((entry) => entry.id);
}
