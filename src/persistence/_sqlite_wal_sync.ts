/**
 * Durability of SQLite commits without blocking the event loop (issue 14). The writer connection runs with
 * `synchronous=NORMAL`: a COMMIT writes its WAL frames but does not fsync them. This class then fsyncs the WAL file
 * with an async call (a thread of Deno's blocking pool), and the commit is acknowledged only once it returns. That is
 * exactly what `synchronous=FULL` does in WAL mode ("an additional sync of the WAL file after each transaction
 * commit", sqlite.org/pragma.html#pragma_synchronous); checkpoints and WAL reuse are synced by SQLite itself in both
 * modes. Meanwhile the event loop keeps reading runner results and requests, so the next group gathers while this one
 * is being synced, and one fsync serves every commit written before it started.
 *
 * Uncommitted-to-disk rows are invisible to readers: nothing reads above the database's latest ts, which moves only
 * when the commit resolves. If an fsync fails, what was written may or may not survive; like PostgreSQL after a
 * failed fsync, the writer refuses every later write until the server restarts (and recovers from the file).
 * Private to `src/persistence/`.
 */

import { PersistenceError } from "./_shared.ts";

/** See the module comment. */
export class WalSync {
  readonly #walPath: string;
  #file: Deno.FsFile | null = null;
  /** The fsync in flight, or null. */
  #running: Promise<void> | null = null;
  /** The fsync that starts after the running one, shared by everyone who wrote meanwhile, or null. */
  #next: Promise<void> | null = null;
  #failure: PersistenceError | null = null;

  /** For the database at `databasePath` (its WAL is `<path>-wal`, which SQLite keeps while a connection is open). */
  constructor(databasePath: string) {
    this.#walPath = `${databasePath}-wal`;
  }

  /** Throws once an fsync has failed (see the module comment). */
  assertHealthy(): void {
    if (this.#failure !== null) throw this.#failure;
  }

  /** Resolves once everything written to the WAL before this call is on disk. */
  sync(): Promise<void> {
    if (this.#failure !== null) return Promise.reject(this.#failure);
    if (this.#running === null) return this.#start();
    // The running fsync may have started before the caller's writes: the next one covers them.
    this.#next ??= this.#running.catch(() => {}).then(() => {
      this.#next = null;
      return this.#start();
    });
    return this.#next;
  }

  /** Waits for the fsyncs in flight, then closes the file. */
  async close(): Promise<void> {
    while (this.#running !== null || this.#next !== null) {
      await (this.#next ?? this.#running)!.catch(() => {});
    }
    this.#file?.close();
    this.#file = null;
  }

  #start(): Promise<void> {
    const run: Promise<void> = this.#syncNow().finally(() => {
      if (this.#running === run) this.#running = null;
    });
    this.#running = run;
    return run;
  }

  async #syncNow(): Promise<void> {
    try {
      this.#file ??= await Deno.open(this.#walPath, { read: true });
      await this.#file.syncData();
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.#failure ??= new PersistenceError(
        `cannot make the SQLite write-ahead log durable (${reason}); no further writes until the server restarts`,
      );
      throw this.#failure;
    }
  }
}
