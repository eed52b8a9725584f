/**
 * A byte budget shared by many holders (requests being decoded, messages queued on sockets): a holder takes bytes
 * before it keeps them and gives them back when done, and taking fails once the budget is spent, so the memory that
 * work in progress may hold has a fixed ceiling however many clients send at once.
 */

/** See the module comment. */
export class ByteBudget {
  /** The ceiling, in bytes. */
  readonly limitBytes: number;
  #usedBytes = 0;

  constructor(limitBytes: number) {
    if (!Number.isSafeInteger(limitBytes) || limitBytes <= 0) throw new RangeError(`invalid byte budget ${limitBytes}`);
    this.limitBytes = limitBytes;
  }

  /** Bytes taken and not yet given back. */
  get usedBytes(): number {
    return this.#usedBytes;
  }

  /** Takes `bytes` if they fit; false (and nothing taken) if they do not. */
  tryTake(bytes: number): boolean {
    if (bytes < 0) throw new RangeError(`negative byte count ${bytes}`);
    if (this.#usedBytes + bytes > this.limitBytes) return false;
    this.#usedBytes += bytes;
    return true;
  }

  /** Gives back `bytes` taken earlier. */
  give(bytes: number): void {
    this.#usedBytes -= bytes;
    console.assert(this.#usedBytes >= 0, "a byte budget was given back more than was taken");
    if (this.#usedBytes < 0) this.#usedBytes = 0;
  }
}
