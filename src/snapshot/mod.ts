/**
 * Snapshot export and import in Convex's ZIP layout (`npx convex export` / `import`, issue 16): a streaming ZIP
 * writer and reader, the clean-JSON value format with export contexts, the export and import services, their admin
 * routes, the `_system/cli/...` queries the CLI polls, and scheduled backups.
 *
 * @module
 */
export {
  BackupConfigError,
  type BackupFile,
  type BackupOptions,
  BackupScheduler,
  DEFAULT_BACKUP_KEEP,
  downloadS3Backup,
  listBackups,
  MAX_BACKUP_INTERVAL_MS,
  parseBackupFlags,
  parseDuration,
  S3_BACKUP_SCHEME,
} from "./backup.ts";
export { applyExportContext, cleanJsonText, type ExportContext, exportContextOf } from "./clean_json.ts";
export { type ExportHost, type ExportState, SnapshotExports } from "./export.ts";
export {
  type ImportHost,
  type ImportMode,
  type ImportProgress,
  type ImportRequest,
  MAX_IMPORT_DOCUMENTS,
  MAX_IMPORT_WRITE_BYTES,
  SnapshotImports,
} from "./import.ts";
export { componentZipPrefix, type ImportFormat, MAX_JSON_ARRAY_BYTES } from "./import_sources.ts";
export { type AdminCheck, snapshotRoutes } from "./routes.ts";
export { SnapshotService } from "./service.ts";
export { snapshotSystemFunctions } from "./system_functions.ts";
export { readZipDirectory, readZipEntry, textLines, type ZipEntry, ZipFormatError } from "./zip_reader.ts";
export { crc32, ZipWriter } from "./zip_writer.ts";
