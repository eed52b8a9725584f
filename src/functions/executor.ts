/**
 * The function executor: resolves a path in the active deployment, enforces visibility, validates args before and
 * return values after a run, runs queries at one snapshot, and runs mutations as transactions committed through the
 * database, retried automatically on conflicts (they are deterministic).
 */
import { callFailureOf, DenvexError, newRequestId } from "../errors/mod.ts";
import { decodeDocumentId, jsonToValue, parseConvexJsonText, validateValue } from "../values/mod.ts";
import type { JsonValue, ValidatorJson } from "../values/mod.ts";
import {
  type Database,
  type ReadRange,
  SyscallError,
  type SystemTransaction,
  type TransactionOutcome,
} from "../database/mod.ts";
import {
  type CallContext,
  type ExecutionResult,
  handleOf,
  type LogLineSource,
  type RequestMetadata,
  resolveCallAddress,
  type ResolvedCallAddress,
  type RunnerPool,
} from "../runtime/mod.ts";
import { componentEnvironments, componentFunctions, tableComponentPath } from "./component_calls.ts";
import type { ActiveDeployment, FunctionInfo } from "./deployment.ts";
import { type FunctionAddress, parseFunctionPath } from "../values/mod.ts";
import { findResult, idempotencyOwner, recordResult, type RememberedResult, resultKey } from "./idempotency.ts";

/** Optimistic attempts of a mutation before it waits for an exclusive commit turn instead. */
const OPTIMISTIC_MUTATION_ATTEMPTS = 3;
/**
 * Exclusive commit turns before the caller gets the conflict. In a turn only a catalog change can conflict with the
 * mutation (e.g. creating the table it inserts into), and the next turn runs against the changed catalog.
 */
const EXCLUSIVE_MUTATION_TURNS = 4;
/**
 * More mutations than this retrying after conflicts at once means hot contention: a conflicting mutation then takes a
 * turn at once instead of retrying optimistically (most of those retries would conflict again).
 */
const HOT_CONTENTION_RETRYING_MUTATIONS = 4;
/** The backoff ceiling of the first optimistic retry; it doubles per retry up to `MAX_RETRY_BACKOFF_MS`. */
const FIRST_RETRY_BACKOFF_MS = 4;
const MAX_RETRY_BACKOFF_MS = 50;
/** Function paths whose parse is remembered (cleared when full; a path parses in a few µs, issue 14). */
const MAX_REMEMBERED_PATHS = 1_024;
/** Longest path remembered: paths come from callers, so the cache is bounded in bytes too (1,024 × 256 chars). */
const MAX_REMEMBERED_PATH_CHARS = 256;

/** One call of a function. */
export interface CallRequest {
  path: string;
  /** The args object as convex-JSON. */
  args: JsonValue;
  /** The kind the caller asked for (`/api/query` → query); undefined accepts any (`/api/function`). */
  expectedType?: "query" | "mutation" | "action" | undefined;
  identityJson: string | null;
  /** Admin callers and nested calls may call internal functions. */
  allowInternal: boolean;
  requestId?: string | undefined;
  /** What `ctx.meta.getRequestMetadata()` reports besides the request id (default: none of it known). */
  requestMetadata?: RequestMetadata | undefined;
  /** The component whose function `path` names (`""`, the default, is the app). */
  componentPath?: string | undefined;
  /** Read at this snapshot instead of the latest (`/api/query_at_ts`). Queries only. */
  snapshotTs?: bigint | undefined;
  /** A query's journal from its previous run (stable pagination). */
  journal?: string | null | undefined;
  /** Makes a mutation idempotent: a repeat of the key returns the first result (see idempotency.ts). */
  idempotencyKey?: string | undefined;
  /**
   * The caller knows `idempotencyKey` was never sent before (a sync socket's first connection, whose mutations cannot
   * be re-sends): the look for an earlier result before running is skipped (a point read on the server's event loop
   * per mutation, issue 14). Only a shortcut: the read inside the commit still answers a repeat with the first result
   * and commits nothing, so a caller that claims this wrongly gets a repeat run and discarded, never run twice.
   */
  idempotencyKeyIsFresh?: boolean | undefined;
  /**
   * Extra writes (and the reads that guard them) committed atomically with a successful mutation, e.g. a scheduled
   * job's state change to `success`. Called once per attempt, with the mutation's result and a system transaction at
   * the attempt's snapshot, right before the commit. Returning false abandons the attempt uncommitted (the call then
   * fails), e.g. when the scheduled job was canceled at that snapshot. `ownWrites` are the mutation's own writes.
   */
  withCommit?: (
    valueJson: string,
    tx: SystemTransaction,
    ownWrites: TransactionOutcome["writes"],
  ) => boolean | Promise<boolean>;
  /** The namespace `withCommit`'s system transaction resolves names and IDs in (default `""`, the app). */
  withCommitNamespace?: string | undefined;
}

/** The outcome of a call; failures of user code are `ok: false`, not exceptions. */
export type CallResult =
  | {
    ok: true;
    udfType: FunctionInfo["udfType"];
    valueJson: string;
    logLines: string[];
    ts: bigint;
    /** What a query read: its subscription for reactivity. */
    readSet?: ReadRange[] | undefined;
    /** A query's journal for its next run (null when it did not paginate). */
    journal?: string | null | undefined;
  }
  | {
    ok: false;
    udfType?: FunctionInfo["udfType"] | undefined;
    errorMessage: string;
    errorData?: JsonValue | undefined;
    logLines: string[];
    readSet?: ReadRange[] | undefined;
    /** The failure was not the user code's (runner crash, database unavailable, commit queue full): retryable. */
    infrastructure?: boolean | undefined;
  };

/** A finished execution, for log streams. */
export interface ExecutionRecord {
  udfType: FunctionInfo["udfType"];
  /** The component the function belongs to (absent or `""`: the app). */
  componentPath?: string | undefined;
  displayName: string;
  modulePath: string;
  exportName: string;
  ok: boolean;
  errorMessage?: string | undefined;
  logLines: string[];
  /** Which of `logLines` nested calls into other components wrote (runtime `LogLineSource`). */
  logSources?: LogLineSource[] | undefined;
  startedAtMs: number;
  executionTimeMs: number;
  requestId: string;
}

/** What the executor needs from the server. */
export interface ExecutorDependencies {
  database: Database;
  pool: RunnerPool;
  /** The deployment serving calls right now, or null before the first push. */
  deployment(): ActiveDeployment | null;
  /** Environment variables for the next run (deployment variables plus CONVEX_CLOUD_URL / CONVEX_SITE_URL). */
  environment(): Record<string, string>;
  /** Called after every execution (log streams). */
  onExecution?(record: ExecutionRecord): void;
  /** Built-in functions under `_system/` (admin only), implemented in TypeScript on the server. */
  systemFunction?(displayName: string): SystemFunction | undefined;
}

/** A built-in `_system/...` query, run on the server at one snapshot. Returns convex-JSON. */
export type SystemFunction = (
  args: Record<string, JsonValue>,
  /** `componentPath`: the namespace the call names (absent: `""`, the app). */
  context: { database: Database; snapshotTs: bigint; identityJson: string | null; componentPath?: string | undefined },
) => Promise<JsonValue>;

function failure(errorMessage: string, udfType?: FunctionInfo["udfType"], logLines: string[] = []): CallResult {
  return { ok: false, udfType, errorMessage, logLines };
}

/** See the module comment. */
export class FunctionExecutor {
  readonly #deps: ExecutorDependencies;
  /** Mutations between their first conflict and the end of their optimistic attempts (a contention gauge). */
  #retryingMutations = 0;
  /** Parsed function paths (see `#parsePath`). */
  readonly #parsedPaths = new Map<string, FunctionAddress | string>();

  constructor(deps: ExecutorDependencies) {
    this.#deps = deps;
  }

  /**
   * Looks up a function the caller may call, in the component at `componentPath` (default: the app); a string is the
   * user-facing error. A component that does not exist has no functions.
   */
  resolve(
    path: string,
    allowInternal: boolean,
    componentPath = "",
  ): { address: FunctionAddress; info: FunctionInfo } | string {
    const address = this.#parsePath(path);
    if (typeof address === "string") return address;
    const info = componentFunctions(this.#deps.deployment(), componentPath)?.get(address.key);
    if (!info || (info.visibility === "internal" && !allowInternal)) {
      const shown = componentPath === "" ? address.displayName : `${componentPath}/${address.displayName}`;
      // Convex's wording: admin callers (who may call internal functions) get "Could not find function", the text
      // `npx convex run` matches to list the available functions; others get the "public function" one.
      const what = allowInternal ? "function" : "public function";
      return `Could not find ${what} for '${shown}'. Did you forget to run \`npx convex dev\` or \`npx convex deploy\`?`;
    }
    return { address, info };
  }

  /** `path` parsed (remembered: a deployment's callers use a few paths), or the parse error's message. */
  #parsePath(path: string): FunctionAddress | string {
    let parsed = this.#parsedPaths.get(path);
    if (parsed !== undefined) return parsed;
    try {
      parsed = Object.freeze(parseFunctionPath(path));
    } catch (error) {
      parsed = (error as Error).message;
    }
    if (path.length > MAX_REMEMBERED_PATH_CHARS) return parsed;
    if (this.#parsedPaths.size >= MAX_REMEMBERED_PATHS) this.#parsedPaths.clear();
    this.#parsedPaths.set(path, parsed);
    return parsed;
  }

  /** Whether the active deployment has a component instance at `componentPath` (the app always counts). */
  hasComponent(componentPath: string): boolean {
    return componentPath === "" || componentFunctions(this.#deps.deployment(), componentPath) !== undefined;
  }

  /** Runs one call to completion. */
  call(request: CallRequest): Promise<CallResult> {
    if (request.path.startsWith("_system/")) return this.#callSystem(request);
    const deployment = this.#deps.deployment();
    const componentPath = request.componentPath ?? "";
    const resolved = this.resolve(request.path, request.allowInternal, componentPath);
    if (typeof resolved === "string" || !deployment) {
      return Promise.resolve(failure(typeof resolved === "string" ? resolved : "No deployment is active yet"));
    }
    const { address, info } = resolved;
    if (request.expectedType && request.expectedType !== info.udfType) {
      return Promise.resolve(failure(
        `Trying to execute ${address.displayName} as ${article(request.expectedType)}, but it is defined as ${
          article(info.udfType)
        }.`,
        info.udfType,
      ));
    }
    const argsError = this.#validateArgs(info, request.args, componentPath);
    if (argsError) return Promise.resolve(failure(argsError, info.udfType));
    const argsJson = JSON.stringify([request.args]);
    const call: ResolvedCall = { deployment, componentPath, address, info, argsJson, request };
    return info.udfType === "mutation" ? this.#runMutation(call) : this.#runOnce(call);
  }

  async #callSystem(request: CallRequest): Promise<CallResult> {
    let address: FunctionAddress;
    try {
      address = parseFunctionPath(request.path);
    } catch (error) {
      return failure((error as Error).message);
    }
    const fn = request.allowInternal ? this.#deps.systemFunction?.(address.displayName) : undefined;
    if (!fn) return failure(`Could not find public function for '${address.displayName}'.`);
    const args = request.args;
    if (args === null || typeof args !== "object" || Array.isArray(args)) {
      return failure("ArgumentValidationError: Expected to receive a single object as the function's argument.");
    }
    const snapshotTs = request.snapshotTs ?? this.#deps.database.latestTs;
    const tooOld = this.#unretainedSnapshot(snapshotTs, "query");
    if (tooOld) return tooOld;
    try {
      const value = await fn(args, {
        database: this.#deps.database,
        snapshotTs,
        identityJson: request.identityJson,
        componentPath: request.componentPath ?? "",
      });
      const prunedMeanwhile = this.#unretainedSnapshot(snapshotTs, "query");
      if (prunedMeanwhile) return prunedMeanwhile;
      return { ok: true, udfType: "query", valueJson: JSON.stringify(value), logLines: [], ts: snapshotTs };
    } catch (error) {
      return failure(error instanceof Error ? error.message : String(error), "query");
    }
  }

  #validateArgs(info: FunctionInfo, args: JsonValue, componentPath: string): string | null {
    if (args === null || typeof args !== "object" || Array.isArray(args)) {
      return "ArgumentValidationError: Expected to receive a single object as the function's argument.";
    }
    if (!info.argsValidator) return null;
    let value;
    try {
      value = jsonToValue(args);
    } catch (error) {
      return `ArgumentValidationError: ${(error as Error).message}`;
    }
    const message = validateValue(
      info.argsValidator,
      value,
      (id, table) => this.#isIdOfTable(id, table, componentPath),
    );
    return message === null ? null : `ArgumentValidationError: ${message}`;
  }

  #validateReturns(validator: ValidatorJson | null, valueJson: string, componentPath: string): string | null {
    if (!validator) return null;
    const message = validateValue(
      validator,
      parseConvexJsonText(valueJson),
      (id, table) => this.#isIdOfTable(id, table, componentPath),
    );
    return message === null ? null : `ReturnsValidationError: ${message}`;
  }

  /** Whether `id` is an ID of `tableName` of the component at `componentPath` (`v.id` names the function's own tables). */
  #isIdOfTable(id: string, tableName: string, componentPath: string): boolean {
    const decoded = decodeDocumentId(id);
    if (!decoded) return false;
    const table = componentPath === ""
      ? this.#deps.database.catalogView.tableByName(tableName)
      : this.#deps.database.catalog.tables.find((t) => t.name === tableName && tableComponentPath(t) === componentPath);
    return table !== undefined && table.tableNumber === decoded.tableNumber;
  }

  /** Runs the call at `snapshotTs`, or (null) at the latest snapshot when a runner starts it (mutations). */
  async #execute(call: ResolvedCall, snapshotTs: bigint | null): Promise<ExecutionResult> {
    const { deployment, componentPath, address, info, argsJson, request } = call;
    const database = this.#deps.database;
    const startedAtMs = Date.now();
    const requestId = request.requestId ?? newRequestId();
    const envs = componentEnvironments(deployment, componentPath, this.#deps.environment());
    const result = await this.#deps.pool.execute({
      udfType: info.udfType,
      modulePath: address.modulePath,
      exportName: address.exportName,
      argsJson,
      ...(snapshotTs === null
        ? { snapshot: () => ({ snapshotTs: database.latestTs, catalog: database.catalog }) }
        : { snapshotTs, catalog: database.catalog }),
      identityJson: request.identityJson,
      journal: request.journal ?? null,
      env: envs.env,
      requestId,
      ...(request.requestMetadata === undefined ? {} : { requestMetadata: request.requestMetadata }),
      deploymentDir: deployment.dir,
      ...(info.environment === "node" && deployment.nodeDir !== null
        ? { environment: "node" as const, nodeDir: deployment.nodeDir }
        : {}),
      ...(componentPath === "" ? {} : { componentPath }),
      ...(envs.others === undefined ? {} : { componentEnvs: envs.others }),
    });
    this.#deps.onExecution?.({
      udfType: info.udfType,
      ...(componentPath === "" ? {} : { componentPath }),
      displayName: address.displayName,
      modulePath: address.modulePath,
      exportName: address.exportName,
      ok: result.ok,
      errorMessage: result.errorMessage,
      logLines: result.logLines,
      ...(result.logSources === undefined ? {} : { logSources: result.logSources }),
      startedAtMs,
      executionTimeMs: result.executionTimeMs,
      requestId,
    });
    return result;
  }

  async #runOnce(call: ResolvedCall): Promise<CallResult> {
    const { info, request } = call;
    const snapshotTs = request.snapshotTs ?? this.#deps.database.latestTs;
    const tooOld = this.#unretainedSnapshot(snapshotTs, info.udfType);
    if (tooOld) return tooOld;
    const result = await this.#execute(call, snapshotTs);
    // Retention raises its watermark before pruning: still at or above it now means nothing read was pruned.
    return this.#unretainedSnapshot(snapshotTs, info.udfType) ?? this.#finish(call, result, snapshotTs);
  }

  /** The failure of a read at a snapshot whose history retention has pruned, or null when it is readable. */
  #unretainedSnapshot(snapshotTs: bigint, udfType?: FunctionInfo["udfType"]): CallResult | null {
    try {
      this.#deps.database.assertRetained(snapshotTs);
      return null;
    } catch (error) {
      if (!(error instanceof SyscallError)) throw error;
      return failure(`${error.code}: ${error.message}`, udfType);
    }
  }

  #finish(call: ResolvedCall, result: ExecutionResult, ts: bigint): CallResult {
    const info = call.info;
    if (!result.ok) {
      return {
        ok: false,
        udfType: info.udfType,
        errorMessage: result.errorMessage ?? "Unknown error",
        errorData: result.errorData,
        logLines: result.logLines,
        readSet: result.outcome?.readSet,
        ...(result.infrastructure ? { infrastructure: true } : {}),
      };
    }
    const valueJson = result.resultJson ?? "null";
    const returnsError = this.#validateReturns(info.returnsValidator, valueJson, call.componentPath);
    if (returnsError) {
      return { ...failure(returnsError, info.udfType, result.logLines), readSet: result.outcome?.readSet };
    }
    return {
      ok: true,
      udfType: info.udfType,
      valueJson,
      logLines: result.logLines,
      ts,
      readSet: result.outcome?.readSet,
      journal: result.outcome?.journal ?? null,
    };
  }

  /**
   * Runs a mutation to a commit. Contention costs latency, not errors: a few optimistic attempts with jittered
   * backoff, then exclusive commit turns, in which no other transaction commits between the attempt's snapshot and
   * its commit, so it cannot lose to another mutation again (only a catalog change, such as the table the mutation
   * itself creates, can still conflict with it, and the next turn sees that change).
   */
  async #runMutation(call: ResolvedCall): Promise<CallResult> {
    const { info, request } = call;
    const key = request.idempotencyKey === undefined
      ? null
      : resultKey(request.idempotencyKey, idempotencyOwner(request.identityJson, request.allowInternal));
    const mutation: MutationCall = { ...call, resultKey: key };
    const attempt: MutationAttempt = (commit) => this.#attemptMutation(mutation, commit);
    const optimistic = await this.#runOptimistically(attempt);
    if (!("conflict" in optimistic)) return optimistic;
    return await this.#runInTurns(attempt, info.udfType, optimistic.conflict);
  }

  /**
   * Optimistic attempts with jittered backoff. Returns the last conflict once they are used up, or at once when
   * contention is hot (others queue for turns, or many mutations are retrying): another optimistic run would then
   * most likely conflict again and only cost a runner.
   */
  async #runOptimistically(attempt: MutationAttempt): Promise<AttemptOutcome> {
    const database = this.#deps.database;
    let retrying = false;
    try {
      for (let optimistic = 1;; optimistic++) {
        await database.turnsSettled();
        const outcome = await attempt((transaction) => database.commit(transaction));
        if (!("conflict" in outcome)) return outcome;
        if (!retrying) {
          retrying = true;
          this.#retryingMutations++;
        }
        const hot = database.hasPendingTurns || this.#retryingMutations > HOT_CONTENTION_RETRYING_MUTATIONS;
        if (hot || optimistic >= OPTIMISTIC_MUTATION_ATTEMPTS) return outcome;
        await delay(retryBackoffMs(optimistic));
      }
    } finally {
      if (retrying) this.#retryingMutations--;
    }
  }

  /** Exclusive commit turns until the mutation commits, fails, or conflicts in every turn (catalog changes only). */
  async #runInTurns(
    attempt: MutationAttempt,
    udfType: FunctionInfo["udfType"],
    firstConflict: SyscallError,
  ): Promise<CallResult> {
    let conflict = firstConflict;
    for (let turn = 1; turn <= EXCLUSIVE_MUTATION_TURNS; turn++) {
      let outcome: AttemptOutcome;
      try {
        outcome = await this.#deps.database.withCommitTurn(attempt);
      } catch (error) {
        // The turn never started (committer full, database closing): retryable, like a failed commit.
        return commitFailure(error, udfType);
      }
      if (!("conflict" in outcome)) return outcome;
      conflict = outcome.conflict;
    }
    // Optimistic conflicts in every turn: the call may still succeed later, so it is marked retryable.
    const errorMessage = `${conflict.message} and on every subsequent retry.`;
    return { ok: false, udfType, errorMessage, logLines: [], infrastructure: conflict.retryable };
  }

  /**
   * One execution and commit of a mutation at the latest snapshot when its runner starts (a wait for a runner is no
   * part of its conflict window); an optimistic-concurrency conflict is returned.
   */
  async #attemptMutation(
    call: MutationCall,
    commit: (outcome: TransactionOutcome) => Promise<bigint>,
  ): Promise<AttemptOutcome> {
    const { info, request, resultKey } = call;
    const database = this.#deps.database;
    if (resultKey !== null && request.idempotencyKeyIsFresh !== true) {
      // A repeat is answered without running anything; the look-up in the commit below is what guarantees once.
      const remembered = await findResult(database, resultKey);
      if (remembered) return rememberedCall(remembered);
    }
    const result = await this.#execute(call, null);
    const snapshotTs = result.snapshotTs ?? database.latestTs;
    const finished = this.#finish(call, result, snapshotTs);
    if (!finished.ok && resultKey !== null && result.snapshotTs !== undefined) {
      // Another execution of the key may have committed after `findResult` looked (this run then failed on its
      // writes, e.g. a uniqueness check): the key's one committed result is the answer, not this run's failure.
      const remembered = await database.mutationResult(resultKey, result.snapshotTs);
      if (remembered) return rememberedCall(remembered);
    }
    if (!finished.ok || !result.outcome) return finished;
    const outcome = result.outcome;
    if (resultKey !== null) {
      // Committed between `findResult` and this attempt's snapshot: committing again would run the key twice.
      const remembered = await recordResult(database, outcome, resultKey, finished.valueJson);
      if (remembered) return rememberedCall(remembered);
    }
    // Server-side writes that commit atomically with the mutation: system transactions at its snapshot (the commit
    // hook's namespace is the caller's choice, e.g. a job's component).
    const extras: SystemTransaction[] = [];
    if (request.withCommit) {
      const tx = database.beginSystemTransaction(snapshotTs, { componentPath: request.withCommitNamespace ?? "" });
      if (!await request.withCommit(finished.valueJson, tx, outcome.writes)) {
        return failure("The mutation was not committed: its commit hook declined", info.udfType);
      }
      extras.push(tx);
    }
    for (const tx of extras) {
      const extra = tx.outcome();
      outcome.writes.push(...extra.writes);
      outcome.readSet.push(...extra.readSet);
    }
    try {
      const ts = await commit(outcome);
      return { ...finished, ts };
    } catch (error) {
      if (error instanceof SyscallError && error.code === "OptimisticConcurrencyControlFailure") {
        return { conflict: error };
      }
      // The code ran; its commit did not happen (committer full, database closed or unavailable): retryable.
      return commitFailure(error, info.udfType);
    }
  }
}

/** The answer to a key that already committed: its first result and commit ts (nothing runs or commits again). */
function rememberedCall(remembered: RememberedResult): CallResult {
  return { ok: true, udfType: "mutation", valueJson: remembered.valueJson, logLines: [], ts: remembered.ts };
}

/** A mutation whose commit did not happen: nothing took effect, so whatever stopped it, the call is retryable. */
function commitFailure(error: unknown, udfType: FunctionInfo["udfType"]): CallResult {
  const { errorMessage, retryable } = callFailureOf(error, true);
  return { ok: false, udfType, errorMessage, logLines: [], infrastructure: retryable };
}

/** How one attempt of a mutation ended: a result (success or failure), or an optimistic-concurrency conflict. */
type AttemptOutcome = CallResult | { conflict: SyscallError };

/** Runs one attempt of a mutation at the latest snapshot, committing through `commit`. */
type MutationAttempt = (commit: (outcome: TransactionOutcome) => Promise<bigint>) => Promise<AttemptOutcome>;

/** A call resolved to a function of the active deployment, its args checked and encoded. */
interface ResolvedCall {
  deployment: ActiveDeployment;
  /** The component the function belongs to (`""`: the app). */
  componentPath: string;
  address: FunctionAddress;
  info: FunctionInfo;
  /** `[args]` as JSON, what the runner passes to the function. */
  argsJson: string;
  request: CallRequest;
}

/** What every attempt of one mutation call shares. */
interface MutationCall extends ResolvedCall {
  /** The key the result is stored under (idempotency.ts), or null without an idempotency key. */
  resultKey: Uint8Array | null;
}

/** A jittered exponential backoff before optimistic retry `retry` (1-based): spreads out colliding retries. */
function retryBackoffMs(retry: number): number {
  const ceilingMs = Math.min(MAX_RETRY_BACKOFF_MS, FIRST_RETRY_BACKOFF_MS * 2 ** (retry - 1));
  return Math.random() * ceilingMs;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** An error an action's `ctx.runQuery/runMutation/runAction` rejects with; `data` carries ConvexError data. */
export class ActionCallError extends DenvexError {
  /** convex-JSON data of the ConvexError the called function threw, if it threw one. */
  readonly data?: JsonValue | undefined;
  constructor(message: string, data?: JsonValue) {
    super("CallFailed", message, { httpStatus: 400 });
    this.name = "ActionCallError";
    this.data = data;
  }
}

/** `ctx.createFunctionHandle` of a node action (served by `serveActionCall`). */
const CREATE_FUNCTION_HANDLE_OP = "1.0/createFunctionHandle";

const ACTION_CALL_TYPES: Record<string, "query" | "mutation" | "action"> = {
  "1.0/actions/query": "query",
  "1.0/actions/mutation": "mutation",
  "1.0/actions/action": "action",
};

/**
 * Serves the calls an action makes to the server (`ctx.runQuery/runMutation/runAction`): each is its own
 * transaction, the caller's identity kept. The address (a name, a child reference or a function handle) resolves
 * relative to the calling action's component `callerPath`; names and handles may reach internal functions, a child
 * reference only the child's public ones. Resolves with convex-JSON text. Also serves a node action's
 * `1.0/createFunctionHandle` (the handle of an existing function, resolved the same way).
 */
export async function serveActionCall(
  executor: FunctionExecutor,
  op: string,
  argsJson: string,
  caller: Pick<CallContext, "identityJson" | "componentPath" | "requestId" | "requestMetadata">,
): Promise<string> {
  const { identityJson, componentPath: callerPath } = caller;
  const expectedType = ACTION_CALL_TYPES[op];
  if (!expectedType && op !== CREATE_FUNCTION_HANDLE_OP) throw new ActionCallError(`Unknown async operation ${op}`);
  const args = JSON.parse(argsJson) as Record<string, unknown>;
  let target: ResolvedCallAddress;
  try {
    target = resolveCallAddress(callerPath, args);
  } catch (error) {
    throw new ActionCallError(error instanceof Error ? error.message : String(error));
  }
  if (!expectedType) {
    // Node actions ask here (isolate workers answer it themselves): the function must exist, as in Convex.
    const found = executor.resolve(target.udfPath, !target.publicOnly, target.componentPath);
    if (typeof found === "string") throw new ActionCallError(found);
    return JSON.stringify(handleOf(target));
  }
  const result = await executor.call({
    path: target.udfPath,
    componentPath: target.componentPath,
    args: (args.args ?? {}) as JsonValue,
    expectedType,
    identityJson,
    allowInternal: !target.publicOnly,
    // The request's metadata and id reach the whole call tree, as in Convex.
    requestId: caller.requestId,
    requestMetadata: caller.requestMetadata,
  });
  if (!result.ok) throw new ActionCallError(result.errorMessage, result.errorData);
  return result.valueJson;
}

function article(udfType: string): string {
  return udfType === "action" ? "an action" : `a ${udfType}`;
}
