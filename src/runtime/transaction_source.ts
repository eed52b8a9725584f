/**
 * A runner's access to the database: its own reader (opened on first use; SQLite in WAL mode and PostgreSQL both
 * serve readers in other processes at a consistent snapshot), the last catalog the server sent, and transactions
 * opened on them.
 *
 * Private to `src/runtime`: other folders use its `mod.ts`.
 */
import { CatalogView, openTransaction } from "../database/mod.ts";
import type { Catalog, TransactionHost } from "../database/mod.ts";
import { openPersistenceReader } from "../persistence/mod.ts";
import type { PersistenceLocation, PersistenceReader } from "../persistence/mod.ts";

/** Opens transactions for a runner. */
export class TransactionSource {
  readonly #location: PersistenceLocation;
  #reader: Promise<PersistenceReader> | null = null;
  /** The reader once open: transactions then open without waiting (every await is a hop on the call's path). */
  #openReader: PersistenceReader | null = null;
  #catalog: Catalog | null = null;
  /** The lookup maps of `#catalog`, built once per catalog rather than once per transaction (issue 14). */
  #catalogView: CatalogView | null = null;

  constructor(location: PersistenceLocation) {
    this.#location = location;
  }

  /** The catalog of the transaction in progress (for validators). */
  get catalog(): Catalog | null {
    return this.#catalog;
  }

  /**
   * Opens a transaction. `catalog` is null when the server knows this runner already has `catalogVersion` cached.
   * Synchronous once the reader is open.
   */
  open(options: {
    catalog: Catalog | null;
    catalogVersion: number | null;
    snapshotTs: bigint;
    udfType: "query" | "mutation";
    identityJson: string | null;
    journal?: string | null;
    createTable: (tableName: string) => Promise<Catalog>;
  }): TransactionHost | Promise<TransactionHost> {
    if (options.catalog !== null && options.catalog !== this.#catalog) {
      this.#catalog = options.catalog;
      this.#catalogView = new CatalogView(options.catalog);
    }
    const catalog = this.#catalogView;
    if (catalog === null || (options.catalogVersion !== null && catalog.catalog.version !== options.catalogVersion)) {
      throw new Error(`Runner has no catalog of version ${options.catalogVersion}`);
    }
    if (this.#openReader !== null) return this.#begin(this.#openReader, catalog, options);
    this.#reader ??= openPersistenceReader(this.#location);
    return this.#reader.then(
      (reader) => {
        this.#openReader = reader;
        return this.#begin(reader, catalog, options);
      },
      (error) => {
        this.#reader = null; // try again on the next call
        throw error;
      },
    );
  }

  #begin(reader: PersistenceReader, catalog: CatalogView, options: {
    snapshotTs: bigint;
    udfType: "query" | "mutation";
    identityJson: string | null;
    journal?: string | null;
    createTable: (tableName: string) => Promise<Catalog>;
  }): TransactionHost {
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

  /** See `PersistenceReader.holdReads`; null before the reader is open or where it has none. */
  holdReads(): (() => void) | null {
    return this.#openReader?.holdReads?.() ?? null;
  }

  async close(): Promise<void> {
    const reader = this.#reader;
    this.#reader = null;
    this.#openReader = null;
    if (reader) await (await reader.catch(() => null))?.close();
  }
}
