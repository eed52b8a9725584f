/**
 * Durable mutation idempotency (convex-compat.md §2.6): the result of a mutation sent with a key (a sync client's
 * `(sessionId, requestId)`) is written in the same commit as the mutation, as a keyed row (src/database/
 * mutation_results.ts), under a hash of the key and the caller's identity. A repeat of the key by the same identity —
 * after a reconnect, even after a server restart — finds the row and returns the first result and commit ts instead
 * of running the mutation again. The same key from another identity is another request: it runs its own mutation.
 *
 * Results used to be documents of the internal `_mutation_results` table, under an ID made of the same hash. A
 * repeat whose result predates the keyed rows is still found there (`findResult`), and the sweep empties that table.
 */
import { createHash } from "node:crypto";
import { encodeDocumentId } from "../values/mod.ts";
import { type Database, SYSTEM_TABLE_NUMBERS, type TransactionOutcome, withMutationResult } from "../database/mod.ts";

/** The internal table of results written before they were keyed rows. */
const LEGACY_RESULTS_TABLE = "_mutation_results";
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
 * The 16 bytes the result of `key` sent by `owner` is stored under: the start of the SHA-256 of both, so another
 * owner's key is another record (it runs its own mutation). node:crypto hashes synchronously (~2 µs here).
 */
export function resultKey(key: string, owner: string): Uint8Array {
  const digest = createHash("sha256").update(JSON.stringify([owner, key])).digest();
  return new Uint8Array(digest.buffer, digest.byteOffset, 16).slice();
}

/** The `_mutation_results` document ID a result of `resultKey` had before results were keyed rows. */
export function legacyRecordId(key: Uint8Array): string {
  return encodeDocumentId(SYSTEM_TABLE_NUMBERS[LEGACY_RESULTS_TABLE], key);
}

/** The committed result of `key`, if the mutation already committed (looked up before running it). */
export async function findResult(database: Database, key: Uint8Array): Promise<RememberedResult | null> {
  const stored = await database.mutationResult(key);
  if (stored !== null) return stored;
  const legacy = await database.readSnapshot().get(legacyRecordId(key));
  if (legacy === null || legacy.ts === null) return null;
  const record = JSON.parse(legacy.json) as { result: string };
  return { valueJson: record.result, ts: legacy.ts };
}

/**
 * Adds the result to `outcome` (it commits with the mutation), or returns the result already committed at the
 * outcome's snapshot: then another execution of the key committed after `findResult` looked and before this
 * attempt's snapshot was taken, and this attempt must not commit (exactly once). The look-up is in the outcome's
 * read set, so an execution of the same key committing after the snapshot makes this commit conflict; its retry
 * finds that result.
 */
export async function recordResult(
  database: Database,
  outcome: TransactionOutcome,
  key: Uint8Array,
  valueJson: string,
): Promise<RememberedResult | null> {
  const remembered = await database.mutationResult(key, BigInt(outcome.snapshotTs));
  if (remembered !== null) return remembered;
  withMutationResult(outcome, key, valueJson);
  return null;
}

/** Results deleted per sweep (one persistence transaction). */
const SWEEP_BATCH = 1_000;

/**
 * Deletes results older than `retentionMs`, a bounded batch at a time, so the results stay few. Returns how many were
 * deleted (0: none are left to sweep).
 */
export async function sweepResults(database: Database, retentionMs = MUTATION_RESULT_RETENTION_MS): Promise<number> {
  const swept = await database.sweepMutationResults(retentionMs, SWEEP_BATCH);
  if (swept > 0) return swept;
  return await sweepLegacyResults(database, retentionMs);
}

/** The sweep of results written as `_mutation_results` documents, until none is left. */
async function sweepLegacyResults(database: Database, retentionMs: number): Promise<number> {
  const { value } = await database.runSystemTransaction(async (tx) => {
    const expired = await tx.scan(`${LEGACY_RESULTS_TABLE}.by_creation_time`, {
      before: [Date.now() - retentionMs],
      limit: SWEEP_BATCH,
    });
    for (const record of expired) await tx.delete(record.id);
    return expired.length;
  }, { label: "idempotency: sweeping old mutation results" });
  return value;
}
