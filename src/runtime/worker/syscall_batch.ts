/**
 * Batching of a query's or mutation's asynchronous syscalls (issue 14): the ones user code issues in one synchronous
 * stretch, such as `Promise.all(ids.map((id) => ctx.db.get(id)))`, cross to the runner's main thread as one
 * `BATCH_OP` request instead of one blocking round trip each (runtime_bench section 2b: ~40 µs per get batched against
 * ~75 µs alone).
 *
 * Order is kept: a batch is sent before any later transaction call (`SyscallRouter.transactionCall` flushes first),
 * its requests run one after another in the order they were issued, and each gets its own answer, so the transaction
 * sees exactly the sequence of operations it saw when every call crossed at once. Only when the operations run moves:
 * to the end of the synchronous stretch that issued them (a queued microtask), or the execution's end.
 *
 * Private to `src/runtime`: other folders use its `mod.ts`.
 */
import { decodeResponse, encodeRequest } from "../sync_channel.ts";
import { syscallFailure } from "./error_format.ts";
import type { JsonValue } from "../../values/mod.ts";

/** Channel op of a batch. Args: `encodeParts` of the requests (`encodeRequest`); answer: `encodeParts` of responses. */
export const BATCH_OP = "$batch";
/**
 * Most requests in one batch; the next one starts a new batch. A `1.0/get` may answer up to a 1 MiB document, so 32
 * answers stay well inside the channel's 64 MiB message cap (MAX_CHANNEL_MESSAGE_BYTES).
 */
export const MAX_BATCH_REQUESTS = 32;

/**
 * Joins strings into one: their count and UTF-16 lengths on the first line, then the strings back to back. Unlike a
 * JSON array, it leaves the JSON inside the parts unescaped.
 */
export function encodeParts(parts: readonly string[]): string {
  let lengths = "";
  for (let i = 0; i < parts.length; i++) lengths += (i === 0 ? "" : ",") + parts[i].length;
  return lengths + "\n" + parts.join("");
}

const DIGITS = /^[0-9]{1,15}$/;

/** Splits a string built by `encodeParts`; throws on one that is not. */
export function decodeParts(text: string): string[] {
  const headerEnd = text.indexOf("\n");
  if (headerEnd < 0) throw new Error("Malformed syscall batch: no header");
  const header = text.slice(0, headerEnd);
  const parts: string[] = [];
  let offset = headerEnd + 1;
  for (const field of header === "" ? [] : header.split(",")) {
    const length = DIGITS.test(field) ? Number(field) : NaN;
    if (!Number.isSafeInteger(length) || offset + length > text.length) {
      throw new Error("Malformed syscall batch: bad part length");
    }
    parts.push(text.slice(offset, offset + length));
    offset += length;
  }
  if (offset !== text.length) throw new Error("Malformed syscall batch: trailing bytes");
  return parts;
}

/** As loaded: user code may replace the global during its call, and the batch must still flush. */
const enqueueMicrotask = globalThis.queueMicrotask;

/** Sends one request over the channel and returns the raw response (`okResponse` / `errorResponse` text). */
export type RawChannelCall = (request: string) => string;

interface PendingSyscall {
  request: string;
  resolve(resultJson: string): void;
  reject(error: Error): void;
}

/** See the module comment. One per worker; holds requests only while an execution runs. */
export class SyscallBatch {
  readonly #call: RawChannelCall;
  #pending: PendingSyscall[] = [];
  #flushQueued = false;
  readonly #flushSoon = () => {
    this.#flushQueued = false;
    this.flush();
  };

  constructor(call: RawChannelCall) {
    this.#call = call;
  }

  /** Queues `op` for the batch; resolves with its result JSON, rejects with its failure. */
  add(op: string, argsJson: string, componentPath: string): Promise<string> {
    const { promise, resolve, reject } = Promise.withResolvers<string>();
    this.#pending.push({ request: encodeRequest(op, argsJson, componentPath), resolve, reject });
    if (this.#pending.length >= MAX_BATCH_REQUESTS) this.flush();
    else if (!this.#flushQueued) {
      this.#flushQueued = true;
      enqueueMicrotask(this.#flushSoon);
    }
    return promise;
  }

  /** Sends the queued requests, if any, and settles their promises. */
  flush(): void {
    const batch = this.#pending;
    if (batch.length === 0) return;
    this.#pending = [];
    let responses: string[];
    try {
      responses = batch.length === 1
        ? [this.#call(batch[0].request)]
        : decodeParts(resultOf(this.#call(encodeRequest(BATCH_OP, encodeParts(batch.map((p) => p.request))))));
      if (responses.length !== batch.length) throw new Error("Syscall batch answered with the wrong count");
    } catch (error) {
      const failure = error instanceof Error ? error : new Error(String(error));
      for (const pending of batch) pending.reject(failure);
      return;
    }
    for (let i = 0; i < batch.length; i++) settle(batch[i], responses[i]);
  }
}

/** The result JSON of a channel response (`okResponse` / `errorResponse` text); throws its failure. */
export function resultOf(response: string): string {
  const decoded = decodeResponse(response);
  if (decoded.ok) return decoded.resultJson;
  throw syscallFailure(decoded.message, decoded.data as JsonValue | undefined);
}

function settle(pending: PendingSyscall, response: string): void {
  let resultJson: string;
  try {
    resultJson = resultOf(response);
  } catch (error) {
    return pending.reject(error as Error);
  }
  pending.resolve(resultJson);
}
