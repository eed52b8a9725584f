/**
 * Calls a runner process makes to the server on its own behalf (table creation, blob bytes for storage syscalls), as
 * opposed to the calls of an action's code it relays. They get negative call IDs, which keeps their answers apart from
 * the worker's. Private to the runner (runner.ts).
 */
import { SyscallError } from "../database/mod.ts";
import type { FromRunnerMessage, RunnerCallResultMessage } from "./runner_protocol.ts";

/** Most calls in flight. */
const MAX_OWN_CALLS = 64;

/** See the module comment. */
export class OwnCalls {
  readonly #send: (message: FromRunnerMessage) => Promise<void>;
  readonly #pending = new Map<number, { resolve(json: string): void; reject(error: Error): void }>();
  #nextCallId = -1;

  constructor(send: (message: FromRunnerMessage) => Promise<void>) {
    this.#send = send;
  }

  /** Sends `op` to the server for the execution `executionId`; resolves with its result JSON. */
  call(executionId: string, op: string, argsJson: string): Promise<string> {
    if (this.#pending.size >= MAX_OWN_CALLS) return Promise.reject(new Error("Too many pending calls"));
    const callId = this.#nextCallId--;
    return new Promise((resolve, reject) => {
      this.#pending.set(callId, { resolve, reject });
      this.#send({ type: "call", executionId, callId, op, argsJson }).catch(reject);
    });
  }

  /** Settles the call `message` answers; false when it answers a call of the worker instead. */
  settle(message: RunnerCallResultMessage): boolean {
    if (message.callId >= 0) return false;
    const pending = this.#pending.get(message.callId);
    if (pending === undefined) return true;
    this.#pending.delete(message.callId);
    if (message.ok) pending.resolve(message.resultJson ?? "null");
    else pending.reject(new SyscallError("CallFailed", message.error?.message ?? "Call failed", message.error?.data));
    return true;
  }
}
