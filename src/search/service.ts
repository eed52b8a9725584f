/**
 * The search service: the server's in-memory text and vector indexes, one per index the catalog declares, built from
 * the table at start (or when a push adds one) and kept current by every committed write. It answers text searches
 * for transactions (from runners over `TEXT_SEARCH_OP`, in the server directly) and `ctx.vectorSearch` for actions.
 *
 * Consistency: commits reach `#onCommit` synchronously when they become the latest snapshot, so every snapshot a
 * transaction can hold is already applied. A build reads the table at one snapshot and then applies the commits that
 * arrived during the scan, in order, before it serves.
 *
 * Memory: the indexes share a byte budget (`memoryBudgetBytes`, `--search-memory`), checked while an index builds,
 * after each build and with every compaction (so writes overshoot it by at most COMPACT_INTERVAL_MS of growth). An
 * index that does not fit is dropped, largest first, and stays dropped until the server restarts or a push changes
 * it: its text searches are answered by a table scan instead (the same results, slower), its vector searches fail
 * with an error that names the budget. The server never grows without bound because a table did.
 *
 * Private to `src/search`: other folders use its `mod.ts`.
 */
import type { CommitEvent, Database, SearchIndexInfo, TableInfo, VectorIndexInfo } from "../database/mod.ts";
import { SyscallError } from "../database/mod.ts";
import {
  filterValueKey,
  registerTextSearchProvider,
  type TextSearchProvider,
  type TextSearchRequest,
  type TextSearchResponse,
} from "../database/mod.ts";
import { stagedIndexMessage } from "../database/mod.ts";
import { decodeLiteral } from "../database/mod.ts";
import { TextIndex } from "./text_index.ts";
import { normalized, type VectorFilterTerm, VectorIndex, type VectorResult } from "./vector_index.ts";

/** Documents read per page of a build. */
const BUILD_PAGE_DOCUMENTS = 2_000;
/** Writes held for an index while it builds; past this the build starts over at a newer snapshot. */
const MAX_PENDING_WRITES = 200_000;
/** How often old versions are compacted out of the text indexes (and the memory budget checked). */
const COMPACT_INTERVAL_MS = 10_000;
/** The indexes' byte budget when none is given: room for a few million short documents. */
export const DEFAULT_SEARCH_MEMORY_BYTES = 512 * 1024 * 1024;
/** A building index checks the budget every this many pages (an index's size is a walk over its terms). */
const BUDGET_CHECK_PAGES = 8;

/** How the service is set up. */
export interface SearchServiceOptions {
  /** Bytes all indexes together may hold (default DEFAULT_SEARCH_MEMORY_BYTES). */
  memoryBudgetBytes?: number;
  /** How often text indexes are compacted and the budget checked (default COMPACT_INTERVAL_MS; tests shorten it). */
  compactIntervalMs?: number;
}
/** Vector search limits (Convex's). */
export const DEFAULT_VECTOR_LIMIT = 10;
export const MAX_VECTOR_LIMIT = 256;
/** Most `q.eq` clauses of one vector search filter. */
export const MAX_VECTOR_FILTER_CLAUSES = 64;

/** A write as the indexes see it. */
interface PendingWrite {
  ts: bigint;
  id: string;
  json: string | null;
}

/** One index: its definition, its data once built, and the writes that came during the build. */
interface Entry<I> {
  key: string;
  tableNumber: number;
  tableName: string;
  componentPath: string;
  index: I | null;
  pending: PendingWrite[];
  ready: Promise<void>;
  failure: Error | null;
}

/** Build and size figures of one index, for logs and benchmarks. */
export interface SearchIndexStats {
  name: string;
  kind: "text" | "vector";
  documents: number;
  sizeBytes: number;
  buildMs: number;
}

function textKey(tableNumber: number, info: SearchIndexInfo): string {
  return `t:${tableNumber}:${info.name}:${info.searchField}:${info.filterFields.join(",")}`;
}

function vectorKey(tableNumber: number, info: VectorIndexInfo): string {
  return `v:${tableNumber}:${info.name}:${info.vectorField}:${info.dimensions}:${info.filterFields.join(",")}`;
}

/** See the module comment. */
export class SearchService implements TextSearchProvider {
  readonly #database: Database;
  readonly #text = new Map<string, Entry<TextIndex>>();
  readonly #vector = new Map<string, Entry<VectorIndex>>();
  /** Entries by table number, for routing writes. */
  #byTable = new Map<number, (Entry<TextIndex> | Entry<VectorIndex>)[]>();
  /** Text entries by `<table number>:<index name>`. */
  #textByName = new Map<string, Entry<TextIndex>>();
  #catalogVersion = -1;
  /** Text searches the indexes answered (the others fell back to a table scan). */
  answeredTextSearches = 0;
  readonly #stats = new Map<string, SearchIndexStats>();
  readonly #unsubscribe: () => void;
  readonly #unregister: () => void;
  readonly #compactTimer: ReturnType<typeof setInterval>;
  readonly #budgetBytes: number;

  private constructor(database: Database, options: SearchServiceOptions) {
    this.#database = database;
    this.#budgetBytes = options.memoryBudgetBytes ?? DEFAULT_SEARCH_MEMORY_BYTES;
    if (!(this.#budgetBytes > 0)) throw new Error("invariant: the search memory budget is positive");
    this.#unsubscribe = database.onCommit((event) => this.#onCommit(event));
    this.#unregister = registerTextSearchProvider(database.persistence, this);
    this.#compactTimer = setInterval(() => this.#compact(), options.compactIntervalMs ?? COMPACT_INTERVAL_MS);
    Deno.unrefTimer(this.#compactTimer);
  }

  /** Starts the service and builds every index of the catalog; resolves once all are built. */
  static async open(database: Database, options: SearchServiceOptions = {}): Promise<SearchService> {
    const service = SearchService.start(database, options);
    await service.whenBuilt();
    return service;
  }

  /**
   * Starts the service with its builds in the background, so a server serves at once after a restart; a search of
   * an index still building waits for it.
   */
  static start(database: Database, options: SearchServiceOptions = {}): SearchService {
    const service = new SearchService(database, options);
    service.#sync();
    return service;
  }

  /** Resolves once every index of the current catalog is built. */
  async whenBuilt(): Promise<void> {
    this.#sync();
    await Promise.all([...this.#text.values(), ...this.#vector.values()].map((entry) => entry.ready));
  }

  /** Figures of every built index. */
  stats(): SearchIndexStats[] {
    return [...this.#stats.values()];
  }

  close(): void {
    clearInterval(this.#compactTimer);
    this.#unsubscribe();
    this.#unregister();
  }

  // ---- catalog → entries ----

  /** Creates entries for indexes the catalog added (starting their builds) and drops removed ones. */
  #sync(): void {
    const catalog = this.#database.catalog;
    if (catalog.version === this.#catalogVersion) return;
    this.#catalogVersion = catalog.version;
    const wantedText = new Map<string, { table: TableInfo; info: SearchIndexInfo }>();
    const wantedVector = new Map<string, { table: TableInfo; info: VectorIndexInfo }>();
    for (const table of catalog.tables) {
      for (const info of table.searchIndexes ?? []) {
        if (info.indexId !== undefined) wantedText.set(textKey(table.tableNumber, info), { table, info });
      }
      for (const info of table.vectorIndexes ?? []) {
        wantedVector.set(vectorKey(table.tableNumber, info), { table, info });
      }
    }
    for (const key of [...this.#text.keys()]) if (!wantedText.has(key)) this.#text.delete(key);
    for (const key of [...this.#vector.keys()]) if (!wantedVector.has(key)) this.#vector.delete(key);
    for (const key of [...this.#stats.keys()]) {
      if (!this.#text.has(key) && !this.#vector.has(key)) this.#stats.delete(key);
    }
    for (const [key, { table, info }] of wantedText) {
      if (!this.#text.has(key)) this.#text.set(key, this.#startBuild(key, table, () => new TextIndex(info, 0n)));
    }
    for (const [key, { table, info }] of wantedVector) {
      if (!this.#vector.has(key)) this.#vector.set(key, this.#startBuild(key, table, () => new VectorIndex(info)));
    }
    this.#byTable = new Map();
    this.#textByName = new Map();
    for (const entry of this.#text.values()) {
      this.#textByName.set(`${entry.tableNumber}:${(entry.key.split(":")[2])}`, entry);
    }
    for (const entry of [...this.#text.values(), ...this.#vector.values()]) {
      const list = this.#byTable.get(entry.tableNumber) ?? [];
      list.push(entry);
      this.#byTable.set(entry.tableNumber, list);
    }
  }

  #startBuild<I extends TextIndex | VectorIndex>(key: string, table: TableInfo, make: () => I): Entry<I> {
    const entry: Entry<I> = {
      key,
      tableNumber: table.tableNumber,
      tableName: table.name,
      componentPath: table.componentPath ?? "",
      index: null,
      pending: [],
      ready: Promise.resolve(),
      failure: null,
    };
    entry.ready = this.#build(entry, make).catch((error) => {
      entry.failure = error instanceof Error ? error : new Error(String(error));
      entry.pending = [];
      console.error(`denvex: building the search index ${key} failed:`, error);
    });
    return entry;
  }

  /** Reads the table at the latest snapshot into a new index, then applies the writes that came meanwhile. */
  async #build<I extends TextIndex | VectorIndex>(entry: Entry<I>, make: () => I): Promise<void> {
    const started = performance.now();
    const snapshotTs = this.#database.latestTs;
    const reader = this.#database.readSnapshot(snapshotTs, { componentPath: entry.componentPath });
    const index = make();
    if (index instanceof TextIndex) index.rebase(snapshotTs);
    let resumeAfter: Uint8Array | undefined;
    let pages = 0;
    // The other indexes' size, once: walking their terms every few pages would repeat the work, and their growth
    // meanwhile is caught by the check after the build.
    const othersBytes = this.#builtBytes();
    for (;;) {
      const page = await reader.scan(`${entry.tableName}.by_creation_time`, {
        limit: BUILD_PAGE_DOCUMENTS,
        ...(resumeAfter === undefined ? {} : { resumeAfter }),
      });
      for (const document of page) applyTo(index, snapshotTs, document.id, document.json);
      if (page.length < BUILD_PAGE_DOCUMENTS) break;
      resumeAfter = page[page.length - 1].key;
      if (++pages % BUDGET_CHECK_PAGES === 0) this.#assertFits(index.info.name, index.sizeBytes, othersBytes);
    }
    if (entry.failure !== null) return; // abandoned (too many writes meanwhile): a newer build replaces it
    for (const write of entry.pending) if (write.ts > snapshotTs) applyTo(index, write.ts, write.id, write.json);
    entry.pending = [];
    entry.index = index;
    if (index instanceof VectorIndex) this.#clusterIfDue(index);
    this.#stats.set(entry.key, {
      name: index.info.name,
      kind: index instanceof TextIndex ? "text" : "vector",
      documents: index.documentCount,
      sizeBytes: index.sizeBytes,
      buildMs: performance.now() - started,
    });
    this.#enforceBudget();
  }

  // ---- the memory budget ----

  /** The built indexes with their sizes. */
  #builtSizes(): { entry: Entry<TextIndex> | Entry<VectorIndex>; bytes: number }[] {
    const built: { entry: Entry<TextIndex> | Entry<VectorIndex>; bytes: number }[] = [];
    for (const entry of [...this.#text.values(), ...this.#vector.values()]) {
      if (entry.index !== null) built.push({ entry, bytes: entry.index.sizeBytes });
    }
    return built;
  }

  /** The bytes all built indexes hold. */
  #builtBytes(): number {
    return this.#builtSizes().reduce((sum, built) => sum + built.bytes, 0);
  }

  /** Throws (ending a build) when the index `name`, at `bytes` so far, does not fit beside `othersBytes`. */
  #assertFits(name: string, bytes: number, othersBytes: number): void {
    if (othersBytes + bytes > this.#budgetBytes) throw new Error(this.#overBudgetMessage(name, bytes, othersBytes));
  }

  /** Drops built indexes, largest first, until the rest fit in the budget. */
  #enforceBudget(): void {
    const built = this.#builtSizes().sort((a, b) => b.bytes - a.bytes);
    let totalBytes = built.reduce((sum, { bytes }) => sum + bytes, 0);
    for (const { entry, bytes } of built) {
      if (totalBytes <= this.#budgetBytes) return;
      totalBytes -= bytes;
      const message = this.#overBudgetMessage(entry.index!.info.name, bytes, totalBytes);
      entry.index = null;
      entry.failure = new Error(message);
      entry.pending = [];
      this.#stats.delete(entry.key);
      console.error(`denvex: ${message}`);
    }
  }

  #overBudgetMessage(name: string, bytes: number, othersBytes: number): string {
    const mib = (n: number) => `${(n / (1024 * 1024)).toFixed(1)} MiB`;
    return `the search index ${name} (${mib(bytes)}) does not fit in the search memory budget of ` +
      `${mib(this.#budgetBytes)} beside ${mib(othersBytes)} of other indexes (--search-memory): it is not kept; ` +
      `text searches of it scan the table, vector searches of it fail`;
  }

  // ---- commits ----

  #onCommit(event: CommitEvent): void {
    this.#sync();
    const writes = event.writes;
    if (writes === undefined || this.#byTable.size === 0) return;
    for (const write of writes) {
      const entries = this.#byTable.get(write.tableNumber);
      if (entries === undefined) continue;
      for (const entry of entries) {
        if (entry.failure !== null) continue;
        if (entry.index !== null) applyTo(entry.index, event.ts, write.id, write.json);
        else if (entry.pending.length < MAX_PENDING_WRITES) {
          entry.pending.push({ ts: event.ts, id: write.id, json: write.json });
        } else this.#abandonBuild(entry);
      }
    }
    for (const entries of this.#byTable.values()) {
      for (const entry of entries) if (entry.index instanceof VectorIndex) this.#clusterIfDue(entry.index);
    }
  }

  /** Starts building a vector index's clusters in the background when it has grown enough to need them. */
  #clusterIfDue(index: VectorIndex): void {
    if (!index.needsClusters) return;
    const pause = () => new Promise<void>((resolve) => setTimeout(resolve, 0));
    index.buildClusters(pause).catch((error) => {
      console.error(`denvex: clustering the vector index ${index.info.name} failed:`, error);
    });
  }

  /** Gives up a build that fell too far behind the writes; the next sync starts it again from a newer snapshot. */
  #abandonBuild(entry: Entry<TextIndex> | Entry<VectorIndex>): void {
    entry.failure = new Error("too many writes during the build; building again");
    entry.pending = [];
    this.#text.delete(entry.key);
    this.#vector.delete(entry.key);
    this.#catalogVersion = -1;
  }

  #compact(): void {
    const horizonTs = this.#database.retainedSinceTs;
    for (const entry of this.#text.values()) entry.index?.compact(horizonTs);
    this.#enforceBudget();
  }

  // ---- text search ----

  /**
   * The ranked IDs of a text search at its snapshot, or null when no index can answer (the caller scans). A caller
   * from a runner names its namespace (`componentPath`): a table of another namespace is not searched for it.
   */
  async searchText(request: TextSearchRequest, componentPath?: string): Promise<TextSearchResponse> {
    this.#sync();
    const entry = this.#textByName.get(`${request.tableNumber}:${request.indexName}`);
    if (entry === undefined) return { ids: null };
    if (componentPath !== undefined && entry.componentPath !== componentPath) return { ids: null };
    if (entry.index === null) await entry.ready;
    const ids = entry.index?.search(request) ?? null;
    if (ids !== null) this.answeredTextSearches++;
    return { ids };
  }

  // ---- vector search ----

  /** Answers `1.0/actions/vectorSearch` (convex-compat.md §4.4) of an action in the namespace `componentPath`. */
  async vectorSearch(argsJson: string, componentPath: string): Promise<string> {
    const query = (JSON.parse(argsJson) as { query?: Record<string, unknown> }).query;
    if (query === null || typeof query !== "object") throw vectorError("vectorSearch: missing the query");
    const indexName = query.indexName;
    if (typeof indexName !== "string" || !indexName.includes(".")) {
      throw vectorError(`vectorSearch: invalid index name ${JSON.stringify(indexName)}`);
    }
    const tableName = indexName.slice(0, indexName.indexOf("."));
    const table = this.#database.catalogView.forComponent(componentPath).tableByName(tableName);
    const info = table?.vectorIndexes?.find((candidate) => candidate.name === indexName);
    if (table === undefined || info === undefined) {
      throw vectorError(`Index ${indexName} not found. Declare it in the schema with .vectorIndex(...)`);
    }
    if (info.staged === true) throw new SyscallError("IndexStaged", stagedIndexMessage(indexName));
    const limit = vectorLimit(query.limit);
    const vector = queryVector(query.vector, info);
    const filter = vectorFilter(query.expressions ?? null, info);
    this.#sync();
    const entry = this.#vector.get(vectorKey(table.tableNumber, info));
    if (entry === undefined) throw vectorError(`Index ${indexName} is not available yet`);
    if (entry.index === null) await entry.ready;
    if (entry.index === null) throw vectorError(`Index ${indexName} could not be built: ${entry.failure?.message}`);
    const results: VectorResult[] = vector === null ? [] : entry.index.search(vector, limit, filter);
    return JSON.stringify({ results });
  }
}

function applyTo(index: TextIndex | VectorIndex, ts: bigint, id: string, json: string | null): void {
  if (index instanceof TextIndex) index.apply(ts, id, json);
  else index.apply(id, json);
}

function vectorError(message: string): SyscallError {
  return new SyscallError("InvalidVectorQuery", message);
}

function vectorLimit(limit: unknown): number {
  if (limit === undefined || limit === null) return DEFAULT_VECTOR_LIMIT;
  if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1 || limit > MAX_VECTOR_LIMIT) {
    throw vectorError(
      `vectorSearch: limit must be an integer between 1 and ${MAX_VECTOR_LIMIT} inclusive, got ${
        JSON.stringify(limit)
      }`,
    );
  }
  return limit;
}

/** The query vector, normalized; null for a zero vector (nothing is similar to it). */
function queryVector(vector: unknown, info: VectorIndexInfo): Float32Array | null {
  if (!Array.isArray(vector) || !vector.every((x) => typeof x === "number" && Number.isFinite(x))) {
    throw vectorError("vectorSearch: `vector` must be an array of finite numbers");
  }
  if (vector.length !== info.dimensions) {
    throw vectorError(
      `vectorSearch: the vector has ${vector.length} dimensions, but the index ${info.name} has ${info.dimensions}`,
    );
  }
  return normalized(vector as number[]);
}

/** The filter expression (`q.eq`, `q.or` of them) as alternatives; null when there is none. */
function vectorFilter(expression: unknown, info: VectorIndexInfo): VectorFilterTerm[] | null {
  if (expression === null) return null;
  const terms: VectorFilterTerm[] = [];
  const visit = (node: unknown): void => {
    const object = node as Record<string, unknown> | null;
    if (object !== null && typeof object === "object" && Array.isArray(object.$or)) {
      for (const child of object.$or) visit(child);
      return;
    }
    const operands = object !== null && typeof object === "object" ? object.$eq : undefined;
    if (!Array.isArray(operands) || operands.length !== 2) {
      throw vectorError("vectorSearch: a filter is made of q.eq(field, value) and q.or(...) only");
    }
    const field = (operands[0] as { $field?: unknown } | null)?.$field;
    const literal = operands[1] as { $literal?: unknown } | null;
    if (typeof field !== "string" || literal === null || typeof literal !== "object" || !("$literal" in literal)) {
      throw vectorError("vectorSearch: q.eq takes a filter field name and a value");
    }
    const at = info.filterFields.indexOf(field);
    if (at === -1) {
      throw vectorError(
        `vectorSearch: "${field}" is not a filter field of the index ${info.name} ` +
          `(filter fields: ${info.filterFields.map((f) => `"${f}"`).join(", ") || "none"})`,
      );
    }
    if (terms.length >= MAX_VECTOR_FILTER_CLAUSES) {
      throw vectorError(`vectorSearch: a filter may hold at most ${MAX_VECTOR_FILTER_CLAUSES} q.eq clauses`);
    }
    terms.push({ at, key: filterValueKey(decodeLiteral(literal.$literal)) });
  };
  visit(expression);
  return terms;
}
