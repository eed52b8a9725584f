/**
 * Reactivity: live query results, kept current commit by commit. A query's read set is its subscription: each commit's
 * written keys are probed against a {@link ReadRangeIndex} of all cached results, and only the queries hit are re-run,
 * once per distinct (function, args, identity) however many clients watch them, at the commit's timestamp.
 *
 * Every cached result is valid at {@link SubscriptionManager.watermark}: commits up to it have been applied. Work is
 * serialized in one loop (commit cycles, then batches of new subscriptions), and a cycle swaps in all new results and
 * advances the watermark in one synchronous step, so observers never see a mix of timestamps.
 */
import type { CommitEvent, Database, ReadRange } from "../database/mod.ts";
import type { JsonValue } from "../values/types.ts";
import { queryKey, type QuerySpec } from "./query_key.ts";
import { ReadRangeIndex } from "./range_index.ts";

/** The outcome of one query run. */
export interface QueryRun {
  ok: boolean;
  valueJson?: string;
  errorMessage?: string;
  errorData?: JsonValue;
  logLines: string[];
  /** The ranges it read; null when unknown (then every commit re-runs it). */
  readSet: ReadRange[] | null;
  /** The journal for the next run (the end of its page), when the query paginated. */
  journal?: string | null;
}

/** A cached query result and its watchers. */
export class QueryEntry<S> {
  readonly key: string;
  readonly spec: QuerySpec;
  result: QueryRun;
  /** Compared to decide whether watchers need the new result (value, error and log lines). */
  hash: string;
  readonly subscribers = new Set<S>();

  constructor(key: string, spec: QuerySpec, result: QueryRun) {
    this.key = key;
    this.spec = spec;
    this.result = result;
    this.hash = resultHash(result);
  }
}

function resultHash(run: QueryRun): string {
  const body = run.ok ? `v${run.valueJson}` : `e${run.errorMessage}\u0000${JSON.stringify(run.errorData ?? null)}`;
  return `${body}\u0000${run.logLines.join("\u0000")}`;
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
}

/** Commit events queued beyond this are folded into "re-run everything" so memory stays bounded under bursts. */
const MAX_PENDING_COMMITS = 10_000;
/** Subscriptions waiting for the loop; beyond it `subscribe` fails (sync sessions bound their own queues first). */
const MAX_PENDING_SUBSCRIBES = 100_000;

interface PendingSubscribe<S> {
  key: string;
  spec: QuerySpec;
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
  #watermark: bigint;
  #running = false;
  #idle: Promise<void> = Promise.resolve();
  #closed = false;
  readonly #stopListening: () => void;

  constructor(options: SubscriptionManagerOptions<S>) {
    this.#options = options;
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

  /** True when nothing is queued: cached results are valid at the database's latest timestamp. */
  get current(): boolean {
    return !this.#running && this.#watermark === this.#options.database.latestTs;
  }

  /** Adds `subscriber` to the query's entry, running it if needed; resolves with the entry, valid at the watermark. */
  subscribe(spec: QuerySpec, subscriber: S): Promise<QueryEntry<S>> {
    if (this.#closed) return Promise.reject(new Error("The server is shutting down"));
    const key = queryKey(spec);
    const existing = this.#entries.get(key);
    if (existing && !this.#running && this.#pendingCommits.length === 0 && !this.#invalidateEverything) {
      this.#attach(existing, subscriber);
      return Promise.resolve(existing);
    }
    if (this.#pendingSubscribes.length >= MAX_PENDING_SUBSCRIBES) {
      return Promise.reject(new Error("TooManyConcurrentRequests: too many queries are waiting to run"));
    }
    return new Promise((resolve, reject) => {
      this.#pendingSubscribes.push({ key, spec, subscriber, resolve, reject });
      this.#kick();
    });
  }

  /** Removes `subscriber`; an entry left without subscribers stays cached (bounded) until a commit invalidates it. */
  unsubscribe(entry: QueryEntry<S>, subscriber: S): void {
    if (!entry.subscribers.delete(subscriber) || entry.subscribers.size > 0) return;
    if (this.#entries.get(entry.key) !== entry) return;
    this.#unsubscribed.set(entry.key, entry);
    this.#trimUnsubscribed();
  }

  /** A cached result of `spec` valid at the database's latest timestamp, or null. */
  lookup(spec: QuerySpec): QueryEntry<S> | null {
    if (!this.current) return null;
    const entry = this.#entries.get(queryKey(spec));
    if (!entry) return null;
    if (this.#unsubscribed.delete(entry.key)) this.#unsubscribed.set(entry.key, entry);
    return entry;
  }

  /** Offers a result run elsewhere (an HTTP query) at `snapshotTs`; kept only if nothing was committed since. */
  offer(spec: QuerySpec, snapshotTs: bigint, run: QueryRun): void {
    if (!this.current || snapshotTs !== this.#watermark || this.#closed) return;
    const key = queryKey(spec);
    if (this.#entries.has(key)) return;
    const entry = new QueryEntry<S>(key, spec, run);
    this.#entries.set(key, entry);
    this.#index.add(entry, run.readSet);
    this.#unsubscribed.set(key, entry);
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
    this.#unsubscribed.delete(entry.key);
  }

  #trimUnsubscribed(): void {
    const max = this.#options.maxUnsubscribedEntries ?? 1_000;
    while (this.#unsubscribed.size > max) {
      const oldest = this.#unsubscribed.values().next().value!;
      this.#drop(oldest);
    }
  }

  #drop(entry: QueryEntry<S>): void {
    this.#unsubscribed.delete(entry.key);
    if (this.#entries.get(entry.key) === entry) this.#entries.delete(entry.key);
    this.#index.remove(entry);
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
      const hash = resultHash(run);
      this.#index.add(entry, run.readSet);
      entry.result = run;
      if (hash !== entry.hash) {
        entry.hash = hash;
        changed.push(entry);
      }
    }
    this.#watermark = ts;
    this.#notify(ts, changed);
  }

  /** Runs the queued new subscriptions at the watermark (one run per distinct query). */
  async #addBatch(): Promise<void> {
    const batch = this.#pendingSubscribes;
    this.#pendingSubscribes = [];
    const ts = this.#watermark;
    const toRun = new Map<string, QuerySpec>();
    for (const pending of batch) {
      if (!this.#entries.has(pending.key)) toRun.set(pending.key, pending.spec);
    }
    const keys = [...toRun.keys()];
    const runs = await this.#runAll([...toRun.values()], ts);
    for (let i = 0; i < keys.length; i++) {
      const entry = new QueryEntry<S>(keys[i], toRun.get(keys[i])!, runs[i]);
      this.#entries.set(entry.key, entry);
      this.#index.add(entry, runs[i].readSet);
    }
    for (const pending of batch) {
      const entry = this.#entries.get(pending.key);
      if (!entry) pending.reject(new Error("The query result was dropped"));
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
