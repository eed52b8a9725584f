/**
 * The runner's handle on its user-code worker: a Worker with no permissions but reading the modules folder (and the
 * network for action runners), plus the synchronous syscall channel it calls into.
 *
 * Private to `src/runtime`: other folders use its `mod.ts`.
 */
import { createChannelBuffer, SyncChannelServer } from "./sync_channel.ts";
import { type FromWorkerMessage, SETTLED_PROBE_ID, type ToWorkerMessage } from "./worker/protocol.ts";

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
}

/** What a probe found: a worker that answered, or one that did not in time. */
export type ProbeOutcome = "answered" | "stalled";

/** A started worker. */
export class UserWorker {
  readonly #worker: Worker;
  readonly #channel: SyncChannelServer;
  #nextProbeId = SETTLED_PROBE_ID + 1;
  /** A self-probe answer that arrived before `settled()` asked for it. */
  #settledEarly = false;
  #probe: { probeId: number; settle(outcome: ProbeOutcome): void } | null = null;

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
    const channel = new SyncChannelServer(buffer);
    const ready = Promise.withResolvers<void>();
    const timer = setTimeout(
      () => ready.reject(new Error("The user-code worker did not start in time")),
      WORKER_START_TIMEOUT_MS,
    );
    let started: UserWorker | null = null;
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
    worker.postMessage({ type: "init", channel: buffer } satisfies ToWorkerMessage);
    try {
      await ready.promise;
    } finally {
      clearTimeout(timer);
    }
    void channel.serve(options.handleSyscall);
    started = new UserWorker(worker, channel);
    return started;
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
    const timer = setTimeout(() => this.#settleProbe("stalled"), timeoutMs);
    this.#probe = {
      probeId,
      settle: (result) => {
        clearTimeout(timer);
        outcome.resolve(result);
      },
    };
    this.#worker.postMessage({ type: "probe", probeId } satisfies ToWorkerMessage);
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
    const timer = setTimeout(() => this.#settleProbe("stalled"), timeoutMs);
    this.#probe = {
      probeId: SETTLED_PROBE_ID,
      settle: (result) => {
        clearTimeout(timer);
        outcome.resolve(result);
      },
    };
    return outcome.promise;
  }

  #probeAnswered(probeId: number): void {
    if (this.#probe?.probeId === probeId) this.#settleProbe("answered");
    else if (probeId === SETTLED_PROBE_ID) this.#settledEarly = true;
  }

  #settleProbe(outcome: ProbeOutcome): void {
    const probe = this.#probe;
    this.#probe = null;
    probe?.settle(outcome);
  }

  post(message: ToWorkerMessage): void {
    this.#worker.postMessage(message);
  }

  /** See `SyncChannelServer.expectRequests`. */
  expectSyscalls(): void {
    this.#channel.expectRequests();
  }

  /** See `SyncChannelServer.parkNextWait`. */
  parkChannel(): void {
    this.#channel.parkNextWait();
  }

  /** Ends an idle worker. (A busy one keeps spinning in Deno 2.9.6: the runner exits instead.) */
  terminate(): void {
    this.#settleProbe("stalled");
    this.#channel.close();
    this.#worker.terminate();
  }
}
