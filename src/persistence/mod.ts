/**
 * Persistence: the append-only revision log of documents and index entries, on SQLite, PostgreSQL or MySQL/MariaDB.
 *
 * The database layer opens the one writer with `openPersistence`; runner processes open readers on the same
 * database with `openPersistenceReader(writer.location)`.
 */

import { openSqlitePersistence, openSqliteReader } from "./sqlite.ts";
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
export { openSqlitePersistence, openSqliteReader } from "./sqlite.ts";

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

// PostgreSQL's and MySQL's modules, and their drivers, are imported only when a location names them. Every process
// loads this module (the server and each runner); on SQLite, the default, importing both drivers cost the server's and
// the runner's module graphs 11–14 MiB of PSS each and ~80 ms of start-up, for nothing (issue 14, idle footprint).

/** Opens the writer of the PostgreSQL database at `url` (postgres.ts). */
export async function openPostgresPersistence(url: string): Promise<Persistence> {
  return await (await import("./postgres.ts")).openPostgresPersistence(url);
}

/** Opens a reader of the PostgreSQL database at `url` (postgres.ts). */
export async function openPostgresReader(url: string): Promise<PersistenceReader> {
  return await (await import("./postgres.ts")).openPostgresReader(url);
}

/** Opens the writer of the MySQL or MariaDB database at `url` (mysql.ts). */
export async function openMysqlPersistence(url: string): Promise<Persistence> {
  return await (await import("./mysql.ts")).openMysqlPersistence(url);
}

/** Opens a reader of the MySQL or MariaDB database at `url` (mysql.ts). */
export async function openMysqlReader(url: string): Promise<PersistenceReader> {
  return await (await import("./mysql.ts")).openMysqlReader(url);
}
