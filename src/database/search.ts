/**
 * Full-text search (`withSearchIndex`, convex-compat.md §4.5). The server keeps an inverted index of every search
 * index in memory (src/search), maintained from committed writes and readable at any retained snapshot; a search asks
 * it (from a runner, over the runner's link to the server; in the server, directly) for the ranked document IDs at
 * the transaction's snapshot, with the transaction's own writes laid over, and reads the documents as the caller
 * consumes them. The read set is the query's terms in the index's term keys (every commit writes the terms of the
 * documents it changes there, `addSearchTermKeys`), so only a write that adds or removes a matching document
 * invalidates (or conflicts with) the search, plus point reads of the documents returned.
 *
 * When no index can answer (a transaction with no link to the server, an index whose build failed, a snapshot older
 * than the index keeps, a component's table searched from a nested call), the search reads the whole table at the
 * snapshot through a `by_creation_time` scan and ranks it here, with the same BM25 arithmetic; that scan records the
 * whole table as read. (A search of an index still building waits for it.)
 */
import {
  encodeIndexKey,
  getFieldPath,
  parseConvexJsonText,
  prefixSuccessor,
  type Value,
  valuesEqual,
} from "../values/mod.ts";
import { decodeLiteral, type KeyRange, stagedIndexMessage } from "./index_range.ts";
import { applyOperators, limitReached, type QueryOperator, QueryStream } from "./query_stream.ts";
import type { StreamedDocument } from "./query_stream.ts";
import { type SearchIndexInfo, SyscallError, type TableInfo } from "./types.ts";
import type { Transaction } from "./transaction.ts";

/** Most terms of one search query; later terms are ignored. */
export const MAX_SEARCH_TERMS = 16;
/** Most results of one search query. */
export const MAX_SEARCH_RESULTS = 1024;
/** BM25 parameters (the usual defaults). */
export const BM25_K1 = 1.2;
export const BM25_B = 0.75;
const K1 = BM25_K1;
const B = BM25_B;
/** Chunk size of the underlying table scan. */
const SCAN_BATCH = 512;

/** Any character beyond ASCII (then the Unicode-aware split runs). */
const NON_ASCII = /[\u0080-\uffff]/;

/** The lowercase words of `text`: runs of Unicode letters and digits. */
export function tokenize(text: string): string[] {
  const lower = text.toLowerCase();
  if (NON_ASCII.test(lower)) return lower.split(/[^\p{L}\p{N}]+/u).filter((token) => token !== "");
  // ASCII text (the common case, and the hot path of index builds): letters and digits by char code, no regex.
  const tokens: string[] = [];
  let start = -1;
  for (let i = 0; i < lower.length; i++) {
    const code = lower.charCodeAt(i);
    const wordChar = (code >= 97 && code <= 122) || (code >= 48 && code <= 57);
    if (wordChar) {
      if (start < 0) start = i;
    } else if (start >= 0) {
      tokens.push(lower.slice(start, i));
      start = -1;
    }
  }
  if (start >= 0) tokens.push(lower.slice(start));
  return tokens;
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
  if (index.staged === true) throw new SyscallError("IndexStaged", stagedIndexMessage(index.name));
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

// ---- the index's protocol (runner → server) and shared keys ----

/** The op a runner sends to the server for a text search (answered by src/search). */
export const TEXT_SEARCH_OP = "denvex/search/text";

/** A text search at a snapshot, as sent to the server's index. */
export interface TextSearchRequest {
  tableNumber: number;
  /** `<table>.<index>`. */
  indexName: string;
  /** Decimal u64. */
  snapshotTs: string;
  query: string;
  /** The `eq` filters: field path and {@link filterValueKey} of the value. */
  filters: { fieldPath: string; key: string }[];
  /** The transaction's own writes to the table (json null: deleted), laid over the snapshot. */
  overlay: { id: string; json: string | null }[];
}

/** The ranked IDs (best first, at most {@link MAX_SEARCH_RESULTS}), or null when the index cannot answer. */
export interface TextSearchResponse {
  ids: string[] | null;
}

/** Answers text searches in the process that holds the index (the server). */
export interface TextSearchProvider {
  searchText(request: TextSearchRequest): TextSearchResponse | Promise<TextSearchResponse>;
}

/** Providers by the persistence reader their database reads (a process may hold several databases: tests). */
const localProviders = new WeakMap<object, TextSearchProvider>();

/** Makes `provider` answer searches of transactions reading `reader`; returns the function that undoes it. */
export function registerTextSearchProvider(reader: object, provider: TextSearchProvider): () => void {
  localProviders.set(reader, provider);
  return () => {
    if (localProviders.get(reader) === provider) localProviders.delete(reader);
  };
}

/** A string equal for equal values (an index key of the value, one char per byte): filter values compare by it. */
export function filterValueKey(value: Value | undefined): string {
  const bytes = encodeIndexKey([value]);
  let key = "";
  for (let i = 0; i < bytes.length; i += 4096) key += String.fromCharCode(...bytes.subarray(i, i + 4096));
  return key;
}

const utf8 = new TextEncoder();

/**
 * The scope of a term key: every document's words are keyed once unscoped (byte 0), for searches without `eq`
 * filters, and once per filter field `i` under that field's value (byte i + 1, the value key's length in four bytes,
 * the value key), for searches filtering on that field: so a write outside a search's filter does not invalidate it.
 */
export function termScope(filterAt: number | null, valueKey = ""): Uint8Array {
  if (filterAt === null) return new Uint8Array([0]);
  const scope = new Uint8Array(5 + valueKey.length);
  scope[0] = filterAt + 1;
  new DataView(scope.buffer).setUint32(1, valueKey.length);
  for (let i = 0; i < valueKey.length; i++) scope[5 + i] = valueKey.charCodeAt(i);
  return scope;
}

/** The term key of `token` in `scope` (tokens hold no NUL, so a word is never a prefix of another's key plus NUL). */
export function termKey(scope: Uint8Array, token: string): Uint8Array {
  const word = utf8.encode(token);
  const key = new Uint8Array(scope.length + word.length);
  key.set(scope);
  key.set(word, scope.length);
  return key;
}

/** The term-key range a query term reads in `scope`: the term itself, or every term it is a prefix of. */
export function termRange(scope: Uint8Array, term: SearchTerm): KeyRange {
  const key = termKey(scope, term.text);
  if (term.prefix) return { lowKey: key, highKey: prefixSuccessor(key) };
  const after = new Uint8Array(key.length + 1);
  after.set(key);
  return { lowKey: key, highKey: after };
}

/** What a search index keeps of one document: its search text and filter value keys, or null when not indexed. */
export function searchedFields(
  index: SearchIndexInfo,
  document: Value | null,
): { text: string; filters: string[] } | null {
  if (document === null) return null;
  const text = getFieldPath(document, index.searchField);
  if (typeof text !== "string") return null;
  return { text, filters: index.filterFields.map((field) => filterValueKey(getFieldPath(document, field))) };
}

/**
 * The commit hook: adds to `keysByIndex` the term keys a write of `before` → `after` in `table` touches, per search
 * index: every distinct word of the old and new search text, when the text or a filter value changed (a change of
 * another field reaches searches through the point reads of the documents they returned).
 */
export function addSearchTermKeys(
  table: TableInfo,
  before: Value | null,
  after: Value | null,
  keysByIndex: Map<number, Uint8Array[]>,
): void {
  for (const index of table.searchIndexes ?? []) {
    if (index.indexId === undefined) continue;
    const old = searchedFields(index, before);
    const next = searchedFields(index, after);
    if (old === null && next === null) continue;
    if (old && next && old.text === next.text && old.filters.every((key, i) => key === next.filters[i])) continue;
    let keys = keysByIndex.get(index.indexId);
    if (!keys) keysByIndex.set(index.indexId, keys = []);
    const unscoped = termScope(null);
    const seen = new Set<string>();
    for (const version of [old, next]) {
      if (version === null) continue;
      const tokens = new Set(tokenize(version.text));
      const scopes = version.filters.map((valueKey, i) => termScope(i, valueKey));
      for (const token of tokens) {
        if (!seen.has(token)) keys.push(termKey(unscoped, token));
        seen.add(token);
        for (const scope of scopes) keys.push(termKey(scope, token));
      }
    }
  }
}

/** What a search stream reads documents through. */
export interface SearchContext {
  transaction: Transaction;
  table: TableInfo;
  /** The runner's link to the server, when the transaction runs in a runner. */
  serverCall: ((op: string, argsJson: string) => Promise<string>) | null;
}

/** The transaction's writes to `tableNumber`, as a search request's overlay. */
function overlayOf(transaction: Transaction, tableNumber: number): TextSearchRequest["overlay"] {
  const overlay: TextSearchRequest["overlay"] = [];
  for (const write of transaction.overlay(tableNumber)) overlay.push({ id: write.id, json: write.json });
  return overlay;
}

/** Asks the index for the ranked IDs; null when no index can answer. */
async function lookUpRanked(
  context: SearchContext,
  index: SearchIndexInfo,
  filters: SearchFilters,
): Promise<string[] | null> {
  const provider = localProviders.get(context.transaction.reader);
  if (provider === undefined && context.serverCall === null) return null;
  const request: TextSearchRequest = {
    tableNumber: context.table.tableNumber,
    indexName: index.name,
    snapshotTs: context.transaction.snapshotTs.toString(),
    query: filters.query,
    filters: filters.equalities.map((equality) => ({
      fieldPath: equality.fieldPath,
      key: filterValueKey(equality.value),
    })),
    overlay: overlayOf(context.transaction, context.table.tableNumber),
  };
  if (provider !== undefined) return (await provider.searchText(request)).ids;
  const response = JSON.parse(await context.serverCall!(TEXT_SEARCH_OP, JSON.stringify(request))) as TextSearchResponse;
  return response.ids;
}

/** A ranked entry: its ID (from the index) or its document (from a scan). */
type RankedEntry = { id: string; document: null } | { id: string; document: StreamedDocument };

/**
 * A search query's results as a stream: the ranked list, asked of the index (or computed from a full table scan) on
 * first use, passed through the query's operators. `position` counts the ranked documents consumed (the pagination
 * cursor).
 */
export class SearchStream {
  readonly index: SearchIndexInfo;
  readonly #scan: QueryStream;
  readonly #filters: SearchFilters;
  readonly #operators: QueryOperator[];
  readonly #limitCounts: number[];
  readonly #context: SearchContext | null;
  #ranked: RankedEntry[] | null = null;
  #position = 0;
  #finished = false;

  constructor(
    index: SearchIndexInfo,
    scan: QueryStream,
    filters: SearchFilters,
    operators: QueryOperator[],
    context: SearchContext | null = null,
  ) {
    this.index = index;
    this.#scan = scan;
    this.#filters = filters;
    this.#operators = operators;
    this.#limitCounts = operators.map(() => 0);
    this.#context = context;
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

  async #rankedList(): Promise<RankedEntry[]> {
    if (this.#ranked !== null) return this.#ranked;
    const ids = this.#context !== null && this.index.indexId !== undefined
      ? await lookUpRanked(this.#context, this.index, this.#filters)
      : null;
    if (ids !== null) {
      this.#recordTermReads(this.#context!, this.index.indexId!);
      this.#ranked = ids.map((id) => ({ id, document: null }));
    } else {
      this.#ranked = (await this.#scanRanked()).map((document) => ({ id: document.id, document }));
    }
    return this.#ranked;
  }

  /**
   * The read set of an index answer: the query's terms in the index's term keys, scoped to its first `eq` filter
   * (only documents with that value can enter or leave its results).
   */
  #recordTermReads(context: SearchContext, indexId: number): void {
    const keysIndex = { indexId, name: this.index.name, fields: [], ready: true };
    const first = this.#filters.equalities[0];
    const scope = first === undefined
      ? termScope(null)
      : termScope(this.index.filterFields.indexOf(first.fieldPath), filterValueKey(first.value));
    for (const term of searchTerms(this.#filters.query)) {
      const range = termRange(scope, term);
      context.transaction.addStream(QueryStream.readRecord(keysIndex, context.table.tableNumber, range));
    }
  }

  async #scanRanked(): Promise<StreamedDocument[]> {
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
        // Field by field: a scanned document's key may be a getter (query_stream.ts), which a spread would drop.
        const document = { id: scanned.id, json: scanned.json, key: scanned.key, value };
        candidates.push({ document, tokens: tokenize(text), filtered });
      }
      if (batch.length === 0) break;
    }
    return rank(candidates, searchTerms(this.#filters.query));
  }

  /** The document of a ranked entry (read at the snapshot, recording the point read), or null if it is gone. */
  async #documentOf(entry: RankedEntry): Promise<StreamedDocument | null> {
    if (entry.document !== null) return entry.document;
    const read = await this.#context!.transaction.readDocument(this.#context!.table, entry.id);
    if (read === null) return null;
    return { id: entry.id, json: read.json, value: read.value ?? parseConvexJsonText(read.json), key: EMPTY_KEY };
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
    for (;;) {
      if (!this.#finished && limitReached(this.#operators, this.#limitCounts)) this.#finished = true;
      if (this.#finished || this.#position >= ranked.length) {
        this.#finished = true;
        return null;
      }
      const document = await this.#documentOf(ranked[this.#position++]);
      if (document === null) continue;
      const verdict = applyOperators(this.#operators, this.#limitCounts, document.value);
      if (verdict === "stop") this.#finished = true;
      return { document, verdict };
    }
  }

  /** True when every ranked document was consumed. */
  async exhausted(): Promise<boolean> {
    return this.#position >= (await this.#rankedList()).length;
  }
}

const EMPTY_KEY = new Uint8Array(0);

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
