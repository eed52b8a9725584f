/**
 * The syscalls the scheduler and storage add to every transaction (`1.0/schedule`, `1.0/storageGet`, ...), as the
 * wiring hands them to runner processes (main.ts `runner`), which run user transactions. Kept apart from the rest of
 * `server/` so a runner process loads only these layers, never the HTTP server.
 */
import type { TransactionSyscalls } from "../database/mod.ts";
import { SCHEDULER_TRANSACTION_SYSCALLS } from "../scheduler/mod.ts";
import { STORAGE_TRANSACTION_SYSCALLS } from "../storage/mod.ts";

/** Every extension syscall of a transaction, by op name. */
export const TRANSACTION_SYSCALLS: TransactionSyscalls = {
  ...SCHEDULER_TRANSACTION_SYSCALLS,
  ...STORAGE_TRANSACTION_SYSCALLS,
};
