/**
 * `ctx.scheduler` from actions (`1.0/actions/schedule`, `1.0/actions/cancel_job`): each call is a small transaction
 * of its own on the server, running the same syscall a mutation's transaction runs, committed (and retried on
 * conflicts) right away.
 */
import { type Database, parseSyscallArgs, SyscallError } from "../database/mod.ts";
import { SCHEDULER_TRANSACTION_SYSCALLS } from "./transaction_syscalls.ts";

/** The action ops this module answers. */
export const SCHEDULER_ACTION_OPS: ReadonlySet<string> = new Set(["1.0/actions/schedule", "1.0/actions/cancel_job"]);

const TRANSACTION_OP: Record<string, string> = {
  "1.0/actions/schedule": "1.0/schedule",
  "1.0/actions/cancel_job": "1.0/cancel_job",
};
/** Attempts before a conflicting cancel gives up (a schedule only inserts and never conflicts). */
const MAX_ATTEMPTS = 16;

/**
 * Runs one scheduler op of an action of the component at `componentPath` (default: the app), in that component's
 * namespace; resolves with the syscall's JSON result.
 */
export async function serveSchedulerActionOp(
  database: Database,
  op: string,
  argsJson: string,
  componentPath = "",
): Promise<string> {
  const transactionOp = TRANSACTION_OP[op];
  if (!transactionOp) throw new Error(`Unknown async operation ${op}`);
  for (let attempt = 1;; attempt++) {
    const transaction = database.begin("mutation");
    transaction.transaction.componentPath = componentPath;
    const handler = SCHEDULER_TRANSACTION_SYSCALLS[transactionOp];
    const resultJson = await handler(transaction.syscallContext(null), parseSyscallArgs(argsJson));
    try {
      await database.commit(transaction.outcome());
      return resultJson;
    } catch (error) {
      const conflict = error instanceof SyscallError && error.code === "OptimisticConcurrencyControlFailure";
      if (!conflict || attempt >= MAX_ATTEMPTS) throw error;
    }
  }
}
