/**
 * One server per data directory. Two servers on one directory would each run a committer over the same database
 * file and modules, and serve data that diverges. The server holds an exclusive advisory lock (flock) on
 * `<data>/denvex.lock` for its whole lifetime; a second one fails to take it and exits.
 *
 * The kernel drops the lock when the process dies, however it dies, so a crashed server's lock file left on disk
 * never blocks a restart: only a lock held by a live process does. Deno opens files close-on-exec, so runner
 * processes do not inherit (and cannot outlive the server with) the lock.
 *
 * Private to `src/server`: other folders use its `mod.ts`.
 */
import { DenvexError } from "../errors/mod.ts";
import { join } from "node:path";

/** The lock file inside the data directory. */
export const LOCK_FILE_NAME = "denvex.lock";

/** A held data-directory lock. */
export interface DataDirLock {
  /** Releases the lock (the file stays: a later server locks the same file). */
  release(): void;
}

/** Another live process holds the data directory. */
export class DataDirLockedError extends DenvexError {
  constructor(dataDir: string, holder: string) {
    super(
      "DataDirLocked",
      `data directory ${dataDir} is in use by another denvex server${holder}; ` +
        `stop it first, or give this one its own --data`,
    );
    this.name = "DataDirLockedError";
  }
}

/**
 * Takes the lock of `dataDir` without waiting, and records this process's pid in the file for the message a second
 * server prints. Throws {@link DataDirLockedError} if another process holds it.
 */
export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  const path = join(dataDir, LOCK_FILE_NAME);
  const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
  let locked = false;
  try {
    locked = await file.tryLock(true);
    if (!locked) {
      const holderPid = await readHolderPid(file);
      throw new DataDirLockedError(dataDir, holderPid === null ? "" : ` (pid ${holderPid})`);
    }
    await file.truncate(0);
    await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
  } catch (error) {
    file.close();
    throw error;
  }
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      // Closing the file drops the lock.
      file.close();
    },
  };
}

/** The pid the holder wrote, or null when the file holds none (it is written right after locking). */
async function readHolderPid(file: Deno.FsFile): Promise<number | null> {
  const buffer = new Uint8Array(32);
  const read = await file.read(buffer).catch(() => null);
  const text = read === null ? "" : new TextDecoder().decode(buffer.subarray(0, read)).trim();
  return /^\d{1,10}$/.test(text) ? Number(text) : null;
}
