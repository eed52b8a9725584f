/** What the dashboard reads and drives of the running backend; the server's `Backend` satisfies it structurally. */
import type { Database } from "../database/mod.ts";
import type { DeploymentStore } from "../deploy/mod.ts";
import type { ExecutionLog, FunctionExecutor } from "../functions/mod.ts";
import type { BackupScheduler, SnapshotService } from "../snapshot/mod.ts";
import type { StorageService } from "../storage/mod.ts";

/** See the module comment. */
export interface DashboardBackend {
  database: Database;
  deployments: Pick<
    DeploymentStore,
    "active" | "environmentVariables" | "updateEnvironment" | "unmountedComponents" | "onChange"
  >;
  executor: Pick<FunctionExecutor, "call">;
  executionLog: ExecutionLog;
  storage: StorageService;
  adminKey: string;
  /** Snapshot exports (the Backups page's download); absent: no such page. */
  snapshots?: Pick<SnapshotService, "exports">;
  /** Scheduled backups (`--backup-every`); null or absent when off. */
  backups?: Pick<BackupScheduler, "dir" | "backupNow" | "list" | "open"> | null;
  /** Where the bundled client is cached between starts; absent: rebuilt by every process. */
  dataDir?: string;
  urls: { readonly cloudUrl: string; readonly siteUrl: string };
}

/** A dashboard request's failure: a status and a `{code, message}` body, the message shown to the operator as is. */
export class DashboardError extends Error {
  constructor(readonly status: 400 | 401 | 403 | 404 | 413 | 429 | 500, readonly code: string, message: string) {
    super(message);
    this.name = "DashboardError";
  }
}

/** A bad request from the operator (400), with `message` shown in the UI. */
export function badRequest(message: string, code = "BadRequest"): DashboardError {
  return new DashboardError(400, code, message);
}
