/**
 * The `Convex` global user code calls (convex-compat.md §4.1), routing each op to where it is answered:
 * - queries/mutations: the transaction on the runner's main thread, through the synchronous channel;
 * - actions: the server, through postMessage (several calls may be in flight);
 * - locally: `ctx.meta` (metadata.ts), `createFunctionHandle`, `runUdf`, and the ops denvex does not support yet.
 *
 * Every transaction call carries the component path of the frame that made it, so it runs in that namespace.
 */
import { encodeRequest, type SyncChannelClient } from "../sync_channel.ts";
import { syscallFailure } from "./error_format.ts";
import { currentExecution, currentFrame } from "./execution_state.ts";
import {
  ACTION_SERVER_OPS,
  isUnsupportedOp,
  TRANSACTION_ASYNC_OPS,
  TRANSACTION_SYNC_OPS,
  unsupportedMessage,
} from "./ops.ts";
import { QUERY_STREAM_BATCH_OP, QUERY_STREAM_FIRST_OP } from "./protocol.ts";
import { decodeStreamBatch, QueryStreams } from "./query_streams.ts";
import { checkScheduledReference, createFunctionHandle, runNestedFunction } from "./run_udf.ts";
import { isStorageJsOp, storageJsSyscall } from "./storage_js.ts";
import { isMetadataOp, localMetadataSyscall } from "./metadata.ts";
import { resultOf, SyscallBatch } from "./syscall_batch.ts";

/** Sends an action's syscall to the server and resolves with the result JSON. */
export type ServerCall = (op: string, argsJson: string) => Promise<string>;

/** The three entry points of the `Convex` global. */
export interface ConvexGlobal {
  syscall(op: string, argsJson: string): string;
  asyncSyscall(op: string, argsJson: string): Promise<string>;
  jsSyscall(op: string, args: Record<string, unknown>): unknown;
}

/** Routes syscalls of the execution in progress. */
export class SyscallRouter implements ConvexGlobal {
  readonly #channel: SyncChannelClient;
  readonly #serverCall: ServerCall;
  readonly streams = new QueryStreams();
  /** Asynchronous transaction syscalls waiting to cross together (syscall_batch.ts). */
  readonly #batch: SyscallBatch;

  constructor(channel: SyncChannelClient, serverCall: ServerCall) {
    this.#channel = channel;
    this.#serverCall = serverCall;
    this.#batch = new SyscallBatch((request) => channel.call(request));
  }

  /**
   * A synchronous call to the transaction, in the namespace of `componentPath` (default: the component of the frame
   * that issued it); throws an Error (with `data` for a ConvexError) on failure. Batched syscalls issued before it go
   * first, so the transaction sees every operation in the order user code issued it.
   */
  readonly transactionCall = (op: string, argsJson: string, componentPath?: string): string => {
    this.#batch.flush();
    const path = componentPath ?? currentFrame()?.componentPath ?? "";
    return resultOf(this.#channel.call(encodeRequest(op, argsJson, path)));
  };

  syscall(op: string, argsJson: string): string {
    const frame = currentFrame();
    if (frame === null) throw new Error(`Syscall ${op} made outside of a running function`);
    if (isUnsupportedOp(op)) throw new Error(unsupportedMessage(op));
    if (frame.udfType === "action") throw new Error(`Unknown operation ${op}`);
    if (!TRANSACTION_SYNC_OPS.has(op)) throw new Error(`Unknown operation ${op}`);
    if (op === "1.0/queryCleanup") return JSON.stringify(this.streams.cleanup(queryIdOf(argsJson)));
    if (op === "1.0/queryStream") {
      const first = decodeStreamBatch(this.transactionCall(QUERY_STREAM_FIRST_OP, argsJson, frame.componentPath));
      this.streams.open(first.queryId, first);
      return `{"queryId":${first.queryId}}`;
    }
    return this.transactionCall(op, argsJson, frame.componentPath);
  }

  asyncSyscall(op: string, argsJson: string): Promise<string> {
    try {
      // Scheduling through a child reference reaches only public functions, as calling does (run_udf.ts).
      const referenceCheck = checkScheduledReference(op, argsJson);
      if (referenceCheck !== null) return referenceCheck.then(() => this.#dispatchAsync(op, argsJson));
      const result = this.#dispatchAsync(op, argsJson);
      return typeof result === "string" ? Promise.resolve(result) : result;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #dispatchAsync(op: string, argsJson: string): string | Promise<string> {
    const frame = currentFrame();
    if (frame === null) throw syscallFailure(`Syscall ${op} made outside of a running function`);
    if (isUnsupportedOp(op)) throw syscallFailure(unsupportedMessage(op));
    if (isMetadataOp(op)) {
      const metadata = localMetadataSyscall(op, frame);
      if (metadata !== null) return metadata;
    }
    // Answered here for every kind of function: the frame knows its component, and resolving needs nothing else.
    if (op === "1.0/createFunctionHandle") return createFunctionHandle(argsJson);
    if (frame.udfType === "action") {
      if (ACTION_SERVER_OPS.has(op)) return this.#serverCall(op, argsJson);
      throw syscallFailure(`Unknown async operation ${op}`);
    }
    if (op === "1.0/runUdf") return runNestedFunction(argsJson, this.transactionCall);
    if (op === "1.0/queryStreamNext") {
      return this.streams.next(queryIdOf(argsJson), (queryId, batchSize) => {
        const args = `{"queryId":${queryId},"batchSize":${batchSize}}`;
        return decodeStreamBatch(this.transactionCall(QUERY_STREAM_BATCH_OP, args, frame.componentPath));
      });
    }
    if (TRANSACTION_ASYNC_OPS.has(op)) return this.#batch.add(op, argsJson, frame.componentPath);
    throw syscallFailure(`Unknown async operation ${op}`);
  }

  /** Sends the batched syscalls still waiting (at the end of an execution: none may be left behind). */
  flushBatch(): void {
    this.#batch.flush();
  }

  jsSyscall(op: string, args: Record<string, unknown>): unknown {
    if (currentExecution() === null) throw new Error(`Syscall ${op} made outside of a running function`);
    if (isStorageJsOp(op) && currentFrame()?.udfType === "action") return storageJsSyscall(op, args, this.#serverCall);
    if (isUnsupportedOp(op)) throw new Error(unsupportedMessage(op));
    throw new Error(`Unknown operation ${op}`);
  }
}

function queryIdOf(argsJson: string): number {
  return Number((JSON.parse(argsJson) as { queryId?: unknown }).queryId);
}
