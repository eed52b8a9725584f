/**
 * Durable mutation idempotency (convex-compat.md §2.6): the result of a mutation sent with a key (a sync client's
 * `(sessionId, requestId)`) is written in the same commit as the mutation, into the internal `_mutation_results`
 * table, under an ID derived from the key and the caller's identity. A repeat of the key by the same identity — after
 * a reconnect, even after a server restart — finds the record and returns the first result and commit ts instead of
 * running the mutation again. The same key from another identity is another request: it runs its own mutation.
 */
import { encodeDocumentId, encodeIndexKey } from "../values/mod.ts";
import {
  type Database,
  documentReadRange,
  type DocumentWrite,
  type ReadRange,
  SYSTEM_TABLE_NUMBERS,
} from "../database/mod.ts";

const RESULTS_TABLE = "_mutation_results";
/** How long results are kept; a client re-sends only what was in flight when its socket dropped. */
export const MUTATION_RESULT_RETENTION_MS = 24 * 60 * 60 * 1000;

/** A remembered result. */
export interface RememberedResult {
  valueJson: string;
  ts: bigint;
}

/**
 * Who a key belongs to. A key is chosen by the client (a random `sessionId` plus a counter), so on its own it proves
 * nothing: two callers that send the same key are two different requests unless they are the same principal. The
 * owner is the caller's kind (admin or not) and its `tokenIdentifier`, which stays the same across token refreshes,
 * so a genuine re-send after a reconnect still finds its record.
 */
export function idempotencyOwner(identityJson: string | null, isAdmin: boolean): string {
  return JSON.stringify([isAdmin ? "admin" : "user", identityJson === null ? null : tokenIdentifierOf(identityJson)]);
}

function tokenIdentifierOf(identityJson: string): string {
  const identity = JSON.parse(identityJson) as { tokenIdentifier?: unknown };
  // Identities always carry one (src/auth/identity.ts); the whole identity is the fallback, never a shared value.
  return typeof identity.tokenIdentifier === "string" ? identity.tokenIdentifier : identityJson;
}

/**
 * The document ID the record of `key` sent by `owner` lives under: the SHA-256 of both, so every server finds it
 * without an index, and another owner's record is a different document (it runs its own mutation).
 */
export async function resultRecordId(key: string, owner: string): Promise<string> {
  const input = new TextEncoder().encode(JSON.stringify([owner, key]));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", input));
  return encodeDocumentId(SYSTEM_TABLE_NUMBERS[RESULTS_TABLE], digest.subarray(0, 16));
}

/** The record of `recordId` at the latest snapshot, if the mutation already committed. */
export async function findResult(database: Database, recordId: string): Promise<RememberedResult | null> {
  const revision = await database.persistence.getDocument(recordId, database.latestTs);
  if (!revision || revision.json === null) return null;
  const record = JSON.parse(revision.json) as { result: string };
  return { valueJson: record.result, ts: revision.ts };
}

/**
 * The write that records a result, and the read of the record's ID that makes two concurrent executions of the
 * same key conflict (the loser retries and finds the winner's record).
 */
export function recordResult(database: Database, recordId: string, valueJson: string): {
  write: DocumentWrite;
  read: ReadRange;
} {
  const table = database.catalogView.tableByName(RESULTS_TABLE)!;
  const document = { _id: recordId, _creationTime: Date.now(), result: valueJson };
  return {
    write: {
      id: recordId,
      tableNumber: table.tableNumber,
      previousJson: null,
      previousTs: null,
      json: JSON.stringify(document),
    },
    read: documentReadRange(table, recordId),
  };
}

/** Records deleted per sweep (one commit). */
const SWEEP_BATCH = 1_000;

/**
 * Deletes results older than `retentionMs`, one bounded commit at a time, so the internal table stays small.
 * Returns how many were deleted.
 */
export async function sweepResults(database: Database, retentionMs = MUTATION_RESULT_RETENTION_MS): Promise<number> {
  const table = database.catalogView.tableByName(RESULTS_TABLE)!;
  const byCreationTime = table.indexes[1];
  const snapshotTs = database.latestTs;
  const rows = await database.persistence.scanIndex({
    indexId: byCreationTime.indexId,
    lowKey: new Uint8Array(),
    highKey: encodeIndexKey([Date.now() - retentionMs]),
    order: "asc",
    snapshotTs,
    limit: SWEEP_BATCH,
  });
  const writes: DocumentWrite[] = [];
  const readSet: ReadRange[] = [];
  for (const row of rows) {
    if (row.document.json === null) continue;
    writes.push({
      id: row.document.id,
      tableNumber: table.tableNumber,
      previousJson: row.document.json,
      previousTs: row.document.ts.toString(),
      json: null,
    });
    readSet.push(documentReadRange(table, row.document.id));
  }
  if (writes.length === 0) return 0;
  const metrics = { bytesRead: 0, bytesWritten: 0, documentsRead: writes.length, documentsWritten: writes.length };
  await database.commit({ snapshotTs: snapshotTs.toString(), readSet, writes, metrics });
  return writes.length;
}
