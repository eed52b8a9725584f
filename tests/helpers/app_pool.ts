/**
 * Test helper: a test app bundled like the CLI does, written as a deployment, with a database and a runner pool that
 * runs it: the one way tests drive the runtime without a server.
 */
import { APP_FILES, bundleApp, stopBundler, writeApp } from "./runtime_app.ts";
import {
  type ExecuteRequest,
  type ExecutionResult,
  RunnerPool,
  type RunnerPoolOptions,
  writeDeploymentModules,
} from "../../src/runtime/mod.ts";
import { type Database, openDatabase } from "../../src/database/mod.ts";
import { openPersistence } from "../../src/persistence/mod.ts";
import type { PersistenceLocation } from "../../src/persistence/types.ts";

/** A running app; see {@link startAppPool}. */
export interface AppPool {
  readonly pool: RunnerPool;
  readonly database: Database;
  readonly deploymentDir: string;
  /** Runs `exportName` of `modulePath` with `args` at the latest snapshot (`extra` overrides request fields). */
  execute(
    udfType: ExecuteRequest["udfType"],
    modulePath: string,
    exportName: string,
    args?: Record<string, unknown>,
    extra?: Partial<ExecuteRequest>,
  ): Promise<ExecutionResult>;
  /** Closes the pool and the database and removes the app's folder (not `location`'s database). */
  close(): Promise<void>;
}

/** Options of {@link startAppPool}. */
export interface AppPoolOptions {
  /** The app's `convex/` files (default: runtime_app.ts's APP_FILES). */
  files?: Record<string, string>;
  /** The database (default: SQLite in the app's folder). */
  location?: PersistenceLocation;
  /** Pool options besides the data directory and location (`onCall` defaults to refusing every call). */
  pool?: Partial<RunnerPoolOptions>;
  /** The request ID of every call. */
  requestId?: string;
}

/** Bundles and deploys the app, opens its database and starts a pool (awaiting its warm runners). */
export async function startAppPool(options: AppPoolOptions = {}): Promise<AppPool> {
  const dir = await Deno.makeTempDir({ prefix: "denvex-app-pool-" });
  const modules = await bundleApp(await writeApp(dir, options.files ?? APP_FILES));
  await stopBundler();
  const location = options.location ?? { kind: "sqlite", path: `${dir}/db.sqlite` };
  const database = await openDatabase(await openPersistence(location));
  const { deploymentDir } = await writeDeploymentModules(dir, modules);
  const pool = new RunnerPool({
    dataDir: dir,
    location,
    createTable: (name) => database.createTable(name),
    onCall: () => Promise.reject(new Error("no calls expected")),
    ...options.pool,
  });
  await pool.ready();
  return {
    pool,
    database,
    deploymentDir,
    execute: (udfType, modulePath, exportName, args = {}, extra = {}) =>
      pool.execute({
        udfType,
        modulePath,
        exportName,
        argsJson: JSON.stringify([args]),
        snapshotTs: database.latestTs,
        catalog: database.catalog,
        identityJson: null,
        env: {},
        requestId: options.requestId ?? "test",
        deploymentDir,
        ...extra,
      }),
    async close() {
      await pool.close();
      await database.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Runs `body` with an app started by {@link startAppPool}, and closes the app afterwards, whatever `body` does. */
export async function withAppPool<T>(options: AppPoolOptions, body: (app: AppPool) => Promise<T>): Promise<T> {
  const app = await startAppPool(options);
  try {
    return await body(app);
  } finally {
    await app.close();
  }
}
