/**
 * The scheduler syscalls of a transaction (convex-compat.md §4.4.4). `1.0/schedule` inserts a pending
 * `_scheduled_functions` document into the calling transaction, so a mutation that rolls back schedules nothing;
 * `1.0/cancel_job` marks a job canceled in the same way. Actions reach this code through a transaction of their own
 * on the server (action_ops.ts). The scheduler loop (scheduler.ts) runs what lands in the table.
 *
 * Components: a job lives in the `_scheduled_functions` of the component that scheduled it (the transaction's
 * namespace); a job whose function lives elsewhere (a handle into the app, a child reference) records that
 * component's path as `componentPath`, and runs there.
 */
import { jsonToValue, type JsonValue, parseConvexJsonText, type Value } from "../values/mod.ts";
import { resolveCallAddress } from "../functions/mod.ts";
import {
  MAX_FUNCTIONS_SCHEDULED,
  MAX_SCHEDULED_ARGS_BYTES,
  SCHEDULED_FUNCTIONS_TABLE,
  type SyscallArgs,
  SyscallError,
  type TableInfo,
  type Transaction,
  type TransactionSyscallContext,
  type TransactionSyscalls,
} from "../database/mod.ts";

/** The states of a job, as `state.kind` of its document. */
export type JobStateKind = "pending" | "inProgress" | "success" | "failed" | "canceled";

function badArgument(message: string): SyscallError {
  return new SyscallError("BadArgument", message);
}

/** What a job runs: a function path, and the component it belongs to when not the scheduling one. */
export interface ScheduledTarget {
  name: string;
  /** Set when the function lives in another component than the job's document (a handle, a child reference). */
  componentPath?: string;
}

/**
 * What a schedule call from a function of `callerPath` names: its address (a name, a child reference or a
 * `function://` handle) resolved relative to the caller. A name keeps its spelling, as before components.
 */
export function scheduledTarget(callerPath: string, args: SyscallArgs): ScheduledTarget {
  if (typeof args.name === "string" && args.name !== "") return { name: args.name };
  let resolved;
  try {
    resolved = resolveCallAddress(callerPath, args);
  } catch (error) {
    throw badArgument(`scheduler: ${error instanceof Error ? error.message : String(error)}`);
  }
  const name = resolved.udfPath;
  return resolved.componentPath === callerPath ? { name } : { name, componentPath: resolved.componentPath };
}

/** The function path a schedule call names (`name`, or a `function://` handle), for callers outside components. */
export function scheduledFunctionName(args: SyscallArgs): string {
  return scheduledTarget("", args).name;
}

function jobsTable(transaction: Transaction, op: string): TableInfo {
  if (transaction.udfType !== "mutation") {
    throw new SyscallError("ReadOnly", `${op} is not allowed in a query: only mutations and actions can schedule`);
  }
  const table = transaction.catalog.tableByName(SCHEDULED_FUNCTIONS_TABLE);
  if (!table) throw new SyscallError("TableMissing", `System table ${SCHEDULED_FUNCTIONS_TABLE} is missing`);
  return table;
}

/** `1.0/schedule`: resolves with the new job's ID as a JSON string. */
function schedule(context: TransactionSyscallContext, args: SyscallArgs): Promise<string> {
  const transaction = context.transaction;
  const table = jobsTable(transaction, "Scheduling");
  const target = scheduledTarget(transaction.componentPath, args);
  const tsSeconds = args.ts;
  if (typeof tsSeconds !== "number" || !Number.isFinite(tsSeconds)) {
    throw badArgument(`scheduler: the run time must be a finite number, got ${JSON.stringify(tsSeconds)}`);
  }
  const fnArgs = (args.args ?? {}) as JsonValue;
  if (fnArgs === null || typeof fnArgs !== "object" || Array.isArray(fnArgs)) {
    throw badArgument("scheduler: the scheduled function's args must be an object");
  }
  const scheduled = transaction.scheduled;
  if (scheduled.functions + 1 > MAX_FUNCTIONS_SCHEDULED) {
    throw new SyscallError(
      "TooManyFunctionsScheduled",
      `Too many functions scheduled by this mutation (limit: ${MAX_FUNCTIONS_SCHEDULED})`,
    );
  }
  const argsBytes = new TextEncoder().encode(JSON.stringify(fnArgs)).length;
  if (scheduled.argsBytes + argsBytes > MAX_SCHEDULED_ARGS_BYTES) {
    throw new SyscallError(
      "ScheduledFunctionsArgumentsTooLarge",
      `Too large total size of the arguments of scheduled functions from this mutation ` +
        `(limit: ${MAX_SCHEDULED_ARGS_BYTES} bytes)`,
    );
  }
  const id = transaction.newId(table);
  const document: Record<string, Value> = {
    _id: id,
    _creationTime: context.nextCreationTimeMs(),
    name: target.name,
    ...(target.componentPath === undefined ? {} : { componentPath: target.componentPath }),
    args: [jsonToValue(fnArgs)],
    scheduledTime: tsSeconds * 1000,
    state: { kind: "pending" },
  };
  transaction.write(table, id, null, document);
  scheduled.functions++;
  scheduled.argsBytes += argsBytes;
  return Promise.resolve(JSON.stringify(id));
}

/** `1.0/cancel_job`: a pending (or running action) job becomes canceled; finished jobs stay as they are. */
async function cancel(context: TransactionSyscallContext, args: SyscallArgs): Promise<string> {
  const transaction = context.transaction;
  const table = jobsTable(transaction, "Canceling a scheduled function");
  const id = args.id;
  if (typeof id !== "string" || !transaction.isIdOfTable(id, SCHEDULED_FUNCTIONS_TABLE)) {
    throw badArgument(`scheduler.cancel: ${JSON.stringify(id)} is not an ID of ${SCHEDULED_FUNCTIONS_TABLE}`);
  }
  const before = await transaction.readDocument(table, id);
  if (!before) throw badArgument(`scheduler.cancel: scheduled function ${id} not found`);
  const current = (before.value ?? parseConvexJsonText(before.json)) as Record<string, Value>;
  const kind = (current.state as { kind?: unknown } | null)?.kind;
  if (kind !== "pending" && kind !== "inProgress") return "null";
  const next: Record<string, Value> = { ...current, state: { kind: "canceled" }, completedTime: Date.now() };
  transaction.write(table, id, before, next);
  return "null";
}

/** The scheduler's transaction syscalls, by op name. */
export const SCHEDULER_TRANSACTION_SYSCALLS: TransactionSyscalls = {
  "1.0/schedule": schedule,
  "1.0/cancel_job": cancel,
};
