/**
 * Scheduled backups (`--backup-every <duration>`, `--backup-dir`, `--backup-keep`): every interval, a snapshot ZIP of
 * the whole deployment (app and component tables, file storage) at the latest commit, written by the same streaming
 * export `npx convex export` downloads. Reads go page by page at one snapshot ts, so writes continue meanwhile and
 * the ZIP is consistent at that ts. `denvex restore <zip>` (or `npx convex import <zip> --replace-all`) brings one
 * back.
 *
 * A backup is written to a hidden `.partial` file, synced, then renamed, so a listed backup is always complete;
 * after each one the oldest beyond `--backup-keep` are deleted. An interval with no commit since the last backup is
 * skipped (the last one is still current). The snapshot is held while the backup is written, so retention cannot
 * prune what it still reads however long it takes (up to the hold's 6 h limit). A backup that fails (disk full, or a
 * hold that lapsed) is logged and its partial file removed; the next interval tries again.
 */
import { join } from "node:path";
import type { JsonValue } from "../values/mod.ts";
import type { ExportHost } from "./export.ts";
import { SnapshotExports } from "./export.ts";

/** Backups kept when `--backup-keep` is not given. */
export const DEFAULT_BACKUP_KEEP = 7;
/** Most backups `--backup-keep` may keep. */
export const MAX_BACKUP_KEEP = 10_000;
/** Shortest backup interval (a backup reads the whole database; a shorter one is a mistake). */
export const MIN_BACKUP_INTERVAL_MS = 1_000;
/** Longest interval: timers hold 32-bit milliseconds. */
export const MAX_BACKUP_INTERVAL_MS = 2 ** 31 - 1;
/** The folder under the data directory backups go to by default. */
export const DEFAULT_BACKUP_DIR_NAME = "backups";
/** `backup-<UTC time>-<snapshot ts>.zip`: sorting by name sorts by time. */
const BACKUP_FILE_PATTERN = /^backup-(\d{8}T\d{6}Z)-(\d{1,20})\.zip$/;
const PARTIAL_SUFFIX = ".partial";

/** The backup flags, validated. */
export interface BackupOptions {
  everyMs: number;
  /** Null: `<data dir>/backups`. */
  dir: string | null;
  keep: number;
}

/** One backup file. */
export interface BackupFile {
  path: string;
  name: string;
  snapshotTs: bigint;
  sizeBytes: number;
}

/** A mistake in the backup flags; the caller turns it into its usage error. */
export class BackupConfigError extends Error {}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90s`, `15m`, `6h`, `1d`, `1h30m`, `500ms` as milliseconds. Throws BackupConfigError. */
export function parseDuration(text: string): number {
  const parts = /^(?:\d{1,9}(?:ms|s|m|h|d))+$/.test(text) ? [...text.matchAll(/(\d{1,9})(ms|s|m|h|d)/g)] : [];
  if (parts.length === 0) {
    throw new BackupConfigError(`a duration looks like 30s, 15m, 6h, 1d or 1h30m, got '${text}'`);
  }
  return parts.reduce((total, [, amount, unit]) => total + Number(amount) * UNIT_MS[unit], 0);
}

/** The backup flags: all absent (no backups), or `--backup-every` with optional dir and keep. */
export function parseBackupFlags(
  every: string | undefined,
  dir: string | undefined,
  keep: string | undefined,
): BackupOptions | null {
  if (every === undefined) {
    if (dir !== undefined || keep !== undefined) {
      throw new BackupConfigError("--backup-dir and --backup-keep need --backup-every");
    }
    return null;
  }
  const everyMs = parseDuration(every);
  if (everyMs < MIN_BACKUP_INTERVAL_MS || everyMs > MAX_BACKUP_INTERVAL_MS) {
    throw new BackupConfigError(`--backup-every must be between 1s and 24d, got '${every}'`);
  }
  const keepCount = keep === undefined ? DEFAULT_BACKUP_KEEP : /^\d{1,5}$/.test(keep) ? Number(keep) : NaN;
  if (!(keepCount >= 1 && keepCount <= MAX_BACKUP_KEEP)) {
    throw new BackupConfigError(`--backup-keep must be a number 1-${MAX_BACKUP_KEEP}, got '${keep}'`);
  }
  if (dir !== undefined && (dir.trim() === "" || dir.includes(",") || dir.includes("\0"))) {
    throw new BackupConfigError("--backup-dir must be a directory path without commas");
  }
  return { everyMs, dir: dir ?? null, keep: keepCount };
}

/** The backups in `dir`, oldest first (files that are not backups are ignored). */
export async function listBackups(dir: string): Promise<BackupFile[]> {
  const found: BackupFile[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      const match = BACKUP_FILE_PATTERN.exec(entry.name);
      if (!entry.isFile || !match) continue;
      const path = join(dir, entry.name);
      const { size } = await Deno.stat(path);
      found.push({ path, name: entry.name, snapshotTs: BigInt(match[2]), sizeBytes: size });
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  return found.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/** See the module comment. */
export class BackupScheduler {
  readonly #host: ExportHost;
  readonly #exports: SnapshotExports;
  readonly #options: BackupOptions;
  readonly dir: string;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<BackupFile | null> = Promise.resolve(null);
  #stopped = false;
  #lastSnapshotTs: bigint | null = null;

  constructor(host: ExportHost, options: BackupOptions, dataDir: string) {
    this.#host = host;
    this.#exports = new SnapshotExports(host);
    this.#options = options;
    this.dir = options.dir ?? join(dataDir, DEFAULT_BACKUP_DIR_NAME);
  }

  /** Creates the folder, removes partial files a previous process left, and schedules the first backup. */
  async start(): Promise<void> {
    try {
      await Deno.mkdir(this.dir, { recursive: true });
      for await (const entry of Deno.readDir(this.dir)) {
        if (entry.isFile && entry.name.endsWith(PARTIAL_SUFFIX)) await Deno.remove(join(this.dir, entry.name));
      }
    } catch (error) {
      if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
        throw new Error(`cannot write backups to ${this.dir}: grant it with --allow-read and --allow-write`);
      }
      throw error;
    }
    this.#schedule();
  }

  /** Takes a backup now (after any running one); resolves with it, or null when nothing changed since the last. */
  backupNow(): Promise<BackupFile | null> {
    this.#running = this.#running.catch(() => null).then(() => this.#backup());
    return this.#running;
  }

  /** The backups on disk, newest first, as JSON for the dashboard (`_system/frontend/backups:list`). */
  async listJson(): Promise<JsonValue> {
    const backups = (await listBackups(this.dir)).reverse();
    return {
      dir: this.dir,
      everyMs: this.#options.everyMs,
      keep: this.#options.keep,
      backups: backups.map((backup) => ({
        name: backup.name,
        snapshotTs: backup.snapshotTs.toString(),
        sizeBytes: backup.sizeBytes,
      })),
    };
  }

  /** Stops the schedule; a backup under way is abandoned (its partial file removed). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running.catch(() => null);
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.backupNow()
        .catch((error) => console.error(`denvex: backup failed: ${error instanceof Error ? error.message : error}`))
        .finally(() => this.#schedule());
    }, this.#options.everyMs);
    Deno.unrefTimer(this.#timer);
  }

  async #backup(): Promise<BackupFile | null> {
    const snapshotTs = this.#host.database.latestTs;
    if (this.#stopped || snapshotTs === this.#lastSnapshotTs) return null;
    const name = `backup-${utcStamp(new Date())}-${snapshotTs}.zip`;
    const path = join(this.dir, name);
    const partialPath = `${path}${PARTIAL_SUFFIX}`;
    try {
      await this.#write(partialPath, snapshotTs);
      await Deno.rename(partialPath, path);
    } catch (error) {
      await Deno.remove(partialPath).catch(() => {});
      throw error;
    }
    this.#lastSnapshotTs = snapshotTs;
    await this.#prune();
    return { path, name, snapshotTs, sizeBytes: (await Deno.stat(path)).size };
  }

  async #write(partialPath: string, snapshotTs: bigint): Promise<void> {
    const state = { state: "completed", startTs: snapshotTs, includeStorage: true, requestedAtMs: 0 } as const;
    // The stream holds the snapshot until it ends, so a backup longer than the retention window stays consistent.
    const zip = this.#exports.zip(state, "a scheduled backup");
    using file = await Deno.open(partialPath, { write: true, createNew: true });
    const reader = zip.getReader();
    try {
      while (true) {
        if (this.#stopped) throw new Error("the server is stopping");
        const { done, value } = await reader.read();
        if (done) break;
        for (let written = 0; written < value.length;) written += await file.write(value.subarray(written));
      }
    } catch (error) {
      await reader.cancel().catch(() => {});
      throw error;
    }
    // Durable before the rename makes it a listed backup.
    await file.syncData();
  }

  /** Deletes the oldest backups beyond `keep`. */
  async #prune(): Promise<void> {
    const backups = await listBackups(this.dir);
    for (const old of backups.slice(0, Math.max(0, backups.length - this.#options.keep))) {
      await Deno.remove(old.path).catch((error) =>
        console.error(`denvex: cannot delete old backup ${old.name}:`, error)
      );
    }
  }
}

/** `20261130T062300Z`. */
function utcStamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}Z$/, "Z");
}
