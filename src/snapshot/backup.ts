/**
 * Scheduled backups (`--backup-every <duration>`, `--backup-dir`, `--backup-keep`): every interval, a snapshot ZIP of
 * the whole deployment (app and component tables, file storage) at the latest commit, written by the same streaming
 * export `npx convex export` downloads. Reads go page by page at one snapshot ts, so writes continue meanwhile and
 * the ZIP is consistent at that ts. `denvex restore <zip>` (or `npx convex import <zip> --replace-all`) brings one
 * back.
 *
 * With file storage on S3 (`--s3-endpoint`) and no `--backup-dir`, backups are objects under `_backups/` in the same
 * bucket (a reserved prefix the orphan sweep never touches), uploaded as they are written with bounded memory.
 * In a folder, a backup is written to a hidden `.partial` file, synced, then renamed, so a listed backup is always complete;
 * after each one the oldest beyond `--backup-keep` are deleted. An interval with no commit since the last backup is
 * skipped (the last one is still current). The snapshot is held while the backup is written, so retention cannot
 * prune what it still reads however long it takes (up to the hold's 6 h limit). A backup that fails (disk full, or a
 * hold that lapsed) is logged and its partial file removed; the next interval tries again.
 */
import { join } from "node:path";
import type { JsonValue } from "../values/mod.ts";
import { type BlobStore, S3_BACKUP_PREFIX, S3BlobStore } from "../storage/mod.ts";
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

/** Where backups go: a folder, or the S3 bucket of file storage. */
interface BackupTarget {
  /** The folder, or the bucket and prefix, for messages and the listing. */
  readonly location: string;
  /** Gets ready to write (creates the folder, clears what a previous process left half written). */
  prepare(): Promise<void>;
  /** Writes `zip` as the backup `name`, visible only once complete; resolves with its size. */
  write(name: string, zip: ReadableStream<Uint8Array>): Promise<number>;
  /** The complete backups, oldest first. */
  list(): Promise<BackupFile[]>;
  /** The bytes of `file`, streamed. */
  open(file: BackupFile): Promise<ReadableStream<Uint8Array>>;
  remove(file: BackupFile): Promise<void>;
}

/** Backups as files in a folder: written to a hidden `.partial` file, synced, then renamed. */
class DirectoryTarget implements BackupTarget {
  constructor(readonly location: string) {}

  async prepare(): Promise<void> {
    try {
      await Deno.mkdir(this.location, { recursive: true });
      for await (const entry of Deno.readDir(this.location)) {
        if (entry.isFile && entry.name.endsWith(PARTIAL_SUFFIX)) await Deno.remove(join(this.location, entry.name));
      }
    } catch (error) {
      if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
        throw new Error(`cannot write backups to ${this.location}: grant it with --allow-read and --allow-write`);
      }
      throw error;
    }
  }

  async write(name: string, zip: ReadableStream<Uint8Array>): Promise<number> {
    const path = join(this.location, name);
    const partialPath = `${path}${PARTIAL_SUFFIX}`;
    const reader = zip.getReader();
    try {
      using file = await Deno.open(partialPath, { write: true, createNew: true });
      while (true) {
        const { done, value } = await reader.read();
        if (done) break;
        for (let written = 0; written < value.length;) written += await file.write(value.subarray(written));
      }
      // Durable before the rename makes it a listed backup.
      await file.syncData();
      await Deno.rename(partialPath, path);
    } catch (error) {
      await reader.cancel().catch(() => {});
      await Deno.remove(partialPath).catch(() => {});
      throw error;
    }
    return (await Deno.stat(path)).size;
  }

  list(): Promise<BackupFile[]> {
    return listBackups(this.location);
  }

  async open(file: BackupFile): Promise<ReadableStream<Uint8Array>> {
    return (await Deno.open(file.path, { read: true })).readable;
  }

  remove(file: BackupFile): Promise<void> {
    return Deno.remove(file.path);
  }
}

/**
 * Backups as objects under `_backups/` in the file storage bucket: a multipart upload of fixed-size parts (memory
 * bounded by two parts), which S3 makes visible only once complete and which is aborted on failure.
 */
class S3Target implements BackupTarget {
  readonly location: string;
  readonly #bucket: S3BlobStore;

  constructor(bucket: S3BlobStore) {
    this.#bucket = bucket;
    this.location = `${bucket.description}, prefix ${S3_BACKUP_PREFIX}`;
  }

  prepare(): Promise<void> {
    // Nothing half written is ever visible; an upload a killed process left incomplete is S3's to expire (a
    // lifecycle rule "abort incomplete multipart uploads" on the bucket frees its parts).
    return Promise.resolve();
  }

  async write(name: string, zip: ReadableStream<Uint8Array>): Promise<number> {
    return (await this.#bucket.writeBackup(S3_BACKUP_PREFIX + name, zip)).sizeBytes;
  }

  async list(): Promise<BackupFile[]> {
    const found: BackupFile[] = [];
    for (const object of await this.#bucket.listBackups()) {
      const name = object.key.slice(S3_BACKUP_PREFIX.length);
      const match = BACKUP_FILE_PATTERN.exec(name);
      if (match) found.push({ path: object.key, name, snapshotTs: BigInt(match[2]), sizeBytes: object.sizeBytes });
    }
    return found.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  }

  async open(file: BackupFile): Promise<ReadableStream<Uint8Array>> {
    const stream = await this.#bucket.streamBackup(file.path);
    if (stream === null) throw new Error(`backup ${file.name} is gone from the bucket`);
    return stream;
  }

  remove(file: BackupFile): Promise<void> {
    return this.#bucket.removeBackup(file.path);
  }
}

/** See the module comment. */
export class BackupScheduler {
  readonly #host: ExportHost;
  readonly #exports: SnapshotExports;
  readonly #options: BackupOptions;
  readonly #target: BackupTarget;
  /** Where backups go: the folder, or the bucket and prefix (`kind` tells which). */
  readonly dir: string;
  readonly kind: "directory" | "s3";
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<BackupFile | null> = Promise.resolve(null);
  #stopped = false;
  #lastSnapshotTs: bigint | null = null;

  constructor(host: ExportHost, options: BackupOptions, dataDir: string) {
    this.#host = host;
    this.#exports = new SnapshotExports(host);
    this.#options = options;
    // File storage on S3 and no --backup-dir: backups go to the bucket too, so they leave the machine.
    const blobs = host.storage.blobs;
    this.#target = options.dir === null && blobs instanceof S3BlobStore
      ? new S3Target(blobs)
      : new DirectoryTarget(options.dir ?? join(dataDir, DEFAULT_BACKUP_DIR_NAME));
    this.kind = this.#target instanceof S3Target ? "s3" : "directory";
    this.dir = this.#target.location;
  }

  /** Prepares the target (folder created, partial files removed) and schedules the first backup. */
  async start(): Promise<void> {
    await this.#target.prepare();
    this.#schedule();
  }

  /** Takes a backup now (after any running one); resolves with it, or null when nothing changed since the last. */
  backupNow(): Promise<BackupFile | null> {
    this.#running = this.#running.catch(() => null).then(() => this.#backup());
    return this.#running;
  }

  /** The complete backups, oldest first. */
  list(): Promise<BackupFile[]> {
    return this.#target.list();
  }

  /** The bytes of the backup named `name` (only a name the listing returns), or null if there is none. */
  async open(name: string): Promise<{ file: BackupFile; body: ReadableStream<Uint8Array> } | null> {
    const file = (await this.list()).find((candidate) => candidate.name === name);
    return file ? { file, body: await this.#target.open(file) } : null;
  }

  /** The backups, newest first, as JSON for the dashboard (`_system/frontend/backups:list`). */
  async listJson(): Promise<JsonValue> {
    const backups = (await this.list()).reverse();
    return {
      dir: this.dir,
      kind: this.kind,
      everyMs: this.#options.everyMs,
      keep: this.#options.keep,
      backups: backups.map((backup) => ({
        name: backup.name,
        snapshotTs: backup.snapshotTs.toString(),
        sizeBytes: backup.sizeBytes,
      })),
    };
  }

  /** Stops the schedule; a backup under way is abandoned (its partial file or upload removed). */
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
    const state = { state: "completed", startTs: snapshotTs, includeStorage: true, requestedAtMs: 0 } as const;
    // The stream holds the snapshot until it ends, so a backup longer than the retention window stays consistent.
    const zip = this.#exports.zip(state, "a scheduled backup").pipeThrough(this.#abandonWhenStopped());
    const sizeBytes = await this.#target.write(name, zip);
    this.#lastSnapshotTs = snapshotTs;
    await this.#prune();
    const written = (await this.list()).find((file) => file.name === name);
    return written ?? { path: join(this.dir, name), name, snapshotTs, sizeBytes };
  }

  /** Fails the backup's stream once the server is stopping (the target then drops what it wrote). */
  #abandonWhenStopped(): TransformStream<Uint8Array, Uint8Array> {
    return new TransformStream({
      transform: (chunk, controller) => {
        if (this.#stopped) throw new Error("the server is stopping");
        controller.enqueue(chunk);
      },
    });
  }

  /** Deletes the oldest backups beyond `keep`. */
  async #prune(): Promise<void> {
    const backups = await this.list();
    for (const old of backups.slice(0, Math.max(0, backups.length - this.#options.keep))) {
      await this.#target.remove(old).catch((error) =>
        console.error(`denvex: cannot delete old backup ${old.name}:`, error)
      );
    }
  }
}

/** `20261130T062300Z`. */
function utcStamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}Z$/, "Z");
}

/** `denvex restore s3:<backup name>`: the backup is read from the file storage bucket's `_backups/`. */
export const S3_BACKUP_SCHEME = "s3:";

/**
 * Downloads the backup `s3:<name>` from `blobs` (which must be the S3 bucket) to a new file in `dir`, streamed;
 * resolves with its path (the caller removes it). Throws with a clear message when the bucket has no such backup.
 */
export async function downloadS3Backup(blobs: BlobStore, source: string, dir: string): Promise<string> {
  const name = source.slice(S3_BACKUP_SCHEME.length);
  if (!(blobs instanceof S3BlobStore)) throw new Error(`${source} needs the bucket's --s3-endpoint and --s3-bucket`);
  if (!BACKUP_FILE_PATTERN.test(name)) throw new Error(`${source}: a backup name looks like backup-<time>-<ts>.zip`);
  const body = await blobs.streamBackup(S3_BACKUP_PREFIX + name);
  if (body === null) throw new Error(`the bucket has no backup ${name} (${blobs.description})`);
  const path = join(dir, `.restore-${crypto.randomUUID()}.zip`);
  try {
    using file = await Deno.open(path, { write: true, createNew: true });
    for await (const chunk of body) {
      for (let written = 0; written < chunk.length;) written += await file.write(chunk.subarray(written));
    }
  } catch (error) {
    await Deno.remove(path).catch(() => {});
    throw error;
  }
  return path;
}
