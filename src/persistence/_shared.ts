/**
 * Validation, limits and small helpers shared by the SQLite, PostgreSQL and MySQL persistence implementations.
 * Private to `src/persistence/`.
 */

import { DenvexError } from "../errors/mod.ts";
import { type CommitBatch, type IndexScan, MUTATION_RESULT_KEY_BYTES } from "./types.ts";

/** Both databases store ts as a signed 64-bit integer, so the u64 ts space is cut to the signed range. */
export const MAX_TS = (1n << 63n) - 1n;
/** Upper bound on `IndexScan.limit` (the transaction limit is 32,000 documents scanned; leave headroom). */
export const MAX_SCAN_LIMIT = 100_000;
/** Upper bound on batches per `commit()` call: group commit beyond this gains nothing and holds the writer. */
export const MAX_BATCHES_PER_COMMIT = 10_000;
/** Upper bound on rows (documents + index entries) per `commit()` call, so one call cannot hold the writer long. */
export const MAX_ROWS_PER_COMMIT = 2_000_000;
/** Upper bound on the keys `listGlobals` returns; globals are metadata, so more means a bug. */
export const MAX_LISTED_GLOBALS = 100_000;
/** Upper bound on `prune(maxRows)`: one call is one bounded slice of retention work. */
export const MAX_PRUNE_ROWS = 1_000_000;
/** How long a SQLite connection waits on a lock before failing with SQLITE_BUSY. */
export const SQLITE_BUSY_TIMEOUT_MS = 5_000;

/** Thrown on a broken caller contract or a broken storage invariant. */
export class PersistenceError extends DenvexError {
  constructor(message: string) {
    // A bug or a damaged database, never the caller's mistake: the HTTP edge answers a plain 500.
    super("PersistenceError", message);
    this.name = "PersistenceError";
  }
}

/** Throws a `PersistenceError` unless `condition` holds. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new PersistenceError(message);
}

/** Asserts `ts` is a storable timestamp (non-negative, fits a signed 64-bit integer). */
export function assertTs(ts: bigint, what: string): void {
  assert(typeof ts === "bigint" && ts >= 0n && ts <= MAX_TS, `${what} must be a bigint in [0, 2^63): ${ts}`);
}

/** Checks an index scan's arguments before any SQL runs. */
export function assertValidScan(scan: IndexScan): void {
  assert(Number.isInteger(scan.indexId), `indexId must be an integer: ${scan.indexId}`);
  assert(scan.order === "asc" || scan.order === "desc", `order must be asc or desc: ${scan.order}`);
  assert(
    Number.isInteger(scan.limit) && scan.limit >= 0 && scan.limit <= MAX_SCAN_LIMIT,
    `limit must be an integer in [0, ${MAX_SCAN_LIMIT}]: ${scan.limit}`,
  );
  assert(scan.lowKey instanceof Uint8Array, "lowKey must be a Uint8Array");
  assert(scan.highKey === null || scan.highKey instanceof Uint8Array, "highKey must be a Uint8Array or null");
  assertTs(scan.snapshotTs, "snapshotTs");
}

/**
 * Checks the commit contract (strictly increasing ts above `lastTs`, every document revision at its batch's ts,
 * bounded size) and returns the new max ts. Done before the transaction starts so a bad call writes nothing.
 */
export function validateCommit(batches: CommitBatch[], lastTs: bigint): bigint {
  assert(batches.length <= MAX_BATCHES_PER_COMMIT, `at most ${MAX_BATCHES_PER_COMMIT} batches per commit`);
  let previousTs = lastTs;
  let rowCount = 0;
  for (const batch of batches) {
    assertTs(batch.ts, "batch ts");
    assert(batch.ts > previousTs, `batch ts ${batch.ts} must be above ${previousTs}`);
    for (const document of batch.documents) {
      assert(document.ts === batch.ts, `document ${document.id} has ts ${document.ts}, its batch ${batch.ts}`);
      assert(Number.isInteger(document.tableNumber), `document ${document.id} has a non-integer table number`);
      if (document.prevTs !== null) {
        assert(document.prevTs < batch.ts, `document ${document.id} has prevTs ${document.prevTs} >= its ts`);
      }
    }
    for (const entry of batch.indexEntries) {
      assert(Number.isInteger(entry.indexId), `index entry has a non-integer indexId: ${entry.indexId}`);
      assert(entry.key instanceof Uint8Array, "index entry key must be a Uint8Array");
    }
    if (batch.mutationResult !== undefined) {
      const { key, valueJson } = batch.mutationResult;
      assert(
        key instanceof Uint8Array && key.length === MUTATION_RESULT_KEY_BYTES,
        "a mutation result key is 16 bytes",
      );
      assert(typeof valueJson === "string", "a mutation result is JSON text");
      rowCount++;
    }
    rowCount += batch.documents.length + batch.indexEntries.length;
    previousTs = batch.ts;
  }
  assert(rowCount <= MAX_ROWS_PER_COMMIT, `at most ${MAX_ROWS_PER_COMMIT} rows per commit, got ${rowCount}`);
  return previousTs;
}

/** Checks `prune` arguments. */
export function assertValidPrune(retainTs: bigint, maxRows: number): void {
  assertTs(retainTs, "retainTs");
  assert(
    Number.isInteger(maxRows) && maxRows >= 0 && maxRows <= MAX_PRUNE_ROWS,
    `maxRows must be an integer in [0, ${MAX_PRUNE_ROWS}]: ${maxRows}`,
  );
}

/**
 * The smallest string above every string that starts with `prefix`, in UTF-8 byte order (which is code point
 * order), or null when no such bound exists. Lets `listGlobals` be an index range on both databases.
 */
export function prefixUpperBound(prefix: string): string | null {
  const codePoints = Array.from(prefix, (c) => c.codePointAt(0)!);
  while (codePoints.length > 0) {
    const last = codePoints.pop()!;
    if (last < 0x10ffff) {
      // Surrogates never occur in valid UTF-8 text, so the successor of U+D7FF is U+E000.
      codePoints.push(last === 0xd7ff ? 0xe000 : last + 1);
      return String.fromCodePoint(...codePoints);
    }
  }
  return null;
}

/** The meta-table key of the stored max ts. */
export const META_MAX_TS = "max_ts";

/** Lower-case hex of `bytes`. */
export function bytesToHex(bytes: Uint8Array): string {
  return bytes.toHex();
}

/** Parses lower- or upper-case hex (no prefix) into a fresh Uint8Array. */
export function hexToBytes(hex: string): Uint8Array {
  assert(hex.length % 2 === 0, "hex text must have an even length");
  try {
    return Uint8Array.fromHex(hex);
  } catch {
    throw new PersistenceError("invalid hex text");
  }
}
