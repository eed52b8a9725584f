/**
 * The worker that runs user code, inside a runner process. It starts with no permissions but reading the modules
 * folder, sets up the globals pushed bundles expect (convex-compat.md §4.9) before any user module loads, then runs
 * one execution or analysis at a time on request of the runner's main thread (protocol.ts).
 */
import "./net_guard.ts"; // First: installs the network guard before any other module captures fetch & co.
import { AsyncLocalStorage, AsyncResource } from "node:async_hooks";
import { decodeResponse, encodeRequest, SyncChannelClient } from "../sync_channel.ts";
import { analyzeDeployment } from "./analyze.ts";
import { installConsole, LogSink, setLogSink } from "./console_capture.ts";
import { enterActionMode, enterDeterministicMode, installDeterminismShims, suspendDeterminism } from "./determinism.ts";
import { dropCallResources, installCallResources } from "./call_resources.ts";
import { installShapeGuards, restoreGlobalSnapshot, takeGlobalSnapshot } from "./global_snapshot.ts";
import { types as nodeTypes } from "node:util";
import { setImmediate } from "node:timers";
import { disableWorkers } from "./no_workers.ts";
import { formatUncaught, syscallFailure } from "./error_format.ts";
import {
  componentModulesUrl,
  currentExecution,
  currentFrame,
  functionName,
  runInFrame,
  SerialQueue,
  setCurrentExecution,
} from "./execution_state.ts";
import type { Frame } from "./execution_state.ts";
import { checkKind, freshImportCount, loadFunction, loadModule, type RegisteredFunction } from "./functions.ts";
import { inspect } from "./inspect.ts";
import { receiveHttpMessage, runHttpAction } from "./http_action.ts";
import {
  type CallResultMessage,
  type FromWorkerMessage,
  IDLE_OP,
  RESULT_OP,
  SETTLED_PROBE_ID,
  type ToWorkerMessage,
  type WorkerAnalysisMessage,
  type WorkerAnalyzeMessage,
  type WorkerExecuteMessage,
  type WorkerResultMessage,
} from "./protocol.ts";
import { type ConvexGlobal, SyscallRouter } from "./syscall_router.ts";
import type { JsonValue } from "../../values/mod.ts";
import type { LogLineSource } from "../types.ts";

const apply = Reflect.apply;
const regExpExec = RegExp.prototype.exec;
/** Matches the empty string with no group: a match of it leaves every legacy static empty. */
const EMPTY_PATTERN = /(?:)/;

/** Most action calls to the server in flight at once. */
const MAX_PENDING_CALLS = 1_000;
/** Results up to this size (UTF-16 units of JSON) go back over the channel; bigger ones by postMessage. */
const MAX_CHANNEL_RESULT_CHARS = 4 * 1024 * 1024;

// Captured before user code can shadow them.
const workerScope = globalThis as unknown as {
  postMessage(message: FromWorkerMessage, transfer?: Transferable[]): void;
};
const postMessage = workerScope.postMessage.bind(globalThis);
/** Whether the execution in progress has posted a message (its result must then follow them, see `deliver`). */
let postedDuringRun = false;
const post = (message: FromWorkerMessage, transfer?: Transferable[]): void => {
  postedDuringRun = true;
  postMessage(message, transfer);
};
const addListener = globalThis.addEventListener.bind(globalThis);

/** The env of the run's own component (and of an analysis); other components' envs come with the run (`envs`). */
const env: Record<string, string> = {};
const pendingCalls = new Map<number, { resolve(json: string): void; reject(error: Error): void }>();
let nextCallId = 1;
let currentExecutionId = "";
let router: SyscallRouter | null = null;
let channel: SyncChannelClient | null = null;
let currentSink: LogSink | null = null;
/** Set when the globals could not be restored after a call: no user code runs here again (see `workerPoisoned`). */
let poisoned = false;
/** Whether user code may have run since the last restore of the global snapshot. */
let globalsDirty = false;
/** Whether this worker waits for its next call on the channel (see `IDLE_OP`); set by `init`. */
let parkBetweenCalls = false;
/** Messages received from the runner so far: it compares them to those it sent (see `IDLE_OP`). */
let messagesReceived = 0;
const POISONED = { ok: false, errorMessage: "The worker's globals could not be restored", workerPoisoned: true };

/**
 * The self-probe after an execution, run as an immediate (a task of the event loop) once the execution's leftover
 * microtasks have run: a worker they keep busy never gets there, and the runner retires it, as for a probe. Not a
 * message to ourselves on a MessageChannel: in a busy runner the message (its port operations, the event object and
 * its dispatch) cost ~17 µs of the worker's time per call (issue 14); the immediate is the same kind of task for less.
 * Node's `setImmediate`, imported: user code cannot swap it.
 */
function answerSelfProbe(): void {
  if (parkBetweenCalls) return park(true);
  postMessage({ type: "probeAck", probeId: SETTLED_PROBE_ID });
  restoreGlobals();
}

function restoreGlobals(): void {
  globalsDirty = false;
  if (!restoreGlobalSnapshot()) poisoned = true;
}

/**
 * Waits, blocked on the channel, for the runner's next instruction (see `IDLE_OP`): `settled` tells the runner that the
 * execution before left no work behind. Called from a task of the event loop, never from inside an execution.
 */
function park(settled: boolean): void {
  const request = encodeRequest(IDLE_OP, `[${settled},${messagesReceived}]`);
  const response = decodeResponse(requireChannel().call(request));
  // Before anything else runs: what the finished call changed never reaches the next one. Done after the answer
  // rather than before it, so the runner learns at once that this worker is free.
  if (globalsDirty) restoreGlobals();
  if (response.ok && response.resultJson !== "null") void handle(JSON.parse(response.resultJson) as ToWorkerMessage);
}

function requireChannel(): SyncChannelClient {
  if (channel === null) throw new Error("The worker has no channel");
  return channel;
}

installGlobals();
addListener("message", (event: Event) => {
  messagesReceived++;
  void handle((event as MessageEvent<ToWorkerMessage>).data);
});
// Last, once everything of ours is in place: what user code changes from here on is undone after each call.
takeGlobalSnapshot();

function installGlobals(): void {
  installConsole();
  installCallResources();
  installDeterminismShims();
  // The idle state the snapshot records is the one every call ends in (endRun), so a restore after a call that
  // changed nothing finds nothing to put back.
  enterActionMode();
  disableWorkers();
  const define = (name: string, value: unknown) =>
    Object.defineProperty(globalThis, name, { value, writable: true, configurable: true });
  // Bundles read `process.env.X` (even at import time); only the variables of the running function's component exist.
  define("process", { env: componentEnvProxy() });
  define("AsyncLocalStorage", AsyncLocalStorage);
  define("AsyncResource", AsyncResource);
  const convex: ConvexGlobal = {
    syscall: (op, argsJson) => requireRouter().syscall(op, argsJson),
    asyncSyscall: (op, argsJson) => requireRouter().asyncSyscall(op, argsJson),
    jsSyscall: (op, args) => requireRouter().jsSyscall(op, args),
  };
  Object.defineProperty(globalThis, "Convex", { value: Object.freeze(convex), writable: false, configurable: false });
  // User code must not talk to the runner directly or end the worker: a worker that ends itself (close(),
  // Deno.exit()) leaves no trace the runner could notice, and its call would hang until the time limit.
  for (const name of ["postMessage", "onmessage", "close"]) define(name, undefined);
  Object.defineProperty(Deno, "exit", {
    value: () => {
      throw new Error("Deno.exit() is not allowed in Convex functions");
    },
  });
  // The runner's standard streams need no permission, and its stderr is the server's (its log): console output
  // travels with the result as log lines instead (console_capture.ts), so user code gets no handle on them.
  for (const name of ["stdin", "stdout", "stderr"]) {
    Object.defineProperty(Deno, name, {
      get: () => {
        throw new Error(`Deno.${name} is not available in Convex functions (console output is captured as log lines)`);
      },
      configurable: true,
    });
  }
  // Deno's internals (`Deno[Deno.internal]`: core ops, webidl helpers) are not for user code, and they define
  // properties with functions the shape guards cannot see (global_snapshot.ts).
  Reflect.deleteProperty(Deno, (Deno as unknown as { internal: symbol }).internal);
  // A compiled binary's runners share its V8 flags, `--expose-gc` included (src/server/launcher.ts): not for user code.
  Reflect.deleteProperty(globalThis, "gc");
  // Last: what installGlobals itself defines is no change of user code's.
  installShapeGuards(nodeTypes.isProxy);
  // A stray rejection or timer error in user code must not kill the worker: log it on the running execution.
  addListener("unhandledrejection", (event: Event) => {
    event.preventDefault();
    currentSink?.add("ERROR", `Unhandled promise rejection: ${inspect((event as PromiseRejectionEvent).reason)}`);
  });
  addListener("error", (event: Event) => {
    event.preventDefault();
    currentSink?.add(
      "ERROR",
      `Uncaught exception: ${inspect((event as ErrorEvent).error ?? (event as ErrorEvent).message)}`,
    );
  });
}

/**
 * `process.env` as a view of the env of the component whose code is running (the frame's, tracked across awaits), so
 * a nested call into a component sees that component's variables and its caller's stay out of its reach.
 */
function componentEnvProxy(): Record<string, string> {
  const active = (): Record<string, string> => {
    const frame = currentFrame();
    const execution = currentExecution();
    if (frame === null || execution === null) return env;
    let found = execution.envs.get(frame.componentPath);
    if (found === undefined) execution.envs.set(frame.componentPath, found = systemEnv(env));
    return found;
  };
  return new Proxy({} as Record<string, string>, {
    get: (_target, key) => typeof key === "string" && Object.hasOwn(active(), key) ? active()[key] : undefined,
    set: (_target, key, value) => {
      if (typeof key !== "string") return false;
      active()[key] = String(value);
      return true;
    },
    has: (_target, key) => typeof key === "string" && Object.hasOwn(active(), key),
    deleteProperty: (_target, key) => typeof key === "string" && delete active()[key],
    ownKeys: () => Object.keys(active()),
    getOwnPropertyDescriptor: (_target, key) =>
      typeof key === "string" && Object.hasOwn(active(), key)
        ? { value: active()[key], writable: true, enumerable: true, configurable: true }
        : undefined,
  });
}

/** Variables every component sees, whatever its parent bound: where the deployment is reached. */
const SYSTEM_ENV_VARS = ["CONVEX_CLOUD_URL", "CONVEX_SITE_URL"];

/** The system variables of `runEnv` (the env of a component the run brought no variables for). */
function systemEnv(runEnv: Record<string, string>): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const name of SYSTEM_ENV_VARS) if (Object.hasOwn(runEnv, name)) picked[name] = runEnv[name];
  return picked;
}

function requireRouter(): SyscallRouter {
  if (router === null) throw new Error("The Convex runtime is not initialized");
  return router;
}

async function handle(message: ToWorkerMessage): Promise<void> {
  switch (message.type) {
    case "init":
      channel = new SyncChannelClient(message.channel);
      router = new SyscallRouter(channel, serverCall);
      parkBetweenCalls = message.parkBetweenCalls === true;
      post({ type: "ready" });
      if (parkBetweenCalls) park(false);
      return;
    case "execute":
      if (poisoned) post({ ...POISONED, type: "result", executionId: message.executionId, logLines: [] });
      else deliver(await execute(message));
      // The probe answer follows from a task of the event loop, as if the runner had sent a probe (see ProbeMessage).
      setImmediate(answerSelfProbe);
      return;
    case "probe":
      // Answered from the event loop: a worker that leftover work keeps busy does not get here (see ProbeMessage).
      // The restore follows the answer, off the caller's path, and still before the next message is handled.
      postMessage({ type: "probeAck", probeId: message.probeId });
      restoreGlobals();
      if (parkBetweenCalls) park(false);
      return;
    case "analyze":
      if (poisoned) return post({ ...POISONED, type: "analysis", executionId: message.executionId });
      post(await analyze(message));
      return;
    case "callResult":
      settleCall(message);
      return;
    case "httpBodyChunk":
    case "httpResponseAck":
      receiveHttpMessage(message);
      return;
  }
}

/**
 * Hands a finished execution's result to the main thread: over the channel, one-way (nothing to wait for: the worker
 * goes on to settle and park), unless the execution posted messages (action calls, HTTP streams), which the result
 * must not overtake. A worker that parks stages it instead: the `IDLE_OP` it sends once settled carries it, and the
 * main thread, which answers the server only then anyway (marked idle), is woken once rather than twice.
 */
function deliver(result: WorkerResultMessage): void {
  const json = postedDuringRun ? "" : JSON.stringify(result);
  if (!postedDuringRun && channel !== null && json.length <= MAX_CHANNEL_RESULT_CHARS) {
    const message = encodeRequest(RESULT_OP, json);
    if (parkBetweenCalls && channel.stage(message)) return;
    return channel.send(message);
  }
  post(result);
}

/** Sends an action's syscall to the server (through the runner's main thread). */
function serverCall(op: string, argsJson: string): Promise<string> {
  if (pendingCalls.size >= MAX_PENDING_CALLS) {
    return Promise.reject(syscallFailure(`Too many concurrent calls (at most ${MAX_PENDING_CALLS})`));
  }
  const callId = nextCallId++;
  return new Promise((resolve, reject) => {
    pendingCalls.set(callId, { resolve, reject });
    post({ type: "call", executionId: currentExecutionId, callId, op, argsJson });
  });
}

function settleCall(message: CallResultMessage): void {
  const pending = pendingCalls.get(message.callId);
  if (pending === undefined) return;
  pendingCalls.delete(message.callId);
  if (message.ok) pending.resolve(message.resultJson ?? "null");
  else pending.reject(syscallFailure(message.error?.message ?? "Call failed", message.error?.data));
}

function beginRun(executionId: string, runEnv: Record<string, string>): LogSink {
  globalsDirty = true;
  currentExecutionId = executionId;
  postedDuringRun = false;
  for (const key of Object.keys(env)) delete env[key];
  Object.assign(env, runEnv);
  router?.streams.clear();
  currentSink = new LogSink();
  setLogSink(currentSink);
  return currentSink;
}

function endRun(): void {
  dropCallResources();
  enterActionMode();
  setCurrentExecution(null);
  setLogSink(null);
  currentSink = null;
  // Calls of a finished action are answered to nobody.
  pendingCalls.clear();
}

/** The result field naming which log lines nested calls into other components wrote, when any did. */
function logSourcesOf(sink: LogSink): { logSources?: LogLineSource[] } {
  return sink.sources.length === 0 ? {} : { logSources: sink.sources };
}

async function execute(message: WorkerExecuteMessage): Promise<WorkerResultMessage> {
  const { executionId, udfType, deploymentUrl, modulePath, exportName } = message;
  const componentPath = message.componentPath ?? "";
  const sink = beginRun(executionId, message.env);
  if (udfType === "action") enterActionMode();
  else enterDeterministicMode(message.nowMs, message.randomSeed);
  const modulesUrl = componentModulesUrl(deploymentUrl, componentPath);
  const root: Frame = {
    udfType,
    componentPath,
    functionName: functionName(modulePath, exportName),
    depth: 0,
    children: new SerialQueue(),
  };
  const envs = new Map(Object.entries(message.componentEnvs ?? {}));
  envs.set(componentPath, env);
  setCurrentExecution({
    executionId,
    requestId: message.requestId,
    deploymentUrl,
    root,
    envs,
    metadata: message.metadata,
  });
  const fail = (errorMessage: string, errorData?: JsonValue): WorkerResultMessage => ({
    type: "result",
    executionId,
    ok: false,
    errorMessage,
    ...(errorData === undefined ? {} : { errorData }),
    logLines: sink.lines,
    ...logSourcesOf(sink),
  });
  if (message.http !== undefined) {
    const head = message.http;
    try {
      // Load the router (and the modules it imports) first, so their top-level globals become part of the snapshot.
      const importsBefore = freshImportCount();
      await loadModule(modulesUrl, "http.js").catch(() => {}); // runHttpAction reports a failure itself
      if (freshImportCount() !== importsBefore) retakeSnapshot();
      clearLastMatch();
      const httpResponse = await runInFrame(root, () => runHttpAction(executionId, modulesUrl, head, post));
      return {
        type: "result",
        executionId,
        ok: true,
        resultJson: "null",
        logLines: sink.lines,
        ...logSourcesOf(sink),
        ...(httpResponse === null ? {} : { httpResponse }),
      };
    } catch (error) {
      const { errorMessage, errorData } = formatUncaught(error, deploymentUrl);
      return fail(errorMessage, errorData);
    } finally {
      endRun();
    }
  }
  let fn: RegisteredFunction;
  try {
    const importsBefore = freshImportCount();
    fn = await runInFrame(root, () => loadFunction(modulesUrl, modulePath, exportName));
    if (freshImportCount() !== importsBefore) retakeSnapshot();
    checkKind(fn, udfType, `${modulePath}:${exportName}`);
  } catch (error) {
    endRun();
    return fail(error instanceof Error ? error.message : String(error));
  }
  try {
    clearLastMatch();
    const resultJson = await runInFrame(root, () => invoke(fn, message));
    return { type: "result", executionId, ok: true, resultJson, logLines: sink.lines, ...logSourcesOf(sink) };
  } catch (error) {
    const { errorMessage, errorData } = formatUncaught(error, deploymentUrl);
    return fail(errorMessage, errorData);
  } finally {
    // Operations the function issued and never awaited still run in its transaction, as when each crossed at once.
    router?.flushBatch();
    endRun();
  }
}

/**
 * Empties RegExp's legacy statics (`RegExp.$1`, `.input`, `.lastMatch`, …), which hold the realm's last match: what an
 * earlier call (another user's) matched, or what this worker matched on its behalf, must not reach the code about to
 * run. The global restore cannot see them (their accessors are unchanged; the state is V8's). Through `exec` as loaded.
 */
function clearLastMatch(): void {
  apply(regExpExec, EMPTY_PATTERN, [""]);
}

function invoke(fn: RegisteredFunction, message: WorkerExecuteMessage): Promise<string> {
  switch (message.udfType) {
    case "query":
      return fn.invokeQuery!(message.argsJson);
    case "mutation":
      return fn.invokeMutation!(message.argsJson);
    case "action":
      return fn.invokeAction!(message.requestId, message.argsJson);
  }
}

async function analyze(message: WorkerAnalyzeMessage): Promise<WorkerAnalysisMessage> {
  beginRun(message.executionId, message.env);
  // Module top-level code runs like query code: no fetch, no timers.
  enterDeterministicMode(Date.now(), Math.floor(Math.random() * 2 ** 32));
  try {
    const modulesUrl = componentModulesUrl(message.deploymentUrl, message.componentPath ?? "");
    const analysis = await analyzeDeployment(modulesUrl, message.modulePaths);
    return { type: "analysis", executionId: message.executionId, ok: true, analysis };
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    return { type: "analysis", executionId: message.executionId, ok: false, errorMessage: text };
  } finally {
    endRun();
    // Only module top-level code ran: what it set up globally (polyfills) stays, like in a warm isolate.
    takeGlobalSnapshot();
  }
}

/**
 * Retakes the global snapshot after a call's first import of a module, before the function itself runs: globals a
 * module sets up at load time (polyfills) are kept, as in a warm isolate, since the module is not evaluated again.
 */
function retakeSnapshot(): void {
  const resume = suspendDeterminism();
  takeGlobalSnapshot();
  resume();
}
