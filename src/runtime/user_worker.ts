/**
 * The runner's handle on its user-code worker: a Worker with no permissions but reading the modules folder (and the
 * network for action runners), plus the synchronous syscall channel it calls into.
 *
 * Private to `src/runtime`: other folders use its `mod.ts`.
 */
import { createChannelBuffer, okResponse, SyncChannelServer } from "./sync_channel.ts";
import { type FromWorkerMessage, IDLE_OP, SETTLED_PROBE_ID, type ToWorkerMessage } from "./worker/protocol.ts";

/** How long a fresh worker may take to load its bootstrap before the runner gives up. */
const WORKER_START_TIMEOUT_MS = 30_000;

/** Options of a user-code worker. */
export interface UserWorkerOptions {
  /** The only folder user code may read (and import from). */
  modulesDir: string;
  /** Whether user code may use the network (actions). */
  allowNet: boolean;
  /** Messages other than `ready`. */
  onMessage(message: FromWorkerMessage): void;
  /** The worker failed outside user code's reach (bootstrap error): the runner cannot continue. */
  onFatalError(message: string): void;
  /** Answers one channel request (see SyncChannelServer.serve). */
  handleSyscall(request: string): string | Promise<string>;
  /** Whether the worker waits for its next query or mutation on the channel rather than for a message (`IDLE_OP`). */
  parkBetweenCalls?: boolean;
}

/** The start of an `IDLE_OP` request (see `encodeRequest`: op, component path, args). */
const IDLE_REQUEST_PREFIX = IDLE_OP + "\n\n";
/** The answer to a parked worker that sends it back to its event loop. */
const RESUME_EVENT_LOOP = okResponse("null");

/** What a probe found: a worker that answered, or one that did not in time. */
export type ProbeOutcome = "answered" | "stalled";

/** A started worker. */
export class UserWorker {
  readonly #worker: Worker;
  readonly #channel: SyncChannelServer;
  #nextProbeId = SETTLED_PROBE_ID + 1;
  /** A self-probe answer that arrived before `settled()` asked for it. */
  #settledEarly = false;
  /** Set while the worker is parked on the channel (`IDLE_OP`): answers it with its next instruction. */
  #wake: ((response: string) => void) | null = null;
  /** Messages sent by postMessage (the worker parks only once it has received them all). */
  #messagesSent = 0;
  /**
   * The probe awaiting its answer. Its deadline is checked by the runner's watchdog (`checkProbeDeadline`) rather than
   * by a timer of its own: a self-probe follows every call, and a timer set and cleared per call showed in the runner's
   * profile (issue 14).
   */
  #probe: { probeId: number; deadlineMs: number; settle(outcome: ProbeOutcome): void } | null = null;
  /** Set while `settledSoon` waits: the self-probe answer resolves it true, the channel's wait ending first false. */
  #soon: { deadlineMs: number; resolve(settled: boolean): void } | null = null;

  private constructor(worker: Worker, channel: SyncChannelServer) {
    this.#worker = worker;
    this.#channel = channel;
  }

  /** Creates the worker and resolves once its globals are set up. */
  static async start(options: UserWorkerOptions): Promise<UserWorker> {
    const worker = new Worker(new URL("./worker/worker_main.ts", import.meta.url), {
      type: "module",
      name: "denvex-user-code",
      deno: {
        permissions: {
          read: [options.modulesDir],
          net: options.allowNet,
          env: false,
          run: false,
          write: false,
          ffi: false,
          sys: false,
          import: false,
        },
      },
    });
    const buffer = createChannelBuffer();
    let started: UserWorker | null = null;
    const channel = new SyncChannelServer(buffer, {
      onBlockTimedOut: () => {
        if (started !== null) started.#endSoon(false);
      },
    });
    const ready = Promise.withResolvers<void>();
    const timer = setTimeout(
      () => ready.reject(new Error("The user-code worker did not start in time")),
      WORKER_START_TIMEOUT_MS,
    );
    worker.onmessage = (event: MessageEvent<FromWorkerMessage>) => {
      if (event.data.type === "ready") ready.resolve();
      else if (event.data.type === "probeAck") {
        if (started !== null) started.#probeAnswered(event.data.probeId);
      } else options.onMessage(event.data);
    };
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      const message = `User-code worker failed: ${event.message}`;
      ready.reject(new Error(message));
      options.onFatalError(message);
    };
    const parkBetweenCalls = options.parkBetweenCalls === true;
    worker.postMessage({ type: "init", channel: buffer, parkBetweenCalls } satisfies ToWorkerMessage);
    try {
      await ready.promise;
    } finally {
      clearTimeout(timer);
    }
    started = new UserWorker(worker, channel);
    started.#messagesSent = 1; // init
    const self = started;
    void channel.serve((request) =>
      request.startsWith(IDLE_REQUEST_PREFIX)
        ? self.#parked(request.slice(IDLE_REQUEST_PREFIX.length))
        : options.handleSyscall(request)
    );
    return started;
  }

  /** The worker parked on the channel (`IDLE_OP` with `argsJson`): resolves with its next instruction (see `post`). */
  #parked(argsJson: string): string | Promise<string> {
    const [settled, received] = JSON.parse(argsJson) as [boolean, number];
    // Nothing follows on the channel until the worker is woken: the wait after the answer must not block the thread.
    this.#channel.parkNextWait();
    if (settled) this.#probeAnswered(SETTLED_PROBE_ID);
    // A message the worker parked before receiving would never be read: send it back to its event loop first.
    if (received < this.#messagesSent) return RESUME_EVENT_LOOP;
    const wake = Promise.withResolvers<string>();
    this.#wake = wake.resolve;
    return wake.promise;
  }

  /** Sends a parked worker back to its event loop (before a message, or its end). */
  #resume(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.(RESUME_EVENT_LOOP);
  }

  /**
   * Asks the worker to answer and then restore its global snapshot (see ProbeMessage). Resolves "stalled" when it has
   * not answered within `timeoutMs`: something user code left behind keeps its event loop busy.
   */
  probe(timeoutMs: number): Promise<ProbeOutcome> {
    if (this.#probe !== null) throw new Error("A probe is already in flight");
    this.#settledEarly = false; // an earlier execution's, already answered for: this probe is the one that counts
    const probeId = this.#nextProbeId++;
    const outcome = Promise.withResolvers<ProbeOutcome>();
    this.#probe = { probeId, deadlineMs: performance.now() + timeoutMs, settle: outcome.resolve };
    this.post({ type: "probe", probeId });
    return outcome.promise;
  }

  /**
   * Like `probe`, for the probe answer the worker sends by itself after an execution (see SETTLED_PROBE_ID): resolves
   * "answered" when it has arrived (perhaps already), "stalled" when it has not within `timeoutMs`.
   */
  settled(timeoutMs: number): Promise<ProbeOutcome> {
    if (this.#probe !== null) throw new Error("A probe is already in flight");
    if (this.#settledEarly) {
      this.#settledEarly = false;
      return Promise.resolve("answered");
    }
    const outcome = Promise.withResolvers<ProbeOutcome>();
    this.#probe = { probeId: SETTLED_PROBE_ID, deadlineMs: performance.now() + timeoutMs, settle: outcome.resolve };
    return outcome.promise;
  }

  /**
   * Right after a call's result: resolves true once the worker's self-probe answer arrives (see `settled`) while the
   * channel still blocks waiting for it, false as soon as that wait ends without it or after `timeoutMs`. The answer
   * arriving later then counts for `settled`.
   */
  settledSoon(timeoutMs: number): Promise<boolean> {
    if (this.#probe !== null || this.#soon !== null) throw new Error("A probe is already in flight");
    if (this.#settledEarly) {
      this.#settledEarly = false;
      return Promise.resolve(true);
    }
    const { promise, resolve } = Promise.withResolvers<boolean>();
    this.#soon = { deadlineMs: performance.now() + timeoutMs, resolve };
    return promise;
  }

  #endSoon(settled: boolean): void {
    const soon = this.#soon;
    this.#soon = null;
    soon?.resolve(settled);
  }

  /** Whether a probe or `settledSoon` waits for the worker (its deadline is checked by `checkProbeDeadline`). */
  get awaitingAnswer(): boolean {
    return this.#probe !== null || this.#soon !== null;
  }

  /** Resolves the probe in flight as "stalled" once its deadline has passed (the runner's watchdog calls this). */
  checkProbeDeadline(nowMs: number): void {
    if (this.#probe !== null && nowMs >= this.#probe.deadlineMs) this.#settleProbe("stalled");
    if (this.#soon !== null && nowMs >= this.#soon.deadlineMs) this.#endSoon(false);
  }

  #probeAnswered(probeId: number): void {
    if (this.#probe?.probeId === probeId) this.#settleProbe("answered");
    else if (probeId === SETTLED_PROBE_ID && this.#soon !== null) this.#endSoon(true);
    else if (probeId === SETTLED_PROBE_ID) this.#settledEarly = true;
  }

  #settleProbe(outcome: ProbeOutcome): void {
    const probe = this.#probe;
    this.#probe = null;
    probe?.settle(outcome);
  }

  /**
   * Sends `message` to the worker: a query or mutation to a parked worker as the answer to its `IDLE_OP` (a worker
   * that parks on the channel between calls skips two postMessage hops per call), anything else by postMessage.
   */
  post(message: ToWorkerMessage): void {
    if (this.#wake !== null && message.type === "execute" && message.udfType !== "action") {
      const wake = this.#wake;
      this.#wake = null;
      // The execution's first syscall follows within microseconds: the channel's next wait blocks (expectSyscalls).
      wake(okResponse(JSON.stringify(message)));
      return;
    }
    this.#resume();
    this.#messagesSent++;
    this.#worker.postMessage(message);
  }

  /** See `SyncChannelServer.expectRequests`. */
  expectSyscalls(): void {
    this.#channel.expectRequests();
  }

  /** See `SyncChannelServer.parkNextWait`. */
  parkChannel(untilNextCall = false): void {
    this.#channel.parkNextWait(untilNextCall);
  }

  /** Ends an idle worker. (A busy one keeps spinning in Deno 2.9.6: the runner exits instead.) */
  terminate(): void {
    this.#settleProbe("stalled");
    this.#endSoon(false);
    this.#resume();
    this.#channel.close();
    this.#worker.terminate();
  }
}
