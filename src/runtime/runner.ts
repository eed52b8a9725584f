/**
 * A runner process's main thread: owns the database reader and the transaction of the execution in progress,
 * answers the worker's syscalls through the synchronous channel, relays an action's calls to the server, and
 * enforces the user-code time limit by failing the call and exiting (a busy worker cannot be stopped any other way).
 */
import {
  type Catalog,
  DatabaseSyscalls,
  parseSyscallArgs,
  type TransactionHost,
  type TransactionSyscalls,
} from "../database/mod.ts";
import { DenvexError, identityFailureOf, syscallFailureOf } from "../errors/mod.ts";
import type { JsonValue, ValidatorJson } from "../values/mod.ts";
import {
  CREATE_TABLE_OP,
  EXIT_LEFTOVER_WORK,
  EXIT_TIME_LIMIT,
  type FromRunnerMessage,
  MAX_CALLS_BEHIND,
  type RunnerAnalysisMessage,
  type RunnerAnalyzeMessage,
  type RunnerCallResultMessage,
  type RunnerExecuteMessage,
  type RunnerInitMessage,
  type RunnerResultMessage,
  type ToRunnerMessage,
} from "./runner_protocol.ts";
import { decodeRequest, errorResponse, okResponse } from "./sync_channel.ts";
import { TransactionSource } from "./transaction_source.ts";
import { UserWorker } from "./user_worker.ts";
import { type CurrentRun, type RunStart, startRun } from "./current_run.ts";
import { DeploymentUrls } from "./deployment_urls.ts";
import { OwnCalls } from "./own_calls.ts";
import { validateConvexJson } from "./validation.ts";
import { encodeStreamBatch, firstBatchSize } from "./worker/query_streams.ts";
import { BATCH_OP, decodeParts, encodeParts, MAX_BATCH_REQUESTS } from "./worker/syscall_batch.ts";
import {
  type FromWorkerMessage,
  NESTED_BEGIN_OP,
  NESTED_END_OP,
  QUERY_STREAM_BATCH_OP,
  QUERY_STREAM_FIRST_OP,
  RESULT_OP,
  VALIDATE_OP,
  type WorkerAnalysisMessage,
  type WorkerResultMessage,
} from "./worker/protocol.ts";

/**
 * How long the worker may take to answer the probe after a call (a message round trip, normally well under 1 ms)
 * before the runner assumes leftover work starves its event loop and retires. Generous: a false alarm costs a runner
 * restart, not a failed call.
 */
const PROBE_TIMEOUT_MS = 500;
/**
 * Longest an answer waits for its worker to settle so as to go out marked idle, should the channel's blocking wait
 * (which normally decides first, within 2 ms) already be over when the wait starts; checked by the watchdog.
 */
const SETTLE_SOON_MS = 20;
/** How often the time limit is checked. */
const WATCHDOG_INTERVAL_MS = 20;

/** See the module comment. */
export class Runner {
  readonly #init: RunnerInitMessage;
  readonly #send: (message: FromRunnerMessage) => Promise<void>;
  readonly #transactions: TransactionSource | null;
  /** Syscalls of the layers above (the scheduler's, storage's), run against the execution's transaction. */
  readonly #extensionSyscalls: TransactionSyscalls;
  #worker: UserWorker | null = null;
  /** The one deployment folder `#worker` has loaded modules of (a worker never serves two deployments). */
  #workerDeployment: string | null = null;
  #current: CurrentRun | null = null;
  readonly #deploymentUrls: DeploymentUrls;
  readonly #ownCalls: OwnCalls;
  #exiting = false;
  /** True from receiving an execute/analyze until the runner has told the server it is idle again. */
  #busy = false;
  /** The time-limit and probe-deadline check (see `start`); null before `start` and after `stop`. */
  #watchdog: ReturnType<typeof setInterval> | null = null;
  /** The worker the current run's execute message went to (it then answers a probe by itself). */
  #executedOn: UserWorker | null = null;
  /** Executions the server sent behind the current run, in order (pipelined, pool.ts): each starts once idle. */
  #behind: RunnerExecuteMessage[] = [];
  #channelRequests = 0;

  constructor(
    init: RunnerInitMessage,
    send: (message: FromRunnerMessage) => Promise<void>,
    extensionSyscalls: TransactionSyscalls = {},
  ) {
    this.#init = init;
    this.#send = send;
    this.#extensionSyscalls = extensionSyscalls;
    this.#deploymentUrls = new DeploymentUrls(init.modulesDir);
    this.#ownCalls = new OwnCalls(send);
    this.#transactions = init.location === null ? null : new TransactionSource(init.location);
  }

  /** Starts the worker and the watchdog. */
  async start(): Promise<void> {
    this.#worker = await this.#startWorker();
    this.#startWatchdog();
  }

  /**
   * The watchdog checks the running call's time limit and the worker's probe deadlines every WATCHDOG_INTERVAL_MS. It
   * stops itself once the runner is idle with nothing to watch, and the next call starts it again: an idle runner
   * ticking 50 times a second cost ~4 ms of CPU per second each (issue 14). Under load it never stops.
   */
  #startWatchdog(): void {
    if (this.#watchdog !== null) return;
    this.#watchdog = setInterval(() => {
      this.#checkTimeLimit();
      this.#worker?.checkProbeDeadline(performance.now());
      if (!this.#busy && this.#current === null && !(this.#worker?.awaitingAnswer ?? false)) this.#stopWatchdog();
    }, WATCHDOG_INTERVAL_MS);
  }

  #stopWatchdog(): void {
    if (this.#watchdog !== null) clearInterval(this.#watchdog);
    this.#watchdog = null;
  }

  /**
   * Stops the watchdog and ends an idle worker. A runner process never calls it (it ends by exiting); tests and
   * benchmarks that drive a Runner in their own process do.
   */
  stop(): void {
    this.#stopWatchdog();
    this.#dropWorker();
  }

  /**
   * How many requests the worker has sent over the channel for executions (syscalls, batches, results; not the
   * requests it parks with between calls). Each is a crossing between the threads; tests and benchmarks that drive a
   * runner in their own process read it.
   */
  get channelRequests(): number {
    return this.#channelRequests;
  }

  /** Handles one message from the server. */
  handle(message: ToRunnerMessage): void {
    if (
      message.type === "execute" && this.#busy && this.#behind.length < MAX_CALLS_BEHIND &&
      this.#init.kind === "transaction"
    ) {
      this.#behind.push(message);
      return;
    }
    if (message.type === "withdraw") {
      // Not started yet: give it back (sent before this run's `idle`, so the server learns it before it would hand
      // this runner to that call). Started or done: nothing to say, its answer comes as usual.
      const index = this.#behind.findIndex((behind) => behind.executionId === message.executionId);
      if (index === -1) return;
      this.#behind.splice(index, 1);
      void this.#send({ type: "withdrawn", executionId: message.executionId }).catch(() => {});
      return;
    }
    if ((message.type === "execute" || message.type === "analyze") && this.#busy) {
      // The pool never does this; refuse rather than mix two executions' syscalls.
      throw new Error(`Runner received ${message.type} ${message.executionId} while busy`);
    }
    switch (message.type) {
      case "execute":
        void this.#execute(message);
        return;
      case "analyze":
        void this.#analyze(message);
        return;
      case "callResult":
        this.#callResult(message);
        return;
      case "httpBodyChunk":
        // Bytes cross to the worker raw (transferred); only the process boundary needs base64.
        this.#worker?.post({
          type: "httpBodyChunk",
          executionId: message.executionId,
          data: message.dataBase64 === null ? null : Uint8Array.fromBase64(message.dataBase64),
          ...(message.error === undefined ? {} : { error: message.error }),
        });
        return;
      case "httpResponseAck":
        this.#worker?.post(message);
        return;
      case "init":
        throw new Error("Runner initialized twice");
    }
  }

  #startWorker(): Promise<UserWorker> {
    return UserWorker.start({
      modulesDir: this.#init.modulesDir,
      allowNet: this.#init.allowNet,
      onMessage: (message) => this.#workerMessage(message),
      onFatalError: (message) => {
        console.error(`denvex runner: ${message}`);
        Deno.exit(1);
      },
      handleSyscall: (request) => this.#syscall(request),
      parkBetweenCalls: this.#init.kind === "transaction",
    });
  }

  #workerMessage(message: FromWorkerMessage): void {
    const run = this.#current;
    switch (message.type) {
      case "result":
      case "analysis":
        if (run?.executionId === message.executionId) run.finish(message);
        return;
      case "call":
        // Only actions talk to the server; user code can reach postMessage, so check rather than trust.
        if (run?.executionId !== message.executionId || !run.isAction) return;
        if (message.op === "1.0/getUserIdentity") {
          // An HTTP action's Bearer token that did not verify: getUserIdentity throws why (errors/identity_failure.ts).
          const failure = identityFailureOf(run.identityJson);
          this.#worker?.post(
            failure === null
              ? { type: "callResult", callId: message.callId, ok: true, resultJson: run.identityJson ?? "null" }
              : { type: "callResult", callId: message.callId, ok: false, error: { message: failure.message } },
          );
          return;
        }
        void this.#send(message);
        return;
      case "httpBodyPull":
      case "httpResponseHead":
        if (run?.executionId === message.executionId && run.isAction) void this.#send(message);
        return;
      case "httpResponseChunk":
        if (run?.executionId !== message.executionId || !run.isAction) return;
        void this.#send({
          type: "httpResponseChunk",
          executionId: run.executionId,
          dataBase64: message.data.toBase64(),
        });
        return;
      case "ready":
        return;
    }
  }

  #callResult(message: RunnerCallResultMessage): void {
    if (!this.#ownCalls.settle(message)) this.#worker?.post({ ...message, type: "callResult" });
  }

  /** Answers one channel request from the worker with the current transaction. */
  async #syscall(request: string): Promise<string> {
    this.#channelRequests++;
    const { op, componentPath, argsJson } = decodeRequest(request);
    if (op === RESULT_OP) {
      this.#workerMessage(JSON.parse(argsJson) as WorkerResultMessage);
      if (this.#init.kind !== "transaction") {
        // No request follows soon (an action's worker settles by message): the channel should not wait for one.
        this.#worker?.parkChannel();
        return okResponse("null");
      }
      // The result comes one-way (this answer is dropped). A parked worker's IDLE_OP follows within microseconds,
      // and the channel picks it up blocked on the futex rather than through the event loop: the answer to the server
      // waits for it, to go out marked idle (see #answerIdle), or for that wait to end without it.
      return okResponse("null");
    }
    if (op === BATCH_OP) return await this.#syscallBatch(argsJson);
    return await this.#transactionSyscall(op, componentPath, argsJson);
  }

  /**
   * Runs a batch of the worker's requests (worker/syscall_batch.ts) one after another, in order, each as if it had come
   * alone, and answers all their responses together. A batch holds transaction syscalls only.
   */
  async #syscallBatch(argsJson: string): Promise<string> {
    let requests: string[];
    try {
      requests = decodeParts(argsJson);
    } catch (error) {
      return errorResponse(error instanceof Error ? error.message : String(error));
    }
    if (requests.length > MAX_BATCH_REQUESTS) {
      return errorResponse(`A syscall batch holds at most ${MAX_BATCH_REQUESTS}`);
    }
    const responses: string[] = [];
    // The batch's reads share one read transaction: a batch is short, and its reads are most of its cost.
    const release = this.#transactions?.holdReads() ?? null;
    try {
      for (const request of requests) {
        const { op, componentPath, argsJson: opArgsJson } = decodeRequest(request);
        responses.push(
          op.startsWith("$")
            ? errorResponse(`Syscall ${op} cannot be batched`)
            : await this.#transactionSyscall(op, componentPath, opArgsJson),
        );
      }
    } finally {
      release?.();
    }
    return okResponse(encodeParts(responses));
  }

  /** Answers one of the worker's transaction syscalls (not `RESULT_OP`, not a batch). */
  async #transactionSyscall(op: string, componentPath: string, argsJson: string): Promise<string> {
    const run = this.#current;
    const host = run?.host;
    if (!run || !host) return errorResponse(`Syscall ${op} has no transaction`);
    // Also checked here, not only by the watchdog: a worker that keeps issuing syscalls keeps this thread in the
    // channel (blocking waits, microtasks) and its timers may not run until the execution ends.
    this.#checkTimeLimit();
    run.syscallStartedAt = performance.now();
    try {
      switch (op) {
        case NESTED_BEGIN_OP:
          host.beginNested();
          return okResponse("null");
        case NESTED_END_OP:
          host.endNested(argsJson === "true");
          return okResponse("null");
        case QUERY_STREAM_FIRST_OP: {
          const opened = JSON.parse(await host.syscall("1.0/queryStream", argsJson, componentPath)) as {
            queryId: number;
          };
          const batchSize = firstBatchSize(JSON.parse(argsJson));
          const batch = await host.nextDocuments(opened.queryId, batchSize, componentPath);
          return okResponse(encodeStreamBatch(opened.queryId, batch));
        }
        case QUERY_STREAM_BATCH_OP: {
          const { queryId, batchSize } = JSON.parse(argsJson) as { queryId: number; batchSize: number };
          return okResponse(encodeStreamBatch(queryId, await host.nextDocuments(queryId, batchSize, componentPath)));
        }
        case VALIDATE_OP: {
          const { validator, value } = JSON.parse(argsJson) as { validator: ValidatorJson; value: JsonValue };
          const catalog = this.#transactions?.catalog ?? null;
          return okResponse(JSON.stringify(validateConvexJson(validator, value, catalog, componentPath)));
        }
        default: {
          const extension = Object.hasOwn(this.#extensionSyscalls, op) ? this.#extensionSyscalls[op] : undefined;
          if (extension && host instanceof DatabaseSyscalls) {
            const call = (callOp: string, callArgs: string) => this.#ownCalls.call(run.executionId, callOp, callArgs);
            // Scheduler and storage syscalls resolve their tables in the calling function's namespace.
            host.transaction.componentPath = componentPath;
            const context = host.syscallContext({ call, cloudUrl: run.cloudUrl });
            return okResponse(await extension(context, parseSyscallArgs(argsJson)));
          }
          return okResponse(await host.syscall(op, argsJson, componentPath));
        }
      }
    } catch (error) {
      const { message, data } = syscallFailureOf(error);
      return errorResponse(message, data);
    } finally {
      run.syscallMs += performance.now() - run.syscallStartedAt;
      run.syscallStartedAt = null;
    }
  }

  /**
   * The worker for `deploymentDir`: a worker serves one deployment only, so module state of one deployment never
   * meets another's. The old worker is idle here (its probe answered), so terminate() does stop it. Synchronous while
   * the worker stays.
   */
  #workerFor(deploymentDir: string): UserWorker | Promise<UserWorker> {
    if (this.#worker !== null && this.#workerDeployment === deploymentDir) return this.#worker;
    this.#dropWorker();
    this.#workerDeployment = deploymentDir;
    return this.#startWorker().then((worker) => (this.#worker = worker));
  }

  /**
   * Runs `attempt` on the deployment's worker; if that worker refuses because its globals could not be restored after
   * an earlier call (`workerPoisoned`), replaces it and runs `attempt` once more on the fresh one.
   */
  async #onCleanWorker(
    deploymentDir: string,
    attempt: (worker: UserWorker) => Promise<WorkerResultMessage | WorkerAnalysisMessage>,
  ): Promise<WorkerResultMessage | WorkerAnalysisMessage> {
    const first = this.#workerFor(deploymentDir);
    const result = await attempt(first instanceof Promise ? await first : first);
    if (result.workerPoisoned !== true) return result;
    this.#dropWorker();
    return await attempt(await this.#workerFor(deploymentDir));
  }

  #dropWorker(): void {
    this.#worker?.terminate();
    this.#worker = null;
    this.#workerDeployment = null;
  }

  /**
   * Between the answer and the next call: probe the worker (it answers, then restores its globals before handling
   * anything else). A worker that does not answer is kept busy by work the call left behind, and cannot be stopped:
   * the runner exits, and the server, which waits for `idle` before sending another call, replaces it.
   */
  async #becomeIdle(): Promise<void> {
    const worker = this.#worker;
    // A worker that ran an execution answers a probe by itself (SETTLED_PROBE_ID): no probe message needed.
    const selfProbed = worker !== null && this.#executedOn === worker;
    this.#executedOn = null;
    if (worker !== null && !this.#exiting) {
      const outcome = selfProbed ? await worker.settled(PROBE_TIMEOUT_MS) : await worker.probe(PROBE_TIMEOUT_MS);
      if (outcome === "stalled") {
        this.#exiting = true;
        Deno.exit(EXIT_LEFTOVER_WORK);
      }
    }
    if (this.#exiting) return;
    this.#becameIdle({ type: "idle" });
  }

  /**
   * Sends `idle` (or an answer that stands for it) and starts the first execution sent behind, if any. Not awaited: the
   * frame is queued in order, ahead of anything the next execution sends.
   */
  #becameIdle(message: FromRunnerMessage): void {
    this.#busy = false;
    this.#worker?.parkChannel(true);
    void this.#send(message).catch(() => {});
    const next = this.#behind.shift();
    if (next !== undefined) this.handle(next);
  }

  #execute(message: RunnerExecuteMessage): Promise<void> {
    return this.#serve(() => this.#executeNow(message));
  }

  /** Runs one execution or analysis, answers the server, and becomes idle. */
  async #serve(run: () => Promise<FromRunnerMessage>): Promise<void> {
    this.#busy = true;
    this.#startWatchdog();
    const answer = await run();
    // Late messages of the finished run are dropped from here on.
    this.#current = null;
    if (await this.#answerIdle(answer)) return;
    await this.#send(answer);
    await this.#becomeIdle();
  }

  /**
   * Sends a query's or mutation's answer marked idle (RunnerResultMessage.idle) when the worker that ran it settles
   * while the channel still blocks for it, microseconds after its result: one frame instead of the answer and then
   * `idle`. Returns false, having sent nothing, when the worker is not that quick (work the call left behind, or a
   * pause); the answer then goes alone, at once, and `#becomeIdle` waits for the worker as before.
   */
  async #answerIdle(answer: FromRunnerMessage): Promise<boolean> {
    const worker = this.#worker;
    const eligible = answer.type === "result" && answer.retiring !== true && !this.#exiting &&
      this.#init.kind === "transaction" && worker !== null && this.#executedOn === worker;
    if (!eligible || !await worker.settledSoon(SETTLE_SOON_MS) || this.#exiting) return false;
    this.#executedOn = null;
    this.#becameIdle({ ...answer, idle: true });
    return true;
  }

  /**
   * Starts `start` on the deployment's clean worker (see `#onCleanWorker`) as the current run, posts its message with
   * `post`, and resolves with what the worker answers.
   */
  #runOnWorker(
    deploymentDir: string,
    start: Omit<RunStart, "finish">,
    post: (worker: UserWorker) => void,
  ): Promise<WorkerResultMessage | WorkerAnalysisMessage> {
    return this.#onCleanWorker(
      deploymentDir,
      (worker) =>
        new Promise<WorkerResultMessage | WorkerAnalysisMessage>((finish) => {
          this.#current = startRun({ ...start, finish });
          post(worker);
        }),
    );
  }

  async #executeNow(message: RunnerExecuteMessage): Promise<RunnerResultMessage> {
    const started = performance.now();
    const { executionId, udfType } = message;
    let host: TransactionHost | null = null;
    try {
      const deploymentUrl = this.#deploymentUrls.resolve(message.deploymentDir);
      if (udfType !== "action") {
        if (this.#transactions === null || message.snapshotTs === null) {
          throw new Error(`A ${udfType} needs a transaction runner and a snapshot`);
        }
        const opened = this.#transactions.open({
          catalog: message.catalog,
          catalogVersion: message.catalogVersion,
          snapshotTs: BigInt(message.snapshotTs),
          udfType,
          identityJson: message.identityJson,
          journal: message.journal ?? null,
          createTable: async (tableName: string, componentPath = "") =>
            JSON.parse(
              await this.#ownCalls.call(executionId, CREATE_TABLE_OP, JSON.stringify({ tableName, componentPath })),
            ) as Catalog,
        });
        host = opened instanceof Promise ? await opened : opened;
        if (host instanceof DatabaseSyscalls) {
          host.serverCall = (op, args) => this.#ownCalls.call(executionId, op, args);
        }
      }
      const start = {
        executionId,
        host,
        identityJson: message.identityJson,
        isAction: udfType === "action",
        timeLimitMs: message.timeLimitMs,
        cloudUrl: message.env.CONVEX_CLOUD_URL ?? "",
        excludesSyscalls: udfType !== "action",
        timeoutMessage: (): FromRunnerMessage => ({
          type: "result",
          executionId,
          ok: false,
          errorMessage: timeoutText(udfType, message.timeLimitMs),
          logLines: [],
          executionTimeMs: performance.now() - started,
          retiring: true,
        }),
      };
      const result = await this.#runOnWorker(message.deploymentDir, start, (worker) => {
        this.#executedOn = worker;
        worker.post({
          type: "execute",
          executionId,
          udfType,
          deploymentUrl,
          ...(message.componentPath ? { componentPath: message.componentPath } : {}),
          modulePath: message.modulePath,
          exportName: message.exportName,
          argsJson: message.argsJson,
          requestId: message.requestId,
          env: message.env,
          ...(message.componentEnvs === undefined ? {} : { componentEnvs: message.componentEnvs }),
          nowMs: Date.now(),
          randomSeed: crypto.getRandomValues(new Uint32Array(1))[0],
          ...(message.http === undefined ? {} : { http: message.http }),
          metadata: message.metadata,
        });
        // Queries and mutations talk to the transaction at once; an action's main thread must stay free for its calls.
        if (udfType !== "action") worker.expectSyscalls();
      }) as WorkerResultMessage;
      this.#current = null;
      return {
        type: "result",
        executionId,
        ok: result.ok,
        ...(result.ok ? { resultJson: result.resultJson } : { errorMessage: result.errorMessage }),
        ...(result.errorData === undefined ? {} : { errorData: result.errorData }),
        logLines: result.logLines,
        ...(result.logSources === undefined ? {} : { logSources: result.logSources }),
        ...(result.httpResponse === undefined ? {} : { httpResponse: result.httpResponse }),
        ...(host !== null ? { outcome: host.outcome() } : {}),
        executionTimeMs: performance.now() - started,
      };
    } catch (error) {
      return {
        type: "result",
        executionId,
        ok: false,
        // Our own errors (e.g. the database unavailable while a fresh runner connects) say what they are.
        errorMessage: error instanceof DenvexError
          ? error.message
          : `Internal error: ${error instanceof Error ? error.message : String(error)}`,
        logLines: [],
        executionTimeMs: performance.now() - started,
      };
    }
  }

  #analyze(message: RunnerAnalyzeMessage): Promise<void> {
    return this.#serve(() => this.#analyzeNow(message));
  }

  async #analyzeNow(message: RunnerAnalyzeMessage): Promise<RunnerAnalysisMessage> {
    const { executionId } = message;
    try {
      const deploymentUrl = this.#deploymentUrls.resolve(message.deploymentDir);
      const start = {
        executionId,
        host: null,
        identityJson: null,
        isAction: false,
        timeLimitMs: message.timeLimitMs,
        cloudUrl: "",
        excludesSyscalls: false,
        timeoutMessage: (): FromRunnerMessage => ({
          type: "analysis",
          executionId,
          ok: false,
          errorMessage: `Analysis timed out: loading the modules took longer than ${message.timeLimitMs} ms`,
          retiring: true,
        }),
      };
      const result = await this.#runOnWorker(message.deploymentDir, start, (worker) =>
        worker.post({
          type: "analyze",
          executionId,
          deploymentUrl,
          ...(message.componentPath ? { componentPath: message.componentPath } : {}),
          modulePaths: message.modulePaths,
          env: message.env,
        })) as WorkerAnalysisMessage;
      return { ...result, type: "analysis" };
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      return { type: "analysis", executionId, ok: false, errorMessage: text };
    }
  }

  #checkTimeLimit(): void {
    const run = this.#current;
    if (run === null || this.#exiting) return;
    const now = performance.now();
    const inSyscallMs = run.syscallStartedAt === null ? 0 : now - run.syscallStartedAt;
    const userMs = now - run.startedAt - (run.excludesSyscalls ? run.syscallMs + inSyscallMs : 0);
    if (userMs <= run.timeLimitMs) return;
    // The worker may be spinning and cannot be stopped: answer, then end the process (and the worker with it).
    this.#exiting = true;
    const exit = () => Deno.exit(EXIT_TIME_LIMIT);
    this.#send(run.timeoutMessage()).then(exit, exit);
  }
}

function timeoutText(udfType: string, limitMs: number): string {
  // Actions: Convex's own text (clients and logs match on it), as node actions say it (node/pool.ts).
  if (udfType === "action") {
    return `Function execution timed out (maximum duration: ${
      limitMs % 1000 === 0 ? `${limitMs / 1000}s` : `${limitMs}ms`
    })`;
  }
  const limit = limitMs % 1000 === 0 ? `${limitMs / 1000} s` : `${limitMs} ms`;
  return `Function execution timed out: user code ran for more than ${limit}`;
}
