/**
 * Durable mutation idempotency (convex-compat.md §2.6): the result of a mutation sent with a key (a sync client's
 * `(sessionId, requestId)`) is written in the same commit as the mutation, into the internal `_mutation_results`
 * table, under an ID derived from the key and the caller's identity. A repeat of the key by the same identity — after
 * a reconnect, even after a server restart — finds the record and returns the first result and commit ts instead of
 * running the mutation again. The same key from another identity is another request: it runs its own mutation.
 */
import { createHash } from "node:crypto";
import { encodeDocumentId } from "../values/mod.ts";
import { type Database, type StoredDocument, SYSTEM_TABLE_NUMBERS, type SystemTransaction } from "../database/mod.ts";

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
export function resultRecordId(key: string, owner: string): Promise<string> {
  // node:crypto hashes synchronously (~2 µs here); WebCrypto's digest is an async op whose completion waits for a
  // turn of the busy event loop, once per mutation sent over the sync protocol (issue 14).
  const digest = createHash("sha256").update(JSON.stringify([owner, key])).digest();
  const idBytes = new Uint8Array(digest.buffer, digest.byteOffset, 16);
  return Promise.resolve(encodeDocumentId(SYSTEM_TABLE_NUMBERS[RESULTS_TABLE], idBytes));
}

/** The record of `recordId` at `snapshotTs` (default: the latest), if the mutation already committed. */
export async function findResult(
  database: Database,
  recordId: string,
  snapshotTs?: bigint,
): Promise<RememberedResult | null> {
  return rememberedOf(await database.readSnapshot(snapshotTs).get(recordId));
}

/**
 * Records a result in `tx` (which rides in the mutation's commit), or returns the result already recorded at `tx`'s
 * snapshot: then another execution of the key committed after `findResult` looked and before this attempt's snapshot
 * was taken, and this attempt must not commit (exactly once). The insert under a chosen ID reads that ID, so two
 * concurrent executions of the same key conflict (the loser retries and finds the winner's record).
 */
export async function recordResult(
  tx: SystemTransaction,
  recordId: string,
  valueJson: string,
): Promise<RememberedResult | null> {
  const remembered = await resultAt(tx, recordId);
  if (remembered !== null) return remembered;
  await tx.insert(RESULTS_TABLE, { _id: recordId, _creationTime: Date.now(), result: valueJson });
  return null;
}

/** The record of `recordId` at `tx`'s snapshot (read through `tx`, so a sweep of it conflicts with the attempt). */
async function resultAt(tx: SystemTransaction, recordId: string): Promise<RememberedResult | null> {
  return rememberedOf(await tx.get(recordId));
}

function rememberedOf(document: StoredDocument | null): RememberedResult | null {
  // A record the transaction itself wrote (ts null) is not a committed result.
  if (document === null || document.ts === null) return null;
  const record = JSON.parse(document.json) as { result: string };
  return { valueJson: record.result, ts: document.ts };
}

/** Records deleted per sweep (one commit). */
const SWEEP_BATCH = 1_000;

/**
 * Deletes results older than `retentionMs`, one bounded commit at a time, so the internal table stays small.
 * Returns how many were deleted.
 */
export async function sweepResults(database: Database, retentionMs = MUTATION_RESULT_RETENTION_MS): Promise<number> {
  const { value } = await database.runSystemTransaction(async (tx) => {
    const expired = await tx.scan(`${RESULTS_TABLE}.by_creation_time`, {
      before: [Date.now() - retentionMs],
      limit: SWEEP_BATCH,
    });
    for (const record of expired) await tx.delete(record.id);
    return expired.length;
  }, { label: "idempotency: sweeping old mutation results" });
  return value;
}
