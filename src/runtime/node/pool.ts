/**
 * The node runner set of the runner pool: `"use node"` actions run in node runner processes (runner.ts), one call at a
 * time each. Runners are keyed by node deployment folder (a runner's permissions name its folder), none is kept warm
 * by default (the pool pre-starts one after a push, `prewarm`), at most `maxRunners` are busy at once and further
 * calls wait in a bounded queue. A runner idle for `IDLE_MS` exits; a runner that died (deadline, out of memory,
 * crash) fails only its call and is never reused; a runner that died while idle, before the pool saw its exit,
 * never started the call handed to it (it confirms each call before running it), so that call runs on a new runner. Each runner has its own temp dir under `<dataDir>/node/tmp/`,
 * emptied by the runner after every call and removed when it exits.
 */
import { join, resolve } from "node:path";
import { RunnerPoolFullError } from "../errors.ts";
import type { CallContext, ExecutionResult, ModuleAnalysis } from "../types.ts";
import type { NodeCallResult } from "./types.ts";
import { NODE_MAX_HEAP_MB } from "./command.ts";
import { answerLocally } from "./local_syscalls.ts";
import { NodeAnalyzeError, NodeRunner, NodeRunnerDiedError } from "./runner.ts";

/** A node runner idle this long exits. */
const IDLE_MS = 60_000;
/** Exit code of a V8 heap overflow (SIGTRAP). */
const EXIT_OUT_OF_MEMORY = 133;

/** What the node set needs from the pool. */
export interface NodePoolOptions {
  dataDir: string;
  /** Most runners running a call at once (default 2 × cores). */
  maxRunners?: number | undefined;
  /** "off": pushes naming external packages are refused (`--node-packages=off`); default "auto". */
  externalPackages?: "auto" | "off";
  maxQueuedCalls: number;
  maxHeapMb?: number | undefined;
  /** `--deny-net` entries of the action network policy; resolves once the policy is known. */
  denyNet: Promise<string[]>;
  /** Answers a call's async syscalls, like the action runners' (`RunnerPoolOptions.onCall`). */
  onCall(op: string, argsJson: string, context: CallContext): Promise<string>;
}

/** One node action call. */
export interface NodeExecuteRequest {
  nodeDir: string;
  modulePath: string;
  exportName: string;
  argsJson: string;
  env: Record<string, string>;
  timeLimitMs: number;
  context: CallContext;
}

interface Waiter {
  start: () => void;
  fail: (error: Error) => void;
}

/** See the module comment. */
export class NodePool {
  readonly #options: NodePoolOptions;
  readonly #maxRunners: number;
  readonly #idle = new Map<string, { runner: NodeRunner; idleSinceMs: number }[]>();
  readonly #live = new Set<NodeRunner>();
  readonly #queue: Waiter[] = [];
  /** Runners being started (close waits for them, so none outlives the pool). */
  readonly #starting = new Set<Promise<unknown>>();
  readonly #retireTimer: ReturnType<typeof setInterval>;
  #busy = 0;
  #closed = false;

  constructor(options: NodePoolOptions) {
    // Runner permissions and temp dirs need absolute paths (a runner's cwd is its temp dir).
    this.#options = { ...options, dataDir: resolve(options.dataDir) };
    this.#maxRunners = options.maxRunners ?? 2 * (navigator.hardwareConcurrency || 1);
    this.#retireTimer = setInterval(() => this.#retireIdle(), IDLE_MS / 4);
    Deno.unrefTimer(this.#retireTimer);
  }

  /** Runs one node action; failures (user code, limits, a dead runner) are `ok: false`. */
  async execute(request: NodeExecuteRequest): Promise<ExecutionResult> {
    const startedAt = performance.now();
    await this.#acquire();
    let runner: NodeRunner | null = null;
    try {
      runner = this.#takeIdle(request.nodeDir);
      let result: NodeCallResult;
      if (runner === null) result = await this.#callOn(runner = await this.#start(request.nodeDir), request);
      else {
        try {
          result = await this.#callOn(runner, request);
        } catch (error) {
          // An idle runner can die just before the pool sees its exit; a call it never started runs on a new one.
          if (!(error instanceof NodeRunnerDiedError && error.beforeStart)) throw error;
          result = await this.#callOn(runner = await this.#start(request.nodeDir), request);
        }
      }
      this.#putIdle(request.nodeDir, runner);
      const executionTimeMs = performance.now() - startedAt;
      if (result.ok) return { ok: true, resultJson: result.resultJson, logLines: result.logLines, executionTimeMs };
      return {
        ok: false,
        errorMessage: result.errorMessage,
        ...(result.errorData === undefined ? {} : { errorData: result.errorData as ExecutionResult["errorData"] }),
        logLines: result.logLines,
        executionTimeMs,
      };
    } catch (error) {
      runner?.kill();
      return {
        ok: false,
        errorMessage: this.#failureText(error, request.timeLimitMs),
        logLines: [],
        executionTimeMs: performance.now() - startedAt,
        ...(error instanceof NodeRunnerDiedError && (error.timedOut || isOutOfMemory(error))
          ? {}
          : { infrastructure: true }),
      };
    } finally {
      this.#release();
    }
  }

  #callOn(runner: NodeRunner, request: NodeExecuteRequest): Promise<NodeCallResult> {
    return runner.call(
      { ...request, requestId: request.context.requestId },
      (op, argsJson) => {
        const local = answerLocally(op, request.context);
        return local === null ? this.#options.onCall(op, argsJson, request.context) : Promise.resolve(local);
      },
      request.timeLimitMs,
    );
  }

  /**
   * Imports node modules in a fresh runner and describes them; the runner is discarded afterwards so no module state
   * of the analysis leaks into calls. Throws NodeAnalyzeError with Convex's message for a non-action.
   */
  async analyze(nodeDir: string, modulePaths: string[], env: Record<string, string>): Promise<ModuleAnalysis[]> {
    const runner = await this.#start(nodeDir);
    try {
      const analyses = await runner.analyze(modulePaths.filter((path) => !path.startsWith("_deps/")), env);
      return analyses.map((module) => ({ ...module, httpRoutes: null, cronsJson: null, environment: "node" }));
    } catch (error) {
      if (error instanceof NodeAnalyzeError) throw error;
      throw new NodeAnalyzeError(error instanceof Error ? error.message : String(error));
    } finally {
      await runner.close();
    }
  }

  /** Starts one idle runner on `nodeDir` (after a push activates it: the first call then pays no spawn). */
  prewarm(nodeDir: string): void {
    if (this.#closed || (this.#idle.get(nodeDir)?.length ?? 0) > 0) return;
    this.#start(nodeDir).then((runner) => this.#putIdle(nodeDir, runner), (error) => {
      console.error(`denvex: starting a node runner failed: ${error instanceof Error ? error.message : error}`);
    });
  }

  /** Stops the idle runners of every folder but `activeDir` (old code after a push). */
  retireAllBut(activeDir: string | null): void {
    for (const [dir, idle] of this.#idle) {
      if (dir === activeDir) continue;
      this.#idle.delete(dir);
      for (const { runner } of idle) void runner.close();
    }
  }

  /** Whether pushes may name external packages (installed into the deployment's folder) or are refused. */
  get externalPackages(): "auto" | "off" {
    return this.#options.externalPackages ?? "auto";
  }

  /** Number of live node runners (monitoring and tests). */
  get runnerCount(): number {
    return this.#live.size;
  }

  /** Process IDs of the live node runners. */
  runnerPids(): number[] {
    return [...this.#live].map((runner) => runner.pid);
  }

  /** Kills every runner and fails waiting calls. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#retireTimer);
    for (const waiter of this.#queue.splice(0)) waiter.fail(new RunnerPoolFullError("The runner pool is closed"));
    await Promise.allSettled([...this.#starting]);
    const runners = [...this.#live];
    for (const runner of runners) runner.kill();
    await Promise.all(runners.map((runner) => runner.exited));
  }

  #acquire(): Promise<void> {
    if (this.#closed) return Promise.reject(new RunnerPoolFullError("The runner pool is closed"));
    if (this.#busy < this.#maxRunners) {
      this.#busy++;
      return Promise.resolve();
    }
    if (this.#queue.length >= this.#options.maxQueuedCalls) {
      return Promise.reject(
        new RunnerPoolFullError(`Too many calls waiting for a node runner (at most ${this.#options.maxQueuedCalls})`),
      );
    }
    return new Promise((resolve, reject) => this.#queue.push({ start: resolve, fail: reject }));
  }

  #release(): void {
    const next = this.#queue.shift();
    if (next) next.start();
    else this.#busy--;
  }

  #takeIdle(nodeDir: string): NodeRunner | null {
    const idle = this.#idle.get(nodeDir);
    while (idle && idle.length > 0) {
      const { runner } = idle.pop()!;
      if (!runner.dead) return runner;
    }
    return null;
  }

  #putIdle(nodeDir: string, runner: NodeRunner): void {
    if (runner.dead) return;
    if (this.#closed) return runner.kill();
    const idle = this.#idle.get(nodeDir) ?? [];
    idle.push({ runner, idleSinceMs: performance.now() });
    this.#idle.set(nodeDir, idle);
  }

  #start(nodeDir: string): Promise<NodeRunner> {
    if (this.#closed) return Promise.reject(new RunnerPoolFullError("The runner pool is closed"));
    const starting = this.#spawn(nodeDir);
    this.#starting.add(starting);
    void starting.finally(() => this.#starting.delete(starting)).catch(() => {});
    return starting;
  }

  async #spawn(nodeDir: string): Promise<NodeRunner> {
    const tmpRoot = join(this.#options.dataDir, "node", "tmp");
    await Deno.mkdir(tmpRoot, { recursive: true });
    const tmpDir = await Deno.makeTempDir({ dir: tmpRoot });
    const runner = await NodeRunner.start({
      deploymentDir: nodeDir,
      tmpDir,
      denyNet: await this.#options.denyNet,
      maxHeapMb: this.#options.maxHeapMb ?? NODE_MAX_HEAP_MB,
      // Only runner_main's transpile cache: no cached remote module or npm package of the server's can load.
      denoDir: join(this.#options.dataDir, "node", "runner-cache"),
    }).catch(async (error) => {
      await Deno.remove(tmpDir, { recursive: true }).catch(() => {});
      throw error;
    });
    this.#live.add(runner);
    void runner.exited.then(async () => {
      this.#live.delete(runner);
      await Deno.remove(tmpDir, { recursive: true }).catch(() => {});
    });
    return runner;
  }

  #retireIdle(): void {
    const now = performance.now();
    for (const idle of this.#idle.values()) {
      for (const entry of [...idle]) {
        if (now - entry.idleSinceMs < IDLE_MS) continue;
        idle.splice(idle.indexOf(entry), 1);
        void entry.runner.close();
      }
    }
  }

  #failureText(error: unknown, timeLimitMs: number): string {
    if (error instanceof NodeRunnerDiedError) {
      if (error.timedOut) return convexTimeoutText(timeLimitMs);
      if (isOutOfMemory(error)) {
        return `JavaScript execution ran out of memory (maximum heap: ${
          this.#options.maxHeapMb ?? NODE_MAX_HEAP_MB
        } MB)`;
      }
      if (this.#closed) return "The runner pool was closed during the call";
      return `The function's runner process crashed (exit code ${error.code}${
        error.signal ? `, signal ${error.signal}` : ""
      })`;
    }
    return `Internal error: ${error instanceof Error ? error.message : String(error)}`;
  }
}

function isOutOfMemory(error: NodeRunnerDiedError): boolean {
  return error.code === EXIT_OUT_OF_MEMORY || error.signal === "SIGTRAP";
}

/** Convex's text for a call stopped at its deadline, e.g. `Function execution timed out (maximum duration: 600s)`. */
function convexTimeoutText(timeLimitMs: number): string {
  const duration = timeLimitMs % 1000 === 0 ? `${timeLimitMs / 1000}s` : `${timeLimitMs}ms`;
  return `Function execution timed out (maximum duration: ${duration})`;
}
