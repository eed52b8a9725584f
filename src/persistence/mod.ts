/**
 * Persistence: the append-only revision log of documents and index entries, on SQLite, PostgreSQL or MySQL/MariaDB.
 *
 * The database layer opens the one writer with `openPersistence`; runner processes open readers on the same
 * database with `openPersistenceReader(writer.location)`.
 */

import { openPostgresPersistence, openPostgresReader } from "./postgres.ts";
import { openSqlitePersistence, openSqliteReader } from "./sqlite.ts";
import { openMysqlPersistence, openMysqlReader } from "./mysql.ts";
import type { Persistence, PersistenceLocation, PersistenceReader } from "./types.ts";

export type {
  CommitBatch,
  DocumentRevision,
  IndexEntry,
  IndexScan,
  IndexScanRow,
  MutationResultRecord,
  Persistence,
  PersistenceLocation,
  PersistenceReader,
  StoredMutationResult,
} from "./types.ts";
export { MUTATION_RESULT_KEY_BYTES } from "./types.ts";
export { MAX_SCAN_LIMIT, MAX_TS, PersistenceError } from "./_shared.ts";
export { DATABASE_UNAVAILABLE_MESSAGE, DatabaseUnavailableError } from "./_unavailable.ts";
export { openPostgresPersistence, openPostgresReader } from "./postgres.ts";
export { openSqlitePersistence, openSqliteReader } from "./sqlite.ts";
export { openMysqlPersistence, openMysqlReader } from "./mysql.ts";

/** Opens the writer of the database at `location`, creating its schema if missing. */
export function openPersistence(location: PersistenceLocation): Promise<Persistence> {
  if (location.kind === "sqlite") return openSqlitePersistence(location.path);
  return location.kind === "mysql" ? openMysqlPersistence(location.url) : openPostgresPersistence(location.url);
}

/** Opens a reader of the database at `location`, which a writer (possibly in another process) has created. */
export function openPersistenceReader(location: PersistenceLocation): Promise<PersistenceReader> {
  if (location.kind === "sqlite") return openSqliteReader(location.path);
  return location.kind === "mysql" ? openMysqlReader(location.url) : openPostgresReader(location.url);
}
