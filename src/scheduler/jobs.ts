/**
 * Scheduled jobs as the server sees them: `_scheduled_functions` documents read through the `by_next` index
 * (`state.kind`, then `scheduledTime`), and state changes made in system transactions that read the job document, so a
 * concurrent change (a cancel, another server's claim) makes one of them conflict and re-run. Every component instance
 * has its own `_scheduled_functions` (its namespace); readers and transactions here are views of one namespace.
 */
import type { JsonValue } from "../values/mod.ts";
import {
  type Database,
  type DocumentReader,
  type IndexInfo,
  SCHEDULED_FUNCTIONS_TABLE,
  type SystemTransaction,
} from "../database/mod.ts";
import type { JobStateKind } from "./transaction_syscalls.ts";

/** The index the scheduler scans. */
export const BY_NEXT_INDEX = `${SCHEDULED_FUNCTIONS_TABLE}.by_next`;

/** A job's state, as stored. */
export type JobState = { kind: Exclude<JobStateKind, "failed"> } | { kind: "failed"; error: string };

/** One job document at some snapshot. */
export interface Job {
  id: string;
  /** The component whose `_scheduled_functions` holds the job (`""`: the app). */
  namespace: string;
  name: string;
  /** The component the function runs in: the job's `componentPath` field, else its namespace. */
  componentPath: string;
  /** The args object (convex-JSON). */
  args: JsonValue;
  scheduledTimeMs: number;
  state: JobState;
}

/** The `by_next` index of the current catalog, in the namespace `namespace` (default: the app). */
export function byNextIndex(database: Database, namespace = ""): IndexInfo {
  const found = database.catalogView.forComponent(namespace).index(BY_NEXT_INDEX);
  if (!found) throw new Error(`System index ${BY_NEXT_INDEX} is missing`);
  return found.index;
}

function parseJob(id: string, json: string, namespace: string): Job {
  const document = JSON.parse(json) as {
    name: string;
    componentPath?: string;
    args: JsonValue[];
    scheduledTime: number;
    state: JobState;
  };
  return {
    id,
    namespace,
    name: document.name,
    componentPath: document.componentPath ?? namespace,
    args: document.args?.[0] ?? {},
    scheduledTimeMs: document.scheduledTime,
    state: document.state,
  };
}

/**
 * The job `id` as `reader` (a view of the namespace `namespace`) sees it, or null when it does not exist (deleted by
 * cleanup).
 */
export async function readJob(reader: DocumentReader, id: string, namespace = ""): Promise<Job | null> {
  const document = await reader.get(id);
  return document === null ? null : parseJob(id, document.json, namespace);
}

/**
 * Jobs in state `kind`, oldest `scheduledTime` first, as `reader` (a view of the namespace `namespace`) sees them.
 * `beforeMs` bounds the scheduled time (exclusive); at most `limit` jobs.
 */
export async function scanJobs(
  reader: DocumentReader,
  kind: JobStateKind,
  limit: number,
  beforeMs: number | null = null,
  namespace = "",
): Promise<Job[]> {
  const documents = await reader.scan(BY_NEXT_INDEX, {
    prefix: [kind],
    ...(beforeMs === null ? {} : { before: [kind, beforeMs] }),
    limit,
  });
  return documents.map((document) => parseJob(document.id, document.json, namespace));
}

/** Moves job `id` to `state` inside `tx`; terminal states get `completedTime`. */
export async function setJobState(tx: SystemTransaction, id: string, state: JobState): Promise<void> {
  const terminal = state.kind !== "pending" && state.kind !== "inProgress";
  await tx.patch(id, terminal ? { state, completedTime: Date.now() } : { state });
}

/** How often a state change is retried after conflicts before giving up. */
const MAX_TRANSITION_ATTEMPTS = 16;

/**
 * Moves job `id` (of the namespace `namespace`, default the app) from state `from` to `to` in a commit of its own.
 * Resolves true when this call made the change, false when the job was not in state `from` (canceled, already
 * claimed, deleted).
 */
export async function transitionJob(
  database: Database,
  id: string,
  from: JobStateKind,
  to: JobState,
  namespace = "",
): Promise<boolean> {
  const { value } = await database.runSystemTransaction(async (tx) => {
    const job = await readJob(tx, id, namespace);
    if (!job || job.state.kind !== from) return false;
    await setJobState(tx, id, to);
    return true;
  }, {
    maxAttempts: MAX_TRANSITION_ATTEMPTS,
    label: `scheduler: moving job ${id} to ${to.kind}`,
    componentPath: namespace,
  });
  return value;
}
