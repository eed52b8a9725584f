/**
 * Scheduled jobs as the server sees them: `_scheduled_functions` documents read straight from persistence through
 * the `by_next` index (`state.kind`, then `scheduledTime`), and state changes built as hand-made commits that read
 * the job document, so a concurrent change (a cancel, another server's claim) makes one of them conflict.
 */
import { encodeIndexKey, prefixSuccessor } from "../values/mod.ts";
import type { JsonValue } from "../values/types.ts";
import {
  type Database,
  documentReadRange,
  type DocumentWrite,
  type IndexInfo,
  type JobStateKind,
  type ReadRange,
  SCHEDULED_FUNCTIONS_TABLE,
  SyscallError,
  type TableInfo,
} from "../database/mod.ts";

/** The index the scheduler scans. */
export const BY_NEXT_INDEX = `${SCHEDULED_FUNCTIONS_TABLE}.by_next`;

/** A job's state, as stored. */
export type JobState = { kind: Exclude<JobStateKind, "failed"> } | { kind: "failed"; error: string };

/** One job document at some revision. */
export interface Job {
  id: string;
  /** The document's convex-JSON text and its revision ts (the previous revision of a state change). */
  json: string;
  ts: bigint;
  name: string;
  /** The args object (convex-JSON). */
  args: JsonValue;
  scheduledTimeMs: number;
  state: JobState;
}

function jobsTable(database: Database): TableInfo {
  const table = database.catalogView.tableByName(SCHEDULED_FUNCTIONS_TABLE);
  if (!table) throw new Error(`System table ${SCHEDULED_FUNCTIONS_TABLE} is missing`);
  return table;
}

/** The `by_next` index of the current catalog. */
export function byNextIndex(database: Database): IndexInfo {
  const found = database.catalogView.index(BY_NEXT_INDEX);
  if (!found) throw new Error(`System index ${BY_NEXT_INDEX} is missing`);
  return found.index;
}

function parseJob(id: string, json: string, ts: bigint): Job {
  const document = JSON.parse(json) as {
    name: string;
    args: JsonValue[];
    scheduledTime: number;
    state: JobState;
  };
  return {
    id,
    json,
    ts,
    name: document.name,
    args: document.args?.[0] ?? {},
    scheduledTimeMs: document.scheduledTime,
    state: document.state,
  };
}

/** The job `id` at `snapshotTs`, or null when it does not exist (deleted by cleanup). */
export async function readJob(database: Database, id: string, snapshotTs: bigint): Promise<Job | null> {
  const revision = await database.persistence.getDocument(id, snapshotTs);
  if (!revision || revision.json === null) return null;
  return parseJob(id, revision.json, revision.ts);
}

/**
 * Jobs in state `kind`, oldest `scheduledTime` first, at the latest snapshot. `beforeMs` bounds the scheduled time
 * (exclusive); at most `limit` jobs.
 */
export async function scanJobs(
  database: Database,
  kind: JobStateKind,
  limit: number,
  beforeMs: number | null = null,
): Promise<Job[]> {
  const prefix = encodeIndexKey([kind]);
  const rows = await database.persistence.scanIndex({
    indexId: byNextIndex(database).indexId,
    lowKey: prefix,
    highKey: beforeMs === null ? prefixSuccessor(prefix) : encodeIndexKey([kind, beforeMs]),
    order: "asc",
    snapshotTs: database.latestTs,
    limit,
  });
  const jobs: Job[] = [];
  for (const row of rows) {
    if (row.document.json !== null) jobs.push(parseJob(row.document.id, row.document.json, row.document.ts));
  }
  return jobs;
}

/** The read of one job document by ID: a commit carrying it conflicts with any other change to that job. */
export function jobRead(database: Database, id: string): ReadRange {
  return documentReadRange(jobsTable(database), id);
}

/** The write moving `job` (as read) to `state`; terminal states get `completedTime`. */
export function stateWrite(database: Database, job: Job, state: JobState): DocumentWrite {
  const document = JSON.parse(job.json) as Record<string, JsonValue>;
  document.state = state;
  if (state.kind !== "pending" && state.kind !== "inProgress") document.completedTime = Date.now();
  return {
    id: job.id,
    tableNumber: jobsTable(database).tableNumber,
    previousJson: job.json,
    previousTs: job.ts.toString(),
    json: JSON.stringify(document),
  };
}

/** The write deleting `job` (cleanup of old finished jobs). */
export function deleteWrite(database: Database, job: Job): DocumentWrite {
  return {
    id: job.id,
    tableNumber: jobsTable(database).tableNumber,
    previousJson: job.json,
    previousTs: job.ts.toString(),
    json: null,
  };
}

/** How often a state change is retried after conflicts before giving up. */
const MAX_TRANSITION_ATTEMPTS = 16;

/**
 * Moves job `id` from state `from` to `to` in a commit of its own. Resolves true when this call made the change,
 * false when the job was not in state `from` (canceled, already claimed, deleted).
 */
export async function transitionJob(
  database: Database,
  id: string,
  from: JobStateKind,
  to: JobState,
): Promise<boolean> {
  for (let attempt = 1;; attempt++) {
    const snapshotTs = database.latestTs;
    const job = await readJob(database, id, snapshotTs);
    if (!job || job.state.kind !== from) return false;
    try {
      await database.commit({
        snapshotTs: snapshotTs.toString(),
        readSet: [jobRead(database, id)],
        writes: [stateWrite(database, job, to)],
        metrics: { bytesRead: job.json.length, bytesWritten: 0, documentsRead: 1, documentsWritten: 1 },
      });
      return true;
    } catch (error) {
      const conflict = error instanceof SyscallError && error.code === "OptimisticConcurrencyControlFailure";
      if (!conflict || attempt >= MAX_TRANSITION_ATTEMPTS) throw error;
    }
  }
}
