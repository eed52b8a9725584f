/** The backend's snapshot service: export and import side by side, as the routes and system functions use them. */
import { type ExportHost, SnapshotExports } from "./export.ts";
import { type ImportHost, SnapshotImports } from "./import.ts";

/** See the module comment. */
export class SnapshotService {
  readonly exports: SnapshotExports;
  readonly imports: SnapshotImports;

  constructor(host: ExportHost & ImportHost) {
    this.exports = new SnapshotExports(host);
    this.imports = new SnapshotImports(host);
  }
}
