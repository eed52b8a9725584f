/**
 * `denvex restore <zip> [serve's flags]`: replaces the data of a deployment that is not being served with a backup
 * ZIP (`--backup-every`) or an `npx convex export` ZIP. It takes the data directory's lock first, so it refuses to
 * run while a server uses that directory; with `--db postgres://…`/`mysql://…` stop every server on that database
 * first (the lock covers the data directory only). The restore is one import in `--replace-all` mode: checked whole
 * before anything is written, then one commit, so a bad file or a crash leaves the old data as it was. Code is not
 * part of a snapshot: deploy the app again after restoring into a fresh data directory.
 */
import { downloadS3Backup, S3_BACKUP_SCHEME, SnapshotImports } from "../snapshot/mod.ts";
import { StorageService } from "../storage/mod.ts";
import type { ServeConfig } from "./config.ts";
import { assertDataDirAccess, ensureDataDir, resolveDataDir } from "./data_dir.ts";
import { lockDataDir } from "./data_dir_lock.ts";
import { describeLocation, openStorage, persistenceLocation } from "./storage.ts";

/** Restores `zipPath` into the deployment `config` names; resolves with the exit code. */
export async function runRestore(zipPath: string, config: ServeConfig): Promise<number> {
  const fromBucket = zipPath.startsWith(S3_BACKUP_SCHEME);
  const stat = fromBucket ? null : await Deno.stat(zipPath).catch(() => null);
  if (!fromBucket && (stat === null || !stat.isFile)) {
    console.error(`denvex: restore: ${zipPath} is not a readable file`);
    return 1;
  }
  const dataDir = resolveDataDir(config.dataDir);
  assertDataDirAccess(dataDir, ["read", "write"]);
  await ensureDataDir(dataDir);
  const lock = await lockDataDir(dataDir);
  try {
    const location = persistenceLocation(config.database, dataDir);
    const database = await openStorage(location);
    try {
      const storage = await StorageService.open({
        database,
        dataDir,
        s3: config.s3,
        // Restoring signs no URLs: a throwaway key keeps the stored one out of this process.
        adminKey: `restore|${crypto.randomUUID()}`,
        cloudUrl: () => "",
      });
      const imports = new SnapshotImports({ database, storage, dataDir });
      let printed = 0;
      // `s3:<backup name>`: a backup in the bucket's `_backups/`, downloaded next to the data first (streamed).
      const localZip = fromBucket ? await downloadS3Backup(storage.blobs, zipPath, dataDir) : zipPath;
      const documents = await imports.importFile(
        localZip,
        { tableName: null, mode: "replaceAll", format: "zip", componentPath: "", mountMissingComponents: true },
        (progress) => {
          for (; printed < progress.checkpoints.length; printed++) console.log(`  ${progress.checkpoints[printed]}`);
        },
      ).finally(() => localZip !== zipPath && Deno.remove(localZip).catch(() => {}));
      console.log(`denvex: restored ${documents} documents from ${zipPath} into ${describeLocation(location)}`);
      return 0;
    } catch (error) {
      console.error(`denvex: restore failed, nothing was changed: ${error instanceof Error ? error.message : error}`);
      return 1;
    } finally {
      await database.close();
    }
  } finally {
    lock.release();
  }
}
