/**
 * Full-text search (`withSearchIndex`, convex-compat.md §4.5), simple and correct first: a search reads the whole
 * table at the snapshot (with the transaction's own writes) through a `by_creation_time` scan, keeps the documents
 * whose filter fields equal the `eq` filters and whose search field matches a query term, ranks them by BM25 and
 * hands the ranked list, through the query's operators, to the caller. The scan records the whole table as read, so
 * any write to the table invalidates (or conflicts with) the search.
 */
import { getFieldPath, parseConvexJsonText, type Value, valuesEqual } from "../values/mod.ts";
import { decodeLiteral } from "./index_range.ts";
import { applyOperators, limitReached, type QueryOperator, type QueryStream } from "./query_stream.ts";
import type { StreamedDocument } from "./query_stream.ts";
import { type SearchIndexInfo, SyscallError } from "./types.ts";

/** Most terms of one search query; later terms are ignored. */
export const MAX_SEARCH_TERMS = 16;
/** Most results of one search query. */
export const MAX_SEARCH_RESULTS = 1024;
/** BM25 parameters (the usual defaults). */
const K1 = 1.2;
const B = 0.75;
/** Chunk size of the underlying table scan. */
const SCAN_BATCH = 512;

/** The lowercase words of `text`: runs of Unicode letters and digits. */
export function tokenize(text: string): string[] {
  return text.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter((token) => token !== "");
}

/** One query term; the last one of a query also matches words it is a prefix of. */
export interface SearchTerm {
  text: string;
  prefix: boolean;
}

/** The terms of a search string: at most {@link MAX_SEARCH_TERMS}, the last one a prefix, duplicates dropped. */
export function searchTerms(query: string): SearchTerm[] {
  const tokens = tokenize(query).slice(0, MAX_SEARCH_TERMS);
  const terms: SearchTerm[] = [];
  const seen = new Set<string>();
  tokens.forEach((text, i) => {
    const prefix = i === tokens.length - 1;
    const key = `${prefix ? "p" : "e"}:${text}`;
    if (seen.has(key)) return;
    seen.add(key);
    terms.push({ text, prefix });
  });
  return terms;
}

function termMatches(term: SearchTerm, token: string): boolean {
  return term.prefix ? token.startsWith(term.text) : token === term.text;
}

/** A document of the corpus: its words, for scoring. */
interface Candidate {
  document: StreamedDocument;
  tokens: string[];
  /** Whether it passes the `eq` filters. */
  filtered: boolean;
}

/**
 * Ranks `candidates` (in `_creationTime` order) by BM25 over the whole corpus for `terms`; returns the documents that
 * pass the filters and match at least one term, best first (ties keep `_creationTime` order), at most
 * {@link MAX_SEARCH_RESULTS}.
 */
function rank(candidates: Candidate[], terms: SearchTerm[]): StreamedDocument[] {
  if (terms.length === 0 || candidates.length === 0) return [];
  const total = candidates.length;
  const averageLength = candidates.reduce((sum, candidate) => sum + candidate.tokens.length, 0) / total || 1;
  // Term frequencies per candidate, and document frequencies per term.
  const frequencies = candidates.map((candidate) =>
    terms.map((term) => candidate.tokens.reduce((count, token) => count + (termMatches(term, token) ? 1 : 0), 0))
  );
  const idf = terms.map((_, t) => {
    const documentFrequency = frequencies.reduce((count, row) => count + (row[t] > 0 ? 1 : 0), 0);
    return Math.log(1 + (total - documentFrequency + 0.5) / (documentFrequency + 0.5));
  });
  const scored: { document: StreamedDocument; score: number }[] = [];
  candidates.forEach((candidate, c) => {
    if (!candidate.filtered) return;
    const lengthNorm = K1 * (1 - B + B * candidate.tokens.length / averageLength);
    let score = 0;
    let matched = false;
    terms.forEach((_, t) => {
      const tf = frequencies[c][t];
      if (tf === 0) return;
      matched = true;
      score += idf[t] * tf * (K1 + 1) / (tf + lengthNorm);
    });
    if (matched) scored.push({ document: candidate.document, score });
  });
  // Array.prototype.sort is stable: equal scores keep the scan's `_creationTime` order.
  scored.sort((a, b) => b.score - a.score);
  return scored.slice(0, MAX_SEARCH_RESULTS).map((entry) => entry.document);
}

/** The parsed filters of a `Search` source. */
export interface SearchFilters {
  query: string;
  equalities: { fieldPath: string; value: Value | undefined }[];
}

function searchError(message: string): SyscallError {
  return new SyscallError("InvalidSearchQuery", message);
}

/** Checks and decodes a `Search` source's `filters` against its index. */
export function parseSearchFilters(index: SearchIndexInfo, filters: unknown): SearchFilters {
  if (!Array.isArray(filters)) throw searchError(`Search query on ${index.name}: \`filters\` must be a list`);
  let query: string | null = null;
  const equalities: SearchFilters["equalities"] = [];
  for (const filter of filters) {
    const fieldPath = filter?.fieldPath;
    if (filter?.type === "Search") {
      if (fieldPath !== index.searchField) {
        throw searchError(
          `Search query on ${index.name}: the search field is "${index.searchField}", not ${JSON.stringify(fieldPath)}`,
        );
      }
      if (query !== null) throw searchError(`Search query on ${index.name}: more than one search term expression`);
      if (typeof filter.value !== "string") {
        throw searchError(`Search query on ${index.name}: the text must be a string`);
      }
      query = filter.value;
    } else if (filter?.type === "Eq") {
      if (typeof fieldPath !== "string" || !index.filterFields.includes(fieldPath)) {
        throw searchError(
          `Search query on ${index.name}: ${JSON.stringify(fieldPath)} is not a filter field of the index ` +
            `(filter fields: ${index.filterFields.map((f) => `"${f}"`).join(", ") || "none"})`,
        );
      }
      equalities.push({ fieldPath, value: decodeLiteral(filter.value) });
    } else {
      throw searchError(`Search query on ${index.name}: unknown filter ${JSON.stringify(filter)}`);
    }
  }
  if (query === null) throw searchError(`Search query on ${index.name}: missing the search(...) expression`);
  return { query, equalities };
}

/**
 * A search query's results as a stream: the ranked list, computed on first use from a full table scan, passed through
 * the query's operators. `position` counts the ranked documents consumed (the pagination cursor).
 */
export class SearchStream {
  readonly index: SearchIndexInfo;
  readonly #scan: QueryStream;
  readonly #filters: SearchFilters;
  readonly #operators: QueryOperator[];
  readonly #limitCounts: number[];
  #ranked: StreamedDocument[] | null = null;
  #position = 0;
  #finished = false;

  constructor(index: SearchIndexInfo, scan: QueryStream, filters: SearchFilters, operators: QueryOperator[]) {
    this.index = index;
    this.#scan = scan;
    this.#filters = filters;
    this.#operators = operators;
    this.#limitCounts = operators.map(() => 0);
  }

  /** True once no more documents can come. */
  get done(): boolean {
    return this.#finished;
  }

  /** How many ranked documents were consumed. */
  get position(): number {
    return this.#position;
  }

  /** Skips the first `count` ranked documents (a pagination cursor) without applying the operators to them. */
  skip(count: number): void {
    this.#position = Math.max(this.#position, count);
  }

  async #rankedList(): Promise<StreamedDocument[]> {
    if (this.#ranked !== null) return this.#ranked;
    const { searchField } = this.index;
    const candidates: Candidate[] = [];
    while (!this.#scan.done) {
      const batch = await this.#scan.next(SCAN_BATCH);
      for (const scanned of batch) {
        const value = scanned.value ?? parseConvexJsonText(scanned.json);
        const text = getFieldPath(value, searchField);
        if (typeof text !== "string") continue;
        const filtered = this.#filters.equalities.every((equality) =>
          valuesEqual(getFieldPath(value, equality.fieldPath), equality.value)
        );
        candidates.push({ document: { ...scanned, value }, tokens: tokenize(text), filtered });
      }
      if (batch.length === 0) break;
    }
    this.#ranked = rank(candidates, searchTerms(this.#filters.query));
    return this.#ranked;
  }

  /** Produces up to `max` documents that pass every operator. */
  async next(max: number): Promise<StreamedDocument[]> {
    const out: StreamedDocument[] = [];
    while (out.length < max) {
      const scanned = await this.nextScanned();
      if (scanned === null) break;
      if (scanned.verdict === "pass") out.push(scanned.document);
    }
    return out;
  }

  /** Consumes the next ranked document and says whether it passes the operators; null at the end. */
  async nextScanned(): Promise<{ document: StreamedDocument; verdict: "pass" | "skip" | "stop" } | null> {
    const ranked = await this.#rankedList();
    if (!this.#finished && limitReached(this.#operators, this.#limitCounts)) this.#finished = true;
    if (this.#finished || this.#position >= ranked.length) {
      this.#finished = true;
      return null;
    }
    const document = ranked[this.#position++];
    const verdict = applyOperators(this.#operators, this.#limitCounts, document.value);
    if (verdict === "stop") this.#finished = true;
    return { document, verdict };
  }

  /** True when every ranked document was consumed. */
  async exhausted(): Promise<boolean> {
    return this.#position >= (await this.#rankedList()).length;
  }
}

const SEARCH_CURSOR_PREFIX = "dvxs1";

/** A search pagination cursor: a position in the ranked results of index `indexName`. */
export function encodeSearchCursor(indexName: string, position: number | "end"): string {
  return `${SEARCH_CURSOR_PREFIX}:${position}:${indexName}`;
}

/** True when `cursor` is a search cursor of `indexName`. */
export function isSearchCursorOf(cursor: string, indexName: string): boolean {
  return decodeSearchCursorOrNull(cursor, indexName) !== null;
}

function decodeSearchCursorOrNull(cursor: unknown, indexName: string): number | "end" | null {
  if (typeof cursor !== "string") return null;
  const first = cursor.indexOf(":");
  const second = cursor.indexOf(":", first + 1);
  if (first === -1 || second === -1 || cursor.slice(0, first) !== SEARCH_CURSOR_PREFIX) return null;
  if (cursor.slice(second + 1) !== indexName) return null;
  const position = cursor.slice(first + 1, second);
  if (position === "end") return "end";
  return /^\d{1,9}$/.test(position) ? Number(position) : null;
}

/** Decodes a search cursor of `indexName`; another query's cursor is an `InvalidCursor` error. */
export function decodeSearchCursor(cursor: unknown, indexName: string): number | "end" {
  const position = decodeSearchCursorOrNull(cursor, indexName);
  if (position === null) {
    throw new SyscallError(
      "InvalidCursor",
      `InvalidCursor: the cursor ${JSON.stringify(cursor)} does not belong to this query; ` +
        `restart pagination from the beginning`,
    );
  }
  return position;
}
