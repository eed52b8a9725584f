/**
 * Mutation results in the commit (src/functions/idempotency.ts keeps the policy): a mutation sent with an idempotency
 * key commits its result as one keyed row beside its writes (persistence `mutation_results`), not as a document.
 *
 * Exactly once rests on the same optimistic concurrency as documents: the result's key is a point in a reserved
 * conflict index. An attempt that looked the key up at its snapshot reads that point, and a commit of the key writes
 * it, so of two executions of one key whose windows overlap, the later commit conflicts; on its retry the look-up
 * finds the first result. Rows are insert-only (until swept), so "visible at a snapshot" is "committed at or before".
 */
import { keyFromBase64, keyToBase64 } from "../values/mod.ts";
import { MUTATION_RESULT_KEY_BYTES, type StoredMutationResult } from "../persistence/mod.ts";
import { keyAfter } from "./index_range.ts";
import type { ReadRange, TransactionOutcome } from "./types.ts";

/**
 * The conflict index of mutation result keys: outside every catalog index ID (positive), the table-existence
 * pseudo-index (0, index_range.ts) and search term IDs (at most -100: -(tableNumber * 100 + k), tableNumber >= 1,
 * src/deploy/schema.ts).
 */
export const MUTATION_RESULTS_INDEX_ID = -1;

/** The read range of one result key, and what goes into a commit's outcome with its result. */
export function withMutationResult(outcome: TransactionOutcome, key: Uint8Array, valueJson: string): void {
  if (key.length !== MUTATION_RESULT_KEY_BYTES) throw new Error("invariant: a mutation result key is 16 bytes");
  outcome.readSet.push(mutationResultRange(key));
  outcome.mutationResult = { key: keyToBase64(key), valueJson };
}

function mutationResultRange(key: Uint8Array): ReadRange {
  return { indexId: MUTATION_RESULTS_INDEX_ID, lowKey: keyToBase64(key), highKey: keyToBase64(keyAfter(key)) };
}

/** The decoded key of an outcome's result, for the commit batch and the conflict history. */
export function mutationResultKeyOf(outcome: TransactionOutcome): Uint8Array | null {
  return outcome.mutationResult === undefined ? null : keyFromBase64(outcome.mutationResult.key);
}

/** `stored` as a reader at `snapshotTs` sees it: only results committed at or before it. */
export function visibleAt(stored: StoredMutationResult | null, snapshotTs: bigint): StoredMutationResult | null {
  return stored !== null && stored.ts <= snapshotTs ? stored : null;
}
