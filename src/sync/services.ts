/**
 * What the HTTP function routes and the sync hub share for one backend: the authenticator and the query cache /
 * subscription manager. The backend's wiring (`openBackend`) creates them once and hands them to both, so HTTP
 * queries and subscriptions serve from one cache; nothing is kept in module state.
 */
import { Authenticator } from "../auth/mod.ts";
import { newRequestId } from "../errors/mod.ts";
import type { ActiveDeployment, CallResult, FunctionExecutor } from "../functions/mod.ts";
import type { Database, ReadRange } from "../database/mod.ts";
import { type QueryEntry, type QueryRun, type QuerySpec, SubscriptionManager } from "../subscriptions/mod.ts";

/** A watcher of one cached query (one per socket and query ID). */
export interface QuerySubscriber {
  /** The entry's result changed; called during an advance, before the advance listeners. */
  markChanged(): void;
}

/** Listener of watermark advances (the sync hub flushes sockets there). */
export type AdvanceListener = (ts: bigint, changed: QueryEntry<QuerySubscriber>[]) => void;

/** The shared services. */
export interface FunctionServices {
  authenticator: Authenticator;
  subscriptions: SubscriptionManager<QuerySubscriber>;
  advanceListeners: Set<AdvanceListener>;
  /** Runs a query at `snapshotTs` (default: latest) without touching the cache. */
  runQuery(spec: QuerySpec, snapshotTs?: bigint): Promise<{ run: QueryRun; ts: bigint | null }>;
  close(): Promise<void>;
}

/**
 * The read set of a query call. Until `CallResult` carries it (`readSet` from the runner's outcome), null: the
 * subscription layer then treats the query as reading everything, which is correct but re-runs it on every commit.
 */
export function readSetOf(result: CallResult): ReadRange[] | null {
  const readSet = (result as { readSet?: unknown }).readSet;
  return Array.isArray(readSet) ? readSet as ReadRange[] : null;
}

/** Converts an executor result into a query run; `requestId` is the execution's (its failure's `[Request ID: …]`). */
export function toQueryRun(result: CallResult, requestId?: string): QueryRun {
  if (result.ok) {
    return {
      ok: true,
      valueJson: result.valueJson,
      logLines: result.logLines,
      readSet: readSetOf(result),
      journal: result.journal ?? null,
    };
  }
  return {
    ok: false,
    errorMessage: result.errorMessage,
    errorData: result.errorData,
    ...(requestId === undefined ? {} : { requestId }),
    logLines: result.logLines,
    readSet: readSetOf(result),
  };
}

/**
 * A component's functions are called from outside only by an admin (`npx convex data --component` authenticates
 * with the admin key), as Convex does; apps reach them through their own functions.
 */
export function componentCallRefused(componentPath: string): CallResult {
  return {
    ok: false,
    errorMessage: `Calling a function of the component '${componentPath}' directly needs the deployment's admin key`,
    logLines: [],
    // Read nothing: a refused subscription is not re-run by commits (a new identity re-subscribes it).
    readSet: [],
  };
}

/** What the shared services are built from. */
export interface FunctionServicesDeps {
  executor: Pick<FunctionExecutor, "call">;
  /** The subscription manager listens to its commits. */
  database: Database;
  adminKey: string;
  /** The active deployment's `auth.config.ts` decides which tokens the authenticator accepts. */
  deployments: { readonly active: ActiveDeployment | null };
}

/** Creates the services of one backend; `close()` ends them with it. */
export function createFunctionServices(backend: FunctionServicesDeps): FunctionServices {
  const advanceListeners = new Set<AdvanceListener>();
  const runQuery = async (spec: QuerySpec, snapshotTs?: bigint) => {
    const componentPath = spec.componentPath ?? "";
    if (componentPath !== "" && !spec.allowInternal) {
      return { run: toQueryRun(componentCallRefused(componentPath)), ts: null };
    }
    const requestId = newRequestId(); // the execution's log line and its failure's `[Request ID: …]` (QueryFailed)
    const result = await backend.executor.call({
      path: spec.path,
      componentPath,
      args: spec.args,
      expectedType: "query",
      identityJson: spec.identityJson,
      allowInternal: spec.allowInternal,
      snapshotTs,
      journal: spec.journal ?? null,
      requestId,
    });
    return { run: toQueryRun(result, requestId), ts: result.ok ? result.ts : null };
  };
  const subscriptions = new SubscriptionManager<QuerySubscriber>({
    database: backend.database,
    run: async (spec, snapshotTs) => (await runQuery(spec, snapshotTs)).run,
    onAdvance: (ts, changed) => {
      for (const entry of changed) for (const subscriber of entry.subscribers) subscriber.markChanged();
      for (const listener of advanceListeners) listener(ts, changed);
    },
  });
  return {
    authenticator: new Authenticator({
      adminKey: backend.adminKey,
      authConfig: () => backend.deployments.active?.analysis.authConfig ?? null,
    }),
    subscriptions,
    advanceListeners,
    runQuery,
    close: () => subscriptions.close(),
  };
}
