/**
 * Pagination cursors: opaque strings naming a position in one index. A cursor from another index, or a string that
 * is not a cursor at all, is an `InvalidCursor` error so clients reset their pagination.
 */
import { keyFromBase64, keyToBase64 } from "../values/mod.ts";
import { SyscallError } from "./types.ts";

const CURSOR_PREFIX = "dvx1";
const END_MARK = "end";

/** A decoded cursor: after `key` (exclusive), or the end of the range. */
export type CursorPosition = { kind: "key"; key: Uint8Array } | { kind: "end" };

export function encodeCursor(indexId: number, position: CursorPosition): string {
  const tail = position.kind === "end" ? END_MARK : keyToBase64(position.key);
  return `${CURSOR_PREFIX}.${indexId}.${tail}`;
}

export function decodeCursor(cursor: string, indexId: number): CursorPosition {
  const parts = typeof cursor === "string" ? cursor.split(".") : [];
  if (parts.length !== 3 || parts[0] !== CURSOR_PREFIX || Number(parts[1]) !== indexId) {
    throw new SyscallError(
      "InvalidCursor",
      `InvalidCursor: the cursor ${JSON.stringify(cursor)} does not belong to this query; ` +
        `restart pagination from the beginning`,
    );
  }
  if (parts[2] === END_MARK) return { kind: "end" };
  try {
    return { kind: "key", key: keyFromBase64(parts[2]) };
  } catch {
    throw new SyscallError("InvalidCursor", `InvalidCursor: the cursor ${JSON.stringify(cursor)} is malformed`);
  }
}

/** True when `cursor` is a well-formed cursor of index `indexId`. */
export function isCursorOf(cursor: string, indexId: number): boolean {
  const parts = cursor.split(".");
  return parts.length === 3 && parts[0] === CURSOR_PREFIX && Number(parts[1]) === indexId;
}

const JOURNAL_PREFIX = "dvxj1:";

/** A journal (convex-compat.md §2.9) holding the end cursor of a query's page. Opaque to clients. */
export function encodeJournal(endCursor: string): string {
  return JOURNAL_PREFIX + endCursor;
}

/** The end cursor inside a journal; null for no journal or one that is not ours (it is then ignored). */
export function decodeJournal(journal: string | null): string | null {
  if (typeof journal !== "string" || !journal.startsWith(JOURNAL_PREFIX)) return null;
  return journal.slice(JOURNAL_PREFIX.length);
}
