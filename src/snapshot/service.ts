/** The backend's snapshot service: export and import side by side, as the routes and system functions use them. */
import type { BackupScheduler } from "./backup.ts";
import { type ExportHost, SnapshotExports } from "./export.ts";
import { type ImportHost, SnapshotImports } from "./import.ts";

/** See the module comment. */
export class SnapshotService {
  readonly exports: SnapshotExports;
  readonly imports: SnapshotImports;
  /** Scheduled backups (`--backup-every`), or null when the server takes none. */
  readonly backups: BackupScheduler | null;

  constructor(host: ExportHost & ImportHost, backups: BackupScheduler | null = null) {
    this.exports = new SnapshotExports(host);
    this.imports = new SnapshotImports(host);
    this.backups = backups;
  }
}
