/**
 * A synchronous request/response channel from a worker to its parent thread over one SharedArrayBuffer.
 *
 * The worker blocks in `Atomics.wait` while the parent (which must not block: it owns the database and the process's
 * stdio) wakes up through `Atomics.waitAsync`, runs the request and writes the answer back. This is what makes
 * `Convex.syscall` (synchronous by contract) possible, and it is several times cheaper than a postMessage round trip
 * (platform-notes.md: 11 µs vs 74 µs).
 *
 * Messages of any size travel in chunks of at most the buffer's data capacity; the receiver acknowledges every chunk
 * but the last. The channel is half-duplex and carries one call at a time, which matches one execution per worker.
 * A one-way message (`send`) gets no response: the parent acknowledges its last chunk too, and the worker goes on at
 * once instead of blocking for an answer it does not need (an execution's result: one block and wake-up fewer per call).
 *
 * A one-way message can also be staged (`stage`): written without waking the parent. The worker's next `call` then
 * carries it in front of its request, in one message and one wake-up; a parent that wakes by itself first (its
 * blocking wait timed out) takes it alone. Each side claims a waiting message with a compare-and-exchange before it
 * touches it, so the two never race for it. (An execution's result is staged, and the worker's `IDLE_OP` that follows
 * once it settles carries it: one hand-off between the threads fewer per call, issue 14.)
 *
 * Private to `src/runtime`: other folders use its `mod.ts`.
 */
import { concatBytes } from "./bytes.ts";

const STATE = 0;
const CHUNK_BYTES = 1;
const MORE_CHUNKS = 2;
/** 1 when the message being sent is one-way (`SyncChannelClient.send`): no response follows its last chunk. */
const ONE_WAY = 3;
/** Bytes at the start of a (single-chunk) request that are a staged one-way message carried with it; else 0. */
const STAGED_BYTES = 4;
const HEADER_BYTES = 32;

/** Whose turn it is, stored in the STATE slot. */
const IDLE = 0; // the worker may write a request chunk (also: the parent took a one-way message's last chunk)
const REQUEST_CHUNK = 1; // a request chunk is waiting for the parent
const RESPONSE_CHUNK = 2; // a response chunk is waiting for the worker
const RESPONSE_ACK = 3; // the worker consumed a non-final response chunk
const READING = 4; // the parent claimed a request chunk and is reading it (a worker waiting on the chunk waits on)
const CLAIMED = 5; // the worker took back its staged message to send it with a request

/** Room a staged message leaves in the buffer for the request that will carry it (an `IDLE_OP`, a few dozen bytes). */
const STAGED_REQUEST_ROOM_BYTES = 1024;
/** Default data capacity: large enough that a typical batch of documents travels in one chunk. */
export const DEFAULT_CHANNEL_BYTES = 1024 * 1024;
/** Default time the parent blocks in `Atomics.wait` for the next request before it parks (see `SyncChannelServer`). */
export const DEFAULT_BLOCK_US = 2_000;
/** Longest the parent parks in one `Atomics.waitAsync` before it re-reads the state. */
const WAIT_SLICE_MS = 50;
/**
 * The slice between calls (see `parkNextWait`): nothing is expected then, and an idle runner waking 20 times a second
 * for nothing is CPU an idle server should not spend (issue 14).
 */
const IDLE_WAIT_SLICE_MS = 1_000;
/** Hard cap on one message (request or response), so a runaway payload fails instead of exhausting memory. */
export const MAX_CHANNEL_MESSAGE_BYTES = 64 * 1024 * 1024;

/** Allocates the shared buffer for a channel with `capacityBytes` of chunk data. */
export function createChannelBuffer(capacityBytes = DEFAULT_CHANNEL_BYTES): SharedArrayBuffer {
  return new SharedArrayBuffer(HEADER_BYTES + capacityBytes);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Copies the chunk of `bytes` that starts at `offset` into the shared buffer, publishes it as `chunkState` (with its
 * size and whether more follow) and wakes the other side. Returns the offset after the chunk. Both directions send
 * this way; an empty message is one empty chunk.
 */
function publishChunk(
  state: Int32Array,
  data: Uint8Array,
  bytes: Uint8Array,
  offset: number,
  chunkState: number,
): number {
  const chunkBytes = Math.min(data.length, bytes.length - offset);
  data.set(bytes.subarray(offset, offset + chunkBytes));
  const next = offset + chunkBytes;
  state[CHUNK_BYTES] = chunkBytes;
  state[MORE_CHUNKS] = next < bytes.length ? 1 : 0;
  Atomics.store(state, STATE, chunkState);
  Atomics.notify(state, STATE);
  return next;
}

/** Worker side: sends a request and blocks until the parent's response arrives. */
export class SyncChannelClient {
  readonly #state: Int32Array;
  readonly #data: Uint8Array;
  /** Bytes of the staged message in the buffer (see `stage`), or 0 when none is. */
  #stagedBytes = 0;

  constructor(buffer: SharedArrayBuffer) {
    this.#state = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    this.#data = new Uint8Array(buffer, HEADER_BYTES);
  }

  /**
   * Sends `request` and returns the response text. Blocks the calling thread. A staged message the parent has not
   * taken yet travels in front of it, in the same chunk when both fit.
   */
  call(request: string): string {
    if (this.#stagedBytes > 0 && this.#sendWithStaged(request)) return this.#receive();
    this.#publish(request, false);
    return this.#receive();
  }

  /**
   * Writes the one-way `message` without waking the parent (see the module comment). Returns false, having done
   * nothing, when it does not fit in one chunk with room for a request after it (then `send` it).
   */
  stage(message: string): boolean {
    const bytes = encoder.encode(message);
    if (bytes.length + STAGED_REQUEST_ROOM_BYTES > this.#data.length) return false;
    this.#awaitIdle();
    this.#data.set(bytes);
    this.#state[CHUNK_BYTES] = bytes.length;
    this.#state[MORE_CHUNKS] = 0;
    this.#state[ONE_WAY] = 1;
    this.#state[STAGED_BYTES] = 0;
    Atomics.store(this.#state, STATE, REQUEST_CHUNK);
    this.#stagedBytes = bytes.length;
    return true;
  }

  /**
   * Takes back the staged message, if the parent has not claimed it, and sends it with `request` as one chunk.
   * Returns false when it could not (the parent took it, or `request` does not fit): `request` then goes alone.
   */
  #sendWithStaged(request: string): boolean {
    const stagedBytes = this.#stagedBytes;
    this.#stagedBytes = 0;
    const bytes = encoder.encode(request);
    if (stagedBytes + bytes.length > this.#data.length) {
      Atomics.notify(this.#state, STATE); // the parent takes the staged message alone; `request` waits for that
      return false;
    }
    if (Atomics.compareExchange(this.#state, STATE, REQUEST_CHUNK, CLAIMED) !== REQUEST_CHUNK) return false;
    this.#data.set(bytes, stagedBytes);
    this.#state[CHUNK_BYTES] = stagedBytes + bytes.length;
    this.#state[MORE_CHUNKS] = 0;
    this.#state[ONE_WAY] = 0;
    this.#state[STAGED_BYTES] = stagedBytes;
    Atomics.store(this.#state, STATE, REQUEST_CHUNK);
    Atomics.notify(this.#state, STATE);
    return true;
  }

  /** Waits until the parent has taken what the buffer holds (a staged message is first handed to it). */
  #awaitIdle(): void {
    if (this.#stagedBytes > 0) {
      this.#stagedBytes = 0;
      Atomics.notify(this.#state, STATE);
    }
    this.#waitUntil((state) => state === IDLE);
  }

  /**
   * Blocks until the state satisfies `done`. Each wait is on the value just looked at: waiting on a second read could
   * take a change that arrived in between (its wake-up already sent) as the value to wait on, and sleep for good.
   */
  #waitUntil(done: (state: number) => boolean): void {
    for (let state = Atomics.load(this.#state, STATE); !done(state); state = Atomics.load(this.#state, STATE)) {
      Atomics.wait(this.#state, STATE, state);
    }
  }

  /**
   * Sends `message`, which gets no response: returns once its last chunk is in the buffer, without waiting for the
   * parent to take it (the next `call` or `send` waits for that).
   */
  send(message: string): void {
    this.#publish(message, true);
  }

  #publish(message: string, oneWay: boolean): void {
    const bytes = encoder.encode(message);
    if (bytes.length > MAX_CHANNEL_MESSAGE_BYTES) {
      throw new Error(`Syscall request of ${bytes.length} bytes exceeds ${MAX_CHANNEL_MESSAGE_BYTES} bytes`);
    }
    // A one-way message sent before may still be in the buffer.
    this.#awaitIdle();
    this.#state[ONE_WAY] = oneWay ? 1 : 0;
    this.#state[STAGED_BYTES] = 0;
    let offset = 0;
    for (;;) {
      offset = publishChunk(this.#state, this.#data, bytes, offset, REQUEST_CHUNK);
      const last = offset >= bytes.length;
      if (last && oneWay) return;
      // Wait until the parent has taken the chunk (IDLE = ack) or, after the last one, started answering.
      this.#waitUntil((state) => state !== REQUEST_CHUNK && state !== READING);
      if (last) return;
    }
  }

  #receive(): string {
    const parts: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      this.#waitUntil((state) => state === RESPONSE_CHUNK);
      const chunk = this.#state[CHUNK_BYTES];
      const more = this.#state[MORE_CHUNKS] === 1;
      // slice() copies out of shared memory: TextDecoder refuses shared views.
      parts.push(this.#data.slice(0, chunk));
      total += chunk;
      if (!more) {
        Atomics.store(this.#state, STATE, IDLE);
        break;
      }
      Atomics.store(this.#state, STATE, RESPONSE_ACK);
      Atomics.notify(this.#state, STATE);
    }
    return decoder.decode(parts.length === 1 ? parts[0] : concatBytes(parts, total));
  }
}

/** Parent side: serves requests one at a time until `close()`. */
export class SyncChannelServer {
  readonly #state: Int32Array;
  readonly #data: Uint8Array;
  readonly #blockMs: number;
  readonly #onBlockTimedOut: () => void;
  #closed = false;
  /**
   * Whether waits park in `Atomics.waitAsync` (the event loop stays free) rather than block first: true while no
   * request is expected (between executions, or after a blocking wait timed out), false from `expectRequests()` or a
   * request on.
   */
  #parked = true;
  /** Whether a wait is parked in `Atomics.waitAsync` now (only `expectRequests` needs to wake it early). */
  #asyncWaiting = false;
  /** The current slice of a parked wait: WAIT_SLICE_MS, or IDLE_WAIT_SLICE_MS between calls (and before the first). */
  #sliceMs = IDLE_WAIT_SLICE_MS;
  #stagedCarried = 0;

  /**
   * `blockUs`: how long to block the thread in `Atomics.wait` for the next request before parking in
   * `Atomics.waitAsync`. While an execution runs the runner's main thread has nothing else to do, and user code
   * usually issues its next syscall within microseconds: a blocked thread wakes on the futex in a few µs and burns no
   * CPU, where a waitAsync wake-up costs ~35 µs of event-loop work and a busy poll burns a core the server and the
   * other runners need (issue 14). Bounded, so the event loop (watchdog, messages) still runs during long user code.
   */
  constructor(
    buffer: SharedArrayBuffer,
    options: {
      blockUs?: number;
      /** Older name of `blockUs`. */
      spinUs?: number;
      /** Called when a blocking wait ended without a request (the channel parks from then on). */
      onBlockTimedOut?: () => void;
    } = {},
  ) {
    this.#state = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    this.#data = new Uint8Array(buffer, HEADER_BYTES);
    this.#blockMs = (options.blockUs ?? options.spinUs ?? DEFAULT_BLOCK_US) / 1000;
    this.#onBlockTimedOut = options.onBlockTimedOut ?? (() => {});
  }

  /**
   * Serves requests with `handler` until `close()` is called. The handler must not throw: it encodes failures in its
   * response text. Resolves when closed.
   */
  async serve(handler: (request: string) => string | Promise<string>): Promise<void> {
    while (!this.#closed) {
      const received = await this.#receive();
      if (received === null) return;
      // A request in hand: the next one usually follows within microseconds (unless the handler parks the channel).
      this.#parked = false;
      this.#sliceMs = WAIT_SLICE_MS;
      // A staged one-way message comes first, as if it had been sent alone before the request.
      if (received.staged !== null) {
        this.#stagedCarried++;
        await handler(received.staged);
      }
      // A one-way message's handler is still awaited before the next wait: it may hold that wait back on purpose.
      const response = await handler(received.message);
      if (!received.oneWay) await this.#send(response);
    }
  }

  /** How many staged messages arrived carried by a request rather than alone (for tests and benchmarks). */
  get stagedCarried(): number {
    return this.#stagedCarried;
  }

  /**
   * Makes the following waits park at once instead of blocking: call it while handling a request that no other
   * request follows soon (the end of an execution), so the thread's event loop is free right away. `untilNextCall`:
   * nothing is expected before the next call starts (`expectRequests` or a request ends it), so the parked wait
   * re-reads the state once a second rather than 20 times.
   */
  parkNextWait(untilNextCall = false): void {
    this.#parked = true;
    if (untilNextCall) this.#sliceMs = IDLE_WAIT_SLICE_MS;
  }

  /**
   * Requests will follow soon (an execution was just handed to the worker): a parked wait turns into a blocking one,
   * so the execution's first syscall is picked up on the futex instead of through the event loop.
   */
  expectRequests(): void {
    this.#sliceMs = WAIT_SLICE_MS;
    if (!this.#parked) return;
    this.#parked = false;
    // Wakes the pending waitAsync, if one is pending: a notify wakes every waiter on the state, and a worker parked on
    // the channel waits there for the execution this thread is about to hand it (a wake-up for nothing, issue 14).
    if (this.#asyncWaiting) Atomics.notify(this.#state, STATE);
  }

  /** Stops serving after the current request (wakes a pending wait). */
  close(): void {
    this.#closed = true;
    // A worker never blocks on IDLE, so waking the parent's own waiter this way is harmless.
    Atomics.notify(this.#state, STATE);
  }

  async #waitFor(wanted: number): Promise<boolean> {
    for (;;) {
      if (this.#closed) return false;
      const current = Atomics.load(this.#state, STATE);
      if (current === wanted) return true;
      if (!this.#parked && this.#blockMs > 0) {
        // A bounded blocking wait (see the constructor); after one that timed out, user code is busy for a while:
        // park, so the event loop runs (watchdog, messages) until the next request.
        if (Atomics.wait(this.#state, STATE, current, this.#blockMs) === "timed-out") {
          this.#parked = true;
          this.#onBlockTimedOut();
        }
        continue;
      }
      // Bounded: a wakeup that never arrives (seen once as a hang of the channel's unit test) costs one slice, not
      // the call; the state is re-read either way.
      const waiter = Atomics.waitAsync(this.#state, STATE, current, this.#sliceMs);
      if (!waiter.async) continue;
      this.#asyncWaiting = true;
      try {
        await waiter.value;
      } finally {
        this.#asyncWaiting = false;
      }
    }
  }

  async #receive(): Promise<{ message: string; oneWay: boolean; staged: string | null } | null> {
    const parts: Uint8Array[] = [];
    let total = 0;
    let oneWay = false;
    let stagedBytes = 0;
    for (;;) {
      if (!await this.#waitFor(REQUEST_CHUNK)) return null;
      // Claimed first: a staged chunk may be taken back by the worker at the same moment (it then re-sends it).
      if (Atomics.compareExchange(this.#state, STATE, REQUEST_CHUNK, READING) !== REQUEST_CHUNK) continue;
      const chunk = this.#state[CHUNK_BYTES];
      const more = this.#state[MORE_CHUNKS] === 1;
      if (parts.length === 0) stagedBytes = this.#state[STAGED_BYTES];
      parts.push(this.#data.slice(0, chunk));
      total += chunk;
      oneWay = !more && this.#state[ONE_WAY] === 1;
      // The chunk is copied out: the worker may write the next one (no response will use the buffer after a one-way).
      if (!more && !oneWay) break;
      Atomics.store(this.#state, STATE, IDLE);
      Atomics.notify(this.#state, STATE);
      if (!more) break;
    }
    const bytes = parts.length === 1 ? parts[0] : concatBytes(parts, total);
    if (stagedBytes === 0) return { message: decoder.decode(bytes), oneWay, staged: null };
    return {
      message: decoder.decode(bytes.subarray(stagedBytes)),
      oneWay,
      staged: decoder.decode(bytes.subarray(0, stagedBytes)),
    };
  }

  async #send(response: string): Promise<void> {
    let bytes = encoder.encode(response);
    if (bytes.length > MAX_CHANNEL_MESSAGE_BYTES) {
      // The worker is waiting for an answer no matter what: send an error it can surface to user code.
      bytes = encoder.encode(errorResponse(`Syscall result of ${bytes.length} bytes exceeds the channel limit`));
    }
    let offset = 0;
    for (;;) {
      offset = publishChunk(this.#state, this.#data, bytes, offset, RESPONSE_CHUNK);
      if (offset >= bytes.length) return;
      if (!await this.#waitFor(RESPONSE_ACK)) return;
    }
  }
}

/** The response text for a failure (see `encodeResponse`). */
export function errorResponse(message: string, data?: unknown): string {
  return "E" + JSON.stringify({ message, data });
}

/** The response text for a success: `"O"` + the result JSON. */
export function okResponse(resultJson: string): string {
  return "O" + resultJson;
}

/** A decoded channel response. */
export type ChannelResponse = { ok: true; resultJson: string } | { ok: false; message: string; data?: unknown };

/** Decodes a response built by `okResponse` / `errorResponse`. */
export function decodeResponse(response: string): ChannelResponse {
  if (response.charCodeAt(0) === 79 /* O */) return { ok: true, resultJson: response.slice(1) };
  const { message, data } = JSON.parse(response.slice(1)) as { message: string; data?: unknown };
  return data === undefined ? { ok: false, message } : { ok: false, message, data };
}

/**
 * Request text: the op, a newline, the component path of the frame that issued it (`""` for the app), a newline,
 * then the args JSON (ops and component paths never contain newlines).
 */
export function encodeRequest(op: string, argsJson: string, componentPath = ""): string {
  return op + "\n" + componentPath + "\n" + argsJson;
}

/** Splits a request built by `encodeRequest`. */
export function decodeRequest(request: string): { op: string; componentPath: string; argsJson: string } {
  const opEnd = request.indexOf("\n");
  const pathEnd = request.indexOf("\n", opEnd + 1);
  return {
    op: request.slice(0, opEnd),
    componentPath: request.slice(opEnd + 1, pathEnd),
    argsJson: request.slice(pathEnd + 1),
  };
}
