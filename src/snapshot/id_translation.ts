/**
 * ID translation for imports whose tables cannot keep their numbers. A document ID names its table by number; a
 * snapshot from another deployment (Convex Cloud numbers its tables and its `_storage` table its own way) may use
 * numbers that are taken here or that this deployment gives to another table. The import first tries to give a new
 * table its source number; for a table where that is impossible, every ID of it (`_id`, and every string anywhere in
 * any imported document that is a valid ID of that source table) is replaced by an ID of the target table.
 *
 * The translated ID keeps nothing of the old one but is derived from it (a SHA-256 of the old ID as the new internal
 * ID), so the same old ID always becomes the same new one: references between tables stay references. A string that
 * merely looks like an ID of such a table would be translated too; an ID carries a checksum and an exact length, so
 * an ordinary string passes for one only by design.
 *
 * Private to `src/snapshot`.
 */
import { createHash } from "node:crypto";
import { decodeDocumentId, encodeDocumentId, type Value } from "../values/mod.ts";

const INTERNAL_ID_BYTES = 16;

/** Source table number → target table number, for the tables whose numbers differ. */
export class IdTranslation {
  readonly #targets = new Map<number, number>();

  /** Records that IDs of `sourceNumber` become IDs of `targetNumber` (nothing when they are equal). */
  set(sourceNumber: number, targetNumber: number): void {
    if (sourceNumber !== targetNumber) this.#targets.set(sourceNumber, targetNumber);
  }

  /** Whether no ID changes. */
  get isIdentity(): boolean {
    return this.#targets.size === 0;
  }

  /** How many source tables change numbers (for the import's checkpoint line). */
  get tableCount(): number {
    return this.#targets.size;
  }

  /** `id`, translated when it is an ID of a source table whose number changes. */
  id(id: string): string {
    const decoded = decodeDocumentId(id);
    const target = decoded === null ? undefined : this.#targets.get(decoded.tableNumber);
    if (target === undefined) return id;
    const digest = createHash("sha256").update(id).digest();
    return encodeDocumentId(target, new Uint8Array(digest.buffer, digest.byteOffset, INTERNAL_ID_BYTES));
  }

  /** `value` with every ID in it translated (a new value; the input is left as it was). */
  value(value: Value): Value {
    if (this.isIdentity) return value;
    return this.#translate(value);
  }

  #translate(value: Value): Value {
    if (typeof value === "string") return this.id(value);
    if (Array.isArray(value)) return value.map((element) => this.#translate(element));
    if (value === null || typeof value !== "object" || value instanceof ArrayBuffer) return value;
    const translated: Record<string, Value> = {};
    for (const name of Object.keys(value)) {
      // defineProperty: a field named "__proto__" stays data.
      Object.defineProperty(translated, name, {
        value: this.#translate(value[name]),
        enumerable: true,
        writable: true,
      });
    }
    return translated;
  }
}
