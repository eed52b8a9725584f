/**
 * A runner's access to the database: its own reader (opened on first use; SQLite in WAL mode and PostgreSQL both
 * serve readers in other processes at a consistent snapshot), the last catalog the server sent, and transactions
 * opened on them.
 */
import { openTransaction } from "../database/mod.ts";
import type { Catalog, TransactionHost } from "../database/types.ts";
import { openPersistenceReader } from "../persistence/mod.ts";
import type { PersistenceLocation, PersistenceReader } from "../persistence/types.ts";

/** Opens transactions for a runner. */
export class TransactionSource {
  readonly #location: PersistenceLocation;
  #reader: Promise<PersistenceReader> | null = null;
  #catalog: Catalog | null = null;

  constructor(location: PersistenceLocation) {
    this.#location = location;
  }

  /** The catalog of the transaction in progress (for validators). */
  get catalog(): Catalog | null {
    return this.#catalog;
  }

  /**
   * Opens a transaction. `catalog` is null when the server knows this runner already has `catalogVersion` cached.
   */
  async open(options: {
    catalog: Catalog | null;
    catalogVersion: number | null;
    snapshotTs: bigint;
    udfType: "query" | "mutation";
    identityJson: string | null;
    journal?: string | null;
    createTable: (tableName: string) => Promise<Catalog>;
  }): Promise<TransactionHost> {
    if (options.catalog !== null) this.#catalog = options.catalog;
    const catalog = this.#catalog;
    if (catalog === null || (options.catalogVersion !== null && catalog.version !== options.catalogVersion)) {
      throw new Error(`Runner has no catalog of version ${options.catalogVersion}`);
    }
    this.#reader ??= openPersistenceReader(this.#location);
    let reader: PersistenceReader;
    try {
      reader = await this.#reader;
    } catch (error) {
      this.#reader = null; // try again on the next call
      throw error;
    }
    return openTransaction({
      reader,
      catalog,
      snapshotTs: options.snapshotTs,
      udfType: options.udfType,
      identityJson: options.identityJson,
      journal: options.journal ?? null,
      createTable: options.createTable,
    });
  }

  async close(): Promise<void> {
    const reader = this.#reader;
    this.#reader = null;
    if (reader) await (await reader.catch(() => null))?.close();
  }
}
