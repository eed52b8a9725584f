/**
 * The backend: every long-lived subsystem of a running deployment, opened in dependency order and closed in reverse.
 * The server passes it to the HTTP, sync and deploy layers, which see it through the small interfaces they declare
 * (`HttpBackend`, `SyncBackend`, `DeployBackend`) and never import this file.
 *
 * Private to `src/server`: other folders use its `mod.ts`.
 */
import type { Database } from "../database/mod.ts";
import type { PersistenceLocation } from "../persistence/mod.ts";
import { type ActionNetOptions, RunnerPool, TASKSET } from "../runtime/mod.ts";
import { ExecutionLog, FunctionExecutor, serveActionCall, sweepResults } from "../functions/mod.ts";

/** How often old mutation results (idempotency records) are swept. */
const RESULT_SWEEP_INTERVAL_MS = 10 * 60 * 1000;
import { DeploymentStore, type DeploymentUrls, systemFunctions } from "../deploy/mod.ts";
import { isStorageCall, type S3Options, serveStorageCall, StorageService } from "../storage/mod.ts";
import { SearchService, TEXT_SEARCH_OP, VECTOR_SEARCH_OP } from "../search/mod.ts";
import { createFunctionServices, type FunctionServices } from "../sync/mod.ts";
import { openServerLog, type ServerLog } from "./log.ts";
import { observeExecution } from "./observe.ts";
import { type BackupOptions, BackupScheduler, SnapshotService, snapshotSystemFunctions } from "../snapshot/mod.ts";
import {
  SCHEDULER_ACTION_OPS,
  type SchedulerService,
  serveSchedulerActionOp,
  startSchedulerService,
} from "../scheduler/mod.ts";

export type { DeploymentUrls };

/** The text log: no line per execution (metrics still count them). */
const TEXT_LOG = openServerLog("text");

/** Everything a request handler needs. */
export interface Backend {
  database: Database;
  pool: RunnerPool;
  deployments: DeploymentStore;
  executor: FunctionExecutor;
  executionLog: ExecutionLog;
  /** Scheduled functions and cron jobs. */
  scheduler: SchedulerService;
  /** File storage (`_storage` documents and their blobs). */
  storage: StorageService;
  /** Snapshot export and import (`npx convex export` / `import`). */
  snapshots: SnapshotService;
  /** Scheduled backups, when `--backup-every` asked for them. */
  backups: BackupScheduler | null;
  /** The authenticator and the query cache shared by the HTTP routes and the sync hub. */
  services: FunctionServices;
  adminKey: string;
  instanceName: string;
  urls: DeploymentUrls;
  dataDir: string;
  close(): Promise<void>;
}

/** What `openBackend` needs. */
export interface BackendOptions {
  database: Database;
  location: PersistenceLocation;
  dataDir: string;
  adminKey: string;
  instanceName: string;
  urls: DeploymentUrls;
  /** File storage blobs in this S3 bucket instead of the data directory. */
  s3?: S3Options | null;
  /** What actions may reach beyond the public internet (`--action-allow-host`, the server's ports). */
  actionNet?: ActionNetOptions;
  /** Where execution events go (`--log-format json`); default: the text log, which has no line for them. */
  log?: ServerLog;
  /** Scheduled snapshot ZIPs (`--backup-every`); null or absent for none. */
  backup?: BackupOptions | null;
  /** `--node-packages`: "off" refuses pushes naming external packages (default "auto"). */
  nodePackages?: "auto" | "off";
  /** `--action-timeout`: the time limit of every action, isolate or node (default Convex's 10 minutes). */
  actionTimeoutMs?: number;
  /** Pin each transaction runner to one CPU (default true; false with `--no-pin-runners`): see cpu_affinity.ts. */
  pinRunners?: boolean;
  /** `--search-memory`: bytes the in-memory search indexes may hold together (default DEFAULT_SEARCH_MEMORY_BYTES). */
  searchMemoryBytes?: number;
}

/** Opens the runtime pool, the deployment store and the executor on an open database. */
export async function openBackend(options: BackendOptions): Promise<Backend> {
  const executionLog = new ExecutionLog();
  let executor: FunctionExecutor | null = null;
  const storage = await StorageService.open({
    database: options.database,
    dataDir: options.dataDir,
    s3: options.s3,
    adminKey: options.adminKey,
    cloudUrl: () => options.urls.cloudUrl,
  });
  const search = SearchService.start(
    options.database,
    options.searchMemoryBytes === undefined ? {} : { memoryBudgetBytes: options.searchMemoryBytes },
  );
  const pool = new RunnerPool({
    dataDir: options.dataDir,
    location: options.location,
    deploymentName: options.instanceName,
    actionNet: options.actionNet,
    ...(options.nodePackages === undefined ? {} : { nodePackages: options.nodePackages }),
    ...(options.actionTimeoutMs === undefined ? {} : { actionTimeLimitMs: options.actionTimeoutMs }),
    cpuAffinityProgram: options.pinRunners === false ? null : TASKSET,
    onCall: (op, argsJson, context) => {
      if (op === "denvex/createTable") {
        const { tableName, componentPath } = JSON.parse(argsJson) as { tableName: string; componentPath?: string };
        return options.database.createTable(tableName, componentPath ?? "").then((catalog) => JSON.stringify(catalog));
      }
      if (SCHEDULER_ACTION_OPS.has(op)) {
        return serveSchedulerActionOp(options.database, op, argsJson, context.componentPath);
      }
      if (isStorageCall(op)) return serveStorageCall(storage, op, argsJson, context.componentPath);
      if (op === TEXT_SEARCH_OP) {
        return search.searchText(JSON.parse(argsJson), context.componentPath).then((r) => JSON.stringify(r));
      }
      if (op === VECTOR_SEARCH_OP) return search.vectorSearch(argsJson, context.componentPath);
      if (!executor) return Promise.reject(new Error("The backend is starting"));
      return serveActionCall(executor, op, argsJson, context);
    },
  });
  try {
    const deployments = await DeploymentStore.open(options.database, pool, options.dataDir);
    // System functions read the backend when they run, so a late-bound reference is enough.
    let backend: Backend | null = null;
    executor = new FunctionExecutor({
      database: options.database,
      pool,
      deployment: () => deployments.active,
      environment: () => ({
        ...deployments.environmentVariables,
        CONVEX_CLOUD_URL: options.urls.cloudUrl,
        CONVEX_SITE_URL: options.urls.siteUrl,
      }),
      onExecution: (record) => {
        executionLog.append(record);
        observeExecution(options.log ?? TEXT_LOG, record);
      },
      systemFunction: (name) =>
        backend ? systemFunctions(backend)(name) ?? snapshotSystemFunctions(backend.snapshots)(name) : undefined,
    });
    const scheduler = await startSchedulerService({
      database: options.database,
      executor,
      deployment: () => deployments.active,
    });
    // A push replaces the cron jobs (an environment change keeps unchanged ones as they are).
    deployments.onChange(() => scheduler.reloadCrons());
    const services = createFunctionServices({
      executor,
      database: options.database,
      adminKey: options.adminKey,
      deployments,
    });
    const backups = options.backup
      ? new BackupScheduler({ database: options.database, storage }, options.backup, options.dataDir)
      : null;
    await backups?.start();
    backend = {
      database: options.database,
      pool,
      deployments,
      executor,
      executionLog,
      scheduler,
      storage,
      snapshots: new SnapshotService({ database: options.database, storage, dataDir: options.dataDir }, backups),
      backups,
      services,
      adminKey: options.adminKey,
      instanceName: options.instanceName,
      urls: options.urls,
      dataDir: options.dataDir,
      close: async () => {
        clearInterval(sweepTimer);
        scheduler.stop();
        search.close();
        await backups?.stop();
        await services.close();
        await pool.close();
      },
    };
    const sweepTimer = setInterval(() => {
      sweepAllResults(options.database).catch((error) => console.error("denvex: sweeping mutation results:", error));
      storage.sweepOrphans().catch((error) => console.error("denvex: sweeping orphaned file blobs:", error));
    }, RESULT_SWEEP_INTERVAL_MS);
    Deno.unrefTimer(sweepTimer);
    return backend;
  } catch (error) {
    await pool.close();
    throw error;
  }
}

/** Sweep commits per pass: one commit deletes at most 1,000 results, so a busy day needs more than one per pass. */
const MAX_RESULT_SWEEPS_PER_PASS = 100;

/** Deletes expired mutation results until none are left, bounded per pass. */
async function sweepAllResults(database: Database): Promise<void> {
  for (let sweep = 0; sweep < MAX_RESULT_SWEEPS_PER_PASS; sweep++) {
    if (await sweepResults(database) === 0) return;
  }
}
