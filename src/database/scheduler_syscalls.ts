/**
 * The scheduler syscalls of a transaction (convex-compat.md §4.4.4). `1.0/schedule` inserts a pending
 * `_scheduled_functions` document into the transaction, so a mutation that rolls back schedules nothing;
 * `1.0/cancel_job` marks a job canceled in the same way. Actions reach this code through a transaction of their own
 * on the server (src/scheduler/action_ops.ts). The scheduler loop (src/scheduler/) runs what lands in the table.
 */
import { jsonToValue, parseConvexJsonText, type Value } from "../values/mod.ts";
import type { JsonValue } from "../values/types.ts";
import type { Transaction } from "./transaction.ts";
import { SyscallError, type TableInfo } from "./types.ts";

/** The system table of scheduled jobs. */
export const SCHEDULED_FUNCTIONS_TABLE = "_scheduled_functions";
/** Convex's limit on functions one transaction may schedule. */
export const MAX_FUNCTIONS_SCHEDULED = 1_000;
/** Limit on the total size of the args (convex-JSON bytes) one transaction may schedule. */
export const MAX_SCHEDULED_ARGS_BYTES = 8 * 1024 * 1024;

/** The states of a job, as `state.kind` of its document. */
export type JobStateKind = "pending" | "inProgress" | "success" | "failed" | "canceled";

// deno-lint-ignore no-explicit-any
type Args = Record<string, any>;

function badArgument(message: string): SyscallError {
  return new SyscallError("BadArgument", message);
}

/** The function path a schedule call names (`name`, or a `function://` handle). */
export function scheduledFunctionName(args: Args): string {
  if (typeof args.name === "string") return args.name;
  if (typeof args.functionHandle === "string" && args.functionHandle.startsWith("function://")) {
    return args.functionHandle.slice("function://".length);
  }
  if (typeof args.reference === "string") throw badArgument("Component function references are not supported");
  throw badArgument("scheduler: the call names no function");
}

/** The scheduler's per-transaction counters and its two syscalls. */
export class SchedulerSyscalls {
  readonly #transaction: Transaction;
  readonly #nextCreationTimeMs: () => number;
  /** Jobs scheduled by this transaction (`getTransactionMetrics().functionsScheduled`). */
  functionsScheduled = 0;
  /** Args bytes scheduled by this transaction (`getTransactionMetrics().scheduledFunctionArgsBytes`). */
  scheduledArgsBytes = 0;

  constructor(transaction: Transaction, nextCreationTimeMs: () => number) {
    this.#transaction = transaction;
    this.#nextCreationTimeMs = nextCreationTimeMs;
  }

  #table(op: string): TableInfo {
    if (this.#transaction.udfType !== "mutation") {
      throw new SyscallError("ReadOnly", `${op} is not allowed in a query: only mutations and actions can schedule`);
    }
    const table = this.#transaction.catalog.tableByName(SCHEDULED_FUNCTIONS_TABLE);
    if (!table) throw new SyscallError("TableMissing", `System table ${SCHEDULED_FUNCTIONS_TABLE} is missing`);
    return table;
  }

  /** `1.0/schedule`: resolves with the new job's ID as a JSON string. */
  schedule(args: Args): Promise<string> {
    const table = this.#table("Scheduling");
    const name = scheduledFunctionName(args);
    const tsSeconds = args.ts;
    if (typeof tsSeconds !== "number" || !Number.isFinite(tsSeconds)) {
      throw badArgument(`scheduler: the run time must be a finite number, got ${JSON.stringify(tsSeconds)}`);
    }
    const fnArgs = (args.args ?? {}) as JsonValue;
    if (fnArgs === null || typeof fnArgs !== "object" || Array.isArray(fnArgs)) {
      throw badArgument("scheduler: the scheduled function's args must be an object");
    }
    if (this.functionsScheduled + 1 > MAX_FUNCTIONS_SCHEDULED) {
      throw new SyscallError(
        "TooManyFunctionsScheduled",
        `Too many functions scheduled by this mutation (limit: ${MAX_FUNCTIONS_SCHEDULED})`,
      );
    }
    const argsBytes = new TextEncoder().encode(JSON.stringify(fnArgs)).length;
    if (this.scheduledArgsBytes + argsBytes > MAX_SCHEDULED_ARGS_BYTES) {
      throw new SyscallError(
        "ScheduledFunctionsArgumentsTooLarge",
        `Too large total size of the arguments of scheduled functions from this mutation ` +
          `(limit: ${MAX_SCHEDULED_ARGS_BYTES} bytes)`,
      );
    }
    const id = this.#transaction.newId(table);
    const document: Record<string, Value> = {
      _id: id,
      _creationTime: this.#nextCreationTimeMs(),
      name,
      args: [jsonToValue(fnArgs)],
      scheduledTime: tsSeconds * 1000,
      state: { kind: "pending" },
    };
    this.#transaction.write(table, id, null, document);
    this.functionsScheduled++;
    this.scheduledArgsBytes += argsBytes;
    return Promise.resolve(JSON.stringify(id));
  }

  /** `1.0/cancel_job`: a pending (or running action) job becomes canceled; finished jobs stay as they are. */
  async cancel(args: Args): Promise<string> {
    const table = this.#table("Canceling a scheduled function");
    const id = args.id;
    if (typeof id !== "string" || !this.#transaction.isIdOfTable(id, SCHEDULED_FUNCTIONS_TABLE)) {
      throw badArgument(`scheduler.cancel: ${JSON.stringify(id)} is not an ID of ${SCHEDULED_FUNCTIONS_TABLE}`);
    }
    const before = await this.#transaction.readDocument(table, id);
    if (!before) throw badArgument(`scheduler.cancel: scheduled function ${id} not found`);
    const current = (before.value ?? parseConvexJsonText(before.json)) as Record<string, Value>;
    const kind = (current.state as { kind?: unknown } | null)?.kind;
    if (kind !== "pending" && kind !== "inProgress") return "null";
    const next: Record<string, Value> = { ...current, state: { kind: "canceled" }, completedTime: Date.now() };
    this.#transaction.write(table, id, before, next);
    return "null";
  }
}
