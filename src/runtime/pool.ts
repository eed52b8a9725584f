/**
 * The server's pool of runner processes. Queries and mutations go to "transaction" runners: one kept warm, more
 * spawned while calls wait, up to a bound sized to the machine; actions (long, I/O bound) go to a separate set that
 * starts empty and grows the same way. Runners beyond a set's warm minimum exit after a quiet period, so an idle server
 * holds one runner. Each runner runs one call at a time; calls wait in a bounded queue per set.
 *
 * A runner that dies (out of memory, crash, killed at its hard deadline) fails only the call it was running and is
 * replaced in the background.
 *
 * Runner states (`RunnerState`): starting → idle ⇄ busy → retiring → dead. A runner goes back to idle only after it
 * reported `idle` (its worker answered the post-call probe, runner.ts); one that answered with a time-limit failure,
 * left work behind, or is being stopped is retiring and never gets another call. Dispatch asserts the state.
 *
 * When calls wait and no transaction runner is idle or starting, a busy transaction runner also gets the next queries
 * and mutations sent behind its running one (pipelined), up to MAX_CALLS_BEHIND: it starts each itself once idle,
 * instead of sleeping until the server has read its answer and written the next call (a wake-up of a process on
 * another vCPU, ~20 µs of CPU on each side here, and the server's time to get to it), and under load it reads several
 * calls per wake-up of its main thread. Only behind a call that started less than BEHIND_MAX_RUN_MS ago, to the runner
 * holding the fewest (the most recent call first on a tie): a call sent behind a long one would wait for it while
 * another runner frees up. A call sent behind has its snapshot taken when sent, up to MAX_CALLS_BEHIND running calls
 * earlier than otherwise; one whose runner dies before it starts goes back to the front of the queue. So does one
 * whose call ahead turns out long (BEHIND_MAX_RUN_MS): the pool asks the runner for it back, and a runner that has not
 * started it gives it back (`#withdrawStuck`).
 */
import { AnalyzeError, RunnerPoolFullError } from "./errors.ts";
import { modulesRoot } from "./module_writer.ts";
import { actionNetPolicy, isCompiledBinary, type RunnerCommand, runnerCommand } from "./runner_command.ts";
import { NodeAnalyzeError, NodePool } from "./node/mod.ts";
import { JobWithdrawnError, RunnerExitError, RunnerProcess, type SentJob } from "./runner_process.ts";
import { CpuAffinity } from "./cpu_affinity.ts";
import { DeadlineSweep } from "./deadline_sweep.ts";
import { prepareRunnerSocketDir } from "./runner_socket.ts";
import {
  CREATE_TABLE_OP,
  EXIT_OUT_OF_MEMORY,
  EXIT_TIME_LIMIT,
  type RunnerCallMessage,
  type RunnerCallResultMessage,
  type RunnerKind,
  type RunnerResultMessage,
} from "./runner_protocol.ts";
import {
  type CallContext,
  type DeploymentAnalysis,
  type ExecuteRequest,
  type ExecutionResult,
  type ModuleAnalysis,
  NO_REQUEST_METADATA,
  type RunnerPoolOptions,
} from "./types.ts";
import type { JsonValue } from "../values/mod.ts";
import { runnerRestarts } from "../metrics/mod.ts";

const DEFAULT_MAX_HEAP_MB = 256;
/** `ctx.meta.getDeploymentMetadata().name` when the server names none. */
const DEFAULT_DEPLOYMENT_NAME = "denvex";
const DEFAULT_QUERY_TIME_LIMIT_MS = 1_000;
const DEFAULT_ACTION_TIME_LIMIT_MS = 10 * 60 * 1_000;
const DEFAULT_ANALYZE_TIME_LIMIT_MS = 30_000;
const DEFAULT_HARD_DEADLINE_SLACK_MS = 5_000;
const DEFAULT_MAX_QUEUED_CALLS = 1_000;
/**
 * A runner idle this long, beyond its set's warm minimum, exits (issue 14: an idle runner holds ~50-80 MB PSS, and a
 * replacement costs one spawn and bootstrap, ~16 ms plus the worker's start).
 */
const IDLE_EXIT_MS: Record<RunnerKind, number> = { transaction: 30_000, action: 30_000 };
/**
 * A warm runner that served this many calls is replaced by a fresh one once its set has been quiet for the idle-exit
 * time: a burst leaves ~20 MiB in a runner (V8 heap, SQLite page cache) that is not given back otherwise. The spare
 * spawn costs ~16 ms of CPU and happens at most once per quiet period after real use.
 */
const RECYCLE_AFTER_JOBS = 100;
/** Transaction runners kept warm: one, so a quiet server answers its first query without a spawn. */
const WARM_TRANSACTION_RUNNERS = 1;
/**
 * A call is sent behind a running one only if that one started less than this long ago: queries and mutations take
 * well under a millisecond of a runner here, and one that has run this long is likely to run longer (see the module
 * comment).
 */
const BEHIND_MAX_RUN_MS = 20;
/**
 * A call unanswered this long counts as running long, and calls waiting behind it may start a runner beyond the
 * preferred ones (`#growthLimit`). Well above BEHIND_MAX_RUN_MS: a quick call that a garbage collection or a preempted
 * CPU held up for a few tens of milliseconds must not start a process (seen at 26 ms under call_path_bench's load).
 */
const GROW_AFTER_RUN_MS = 100;
/** Runners that die before becoming ready this many times in a row fail the queued calls (broken setup). */
const MAX_START_FAILURES = 5;

/** Failure of a call whose caller went away (an HTTP action's client disconnected). */
const CANCELLED_TEXT = "The call was stopped because its client disconnected";

/** Where a runner is in its life; see the module comment. */
export type RunnerState = "starting" | "idle" | "busy" | "retiring" | "dead";

/** Why the pool killed a runner during a call, if it did. */
type StopReason = "deadline" | "cancelled" | null;

/** How a job's run ended: answered (or failed for good), or never started on its runner (it may go to another). */
type JobRunEnd = "done" | "not started";

/** One queued or running call. */
interface Job {
  /** The execution's ID in the runner protocol. */
  executionId: string;
  /**
   * Sends the job to `runner` (behind its running job when the runner has one) and returns when the runner is done
   * with it, or "not started" when the runner died or gave it back before starting it; `whenSent` gets the job's
   * `SentJob` synchronously. Never rejects. `stopReason()` tells whether (and why) the pool killed the runner.
   */
  run(
    runner: RunnerProcess,
    stopReason: () => StopReason,
    whenSent: (sent: SentJob<unknown>) => void,
  ): Promise<JobRunEnd>;
  /** Fails a call that never started. */
  fail(error: Error): void;
  hardDeadlineMs: number;
  /** Aborted when the caller no longer wants the result: the call is dropped or its runner killed. */
  signal?: AbortSignal;
  /** Whether it may be sent behind a running job (a query or mutation without a caller that can go away). */
  pipelinable: boolean;
}

/** A job sent behind a running one, with its turn (see `Turn`). */
interface JobBehind {
  job: Job;
  turn: PromiseWithResolvers<Turn>;
}

/** A busy runner's job, and those sent behind it in the order sent (see `MAX_CALLS_BEHIND`). */
interface RunningSlot {
  job: Job;
  /** performance.now() when `job` got the runner (was sent, or took over from the job ahead). */
  startedAt: number;
  behind: JobBehind[];
}

/**
 * What a job sent behind another learns when that one is done with the runner: the runner is its own now ("go"), it
 * is gone ("gone": died or retired before starting the job), or the runner gave the job back unstarted ("withdrawn").
 */
type Turn = "go" | "gone" | "withdrawn";

/** Runners of one kind. */
interface RunnerSet {
  kind: RunnerKind;
  min: number;
  max: number;
  /**
   * Runners the set grows to while calls wait; beyond it, up to `max`, only while a running call has run long (see
   * `#growthLimit`). `max` unless the server and its runners are pinned (`#pinServer`).
   */
  preferred: number;
  maxQueued: number;
  /** Every runner not yet dead, with its state. */
  all: Map<RunnerProcess, RunnerState>;
  /** The runners in state idle (and only those), most recently used last. */
  idle: RunnerProcess[];
  /** The job each busy runner runs, and the job sent behind it if any (see the module comment). */
  running: Map<RunnerProcess, RunningSlot>;
  /** Jobs sent behind a running one, and those of them put back in the queue unstarted (tests, benchmarks). */
  sentBehind: number;
  requeued: number;
  /** Jobs sent behind a call that then ran long, taken back unstarted (see `#withdrawStuck`). */
  withdrawn: number;
  starting: number;
  queue: Job[];
  startFailures: number;
  /** performance.now() before which no runner is spawned (after runners failed to start). */
  backoffUntil: number;
}

/** See the module comment. */
export class RunnerPool {
  readonly #options: RunnerPoolOptions;
  readonly #sets: Record<RunnerKind, RunnerSet>;
  /** The action command is null until its network policy is resolved (no action runner starts before). */
  readonly #commands: Record<RunnerKind, RunnerCommand | null>;
  readonly #actionCommandReady: Promise<void>;
  readonly #contexts = new Map<string, CallContext>();
  readonly #maxHeapMb: number;
  readonly #modulesDir: string;
  readonly #socketDir: string;
  readonly #deploymentName: string;
  readonly #retireTimer: ReturnType<typeof setInterval>;
  /** The hard deadlines of the calls that run (one timer for all, see deadline_sweep.ts). */
  readonly #deadlines = new DeadlineSweep();
  /** The pending look for jobs stuck behind a long call (`#withdrawStuck`), if armed. */
  #stuckCheck: ReturnType<typeof setTimeout> | null = null;
  readonly #idleExitMs: Record<RunnerKind, number>;
  /** Whether an action runner is started with the pool although none is kept warm. */
  readonly #prewarmAction: boolean;
  /** `"use node"` actions: the third runner kind (node/pool.ts). */
  readonly #node: NodePool;
  #nextExecutionId = 1;
  #closed = false;
  /** Pins transaction runners to CPUs; resolves to null where it cannot (see cpu_affinity.ts). */
  readonly #affinity: Promise<CpuAffinity | null>;
  /** `#affinity` once it pinned the server (see `#pinServer`); null while the server is not pinned. */
  #serverAffinity: CpuAffinity | null = null;
  /** Transaction runners started beyond the preferred ones for calls waiting behind a long one (see `#rebalance`). */
  readonly #extras = new Set<RunnerProcess>();

  constructor(options: RunnerPoolOptions) {
    this.#options = options;
    this.#maxHeapMb = options.maxHeapMb ?? DEFAULT_MAX_HEAP_MB;
    this.#modulesDir = modulesRoot(options.dataDir);
    const cores = navigator.hardwareConcurrency || 1;
    const queryRunners = options.queryRunners ?? Math.max(2, cores);
    const maxQueued = options.maxQueuedCalls ?? DEFAULT_MAX_QUEUED_CALLS;
    // No action runner kept warm: most deployments call few actions or none (issue 14, idle footprint). One is still
    // started with the pool (unless the caller set a minimum), so early actions find it, and exits when quiet.
    const minActions = options.minActionRunners ?? 0;
    this.#prewarmAction = options.minActionRunners === undefined;
    this.#sets = {
      transaction: newSet("transaction", Math.min(WARM_TRANSACTION_RUNNERS, queryRunners), queryRunners, maxQueued),
      action: newSet("action", minActions, Math.max(minActions, options.maxActionRunners ?? 4 * cores), maxQueued),
    };
    this.#socketDir = prepareRunnerSocketDir(options.dataDir);
    this.#deploymentName = options.deploymentName ?? DEFAULT_DEPLOYMENT_NAME;
    const common = {
      socketDir: this.#socketDir,
      modulesDir: this.#modulesDir,
      location: options.location,
      maxHeapMb: this.#maxHeapMb,
      entry: options.runnerEntry,
    };
    this.#commands = { transaction: runnerCommand({ ...common, kind: "transaction", actionNet: null }), action: null };
    const policy = actionNetPolicy(options.location, options.actionNet ?? {});
    this.#actionCommandReady = this.#resolveActionCommand(
      policy.then((actionNet) => runnerCommand({ ...common, kind: "action", actionNet })),
    );
    this.#node = new NodePool({
      dataDir: options.dataDir,
      maxRunners: options.maxNodeRunners,
      externalPackages: options.nodePackages ?? "auto",
      maxQueuedCalls: maxQueued,
      denyNet: policy.then((actionNet) => actionNet.denyNet),
      onCall: (op, argsJson, context) => options.onCall(op, argsJson, context),
    });
    Deno.mkdirSync(this.#modulesDir, { recursive: true });
    const affinityProgram = options.cpuAffinityProgram ?? null;
    this.#affinity = affinityProgram === null ? Promise.resolve(null) : CpuAffinity.detect(affinityProgram).then(
      async (affinity) => {
        if (affinity !== null) await this.#pinServer(affinity);
        // Said only where pinning was to be expected: the server asks for it by default, and on one CPU or another OS
        // there is nothing to pin, nor anything to say about it on every start.
        if (affinity === null && Deno.build.os === "linux" && navigator.hardwareConcurrency > 1) {
          console.error(
            `denvex: runners stay unpinned: ${affinityProgram} cannot pin them here (it must be installed and ` +
              `allowed to run)`,
          );
        }
        return affinity;
      },
    );
    for (let i = 0; i < this.#sets.transaction.min; i++) this.#spawn(this.#sets.transaction);
    this.#idleExitMs = options.runnerIdleExitMs === undefined
      ? IDLE_EXIT_MS
      : { transaction: options.runnerIdleExitMs, action: options.runnerIdleExitMs };
    this.#retireTimer = setInterval(() => this.#retireIdleRunners(), this.#idleExitMs.transaction / 4);
    Deno.unrefTimer(this.#retireTimer);
  }

  /** Resolves once the warm runners have started (useful before measuring, or in tests). */
  async ready(): Promise<void> {
    await this.#actionCommandReady;
    const deadline = performance.now() + 60_000;
    while (!this.#closed && performance.now() < deadline) {
      const sets = Object.values(this.#sets);
      const broken = sets.find((set) => set.startFailures >= MAX_START_FAILURES);
      if (broken) throw new Error(`${broken.kind} runners fail to start; see the server's stderr`);
      if (!sets.some((set) => set.idle.length + busyCount(set) < set.min)) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Runs one function call. User-code failures, limits and runner deaths come back as `ok: false`. */
  execute(request: ExecuteRequest): Promise<ExecutionResult> {
    const isAction = request.udfType === "action";
    const hasSnapshot = request.snapshot !== undefined ||
      (request.snapshotTs !== undefined && request.catalog !== undefined);
    if (!isAction && !hasSnapshot) {
      return Promise.reject(new Error(`A ${request.udfType} needs snapshotTs and catalog`));
    }
    if (request.signal?.aborted) {
      return Promise.resolve({ ok: false, errorMessage: CANCELLED_TEXT, logLines: [], executionTimeMs: 0 });
    }
    const set = this.#sets[isAction ? "action" : "transaction"];
    const timeLimitMs = request.timeLimitMs ??
      (isAction
        ? this.#options.actionTimeLimitMs ?? DEFAULT_ACTION_TIME_LIMIT_MS
        : this.#options.queryTimeLimitMs ?? DEFAULT_QUERY_TIME_LIMIT_MS);
    const executionId = `e${this.#nextExecutionId++}`;
    if (request.environment === "node") return this.#executeNode(request, executionId, timeLimitMs);
    const result = Promise.withResolvers<ExecutionResult>();
    const queuedAt = performance.now();
    const job: Job = {
      executionId,
      hardDeadlineMs: this.#hardDeadlineMs(timeLimitMs),
      fail: (error) => result.reject(error),
      ...(request.signal === undefined ? {} : { signal: request.signal }),
      pipelinable: request.signal === undefined && request.http === undefined,
      run: async (runner, stopReason, whenSent) => {
        this.#contexts.set(executionId, {
          executionId,
          requestId: request.requestId,
          requestMetadata: request.requestMetadata ?? NO_REQUEST_METADATA,
          deploymentName: this.#deploymentName,
          identityJson: request.identityJson,
          functionPath: `${request.modulePath}:${request.exportName}`,
          componentPath: request.componentPath ?? "",
        });
        // Taken now that a runner is ours, not when the call was queued (see ExecuteRequest.snapshot).
        const taken = request.snapshot?.();
        const snapshotTs = taken?.snapshotTs ?? request.snapshotTs;
        const catalog = taken?.catalog ?? request.catalog ?? null;
        const sendCatalog = catalog !== null && runner.catalogVersion !== catalog.version;
        try {
          const sent = runner.execute({
            type: "execute",
            executionId,
            udfType: request.udfType,
            modulePath: request.modulePath,
            exportName: request.exportName,
            argsJson: request.argsJson,
            snapshotTs: snapshotTs === undefined ? null : snapshotTs.toString(),
            catalog: sendCatalog ? catalog : null,
            catalogVersion: catalog?.version ?? null,
            identityJson: request.identityJson,
            journal: request.journal ?? null,
            env: request.env,
            requestId: request.requestId,
            deploymentDir: request.deploymentDir,
            ...(request.componentPath ? { componentPath: request.componentPath } : {}),
            ...(request.componentEnvs === undefined ? {} : { componentEnvs: request.componentEnvs }),
            timeLimitMs,
            ...(request.http === undefined ? {} : { http: request.http.head }),
            metadata: {
              deploymentName: this.#deploymentName,
              request: request.requestMetadata ?? NO_REQUEST_METADATA,
            },
          }, request.http?.exchange);
          whenSent(sent);
          const message = await sent.answer;
          if (catalog !== null) runner.catalogVersion = catalog.version;
          const executed = toExecutionResult(message);
          if (snapshotTs !== undefined) executed.snapshotTs = snapshotTs;
          result.resolve(executed);
        } catch (error) {
          runner.catalogVersion = null;
          if (error instanceof JobWithdrawnError || (error instanceof RunnerExitError && !error.started)) {
            return "not started";
          }
          const text = this.#failureText(error, stopReason(), timeLimitMs, job.hardDeadlineMs);
          result.resolve({
            ok: false,
            errorMessage: text,
            logLines: [],
            executionTimeMs: performance.now() - queuedAt,
            ...(snapshotTs === undefined ? {} : { snapshotTs }),
            ...(isInfrastructureFailure(error, stopReason()) ? { infrastructure: true } : {}),
          });
        } finally {
          this.#contexts.delete(executionId);
        }
        return "done";
      },
    };
    this.#submit(set, job);
    request.signal?.addEventListener("abort", () => {
      // Still queued: drop it (a running one is stopped by #start).
      const queuedIndex = set.queue.indexOf(job);
      if (queuedIndex === -1) return;
      set.queue.splice(queuedIndex, 1);
      result.resolve({ ok: false, errorMessage: CANCELLED_TEXT, logLines: [], executionTimeMs: 0 });
    }, { once: true });
    return result.promise;
  }

  /**
   * Imports the modules of a written deployment in a runner and describes them. `_deps/` chunks are skipped. Throws
   * `AnalyzeError` naming the module when one fails to load or its special export is malformed. With `componentPath`,
   * the modules are that component instance's, in its folder of the deployment (components/layout.ts): the runner
   * keeps one worker for the whole deployment, and the modules stay loaded for the calls that follow.
   */
  analyze(
    deploymentDir: string,
    modulePaths: string[],
    env: Record<string, string> = {},
    componentPath = "",
  ): Promise<DeploymentAnalysis> {
    const timeLimitMs = this.#options.analyzeTimeLimitMs ?? DEFAULT_ANALYZE_TIME_LIMIT_MS;
    const executionId = `a${this.#nextExecutionId++}`;
    const result = Promise.withResolvers<DeploymentAnalysis>();
    const job: Job = {
      executionId,
      hardDeadlineMs: timeLimitMs + (this.#options.hardDeadlineSlackMs ?? DEFAULT_HARD_DEADLINE_SLACK_MS),
      fail: (error) => result.reject(error),
      pipelinable: false,
      run: async (runner, stopReason, whenSent) => {
        try {
          const sent = runner.analyze({
            type: "analyze",
            executionId,
            deploymentDir,
            ...(componentPath === "" ? {} : { componentPath }),
            modulePaths: modulePaths.filter((path) => !path.startsWith("_deps/")),
            env,
            timeLimitMs,
          });
          whenSent(sent);
          const message = await sent.answer;
          if (message.ok && message.analysis) result.resolve(message.analysis);
          else result.reject(new AnalyzeError(message.errorMessage ?? "Analysis failed"));
        } catch (error) {
          result.reject(new AnalyzeError(this.#failureText(error, stopReason(), timeLimitMs, job.hardDeadlineMs)));
        }
        return "done";
      },
    };
    this.#submit(this.#sets.transaction, job);
    return result.promise;
  }

  /**
   * Why this server cannot run `"use node"` actions, or null when it can. Node runners and external package installs
   * need the `deno` CLI (`deno run --config …`, `deno install`), which a compiled binary is not.
   */
  /** Whether pushes may name external packages for node actions (`--node-packages`). */
  get nodeExternalPackages(): "auto" | "off" {
    return this.#node.externalPackages;
  }

  get nodeActionsUnavailable(): string | null {
    return isCompiledBinary()
      ? 'This denvex executable cannot run "use node" actions: they need the deno CLI (start the server from a ' +
        "checkout with `deno task start`)"
      : null;
  }

  /**
   * Imports the `"use node"` modules of a node deployment folder in a fresh node runner and describes them (each
   * module marked `environment: "node"`). Throws AnalyzeError with Convex's message when one defines anything but
   * actions, or fails to load.
   */
  async analyzeNode(nodeDir: string, modulePaths: string[], env: Record<string, string>): Promise<ModuleAnalysis[]> {
    try {
      return await this.#node.analyze(nodeDir, modulePaths, env);
    } catch (error) {
      if (error instanceof NodeAnalyzeError) throw new AnalyzeError(error.message);
      throw error;
    }
  }

  /**
   * After a push: idle node runners of other folders exit, and one runner starts on `nodeDir` (null: the deployment
   * has no node modules), so the first node call pays no spawn.
   */
  activateNode(nodeDir: string | null): void {
    this.#node.retireAllBut(nodeDir);
    if (nodeDir !== null) this.#node.prewarm(nodeDir);
  }

  /** Process IDs of the live node runners (tests). */
  nodeRunnerPids(): number[] {
    return this.#node.runnerPids();
  }

  async #executeNode(request: ExecuteRequest, executionId: string, timeLimitMs: number): Promise<ExecutionResult> {
    if (request.udfType !== "action" || request.nodeDir === undefined) {
      throw new Error(`A node function must be an action with a nodeDir (${request.modulePath})`);
    }
    const context: CallContext = {
      executionId,
      requestId: request.requestId,
      requestMetadata: request.requestMetadata ?? NO_REQUEST_METADATA,
      deploymentName: this.#deploymentName,
      identityJson: request.identityJson,
      functionPath: `${request.modulePath}:${request.exportName}`,
      componentPath: request.componentPath ?? "",
    };
    return await this.#node.execute({
      nodeDir: request.nodeDir,
      modulePath: request.modulePath,
      exportName: request.exportName,
      argsJson: request.argsJson,
      env: request.env,
      timeLimitMs,
      context,
    });
  }

  /** Numbers for monitoring and tests. */
  stats(): Record<
    RunnerKind,
    {
      runners: number;
      idle: number;
      starting: number;
      queued: number;
      sentBehind: number;
      requeued: number;
      withdrawn: number;
    }
  > {
    const of = (set: RunnerSet) => ({
      runners: set.all.size,
      idle: set.idle.length,
      starting: set.starting,
      queued: set.queue.length,
      sentBehind: set.sentBehind,
      requeued: set.requeued,
      withdrawn: set.withdrawn,
    });
    return { transaction: of(this.#sets.transaction), action: of(this.#sets.action) };
  }

  /** Process IDs of the live runners (tests use them to check that killed runners are gone). */
  runnerPids(): number[] {
    return Object.values(this.#sets).flatMap((set) => [...set.all.keys()].map((runner) => runner.pid));
  }

  /** Each live runner's process ID and state (monitoring and tests). */
  runnerStates(): { kind: RunnerKind; pid: number; state: RunnerState }[] {
    return Object.values(this.#sets).flatMap((set) =>
      [...set.all].map(([runner, state]) => ({ kind: set.kind, pid: runner.pid, state }))
    );
  }

  /** Kills every runner and fails queued calls. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#retireTimer);
    if (this.#stuckCheck !== null) clearTimeout(this.#stuckCheck);
    this.#deadlines.close();
    const nodeClosed = this.#node.close();
    const runners: RunnerProcess[] = [];
    for (const set of Object.values(this.#sets)) {
      for (const job of set.queue.splice(0)) job.fail(new RunnerPoolFullError("The runner pool is closed"));
      for (const runner of set.all.keys()) {
        set.all.set(runner, "retiring");
        runners.push(runner);
      }
      set.idle.length = 0;
    }
    for (const runner of runners) runner.kill();
    const unpinned = this.#serverAffinity?.unpinServer();
    this.#serverAffinity = null;
    await Promise.all([nodeClosed, unpinned, ...runners.map((runner) => runner.exited)]);
  }

  /** Starts the action runners once their command exists; a policy that cannot be built fails action calls. */
  async #resolveActionCommand(command: Promise<RunnerCommand>): Promise<void> {
    const set = this.#sets.action;
    try {
      this.#commands.action = await command;
    } catch (error) {
      console.error(`denvex: action network policy: ${error instanceof Error ? error.message : String(error)}`);
      set.startFailures = MAX_START_FAILURES;
      for (const job of set.queue.splice(0)) {
        job.fail(new Error("action runners fail to start; see the server's stderr"));
      }
      return;
    }
    this.#replenish(set);
    if (this.#prewarmAction && set.all.size === 0 && !this.#closed && set.startFailures < MAX_START_FAILURES) {
      this.#spawn(set);
    }
  }

  #hardDeadlineMs(timeLimitMs: number): number {
    return timeLimitMs * 2 + (this.#options.hardDeadlineSlackMs ?? DEFAULT_HARD_DEADLINE_SLACK_MS);
  }

  #submit(set: RunnerSet, job: Job): void {
    if (this.#closed) return job.fail(new RunnerPoolFullError("The runner pool is closed"));
    if (set.startFailures >= MAX_START_FAILURES) {
      return job.fail(new Error(`${set.kind} runners fail to start; see the server's stderr`));
    }
    if (set.queue.length >= set.maxQueued) {
      return job.fail(
        new RunnerPoolFullError(`Too many calls waiting for a ${set.kind} runner (at most ${set.maxQueued} queued)`),
      );
    }
    set.queue.push(job);
    this.#dispatch(set);
  }

  #dispatch(set: RunnerSet): void {
    this.#rebalance(set);
    while (set.queue.length > 0 && set.idle.length > 0) {
      const runner = set.idle.pop()!;
      if (runner.dead) continue; // exited while idle; its exit handler is on its way
      assertState(set, runner, "idle");
      if (runner.busy || runner.retiring) throw new Error(`Runner ${runner.id} is idle but busy or retiring`);
      set.all.set(runner, "busy");
      const job = set.queue.shift()!;
      set.running.set(runner, { job, startedAt: performance.now(), behind: [] });
      void this.#start(set, runner, job, null);
    }
    // Grow while calls wait and no runner is on its way for them.
    const limit = this.#growthLimit(set);
    const growable = () => set.queue.length > set.starting && set.all.size < limit;
    const canSpawn = () => !this.#closed && this.#commands[set.kind] !== null && performance.now() >= set.backoffUntil;
    while (canSpawn() && growable()) {
      const runner = this.#spawn(set);
      if (set.all.size > set.preferred) this.#extras.add(runner);
    }
    this.#sendBehind(set);
    // Calls left waiting may need a runner beyond the preferred ones once a running call has run long: look again then.
    if (set.queue.length > 0 && set.all.size < set.max && set.all.size >= set.preferred) this.#armStuckCheck();
  }

  /**
   * Once no call runs long, a runner started beyond the preferred ones (`#extras`) exits as soon as it is idle. One that
   * the set needs after all (the runner of the long call died meanwhile, say) stays, as a regular one, and moves to a
   * CPU of its own if one is free.
   */
  #rebalance(set: RunnerSet): void {
    const affinity = this.#serverAffinity;
    if (affinity === null || this.#extras.size === 0 || set.kind !== "transaction") return;
    let live = set.all.size - countState(set, "retiring");
    const limit = this.#growthLimit(set);
    for (const runner of [...this.#extras]) {
      const state = set.all.get(runner);
      if (state === undefined || state === "retiring") {
        this.#extras.delete(runner);
      } else if (live <= limit) {
        // Kept until it is off a shared CPU: the one it would move to may still hold a runner on its way out.
        if (!affinity.sharesCpu(runner.pid)) this.#extras.delete(runner);
        else if (affinity.hasFreeCpu()) {
          this.#extras.delete(runner);
          void affinity.repin(runner.pid);
        }
      } else if (state === "idle") {
        this.#extras.delete(runner);
        this.#retire(set, runner, true);
        live--;
      }
    }
  }

  /** How many runners the set may grow to now: `max` while a running call has run long, else `preferred`. */
  #growthLimit(set: RunnerSet): number {
    if (set.preferred >= set.max) return set.max;
    const longSince = performance.now() - GROW_AFTER_RUN_MS;
    for (const [runner, slot] of set.running) if (slot.startedAt <= longSince && !runner.answered) return set.max;
    return set.preferred;
  }

  /** Sends waiting calls behind running ones while no runner is idle or starting (see the module comment). */
  #sendBehind(set: RunnerSet): void {
    if (set.kind !== "transaction") return;
    while (set.queue.length > 0 && set.idle.length === 0 && set.starting === 0 && set.queue[0].pipelinable) {
      const runner = this.#runnerToSendBehind(set);
      if (runner === null) return;
      const slot = set.running.get(runner)!;
      assertState(set, runner, "busy");
      const job = set.queue.shift()!;
      const turn = Promise.withResolvers<Turn>();
      slot.behind.push({ job, turn });
      set.sentBehind++;
      void this.#start(set, runner, job, turn.promise);
      // With one runner at most, a job given back would only wait for the same runner again.
      if (set.max > 1) this.#armStuckCheck();
    }
  }

  /** Arms the one timer that looks for jobs stuck behind a long call (see `#withdrawStuck`), unless it is armed. */
  #armStuckCheck(): void {
    if (this.#stuckCheck !== null || this.#closed) return;
    this.#stuckCheck = setTimeout(() => {
      this.#stuckCheck = null;
      let younger = false;
      for (const set of Object.values(this.#sets)) {
        if (this.#withdrawStuck(set)) younger = true;
        // Calls waiting while a call runs long: a runner beyond the preferred ones may start for them.
        if (set.queue.length > 0) this.#dispatch(set);
      }
      if (younger) this.#armStuckCheck();
    }, BEHIND_MAX_RUN_MS);
  }

  /**
   * Asks for the jobs sent behind a call that has now run BEHIND_MAX_RUN_MS or longer back (a call that runs this long
   * is likely to run longer, see the module comment): a runner that has not started one gives it back, and it goes to
   * the front of the queue for the next free runner instead of waiting out the long call. Returns whether younger
   * calls have jobs behind them, for which the timer is re-armed: one timer for the pool, not one per call.
   */
  #withdrawStuck(set: RunnerSet): boolean {
    const now = performance.now();
    let younger = false;
    for (const [runner, slot] of set.running) {
      if (slot.behind.length === 0) continue;
      if (now - slot.startedAt < BEHIND_MAX_RUN_MS) {
        younger = true;
        continue;
      }
      for (const behind of slot.behind) {
        runner.withdrawBehind(behind.job.executionId, () => {
          // Synchronous with the runner's message, which comes before the running call's answer: that call's
          // `#finish` then finds the job no longer behind it.
          const current = set.running.get(runner);
          const index = current?.behind.indexOf(behind) ?? -1;
          if (index === -1) return;
          current!.behind.splice(index, 1);
          behind.turn.resolve("withdrawn");
        });
      }
    }
    return younger;
  }

  /**
   * Of the busy runners whose running call started less than BEHIND_MAX_RUN_MS ago and that take one more, the one with
   * the fewest calls behind, and of those the one whose running call started last.
   */
  #runnerToSendBehind(set: RunnerSet): RunnerProcess | null {
    const oldestStart = performance.now() - BEHIND_MAX_RUN_MS;
    let best: RunnerProcess | null = null;
    let bestSlot: RunningSlot | null = null;
    for (const [runner, slot] of set.running) {
      if (slot.startedAt <= oldestStart || !slot.job.pipelinable || !runner.takesJobBehind) continue;
      const better = bestSlot === null || slot.behind.length < bestSlot.behind.length ||
        (slot.behind.length === bestSlot.behind.length && slot.startedAt > bestSlot.startedAt);
      if (!better) continue;
      best = runner;
      bestSlot = slot;
    }
    return best;
  }

  /**
   * Runs `job` on `runner` and, when it is the runner's last, makes the runner idle (or retires it). `turn` is null for
   * a job that starts now; for one sent behind a running job, it resolves when that job is done with the runner, or
   * when the runner gave this one back (see `Turn`), and only once the runner is this job's does its deadline start.
   */
  async #start(set: RunnerSet, runner: RunnerProcess, job: Job, turn: Promise<Turn> | null): Promise<void> {
    let stopReason: StopReason = null;
    const stop = (reason: StopReason) => {
      stopReason ??= reason;
      runner.kill();
    };
    let sent: SentJob<unknown> | null = null;
    const running = job.run(runner, () => stopReason, (justSent) => sent = justSent);
    // Sending cannot fail: dispatch checked that the runner takes the job (`execute` throws only on a busy runner).
    assert(sent !== null, "a job's run sends it before its first await");
    const idlePromise = (sent as SentJob<unknown>).idle;
    const outcome = turn === null ? "go" : await turn;
    if (outcome === "withdrawn") {
      // Given back unstarted (its answer rejects with JobWithdrawnError); the runner goes on with its long call.
      await running;
      set.withdrawn++;
      return this.#putBack(set, job);
    }
    if (outcome === "gone") {
      // The runner is gone: the job fails as never started (its answer rejects with the runner's exit).
      await running;
      return this.#requeue(set, runner, job);
    }
    // The deadline also covers the wait for `idle` after the answer (bounded by the runner's probe timeout).
    const unwatch = this.#deadlines.watch(job.hardDeadlineMs, () => stop("deadline"));
    const onAbort = () => stop("cancelled");
    if (job.signal?.aborted) onAbort();
    job.signal?.addEventListener("abort", onAbort, { once: true });
    let idle = false;
    try {
      if (await running === "not started") return this.#requeue(set, runner, job);
      // The answer is in: a disconnect from here on no longer concerns this call.
      job.signal?.removeEventListener("abort", onAbort);
      // A runner that answered with a time-limit failure is on its way out: never wait for it, never reuse it.
      if (!runner.retiring && !runner.dead && !this.#closed) {
        idle = await idlePromise.then(() => true, () => false);
      }
    } finally {
      unwatch();
      job.signal?.removeEventListener("abort", onAbort);
    }
    this.#finish(set, runner, job, idle);
  }

  /** After `job` is done with `runner`: hands the runner to the job sent behind it, or makes it idle, or retires it. */
  #finish(set: RunnerSet, runner: RunnerProcess, job: Job, idle: boolean): void {
    const slot = set.running.get(runner);
    assert(slot?.job === job, "a runner finishes the job it runs");
    const usable = idle && !runner.dead && !this.#closed && set.all.get(runner) === "busy";
    if (!usable) this.#retire(set, runner);
    const behind = slot.behind.shift();
    if (behind !== undefined) {
      // An unusable runner's next job learns it is gone, requeues, and finishes in turn: so do the rest behind it.
      set.running.set(runner, { job: behind.job, startedAt: performance.now(), behind: slot.behind });
      behind.turn.resolve(usable ? "go" : "gone");
      // Keep the runner's next call behind the one it now runs (the queue may not grow again for a while).
      if (usable) this.#sendBehind(set);
      return;
    }
    set.running.delete(runner);
    if (!usable) return;
    set.all.set(runner, "idle");
    set.idle.push(runner);
    this.#dispatch(set);
  }

  /**
   * Puts back a job whose runner died before starting it (it was sent behind another), ahead of the waiting ones: none
   * of its code ran.
   */
  #requeue(set: RunnerSet, runner: RunnerProcess, job: Job): void {
    this.#finish(set, runner, job, false);
    if (!this.#closed) set.requeued++;
    this.#putBack(set, job);
  }

  /** Queues a job that never started ahead of the waiting ones (it waited longer than they did). */
  #putBack(set: RunnerSet, job: Job): void {
    if (this.#closed) return job.fail(new RunnerPoolFullError("The runner pool is closed"));
    set.queue.unshift(job);
    this.#dispatch(set);
  }

  /**
   * Marks a runner that must get no further call and makes sure it goes: killed, or (`graceful`, an idle runner)
   * asked to exit. Its exit handler removes it and spawns a replacement.
   */
  #retire(set: RunnerSet, runner: RunnerProcess, graceful = false): void {
    if (set.all.has(runner)) set.all.set(runner, "retiring");
    // It takes no further call: its CPU is free for a runner that moves (`#rebalance`).
    this.#serverAffinity?.release(runner.pid);
    const idleIndex = set.idle.indexOf(runner);
    if (idleIndex !== -1) set.idle.splice(idleIndex, 1);
    if (graceful) void runner.close();
    else runner.kill();
  }

  #spawn(set: RunnerSet): RunnerProcess {
    const command = this.#commands[set.kind];
    if (command === null) throw new Error(`Spawning a ${set.kind} runner before its command is known`);
    const runner = new RunnerProcess(
      command,
      this.#socketDir,
      {
        type: "init",
        kind: set.kind,
        location: set.kind === "transaction" ? this.#options.location : null,
        modulesDir: this.#modulesDir,
        allowNet: set.kind === "action",
      },
      (call) => this.#answerCall(call),
      this.#options.onRunnerOutput,
    );
    set.all.set(runner, "starting");
    set.starting++;
    if (set.kind === "transaction") this.#pin(runner);
    let becameReady = false;
    runner.ready.then(
      () => {
        becameReady = true;
        set.starting--;
        set.startFailures = 0;
        if (this.#closed) return runner.kill();
        assertState(set, runner, "starting");
        set.all.set(runner, "idle");
        set.idle.push(runner);
        this.#dispatch(set);
      },
      () => {
        set.starting--;
      },
    );
    void runner.exited.then(() => {
      set.all.delete(runner);
      // Its CPU counts one process fewer before anything is rebalanced or replaced.
      this.#serverAffinity?.release(runner.pid);
      const idleIndex = set.idle.indexOf(runner);
      if (idleIndex !== -1) set.idle.splice(idleIndex, 1);
      if (this.#closed) return;
      runnerRestarts.inc({ kind: set.kind });
      if (!becameReady) set.startFailures++;
      if (set.startFailures >= MAX_START_FAILURES) {
        // Runners cannot start at all (bad command, missing permission): fail fast instead of spinning.
        for (const job of set.queue.splice(0)) {
          job.fail(new Error(`${set.kind} runners fail to start; see the server's stderr`));
        }
      }
      const backoffMs = set.startFailures === 0 ? 0 : Math.min(10_000, 100 * 2 ** set.startFailures);
      set.backoffUntil = performance.now() + backoffMs;
      setTimeout(() => this.#replenish(set), backoffMs);
    });
    return runner;
  }

  /**
   * Gives the server (every thread of this process) a CPU of its own and the transaction runners the others: one runner
   * per other CPU while calls are quick, so that no two processes take turns on a CPU (each switch between processes
   * costs both their caches). A runner beyond those starts only for calls waiting behind one that has run long, on the
   * CPU with the fewest pinned processes (the server's, with two CPUs). Measured on 2 vCPUs against two runners and an
   * unpinned server (scripts/bench/call_path_ab.ts, 20 pairs): queries 1.03× the calls/s at 0.84× the CPU per call,
   * inserts 1.07× at 0.95×; and one runner process fewer under load.
   */
  async #pinServer(affinity: CpuAffinity): Promise<void> {
    if (await affinity.pinServer() === null) return;
    if (this.#closed) {
      await affinity.unpinServer();
      return;
    }
    this.#serverAffinity = affinity;
    const set = this.#sets.transaction;
    set.preferred = Math.max(1, Math.min(set.max, affinity.cpus.length - 1));
  }

  /** Pins a transaction runner to a CPU (best effort) and releases the CPU when it exits. */
  #pin(runner: RunnerProcess): void {
    const pid = runner.pid;
    void this.#affinity.then((affinity) => {
      if (affinity === null) return;
      void affinity.pin(pid);
      void runner.exited.then(() => affinity.release(pid));
    });
  }

  #replenish(set: RunnerSet): void {
    if (this.#closed || this.#commands[set.kind] === null || set.backoffUntil - performance.now() > 1) return;
    while (set.all.size < set.min) this.#spawn(set);
    this.#dispatch(set);
  }

  /**
   * Lets runners beyond each set's warm minimum exit once idle for IDLE_EXIT_MS; they come back on demand. A quiet set
   * whose warm runners served a burst gets a fresh runner, and the used one then exits by the same rule.
   */
  #retireIdleRunners(): void {
    if (this.#closed) return;
    const now = performance.now();
    for (const set of Object.values(this.#sets)) {
      // Least recently used first (dispatch takes from the end), so the busiest runner is the one that stays.
      for (const runner of [...set.idle]) {
        if (set.all.size - countState(set, "retiring") <= set.min) break;
        if (now - runner.idleSince < this.#idleExitMs[set.kind]) continue;
        this.#retire(set, runner, true);
      }
      const live = set.all.size - countState(set, "retiring");
      const quiet = set.queue.length === 0 && set.starting === 0 && set.idle.length === live;
      const used = set.idle.find((runner) =>
        runner.jobsRun >= RECYCLE_AFTER_JOBS && now - runner.idleSince >= this.#idleExitMs[set.kind]
      );
      if (!quiet || live > set.min || used === undefined || this.#commands[set.kind] === null) continue;
      // The used runner leaves as soon as its replacement is ready (if no call took it meanwhile).
      this.#spawn(set).ready.then(() => {
        if (set.all.get(used) === "idle") this.#retire(set, used, true);
      }, () => {});
    }
  }

  async #answerCall(call: RunnerCallMessage): Promise<Omit<RunnerCallResultMessage, "type" | "callId">> {
    try {
      if (call.op === CREATE_TABLE_OP && this.#options.createTable) {
        const { tableName, componentPath } = JSON.parse(call.argsJson) as { tableName: string; componentPath?: string };
        return {
          ok: true,
          resultJson: JSON.stringify(await this.#options.createTable(tableName, componentPath ?? "")),
        };
      }
      const context = this.#contexts.get(call.executionId);
      if (context === undefined) throw new Error(`Call ${call.op} from an execution that is not running`);
      return { ok: true, resultJson: await this.#options.onCall(call.op, call.argsJson, context) };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const data = (error as { data?: JsonValue } | null)?.data;
      return { ok: false, error: data === undefined ? { message } : { message, data } };
    }
  }

  #failureText(error: unknown, stopReason: StopReason, timeLimitMs: number, deadlineMs: number): string {
    if (stopReason === "cancelled") return CANCELLED_TEXT;
    if (stopReason === "deadline") {
      return `Function execution timed out: its runner did not answer within ${deadlineMs} ms and was stopped`;
    }
    if (error instanceof RunnerExitError) {
      const { code, signal, killedByPool } = error.exit;
      if (killedByPool && this.#closed) return "The runner pool was closed during the call";
      if (code === EXIT_OUT_OF_MEMORY || signal === "SIGTRAP") {
        return `JavaScript execution ran out of memory (maximum heap: ${this.#maxHeapMb} MB)`;
      }
      if (code === EXIT_TIME_LIMIT) {
        return `Function execution timed out: user code ran for more than ${timeLimitMs} ms`;
      }
      return `The function's runner process crashed (exit code ${code}${signal ? `, signal ${signal}` : ""})`;
    }
    return `Internal error: ${error instanceof Error ? error.message : String(error)}`;
  }
}

/**
 * Whether a call that ended without a result failed for reasons outside its user code (the scheduler retries those):
 * a runner that crashed, stopped answering or was closed with the pool. Running out of memory or time is the code's.
 */
function isInfrastructureFailure(error: unknown, stopReason: StopReason): boolean {
  if (stopReason === "cancelled") return false;
  if (stopReason === "deadline") return true;
  if (!(error instanceof RunnerExitError)) return true;
  const { code, signal } = error.exit;
  return !(code === EXIT_OUT_OF_MEMORY || signal === "SIGTRAP" || code === EXIT_TIME_LIMIT);
}

function newSet(kind: RunnerKind, min: number, max: number, maxQueued: number): RunnerSet {
  return {
    kind,
    min,
    max,
    preferred: max,
    maxQueued,
    all: new Map(),
    idle: [],
    running: new Map(),
    sentBehind: 0,
    requeued: 0,
    withdrawn: 0,
    starting: 0,
    queue: [],
    startFailures: 0,
    backoffUntil: 0,
  };
}

function busyCount(set: RunnerSet): number {
  return countState(set, "busy");
}

function countState(set: RunnerSet, state: RunnerState): number {
  return [...set.all.values()].filter((each) => each === state).length;
}

/** An invariant of the pool's bookkeeping (a bug when it fails, never user input). */
function assert(condition: boolean, invariant: string): asserts condition {
  if (!condition) throw new Error(`Runner pool invariant broken: ${invariant}`);
}

/** The pool's bookkeeping invariant: `runner` is in `expected` state (a bug otherwise, never user input). */
function assertState(set: RunnerSet, runner: RunnerProcess, expected: RunnerState): void {
  const state = set.all.get(runner) ?? "dead";
  if (state !== expected) throw new Error(`${set.kind} runner ${runner.id} is ${state}, expected ${expected}`);
}

function toExecutionResult(message: RunnerResultMessage): ExecutionResult {
  const result: ExecutionResult = {
    ok: message.ok,
    logLines: message.logLines,
    executionTimeMs: message.executionTimeMs,
  };
  if (message.resultJson !== undefined) result.resultJson = message.resultJson;
  if (message.errorMessage !== undefined) result.errorMessage = message.errorMessage;
  if (message.errorData !== undefined) result.errorData = message.errorData;
  if (message.outcome !== undefined) result.outcome = message.outcome;
  if (message.logSources !== undefined) result.logSources = message.logSources;
  return result;
}
