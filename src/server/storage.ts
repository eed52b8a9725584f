/**
 * Opens the storage stack the configuration names: persistence (SQLite, PostgreSQL or MySQL), then the database.
 *
 * Private to `src/server`: other folders use its `mod.ts`.
 */
import { join } from "node:path";
import { type Database, openDatabase } from "../database/mod.ts";
import { openPersistence } from "../persistence/mod.ts";
import type { PersistenceLocation } from "../persistence/mod.ts";
import type { DatabaseConfig } from "./config.ts";

/** The SQLite file inside the data directory. */
export const SQLITE_FILE_NAME = "denvex.sqlite3";

/** Where the configured database lives. */
export function persistenceLocation(database: DatabaseConfig, dataDir: string): PersistenceLocation {
  return database.kind === "sqlite"
    ? { kind: "sqlite", path: join(dataDir, SQLITE_FILE_NAME) }
    : { kind: database.kind, url: database.url };
}

/**
 * Opens persistence and the database over it. The database owns persistence from here: closing it closes both.
 * Failures name the database (without its password), since the underlying message ("connect ECONNREFUSED ...",
 * "unable to open database file") rarely does.
 */
export async function openStorage(location: PersistenceLocation): Promise<Database> {
  let persistence;
  try {
    persistence = await openPersistence(location);
  } catch (error) {
    throw new Error(`cannot open ${describeLocation(location)}: ${messageOf(error)}`, { cause: error });
  }
  try {
    return await openDatabase(persistence);
  } catch (error) {
    await persistence.close().catch(() => {});
    throw new Error(`cannot open the database in ${describeLocation(location)}: ${messageOf(error)}`, { cause: error });
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A location fit for the log: a database password never reaches it. */
export function describeLocation(location: PersistenceLocation): string {
  if (location.kind === "sqlite") return `SQLite ${location.path}`;
  const url = new URL(location.url);
  if (url.password !== "") url.password = "***";
  return `${location.kind === "mysql" ? "MySQL" : "PostgreSQL"} ${url.href}`;
}
