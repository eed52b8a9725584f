/**
 * The server's handle on one runner process: spawns it, frames messages over its socket (runner_socket.ts; never its
 * stdin/stdout, which user code can reach), relays its calls, and reports how it ended. A runner runs one execution or
 * analysis at a time. A transaction runner may also hold up to MAX_CALLS_BEHIND executions sent behind the running job
 * (pipelined, see `execute`): it starts each by itself, in the order sent, once it has reported `idle`, so it finds its
 * next call in its socket instead of sleeping until the server's next write wakes it. The server can ask for one back
 * while it has not started (`withdrawBehind`), when the job ahead runs long.
 *
 * Private to `src/runtime`: other folders use its `mod.ts`.
 */
import { DenvexError } from "../errors/mod.ts";
import { FrameWriter, pumpFrames } from "./framing.ts";
import type { RunnerCommand } from "./runner_command.ts";
import { listenForRunner, type RunnerSocketListener } from "./runner_socket.ts";
import {
  type FromRunnerMessage,
  MAX_CALLS_BEHIND,
  type RunnerAnalysisMessage,
  type RunnerAnalyzeMessage,
  type RunnerCallMessage,
  type RunnerCallResultMessage,
  type RunnerExecuteMessage,
  type RunnerInitMessage,
  type RunnerKind,
  type RunnerResultMessage,
} from "./runner_protocol.ts";
import type { HttpExchange, HttpInlineResponse } from "./http_action_protocol.ts";
import { relayHttpMessage } from "./http_action_relay.ts";
import { forwardRunnerOutput } from "./runner_output.ts";

/** How a runner process ended. */
export interface RunnerExit {
  code: number;
  signal: string | null;
  /** True when the pool killed it (deadline, close). */
  killedByPool: boolean;
}

/** Raised for the work a runner was doing when it died. */
export class RunnerExitError extends DenvexError {
  readonly exit: RunnerExit;
  /**
   * False for an execution that was sent behind the running job and never began: the runner died before it reported
   * `idle` after that job, so none of its code ran and the call may go to another runner.
   */
  readonly started: boolean;
  constructor(exit: RunnerExit, started = true) {
    super("RunnerExited", `Runner process exited (code ${exit.code}${exit.signal ? `, signal ${exit.signal}` : ""})`);
    this.name = "RunnerExitError";
    this.exit = exit;
    this.started = started;
  }
}

/**
 * Raised for an execution sent behind the running job that the runner gave back unstarted (`withdrawBehind`): none of
 * its code ran, so the call may go to another runner.
 */
export class JobWithdrawnError extends DenvexError {
  constructor(executionId: string) {
    super("JobWithdrawn", `Execution ${executionId} was withdrawn before it started`);
    this.name = "JobWithdrawnError";
  }
}

/** A job sent to a runner: its answer, and when the runner is ready for another call after it. */
export interface SentJob<Answer> {
  answer: Promise<Answer>;
  /**
   * Resolves when the runner reports `idle` after this job: it has probed its worker and restored its globals
   * (runner.ts). Rejects with RunnerExitError if it exits instead (leftover work, time limit).
   */
  idle: Promise<void>;
}

/** The server's side of a job in flight. */
interface JobInFlight {
  executionId: string;
  answer: PromiseWithResolvers<FromRunnerMessage>;
  idle: PromiseWithResolvers<void>;
  /** Whether the answer arrived (the job then only waits for `idle`). */
  answered: boolean;
  /** Set once the server asked the runner to give this job back (`withdrawBehind`). */
  onWithdrawn: (() => void) | null;
  http?: HttpExchange | undefined;
}

/** Answers a runner's call (`RunnerCallMessage`) with a call result. */
export type CallHandler = (call: RunnerCallMessage) => Promise<Omit<RunnerCallResultMessage, "type" | "callId">>;

let nextRunnerId = 1;

/** One runner process. */
export class RunnerProcess {
  readonly id = nextRunnerId++;
  readonly kind: RunnerKind;
  /** Resolves once the runner is initialized and its worker is up; rejects if it dies first. */
  readonly ready: Promise<void>;
  /** Resolves when the process has exited. */
  readonly exited: Promise<RunnerExit>;
  /** The catalog version this runner has cached (the pool then sends only the version). */
  catalogVersion: number | null = null;
  /** performance.now() of the last finished job, for retiring idle action runners. */
  idleSince = performance.now();
  /** Executions and analyses answered, for recycling a runner whose heap grew in a burst (pool.ts). */
  jobsRun = 0;
  readonly #child: Deno.ChildProcess;
  readonly #listener: RunnerSocketListener;
  /** The runner's connection once it has connected (frames sent before then wait for it). */
  #connection: Deno.UnixConn | null = null;
  readonly #writer: FrameWriter;
  readonly #onCall: CallHandler;
  /** The job the runner is running, from sending it until the runner reports `idle` after it. */
  #job: JobInFlight | null = null;
  /** Executions sent behind `#job` (pipelined), in order: the runner starts the first once it is idle after `#job`. */
  #behind: JobInFlight[] = [];
  #retiring = false;
  #killedByPool = false;
  #exit: RunnerExit | null = null;

  constructor(
    command: RunnerCommand,
    socketDir: string,
    init: RunnerInitMessage,
    onCall: CallHandler,
    onOutput: (line: string) => void = (line) => console.error(line),
  ) {
    this.kind = init.kind;
    this.#onCall = onCall;
    this.#listener = listenForRunner(socketDir);
    this.#child = new Deno.Command(command.command, {
      args: command.args(this.#listener.path),
      ...(command.cwd !== undefined ? { cwd: command.cwd } : {}),
      env: command.env,
      stdin: "null",
      // Anything user code writes to the standard output is dropped (console output travels with results); the
      // standard error is passed on to the server's, bounded and marked as the runner's (runner_output.ts).
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const output = forwardRunnerOutput(this.#child.stderr, `denvex runner ${this.#child.pid}`, onOutput);
    // A runner that dies before connecting leaves the listener waiting: its exit closes it.
    this.#child.status.finally(() => this.#listener.close());
    const connection = this.#listener.connection.then((conn) => this.#connection = conn);
    this.#writer = new FrameWriter({
      write: (bytes) =>
        this.#connection !== null ? this.#connection.write(bytes) : connection.then((c) => c.write(bytes)),
    });
    const ready = Promise.withResolvers<void>();
    this.ready = ready.promise;
    this.ready.catch(() => {}); // observed by whoever awaits it; never an unhandled rejection
    const readLoop = this.#readLoop(ready.resolve);
    // Wait for the socket to drain too: a runner that stops itself (time limit) sends its answer right before exiting.
    // And for its last words on stderr (an out-of-memory report), which end with the process.
    this.exited = Promise.all([this.#child.status, readLoop, output]).then(([status]) => {
      this.#exit = { code: status.code, signal: status.signal, killedByPool: this.#killedByPool };
      const error = new RunnerExitError(this.#exit);
      ready.reject(error);
      for (const job of [this.#job, ...this.#behind]) {
        const failure = job === this.#job ? error : new RunnerExitError(this.#exit, false);
        if (job !== null && !job.answered) job.answer.reject(failure);
        job?.idle.reject(failure);
      }
      this.#job = null;
      this.#behind = [];
      this.#writer.close().catch(() => {});
      return this.#exit;
    });
    this.#writer.send(init).catch(() => this.kill());
  }

  /** The OS process ID. */
  get pid(): number {
    return this.#child.pid;
  }

  /** Whether a job is running or has not been followed by `idle` yet. */
  get busy(): boolean {
    return this.#job !== null;
  }

  /** Whether the runner owes no answer: its running job has one (it is on its way to idle), or it runs none. */
  get answered(): boolean {
    return this.#job === null || this.#job.answered;
  }

  /** Whether an execution may be sent behind the running job now (see `execute`). */
  get takesJobBehind(): boolean {
    return this.#job !== null && this.#behind.length < MAX_CALLS_BEHIND && this.kind === "transaction" &&
      !this.#retiring && this.#exit === null;
  }

  /** Whether the process has exited. */
  get dead(): boolean {
    return this.#exit !== null;
  }

  /** Whether the runner said it exits after its last answer (time limit): it must get no further call. */
  get retiring(): boolean {
    return this.#retiring;
  }

  /**
   * Runs one execution; its answer rejects with RunnerExitError if the process dies first. Sent while a job runs (only
   * when `takesJobBehind`), it waits in the runner behind that job and those sent behind it before, and fails with a
   * RunnerExitError that says it never started if the runner dies before becoming idle after the job ahead of it, or
   * with JobWithdrawnError if the runner gives it back (`withdrawBehind`).
   */
  execute(message: RunnerExecuteMessage, http?: HttpExchange): SentJob<RunnerResultMessage> {
    if (this.#job !== null && !this.takesJobBehind) throw new Error(`Runner ${this.id} cannot take a job behind`);
    return this.#send(message, http) as SentJob<RunnerResultMessage>;
  }

  /** Runs one analysis; its answer rejects with RunnerExitError if the process dies first. */
  analyze(message: RunnerAnalyzeMessage): SentJob<RunnerAnalysisMessage> {
    if (this.#job !== null) throw new Error(`Runner ${this.id} is busy`);
    return this.#send(message) as SentJob<RunnerAnalysisMessage>;
  }

  #send(message: RunnerExecuteMessage | RunnerAnalyzeMessage, http?: HttpExchange): SentJob<FromRunnerMessage> {
    const job: JobInFlight = {
      executionId: message.executionId,
      answer: Promise.withResolvers<FromRunnerMessage>(),
      idle: Promise.withResolvers<void>(),
      answered: false,
      onWithdrawn: null,
      http,
    };
    job.idle.promise.catch(() => {}); // observed by whoever awaits it
    if (this.#exit !== null) {
      const error = new RunnerExitError(this.#exit, false);
      job.answer.reject(error);
      job.idle.reject(error);
    } else {
      if (this.#job === null) this.#job = job;
      else this.#behind.push(job);
      this.#writer.send(message).catch(() => this.kill());
    }
    const answer = job.answer.promise.finally(() => {
      this.jobsRun++;
      this.idleSince = performance.now();
    });
    return { answer, idle: job.idle.promise };
  }

  /**
   * Asks the runner to give back `executionId`, sent behind its running job, if it has not started it: that one then
   * fails with JobWithdrawnError. A runner that started it already says nothing, and the execution runs as usual.
   * Asked at most once per execution. `onWithdrawn` runs when the runner's answer arrives, before the job's promises
   * reject and before anything the runner sends after it (such as the running job's answer) is handled.
   */
  withdrawBehind(executionId: string, onWithdrawn: () => void): void {
    const job = this.#behind.find((behind) => behind.executionId === executionId);
    if (job === undefined || job.onWithdrawn !== null || this.#exit !== null) return;
    job.onWithdrawn = onWithdrawn;
    this.#writer.send({ type: "withdraw", executionId }).catch(() => this.kill());
  }

  /** SIGKILLs the process (the only reliable way to stop a spinning worker). */
  kill(): void {
    if (this.#exit !== null) return;
    this.#killedByPool = true;
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }

  /** Ends the socket's sending side so the runner exits by itself; kills it if it has not after `graceMs`. */
  async close(graceMs = 1_000): Promise<void> {
    await this.#writer.close().catch(() => {});
    try {
      this.#connection?.closeWrite();
    } catch {
      // already closed
    }
    const timer = setTimeout(() => this.kill(), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  async #readLoop(onReady: () => void): Promise<void> {
    let connection: Deno.UnixConn;
    try {
      connection = await this.#listener.connection;
    } catch {
      return; // it died before connecting: its exit says how
    }
    try {
      await pumpFrames(connection, (raw) => this.#receive(raw as FromRunnerMessage, onReady));
    } catch (error) {
      // A reset connection is the runner dying (killed): its exit says how.
      if (!(error instanceof Deno.errors.ConnectionReset)) {
        console.error(`denvex: runner ${this.id} sent a corrupted message: ${error}`);
      }
      this.kill();
    } finally {
      try {
        connection.close();
      } catch {
        // already closed
      }
    }
  }

  #receive(message: FromRunnerMessage, onReady: () => void): void {
    switch (message.type) {
      case "ready":
        onReady();
        return;
      case "idle": {
        // The runner starts the first job sent behind, if any, right after this message.
        const job = this.#job;
        this.#job = this.#behind.shift() ?? null;
        job?.idle.resolve();
        return;
      }
      case "withdrawn": {
        const index = this.#behind.findIndex((behind) => behind.executionId === message.executionId);
        if (index === -1) return;
        const [job] = this.#behind.splice(index, 1);
        job.onWithdrawn?.();
        const error = new JobWithdrawnError(job.executionId);
        job.answer.reject(error);
        job.idle.reject(error);
        return;
      }
      case "result":
      case "analysis": {
        const job = this.#job;
        if (job === null || job.answered || job.executionId !== message.executionId) return;
        job.answered = true;
        if (message.retiring === true) this.#retiring = true;
        const inline = message.type === "result" ? message.httpResponse : undefined;
        if (inline !== undefined && job.http !== undefined) deliverInline(job.http, inline);
        job.answer.resolve(message);
        // An answer that says the runner is idle stands for its `idle` message (RunnerResultMessage.idle).
        if (message.type === "result" && message.idle === true) this.#receive({ type: "idle" }, onReady);
        return;
      }
      case "call":
        void this.#answerCall(message);
        return;
      case "httpBodyPull":
      case "httpResponseHead":
      case "httpResponseChunk": {
        const job = this.#job;
        const http = job !== null && !job.answered && job.executionId === message.executionId ? job.http : undefined;
        if (http) relayHttpMessage(http, message, (reply) => this.#writer.send(reply).catch(() => {}));
        return;
      }
    }
  }

  async #answerCall(call: RunnerCallMessage): Promise<void> {
    const answer = await this.#onCall(call);
    await this.#writer.send({ type: "callResult", callId: call.callId, ...answer } satisfies RunnerCallResultMessage)
      .catch(() => {});
  }
}

/** Hands an inline HTTP response to the exchange. */
function deliverInline(http: HttpExchange, response: HttpInlineResponse): void {
  const head = { status: response.status, statusText: response.statusText, headers: response.headers };
  http.onWhole(head, response.bodyBase64 === null ? null : Uint8Array.fromBase64(response.bodyBase64));
}
