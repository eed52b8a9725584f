/**
 * Reactivity: live query results, kept current commit by commit. A query's read set is its subscription: each commit's
 * written keys are probed against a {@link ReadRangeIndex} of all cached results, and only the queries hit are re-run,
 * once per distinct (function, args, identity) however many clients watch them, at the commit's timestamp.
 *
 * Every cached result is valid at {@link SubscriptionManager.watermark}: commits up to it have been applied. Work is
 * serialized in one loop (commit cycles, then batches of new subscriptions), and a cycle swaps in all new results and
 * advances the watermark in one synchronous step, so observers never see a mix of timestamps.
 *
 * Memory is bounded by byte budgets, not by entry counts alone: every entry accounts for what it retains (its cache
 * key, args, result and read ranges; see {@link QueryEntry.retainedBytes}). Results nobody subscribes to (served to
 * HTTP callers) are dropped least recently used first beyond {@link MAX_UNSUBSCRIBED_CACHE_BYTES}; a new subscription
 * that would take the whole cache past {@link MAX_QUERY_CACHE_BYTES} fails (the client sees QueryFailed) instead of
 * growing the heap until the process dies.
 */
import { DenvexError } from "../errors/mod.ts";
import { createHash } from "node:crypto";
import type { CommitEvent, Database, ReadRange } from "../database/mod.ts";
import type { JsonValue } from "../values/mod.ts";
import { type QueryKey, queryKeyOf, type QuerySpec } from "./query_key.ts";
import { ReadRangeIndex } from "./range_index.ts";

const MIB = 1024 * 1024;
/** Budget of all cached results, subscribed or not (what they retain, see {@link QueryEntry.retainedBytes}). */
export const MAX_QUERY_CACHE_BYTES = 128 * MIB;
/** Budget of results without subscribers (kept for HTTP callers), least recently used dropped first. */
export const MAX_UNSUBSCRIBED_CACHE_BYTES = 32 * MIB;
/** A result without subscribers larger than this is not kept at all (one call must not flush the whole cache). */
export const MAX_UNSUBSCRIBED_ENTRY_BYTES = 8 * MIB;
/** Memory of an entry besides its strings (objects, maps, sets), an estimate. */
const ENTRY_OVERHEAD_BYTES = 512;

/** A subscription refused because the cache budget is spent; the client sees it as the query's error. */
export class QueryCacheFullError extends DenvexError {
  constructor(budgetBytes: number) {
    super(
      "TooManyConcurrentRequests",
      `TooManyConcurrentRequests: the server's live query results use their whole memory budget ` +
        `(${Math.round(budgetBytes / MIB)} MiB); try again later`,
      { httpStatus: 503, retryable: true },
    );
    this.name = "QueryCacheFullError";
  }
}

/** Memory of a string: V8 keeps Latin-1 text at one byte per character, anything else at two. */
export function stringBytes(text: string | null | undefined): number {
  if (!text) return 0;
  return /[\u0100-\uffff]/.test(text) ? 2 * text.length : text.length;
}

/** The outcome of one query run. */
export interface QueryRun {
  ok: boolean;
  valueJson?: string;
  errorMessage?: string;
  errorData?: JsonValue | undefined;
  /** The request ID of the execution that produced it: a failure's `[Request ID: …]` names its log line. */
  requestId?: string | undefined;
  logLines: string[];
  /** The ranges it read; null when unknown (then every commit re-runs it). */
  readSet: ReadRange[] | null;
  /** The journal for the next run (the end of its page), when the query paginated. */
  journal?: string | null;
}

/** A query result as cached: the run without its read set (that lives, compactly, in the read-range index). */
export type CachedRun = Omit<QueryRun, "readSet">;

/** A cached query result and its watchers. */
export class QueryEntry<S> {
  readonly key: string;
  readonly spec: QuerySpec;
  result: CachedRun;
  /** The digest of `result`, once a watcher asked for it (see {@link hash}). */
  #hash: string | null = null;
  readonly subscribers = new Set<S>();
  /** Memory this entry retains (key, args, result, read ranges), an estimate kept current by the manager. */
  retainedBytes = 0;
  /** Memory of the spec (args, key, objects), an estimate. */
  readonly specBytes: number;

  constructor(key: QueryKey, spec: QuerySpec, result: QueryRun) {
    this.key = key.key;
    this.specBytes = specBytes(key);
    this.spec = spec;
    this.result = withoutReadSet(result);
  }

  /**
   * A digest of the result (value, error and log lines), which watchers compare to decide whether they need it
   * (entries of different queries included). Computed when first asked, once per result: results served only to HTTP
   * callers never need one (a SHA-256 per query cost ~10-35 µs, issue 14).
   */
  get hash(): string {
    return this.#hash ??= resultHash(this.result);
  }

  /** Replaces the result with a re-run's; returns whether watchers would see anything new in it. */
  update(run: QueryRun): boolean {
    const changed = !sameResult(this.result, run);
    this.result = withoutReadSet(run);
    if (changed) this.#hash = null;
    return changed;
  }
}

function withoutReadSet(run: QueryRun): CachedRun {
  const { readSet: _readSet, ...rest } = run;
  return rest;
}

/** A digest, not the text: the text of a large result would otherwise be retained twice. */
function resultHash(run: CachedRun): string {
  const hash = createHash("sha256");
  if (run.ok) hash.update(`v${run.valueJson}`);
  else hash.update(`e${run.errorMessage}\u0000${JSON.stringify(run.errorData ?? null)}`);
  for (const line of run.logLines) hash.update(`\u0000${line}`);
  return hash.digest("base64");
}

/** Whether `before` and `after` have the same digest: the same value or error and the same log lines. */
function sameResult(before: CachedRun, after: QueryRun): boolean {
  if (before.ok !== after.ok) return false;
  if (after.ok) {
    if (before.valueJson !== after.valueJson) return false;
  } else if (
    before.errorMessage !== after.errorMessage ||
    JSON.stringify(before.errorData ?? null) !== JSON.stringify(after.errorData ?? null)
  ) return false;
  if (before.logLines.length !== after.logLines.length) return false;
  return before.logLines.every((line, i) => line === after.logLines[i]);
}

/** Memory of a spec: its args (about as large as their canonical JSON), its key digest and the objects around. */
function specBytes(key: QueryKey): number {
  return key.argsBytes + key.key.length + ENTRY_OVERHEAD_BYTES;
}

/** Memory of a cached run's strings. */
function runBytes(run: CachedRun): number {
  let bytes = stringBytes(run.valueJson) + stringBytes(run.errorMessage) + stringBytes(run.journal);
  if (run.errorData !== undefined) bytes += stringBytes(JSON.stringify(run.errorData));
  for (const line of run.logLines) bytes += stringBytes(line);
  return bytes;
}

/** What the manager needs. */
export interface SubscriptionManagerOptions<S> {
  database: Database;
  /** Runs a query at exactly `snapshotTs`. Must not throw (failures are `ok: false`). */
  run(spec: QuerySpec, snapshotTs: bigint): Promise<QueryRun>;
  /** Called once per advance of the watermark with the entries whose result changed. */
  onAdvance(ts: bigint, changed: QueryEntry<S>[]): void;
  /** Queries re-run at once (the runner pool queues the rest; it fails calls beyond its own queue bound). */
  maxConcurrentRuns?: number;
  /** Results kept without subscribers (served to HTTP callers), least recently used dropped first. */
  maxUnsubscribedEntries?: number;
  /** Default {@link MAX_QUERY_CACHE_BYTES}. */
  maxCacheBytes?: number;
  /** Default {@link MAX_UNSUBSCRIBED_CACHE_BYTES}. */
  maxUnsubscribedBytes?: number;
}

/**
 * Fingerprints of HTTP query keys offered once and not (yet) cached; a full set starts over. See
 * {@link SubscriptionManager.offer}.
 */
const MAX_OFFERED_ONCE = 8_192;

/** Commit events queued beyond this are folded into "re-run everything" so memory stays bounded under bursts. */
const MAX_PENDING_COMMITS = 10_000;
/** Subscriptions waiting for the loop; beyond it `subscribe` fails (sync sessions bound their own queues first). */
const MAX_PENDING_SUBSCRIBES = 100_000;

interface PendingSubscribe<S> {
  key: QueryKey;
  spec: QuerySpec;
  /** Bytes reserved in the budget until the batch runs (0 when the entry existed). */
  reservedBytes: number;
  subscriber: S;
  resolve(entry: QueryEntry<S>): void;
  reject(error: unknown): void;
}

/** See the module comment. */
export class SubscriptionManager<S> {
  readonly #options: SubscriptionManagerOptions<S>;
  readonly #entries = new Map<string, QueryEntry<S>>();
  /** Entries without subscribers, in least-recently-used order (Map iteration order). */
  readonly #unsubscribed = new Map<string, QueryEntry<S>>();
  readonly #index = new ReadRangeIndex<QueryEntry<S>>();
  #pendingCommits: CommitEvent[] = [];
  #invalidateEverything = false;
  #pendingSubscribes: PendingSubscribe<S>[] = [];
  /** Fingerprints of the keys offered once (the doorkeeper of {@link offer}). */
  readonly #offeredOnce = new Set<number>();
  /** Σ retainedBytes of all entries. */
  #cacheBytes = 0;
  /** Σ retainedBytes of the entries in `#unsubscribed`. */
  #unsubscribedBytes = 0;
  /** Bytes set aside for queued subscriptions whose entries do not exist yet. */
  #reservedBytes = 0;
  readonly #maxCacheBytes: number;
  readonly #maxUnsubscribedBytes: number;
  #watermark: bigint;
  #running = false;
  #idle: Promise<void> = Promise.resolve();
  #closed = false;
  readonly #stopListening: () => void;

  constructor(options: SubscriptionManagerOptions<S>) {
    this.#options = options;
    this.#maxCacheBytes = options.maxCacheBytes ?? MAX_QUERY_CACHE_BYTES;
    this.#maxUnsubscribedBytes = options.maxUnsubscribedBytes ?? MAX_UNSUBSCRIBED_CACHE_BYTES;
    this.#watermark = options.database.latestTs;
    this.#stopListening = options.database.onCommit((event) => this.#onCommit(event));
  }

  /** Every cached result is valid at this timestamp. */
  get watermark(): bigint {
    return this.#watermark;
  }

  /** Number of cached results (subscribed or not). */
  get size(): number {
    return this.#entries.size;
  }

  /** Memory retained by all cached results (an estimate, bounded by the cache budget), and by the unsubscribed. */
  get retainedBytes(): { total: number; unsubscribed: number } {
    return { total: this.#cacheBytes, unsubscribed: this.#unsubscribedBytes };
  }

  /** True when nothing is queued: cached results are valid at the database's latest timestamp. */
  get current(): boolean {
    return !this.#running && this.#watermark === this.#options.database.latestTs;
  }

  /** Adds `subscriber` to the query's entry, running it if needed; resolves with the entry, valid at the watermark. */
  subscribe(spec: QuerySpec, subscriber: S): Promise<QueryEntry<S>> {
    if (this.#closed) return Promise.reject(new Error("The server is shutting down"));
    const keyOf = queryKeyOf(spec);
    const key = keyOf.key;
    const existing = this.#entries.get(key);
    if (existing && !this.#running && this.#pendingCommits.length === 0 && !this.#invalidateEverything) {
      this.#attach(existing, subscriber);
      return Promise.resolve(existing);
    }
    if (this.#pendingSubscribes.length >= MAX_PENDING_SUBSCRIBES) {
      return Promise.reject(
        new DenvexError("TooManyConcurrentRequests", "TooManyConcurrentRequests: too many queries are waiting to run", {
          httpStatus: 503,
          retryable: true,
        }),
      );
    }
    // Admission: the spec alone must fit before the query runs; its result and read set are checked after the run.
    const reservedBytes = existing ? 0 : specBytes(keyOf);
    if (reservedBytes > 0 && !this.#makeRoom(reservedBytes)) {
      return Promise.reject(new QueryCacheFullError(this.#maxCacheBytes));
    }
    this.#reservedBytes += reservedBytes;
    return new Promise((resolve, reject) => {
      this.#pendingSubscribes.push({ key: keyOf, spec, reservedBytes, subscriber, resolve, reject });
      this.#kick();
    });
  }

  /** Removes `subscriber`; an entry left without subscribers stays cached (bounded) until a commit invalidates it. */
  unsubscribe(entry: QueryEntry<S>, subscriber: S): void {
    if (!entry.subscribers.delete(subscriber) || entry.subscribers.size > 0) return;
    if (this.#entries.get(entry.key) !== entry) return;
    if (entry.retainedBytes > MAX_UNSUBSCRIBED_ENTRY_BYTES) return this.#drop(entry);
    this.#unsubscribed.set(entry.key, entry);
    this.#unsubscribedBytes += entry.retainedBytes;
    this.#trimUnsubscribed();
  }

  /**
   * A cached result of `spec` valid at the database's latest timestamp, or null. `key` is `spec`'s, when the caller
   * computed it already (e.g. to {@link offer} the result after a miss).
   */
  lookup(spec: QuerySpec, key: QueryKey = queryKeyOf(spec)): QueryEntry<S> | null {
    if (!this.current) return null;
    const entry = this.#entries.get(key.key);
    if (!entry) return null;
    if (this.#unsubscribed.delete(entry.key)) this.#unsubscribed.set(entry.key, entry);
    return entry;
  }

  /**
   * Offers a result run elsewhere (an HTTP query) at `snapshotTs`; kept only if nothing was committed since, and only
   * when the same query was offered before: a result asked for once (distinct args, e.g. a nonce) is never asked for
   * again, and caching it cost a cache entry, a read-range insertion and the eviction of an older entry (~10 µs per
   * call, issue 14). A doorkeeper of key fingerprints decides; a fingerprint collision only caches a result early.
   * `key` is `spec`'s, when the caller has it.
   */
  offer(spec: QuerySpec, snapshotTs: bigint, run: QueryRun, key?: QueryKey): void {
    if (!this.current || snapshotTs !== this.#watermark || this.#closed) return;
    const keyOf = key ?? queryKeyOf(spec);
    if (this.#entries.has(keyOf.key)) return;
    const fingerprint = fingerprintOf(keyOf.key);
    if (!this.#offeredOnce.delete(fingerprint)) {
      if (this.#offeredOnce.size >= MAX_OFFERED_ONCE) this.#offeredOnce.clear();
      this.#offeredOnce.add(fingerprint);
      return;
    }
    const entry = new QueryEntry<S>(keyOf, spec, run);
    // Measured before anything is kept: the read ranges cost about what their keys cost as text.
    const bytes = entry.specBytes + runBytes(entry.result) + readSetBytes(run.readSet);
    if (bytes > MAX_UNSUBSCRIBED_ENTRY_BYTES || !this.#makeRoom(bytes)) return;
    this.#entries.set(entry.key, entry);
    this.#setRetained(entry, entry.specBytes + runBytes(entry.result) + this.#index.add(entry, run.readSet));
    this.#unsubscribed.set(entry.key, entry);
    this.#unsubscribedBytes += entry.retainedBytes;
    this.#trimUnsubscribed();
  }

  /** Re-runs every subscribed query at the next cycle (after a deploy changed the code). */
  invalidateAll(): void {
    this.#invalidateEverything = true;
    this.#kick();
  }

  /** Stops listening to commits and fails queued subscriptions. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#stopListening();
    for (const pending of this.#pendingSubscribes.splice(0)) pending.reject(new Error("The server is shutting down"));
    await this.#idle;
  }

  #attach(entry: QueryEntry<S>, subscriber: S): void {
    entry.subscribers.add(subscriber);
    if (this.#unsubscribed.get(entry.key) === entry) {
      this.#unsubscribed.delete(entry.key);
      this.#unsubscribedBytes -= entry.retainedBytes;
    }
  }

  #trimUnsubscribed(): void {
    const max = this.#options.maxUnsubscribedEntries ?? 1_000;
    while (this.#unsubscribed.size > max || this.#unsubscribedBytes > this.#maxUnsubscribedBytes) {
      const oldest = this.#unsubscribed.values().next().value!;
      this.#drop(oldest);
    }
  }

  /**
   * Whether `bytes` more fit in the cache budget, after dropping unsubscribed results (oldest first) if that makes
   * room. Subscribed results are never dropped to make room: new work is refused instead.
   */
  #makeRoom(bytes: number): boolean {
    const fits = () => this.#cacheBytes + this.#reservedBytes + bytes <= this.#maxCacheBytes;
    while (!fits() && this.#unsubscribed.size > 0) this.#drop(this.#unsubscribed.values().next().value!);
    return fits();
  }

  /** Sets what `entry` retains, keeping the budget totals in step. */
  #setRetained(entry: QueryEntry<S>, bytes: number): void {
    const delta = bytes - entry.retainedBytes;
    entry.retainedBytes = bytes;
    this.#cacheBytes += delta;
    if (this.#unsubscribed.get(entry.key) === entry) this.#unsubscribedBytes += delta;
  }

  #drop(entry: QueryEntry<S>): void {
    if (this.#unsubscribed.get(entry.key) === entry) {
      this.#unsubscribed.delete(entry.key);
      this.#unsubscribedBytes -= entry.retainedBytes;
    }
    if (this.#entries.get(entry.key) === entry) {
      this.#entries.delete(entry.key);
      this.#cacheBytes -= entry.retainedBytes;
    }
    entry.retainedBytes = 0;
    this.#index.remove(entry);
    console.assert(this.#cacheBytes >= 0 && this.#unsubscribedBytes >= 0, "cache byte accounting went negative");
  }

  #onCommit(event: CommitEvent): void {
    if (this.#closed) return;
    if (this.#pendingCommits.length >= MAX_PENDING_COMMITS) {
      this.#invalidateEverything = true;
      this.#pendingCommits = [{ ts: event.ts, keysByIndex: new Map() }];
    } else {
      this.#pendingCommits.push(event);
    }
    this.#kick();
  }

  #kick(): void {
    if (this.#running || this.#closed) return;
    this.#running = true;
    this.#idle = this.#loop();
  }

  async #loop(): Promise<void> {
    try {
      while (!this.#closed) {
        if (this.#pendingCommits.length > 0 || this.#invalidateEverything) await this.#cycle();
        else if (this.#pendingSubscribes.length > 0) await this.#addBatch();
        else break;
      }
    } catch (error) {
      console.error("denvex: the subscription loop failed:", error);
    } finally {
      this.#running = false;
    }
  }

  /** Applies all queued commits: finds the entries they hit, re-runs the subscribed ones, advances the watermark. */
  async #cycle(): Promise<void> {
    const events = this.#pendingCommits;
    this.#pendingCommits = [];
    const everything = this.#invalidateEverything;
    this.#invalidateEverything = false;
    let ts = this.#watermark;
    for (const event of events) if (event.ts > ts) ts = event.ts;
    const affected = new Set<QueryEntry<S>>();
    if (everything) { for (const entry of this.#entries.values()) affected.add(entry); }
    else {
      for (const event of events) for (const entry of this.#index.affected(event.keysByIndex)) affected.add(entry);
    }
    const rerun: QueryEntry<S>[] = [];
    for (const entry of affected) {
      if (entry.subscribers.size === 0) this.#drop(entry);
      else rerun.push(entry);
    }
    // A re-run keeps the page boundary of the previous run: it runs with the journal that run produced.
    const runs = await this.#runAll(
      rerun.map((entry) => ({ ...entry.spec, journal: entry.result.journal ?? entry.spec.journal ?? null })),
      ts,
    );
    const changed: QueryEntry<S>[] = [];
    for (let i = 0; i < rerun.length; i++) {
      const entry = rerun[i];
      const run = runs[i];
      // Dropped while it ran (its last subscriber left and the cache was trimmed): registering it would leak it.
      if (this.#entries.get(entry.key) !== entry) continue;
      const resultChanged = entry.update(run);
      this.#setRetained(entry, entry.specBytes + runBytes(entry.result) + this.#index.add(entry, run.readSet));
      if (resultChanged) changed.push(entry);
    }
    this.#watermark = ts;
    this.#notify(ts, changed);
  }

  /** Runs the queued new subscriptions at the watermark (one run per distinct query). */
  async #addBatch(): Promise<void> {
    const batch = this.#pendingSubscribes;
    this.#pendingSubscribes = [];
    const ts = this.#watermark;
    const toRun = new Map<string, { key: QueryKey; spec: QuerySpec }>();
    for (const pending of batch) {
      if (!this.#entries.has(pending.key.key)) toRun.set(pending.key.key, { key: pending.key, spec: pending.spec });
    }
    const queued = [...toRun.values()];
    const runs = await this.#runAll(queued.map((item) => item.spec), ts);
    for (const pending of batch) this.#reservedBytes -= pending.reservedBytes;
    const refused = new Set<string>();
    for (let i = 0; i < queued.length; i++) {
      const entry = new QueryEntry<S>(queued[i].key, queued[i].spec, runs[i]);
      const bytes = entry.specBytes + runBytes(entry.result) + readSetBytes(runs[i].readSet);
      if (!this.#makeRoom(bytes)) {
        refused.add(entry.key);
        continue;
      }
      this.#entries.set(entry.key, entry);
      this.#setRetained(entry, entry.specBytes + runBytes(entry.result) + this.#index.add(entry, runs[i].readSet));
    }
    for (const pending of batch) {
      const entry = this.#entries.get(pending.key.key);
      if (refused.has(pending.key.key)) pending.reject(new QueryCacheFullError(this.#maxCacheBytes));
      else if (!entry) pending.reject(new Error("The query result was dropped"));
      else {
        this.#attach(entry, pending.subscriber);
        pending.resolve(entry);
      }
    }
  }

  async #runAll(specs: QuerySpec[], ts: bigint): Promise<QueryRun[]> {
    const out: QueryRun[] = new Array(specs.length);
    const limit = this.#options.maxConcurrentRuns ?? 64;
    let next = 0;
    const worker = async () => {
      while (next < specs.length) {
        const i = next++;
        try {
          out[i] = await this.#options.run(specs[i], ts);
        } catch (error) {
          out[i] = { ok: false, errorMessage: (error as Error)?.message ?? String(error), logLines: [], readSet: null };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(limit, specs.length) }, worker));
    return out;
  }

  #notify(ts: bigint, changed: QueryEntry<S>[]): void {
    try {
      this.#options.onAdvance(ts, changed);
    } catch (error) {
      console.error("denvex: delivering query updates failed:", error);
    }
  }
}

/** A 32-bit FNV-1a hash of a key's UTF-16 units (not a cache key: collisions only make the doorkeeper admit early). */
function fingerprintOf(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

/** What a read set will retain once registered (its keys as byte text, about ¾ of their base64 length). */
function readSetBytes(readSet: ReadRange[] | null): number {
  if (readSet === null) return 0;
  let bytes = 0;
  for (const range of readSet) bytes += ((range.lowKey.length + (range.highKey?.length ?? 0)) * 3) / 4 + 96;
  return Math.ceil(bytes);
}
