/**
 * What the server backends' writers (`postgres.ts`, `mysql.ts`) share around a commit: commits run one at a time
 * (so the ts order check and the cached max ts hold), all batches of a call go in one transaction, and a commit
 * whose connection broke asks the database whether its COMMIT landed before it reports a failure. Each backend
 * supplies only its SQL. Private to `src/persistence/`.
 */

import { validateCommit } from "./_shared.ts";
import type { UnavailableHandling } from "./_unavailable.ts";
import type { CommitBatch, DocumentRevision, IndexEntry, MutationResultRecord } from "./types.ts";

/**
 * How long a commit whose connection broke keeps asking whether its COMMIT landed (the database may be restarting),
 * and how often.
 */
const COMMIT_OUTCOME_CHECK_MS = 1_500;
const COMMIT_OUTCOME_POLL_MS = 100;

/** An index entry with the ts of the batch that wrote it. */
export interface TimedIndexEntry {
  ts: bigint;
  entry: IndexEntry;
}

/** A mutation result with the ts of the batch that wrote it. */
export interface TimedMutationResult {
  ts: bigint;
  result: MutationResultRecord;
}

/** The rows of one commit call, all batches flattened. */
export interface CommitRows {
  documents: DocumentRevision[];
  entries: TimedIndexEntry[];
  results: TimedMutationResult[];
}

/** What a backend does for {@link GroupCommitter}. */
export interface CommitTarget {
  /** Throws once the persistence is closed. */
  assertOpen(): void;
  /** Writes the rows and the `max_ts` meta row in one transaction. */
  write(rows: CommitRows, newMaxTs: bigint): Promise<void>;
  /** The `max_ts` meta row (null when missing), read within `deadlineMs`. */
  readCommittedMaxTs(deadlineMs: number): Promise<bigint | null>;
  /** The backend's connectivity handling (`_postgres_errors.ts`, `_mysql_errors.ts`). */
  failures: Pick<UnavailableHandling, "isConnectionError" | "neverConnected" | "toPersistenceError">;
}

/** Serializes a writer's commits and keeps its cached max ts (the database's only writer, so nothing else moves it). */
export class GroupCommitter {
  #maxTs: bigint;
  #commitChain: Promise<unknown> = Promise.resolve();
  readonly #target: CommitTarget;

  constructor(maxTs: bigint, target: CommitTarget) {
    this.#maxTs = maxTs;
    this.#target = target;
  }

  commit(batches: CommitBatch[]): Promise<void> {
    const run = this.#commitChain.then(() => this.#commitNow(batches));
    this.#commitChain = run.catch(() => {});
    return run;
  }

  maxTs(): Promise<bigint> {
    try {
      this.#target.assertOpen();
      return Promise.resolve(this.#maxTs);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async #commitNow(batches: CommitBatch[]): Promise<void> {
    this.#target.assertOpen();
    if (batches.length === 0) return;
    const newMaxTs = validateCommit(batches, this.#maxTs);
    const failures = this.#target.failures;
    try {
      await this.#target.write(commitRows(batches), newMaxTs);
    } catch (error) {
      if (!failures.isConnectionError(error)) throw error;
      // The connection broke: the COMMIT may have landed before it did. The max_ts meta row moves in the same
      // transaction, so it tells; a commit that landed is durable and reported as such, not as a failure.
      if (!failures.neverConnected(error) && await this.#landed(newMaxTs)) {
        this.#maxTs = newMaxTs;
        return;
      }
      throw failures.toPersistenceError(error);
    }
    this.#maxTs = newMaxTs;
  }

  /**
   * Whether a commit up to `maxTs` is on disk, asked again while the database is unreachable, for at most
   * COMMIT_OUTCOME_CHECK_MS; false when it is not, or when the database did not answer in time (then the commit's
   * outcome is unknown and its caller hears "unavailable": it was not acknowledged).
   */
  async #landed(maxTs: bigint): Promise<boolean> {
    const deadline = Date.now() + COMMIT_OUTCOME_CHECK_MS;
    for (;;) {
      try {
        const committed = await this.#target.readCommittedMaxTs(COMMIT_OUTCOME_CHECK_MS);
        return committed !== null && committed >= maxTs;
      } catch (error) {
        if (!this.#target.failures.isConnectionError(error) || Date.now() + COMMIT_OUTCOME_POLL_MS > deadline) {
          return false;
        }
        await new Promise((resolve) => setTimeout(resolve, COMMIT_OUTCOME_POLL_MS));
      }
    }
  }
}

function commitRows(batches: CommitBatch[]): CommitRows {
  const documents = batches.flatMap((batch) => batch.documents);
  const entries = batches.flatMap((batch) => batch.indexEntries.map((entry) => ({ ts: batch.ts, entry })));
  const results: TimedMutationResult[] = [];
  for (const batch of batches) {
    if (batch.mutationResult !== undefined) results.push({ ts: batch.ts, result: batch.mutationResult });
  }
  return { documents, entries, results };
}

/** The largest ts on disk: the `max_ts` meta row (its text, null when missing) or a newer index entry's ts. */
export function newestStoredTs(metaMaxTs: string | null, indexMaxTs: bigint | null): bigint {
  const metaTs = metaMaxTs === null ? 0n : BigInt(metaMaxTs);
  const indexTs = indexMaxTs ?? 0n;
  return metaTs > indexTs ? metaTs : indexTs;
}

/** Splits revisions into runs of at most `maxRows` rows and about `maxJsonChars` of JSON (one INSERT each). */
export function chunkDocuments(
  documents: DocumentRevision[],
  maxRows: number,
  maxJsonChars: number,
): DocumentRevision[][] {
  return chunkByJsonChars(documents, maxRows, maxJsonChars, (document) => document.json?.length ?? 0);
}

/** Splits mutation results the same way: a result may be as large as a function's return value. */
export function chunkResults(
  results: TimedMutationResult[],
  maxRows: number,
  maxJsonChars: number,
): TimedMutationResult[][] {
  return chunkByJsonChars(results, maxRows, maxJsonChars, ({ result }) => result.valueJson.length);
}

/** Splits `rows` into runs of at most `maxRows` and about `maxJsonChars` of JSON (at least one row each). */
function chunkByJsonChars<T>(rows: T[], maxRows: number, maxJsonChars: number, jsonCharsOf: (row: T) => number): T[][] {
  const chunks: T[][] = [];
  let chunk: T[] = [];
  let chunkChars = 0;
  for (const row of rows) {
    const chars = jsonCharsOf(row);
    if (chunk.length > 0 && (chunk.length >= maxRows || chunkChars + chars > maxJsonChars)) {
      chunks.push(chunk);
      chunk = [];
      chunkChars = 0;
    }
    chunk.push(row);
    chunkChars += chars;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

/** Keys to set and keys to delete in a `setGlobals` call (a null value deletes). */
export function splitGlobals(
  entries: Record<string, string | null>,
): { upserts: [string, string][]; deletes: string[] } {
  const pairs = Object.entries(entries);
  const upserts = pairs.filter((pair): pair is [string, string] => pair[1] !== null);
  const deletes = pairs.filter((pair) => pair[1] === null).map((pair) => pair[0]);
  return { upserts, deletes };
}
