/**
 * Test helpers to drive the database engine directly through its syscalls, the way the function runtime does.
 */
import { type Database, type DatabaseSyscalls, openDatabase, SyscallError } from "../../src/database/mod.ts";
import { openPersistence } from "../../src/persistence/mod.ts";
import { freshSqlite } from "./databases.ts";

/** Runs one syscall and parses its JSON answer. */
export async function sys<T = unknown>(tx: DatabaseSyscalls, op: string, args: unknown): Promise<T> {
  return JSON.parse(await tx.syscall(op, JSON.stringify(args))) as T;
}

/** Runs `body` as a mutation, retrying on conflicts like the function layer does; returns body's result and ts. */
export async function mutate<T>(
  db: Database,
  body: (tx: DatabaseSyscalls) => Promise<T>,
  maxAttempts = 50,
): Promise<{ result: T; ts: bigint; attempts: number }> {
  for (let attempt = 1;; attempt++) {
    const tx = db.begin("mutation");
    const result = await body(tx);
    try {
      const ts = await db.commit(tx.outcome());
      return { result, ts, attempts: attempt };
    } catch (error) {
      const retryable = error instanceof SyscallError && error.code === "OptimisticConcurrencyControlFailure";
      if (!retryable || attempt >= maxAttempts) throw error;
    }
  }
}

/** Runs `body` as a query at the latest snapshot. */
export function query<T>(db: Database, body: (tx: DatabaseSyscalls) => Promise<T>, snapshotTs?: bigint): Promise<T> {
  return body(db.begin("query", null, snapshotTs));
}

/** Collects a whole serialized query through queryStream/queryStreamNext. */
export async function collect(tx: DatabaseSyscalls, serializedQuery: unknown): Promise<Record<string, unknown>[]> {
  const { queryId } = await sys<{ queryId: number }>(tx, "1.0/queryStream", {
    query: serializedQuery,
    version: "1.48.0",
  });
  const out: Record<string, unknown>[] = [];
  for (;;) {
    const next = await sys<{ value: Record<string, unknown> | null; done: boolean }>(tx, "1.0/queryStreamNext", {
      queryId,
    });
    if (next.done) break;
    out.push(next.value!);
  }
  await sys(tx, "1.0/queryCleanup", { queryId });
  return out;
}

/** Adds a user index and backfills it. */
export async function addIndex(db: Database, tableName: string, indexName: string, fields: string[]): Promise<void> {
  const indexId = db.nextIndexId();
  await db.updateCatalog((catalog) => ({
    ...catalog,
    tables: catalog.tables.map((table) =>
      table.name === tableName
        ? {
          ...table,
          indexes: [...table.indexes, { indexId, name: `${tableName}.${indexName}`, fields, ready: false }],
        }
        : table
    ),
  }));
  await db.backfillIndex(indexId);
}

/** Expects `promise` to reject with a message matching `pattern`. */
export async function rejects(promise: Promise<unknown>, pattern: RegExp): Promise<string> {
  try {
    await promise;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (!pattern.test(message)) throw new Error(`expected an error matching ${pattern}, got: ${message}`);
    return message;
  }
  throw new Error(`expected an error matching ${pattern}, but it succeeded`);
}

/** Runs `body` with a database on a fresh SQLite file, closed and removed afterwards. */
export async function withSqliteDatabase(body: (db: Database) => Promise<void>): Promise<void> {
  const location = await freshSqlite();
  const db = await openDatabase(await openPersistence(location));
  try {
    await body(db);
  } finally {
    await db.close();
    await location.cleanup();
  }
}
