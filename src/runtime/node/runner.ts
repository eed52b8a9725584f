/**
 * The server's handle on one node runner process: spawns it, sends calls, answers its syscalls, collects its log
 * lines, and kills it when a call overruns its deadline (a busy loop cannot be interrupted any other way; see
 * platform-notes.md). A runner that died is not reused: the caller starts a new one.
 */
import { decodeRunnerLine, type FromNodeRunnerMessage, readLines, type ToNodeRunnerMessage } from "./protocol.ts";
import { nodeRunnerCommand, type NodeRunnerSandbox } from "./command.ts";
import type { NodeModuleAnalysis } from "./analyze.ts";
import type { NodeCall, NodeCallResult, NodeSyscallHandler } from "./types.ts";
import { LogSink, MAX_LOG_LINE_CHARS } from "../worker/console_capture.ts";
import { readBoundedLines } from "../runner_output.ts";

/** Lines written outside any call kept for a start-up failure's message. */
const MAX_STRAY_OUTPUT_LINES = 100;

/** A finished call's log lines: its console's, then what it wrote to stdout/stderr directly. */
function logLinesOf(message: { logLines?: string[] }, inFlight: InFlight): string[] {
  return [...(message.logLines ?? []), ...inFlight.stray.lines];
}

/** Convex's Node action limit. */
export const NODE_ACTION_TIMEOUT_MS = 10 * 60 * 1000;
/** How long importing a push's node modules may take. */
const ANALYZE_TIMEOUT_MS = 60_000;
/** How long a runner may take to start and load its bootstrap. */
const START_TIMEOUT_MS = 30_000;

/** A call that ended because its runner died (killed at the deadline, out of memory, crashed). */
export class NodeRunnerDiedError extends Error {
  readonly code: number;
  readonly signal: string | null;
  readonly timedOut: boolean;
  /** The runner died before it confirmed the call: none of the call's code ran, so it may run elsewhere. */
  readonly beforeStart: boolean;
  constructor(code: number, signal: string | null, timedOut: boolean, beforeStart = false) {
    super(
      timedOut
        ? "Node action timed out: its runner was stopped"
        : `Node action runner exited (code ${code}${signal ? `, signal ${signal}` : ""})`,
    );
    this.name = "NodeRunnerDiedError";
    this.code = code;
    this.signal = signal;
    this.timedOut = timedOut;
    this.beforeStart = beforeStart;
  }
}

/** A push whose node modules fail to load or define something other than actions. */
export class NodeAnalyzeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NodeAnalyzeError";
  }
}

interface InFlight {
  callId: number;
  /** The runner confirmed the call (its code may have run from then on). */
  started: boolean;
  /** What the call's code wrote to stdout/stderr directly, as `[LOG]` lines, within the console's limits. */
  stray: LogSink;
  onSyscall: NodeSyscallHandler;
  resolve: (result: NodeCallResult) => void;
  reject: (error: Error) => void;
}

/** One node runner process. */
export class NodeRunner {
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #nonce = crypto.randomUUID();
  readonly #encoder = new TextEncoder();
  readonly exited: Promise<Deno.CommandStatus>;
  #ready!: () => void;
  #inFlight: InFlight | null = null;
  #nextCallId = 1;
  #killedAtDeadline = false;
  #dead = false;
  /** Output the runner wrote outside the protocol (user `process.stdout.write`, Deno's own messages). */
  readonly strayOutput: string[] = [];

  private constructor(sandbox: NodeRunnerSandbox) {
    const { command, args, env } = nodeRunnerCommand(sandbox);
    this.#child = new Deno.Command(command, {
      args,
      env,
      clearEnv: true,
      cwd: sandbox.tmpDir,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#stdin = this.#child.stdin.getWriter();
    const stdoutRead = readLines(this.#child.stdout, (line) => this.#onLine(line)).catch(() => {});
    // Bounded lines, read to the end whatever comes (a reader that stopped would leave the runner blocked on a full
    // pipe); #stray bounds how many are kept.
    void readBoundedLines(this.#child.stderr, MAX_LOG_LINE_CHARS, (line) => this.#stray(line));
    // Every line the runner wrote is read before its death is judged: a "started" still in the pipe counts.
    this.exited = Promise.all([this.#child.status, stdoutRead]).then(([status]) => {
      this.#dead = true;
      const inFlight = this.#inFlight;
      this.#inFlight = null;
      inFlight?.reject(
        new NodeRunnerDiedError(status.code, status.signal, this.#killedAtDeadline, inFlight.started === false),
      );
      return status;
    });
  }

  /** Starts a runner and waits until its bootstrap is loaded. */
  static async start(sandbox: NodeRunnerSandbox): Promise<NodeRunner> {
    const runner = new NodeRunner(sandbox);
    const ready = new Promise<void>((resolve) => runner.#ready = resolve);
    await runner.#send({
      type: "init",
      nonce: runner.#nonce,
      modulesDir: `${sandbox.deploymentDir}/modules`,
      tmpDir: sandbox.tmpDir,
    });
    const died = runner.exited.then((status) => {
      throw new Error(`Node runner exited while starting (code ${status.code}): ${runner.strayOutput.join("\n")}`);
    });
    const timeout = AbortSignal.timeout(START_TIMEOUT_MS);
    const timedOut = new Promise<never>((_, reject) => {
      timeout.addEventListener("abort", () => reject(new Error("Node runner did not start in time")));
    });
    try {
      await Promise.race([ready, died, timedOut]);
    } catch (error) {
      runner.kill();
      throw error;
    }
    return runner;
  }

  /** The process ID. */
  get pid(): number {
    return this.#child.pid;
  }

  /** True once the process has exited. */
  get dead(): boolean {
    return this.#dead;
  }

  /** Runs one action; rejects with NodeRunnerDiedError when the runner dies (or is killed at `timeoutMs`). */
  call(call: NodeCall, onSyscall: NodeSyscallHandler, timeoutMs = NODE_ACTION_TIMEOUT_MS): Promise<NodeCallResult> {
    if (this.#dead) return Promise.reject(new Error("Node runner is dead"));
    if (this.#inFlight !== null) return Promise.reject(new Error("Node runner is busy"));
    const callId = this.#nextCallId++;
    return new Promise<NodeCallResult>((resolve, reject) => {
      const deadline = setTimeout(() => {
        this.#killedAtDeadline = true;
        this.kill();
      }, timeoutMs);
      const settle = () => clearTimeout(deadline);
      this.#inFlight = {
        callId,
        started: false,
        stray: new LogSink(),
        onSyscall,
        resolve: (result) => (settle(), resolve(result)),
        reject: (error) => (settle(), reject(error)),
      };
      // A runner that cannot take the call (its stdin is gone) is dying: its exit rejects the call as not started.
      this.#send({ type: "call", callId, ...call }).catch(() => this.kill());
    });
  }

  /**
   * Imports `modulePaths` with the deployment's variables and describes their functions; rejects with Convex's
   * message when one defines anything but actions. Run it in a fresh runner and discard the runner afterwards, so
   * no module state of the analysis leaks into calls.
   */
  async analyze(
    modulePaths: string[],
    env: Record<string, string>,
    timeoutMs = ANALYZE_TIMEOUT_MS,
  ): Promise<NodeModuleAnalysis[]> {
    if (this.#dead) throw new Error("Node runner is dead");
    if (this.#inFlight !== null) throw new Error("Node runner is busy");
    const callId = this.#nextCallId++;
    const result = await new Promise<NodeCallResult>((resolve, reject) => {
      const deadline = setTimeout(() => {
        this.#killedAtDeadline = true;
        this.kill();
      }, timeoutMs);
      this.#inFlight = {
        callId,
        started: true,
        stray: new LogSink(),
        onSyscall: (op) => Promise.reject(new Error(`${op} is not available while modules load`)),
        resolve: (value) => (clearTimeout(deadline), resolve(value)),
        reject: (error) => (clearTimeout(deadline), reject(error)),
      };
      this.#send({ type: "analyze", callId, modulePaths, env }).catch((error) => this.#inFlight?.reject(error));
    });
    if (!result.ok) throw new NodeAnalyzeError(result.errorMessage);
    return JSON.parse(result.resultJson) as NodeModuleAnalysis[];
  }

  /** SIGKILLs the process (idempotent). */
  kill(): void {
    if (this.#dead) return;
    try {
      this.#child.kill("SIGKILL");
    } catch { /* already gone */ }
  }

  /** Ends the runner: closes its stdin so it exits by itself, and kills it if it does not. */
  async close(): Promise<void> {
    await this.#stdin.close().catch(() => {});
    const timer = setTimeout(() => this.kill(), 1000);
    await this.exited;
    clearTimeout(timer);
  }

  #send(message: ToNodeRunnerMessage): Promise<void> {
    return this.#stdin.write(this.#encoder.encode(JSON.stringify(message) + "\n"));
  }

  #stray(line: string): void {
    if (this.#inFlight !== null) this.#inFlight.stray.add("LOG", line);
    else if (this.strayOutput.length < MAX_STRAY_OUTPUT_LINES) this.strayOutput.push(line);
  }

  #onLine(line: string): void {
    const message = decodeRunnerLine(this.#nonce, line);
    if (message === null) return this.#stray(line);
    this.#onMessage(message);
  }

  #onMessage(message: FromNodeRunnerMessage): void {
    if (message.type === "ready") return this.#ready();
    const inFlight = this.#inFlight;
    if (inFlight === null || message.callId !== inFlight.callId) return;
    switch (message.type) {
      case "started":
        inFlight.started = true;
        return;
      case "syscall":
        void this.#answerSyscall(inFlight, message.syscallId, message.op, message.argsJson);
        return;
      case "result":
        this.#inFlight = null;
        // Console lines first; output written to stdout/stderr directly (`[LOG]` lines of #stray) after them.
        inFlight.resolve(
          message.ok
            ? { ok: true, resultJson: message.resultJson ?? "null", logLines: logLinesOf(message, inFlight) }
            : {
              ok: false,
              errorMessage: message.errorMessage ?? "Unknown error",
              ...(message.errorData === undefined ? {} : { errorData: message.errorData }),
              logLines: logLinesOf(message, inFlight),
            },
        );
        return;
    }
  }

  async #answerSyscall(inFlight: InFlight, syscallId: number, op: string, argsJson: string): Promise<void> {
    let answer: ToNodeRunnerMessage;
    try {
      answer = { type: "syscallResult", syscallId, ok: true, resultJson: await inFlight.onSyscall(op, argsJson) };
    } catch (error) {
      const data = (error as { data?: unknown }).data;
      answer = {
        type: "syscallResult",
        syscallId,
        ok: false,
        message: error instanceof Error ? error.message : String(error),
        ...(data === undefined ? {} : { data }),
      };
    }
    if (!this.#dead) await this.#send(answer).catch(() => {});
  }
}
