/**
 * Syscalls other subsystems add to a transaction: the scheduler's `1.0/schedule` and `1.0/cancel_job`, storage's
 * `1.0/storageStore`, `1.0/storageGet`, ... Each is a handler registered by op name that runs against the calling
 * transaction, so what it writes commits or rolls back with that transaction. The database layer knows only this
 * interface; the wiring (the server, the runner process) fills it with the handlers of the layers above.
 */
import type { Transaction } from "./transaction.ts";
import { SyscallError } from "./types.ts";

/** Arguments of a syscall: a JSON object. */
// deno-lint-ignore no-explicit-any
export type SyscallArgs = Record<string, any>;

/** What a runner offers a syscall beyond its transaction: its link to the server (blob bytes, upload URLs). */
export interface SyscallServices {
  /** Sends an op to the server; resolves with its result JSON. */
  call(op: string, argsJson: string): Promise<string>;
  /** The API origin file URLs start with (CONVEX_CLOUD_URL). */
  readonly cloudUrl: string;
}

/** What an extension's syscall reaches of the calling transaction. */
export interface TransactionSyscallContext {
  readonly transaction: Transaction;
  /** A `_creationTime` later than every other this transaction handed out (inserts keep their order). */
  nextCreationTimeMs(): number;
  /** The runner's link to the server, or null for a transaction the server runs itself. */
  readonly services: SyscallServices | null;
}

/** Answers one syscall with its result JSON. */
export type TransactionSyscallHandler = (context: TransactionSyscallContext, args: SyscallArgs) => Promise<string>;

/** Handlers by op name, e.g. `{"1.0/schedule": …}`. */
export type TransactionSyscalls = Readonly<Record<string, TransactionSyscallHandler>>;

/** The handler of `op` among `syscalls`, or undefined. */
export function syscallHandler(syscalls: TransactionSyscalls, op: string): TransactionSyscallHandler | undefined {
  return Object.hasOwn(syscalls, op) ? syscalls[op] : undefined;
}

/** Parses a syscall's JSON arguments, which must be an object. */
export function parseSyscallArgs(argsJson: string): SyscallArgs {
  let args: unknown;
  try {
    args = JSON.parse(argsJson);
  } catch {
    throw new SyscallError("BadArgument", "syscall arguments are not valid JSON");
  }
  if (args === null || typeof args !== "object" || Array.isArray(args)) {
    throw new SyscallError("BadArgument", "syscall arguments must be an object");
  }
  return args as SyscallArgs;
}
