/** The `_system/cli/...` queries of export and import (convex-compat.md §5.6), answered from the services' state. */
import type { SystemFunction } from "../functions/mod.ts";
import type { SnapshotService } from "./service.ts";

/** The lookup of these functions by display name (`undefined` for any other name). */
export function snapshotSystemFunctions(
  snapshots: SnapshotService,
): (displayName: string) => SystemFunction | undefined {
  const functions: Record<string, SystemFunction> = {
    "_system/cli/exports:getLatest": () => Promise.resolve(snapshots.exports.latestJson()),
    "_system/cli/queryImport": (args) =>
      Promise.resolve(typeof args.importId === "string" ? snapshots.imports.stateJson(args.importId) : null),
    "_system/cli/queryImport:list": () => Promise.resolve(snapshots.imports.listJson()),
    // For the dashboard: the backups on disk, newest first (null when the server takes none).
    "_system/frontend/backups:list": () => snapshots.backups?.listJson() ?? Promise.resolve(null),
  };
  return (displayName) => Object.hasOwn(functions, displayName) ? functions[displayName] : undefined;
}
