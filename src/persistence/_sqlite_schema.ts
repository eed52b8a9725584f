/**
 * SQLite schema and connection settings. Private to `src/persistence/`.
 */

import { DatabaseSync } from "node:sqlite";
import { SQLITE_BUSY_TIMEOUT_MS } from "./_shared.ts";

/**
 * `documents` is a rowid table because revisions can be up to 1 MiB, which WITHOUT ROWID handles badly (measured:
 * WITHOUT ROWID was also slower to insert into and no faster to read); `indexes` rows are small, so WITHOUT ROWID
 * keeps each entry in one b-tree. The `*_by_ts` indexes let `prune` walk the log in ts order from a durable cursor
 * instead of sweeping whole tables. On documents it is partial: only revisions that supersede one (`prev_ts`) or are
 * tombstones can make anything prunable, so inserts, the commonest write, skip it. Index entries carry no
 * predecessor, so all of them are listed. `mutation_results` holds at most one row per commit (its ts is the rowid, so
 * rows are appended in ts order and swept by a rowid range); its key is looked up only on a mutation's repeat.
 */
const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS documents (
  id TEXT NOT NULL,
  ts INTEGER NOT NULL,
  table_number INTEGER NOT NULL,
  json TEXT,
  prev_ts INTEGER,
  PRIMARY KEY (id, ts)
);
CREATE INDEX IF NOT EXISTS documents_superseding_by_ts ON documents (ts, id) WHERE prev_ts IS NOT NULL OR json IS NULL;
CREATE TABLE IF NOT EXISTS indexes (
  index_id INTEGER NOT NULL,
  key BLOB NOT NULL,
  ts INTEGER NOT NULL,
  deleted INTEGER NOT NULL,
  document_id TEXT NOT NULL,
  PRIMARY KEY (index_id, key, ts)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS indexes_by_ts ON indexes (ts, index_id, key);
CREATE TABLE IF NOT EXISTS mutation_results (ts INTEGER PRIMARY KEY, key BLOB NOT NULL UNIQUE, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS globals (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
`;

/** Page cache per connection, in KiB (negative `cache_size` means KiB in SQLite). */
const CACHE_SIZE_KIB = 32 * 1024;
/** Bound on the WAL file kept after a checkpoint, so it does not stay at its peak size. */
const JOURNAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;

/**
 * Opens the writer connection: WAL so readers in other processes never block it, and the schema created if missing.
 * `synchronous=NORMAL`, not FULL: FULL's one extra step in WAL mode, the WAL fsync after each commit, is done by
 * `_sqlite_wal_sync.ts` off the event loop, and a write is acknowledged only after it (durability unchanged).
 */
export function openSqliteWriterConnection(path: string): DatabaseSync {
  const db = new DatabaseSync(path, { timeout: SQLITE_BUSY_TIMEOUT_MS });
  try {
    db.exec(`
      PRAGMA journal_mode = WAL;
      PRAGMA synchronous = NORMAL;
      PRAGMA cache_size = -${CACHE_SIZE_KIB};
      PRAGMA journal_size_limit = ${JOURNAL_SIZE_LIMIT_BYTES};
      PRAGMA temp_store = MEMORY;
    `);
    db.exec(`BEGIN IMMEDIATE; ${SCHEMA_SQL} COMMIT;`);
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

/** Opens a read-only connection on a database the writer has created (WAL mode is stored in the file). */
export function openSqliteReaderConnection(path: string): DatabaseSync {
  const db = new DatabaseSync(path, { readOnly: true, timeout: SQLITE_BUSY_TIMEOUT_MS });
  try {
    db.exec(`PRAGMA cache_size = -${CACHE_SIZE_KIB}; PRAGMA temp_store = MEMORY;`);
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}
