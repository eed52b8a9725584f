/**
 * A growable byte buffer for building index keys without per-byte allocation.
 *
 * Private to `src/values`: other folders use its `mod.ts`.
 */

const INITIAL_CAPACITY_BYTES = 1024;

/**
 * Results up to this size are carved out of a shared slab, as Node's `Buffer` pool does: in Deno 2.9 allocating a
 * fresh ArrayBuffer costs ~300 ns (mostly GC bookkeeping), several times the cost of encoding a typical key.
 */
const MAX_POOLED_RESULT_BYTES = 512;
const SLAB_BYTES = 8192;
let slab = new ArrayBuffer(SLAB_BYTES);
let slabOffset = 0;

/**
 * A new Uint8Array holding a copy of `source[0, length)`. Small results are views into a shared 8 KiB slab (their
 * `byteOffset` is not 0, so use the view, never its bare `.buffer`); a view keeps its slab alive, which costs at most
 * 8 KiB per long-lived key.
 */
export function copyToPooledArray(source: Uint8Array, length: number): Uint8Array {
  if (length > MAX_POOLED_RESULT_BYTES) return source.slice(0, length);
  if (slabOffset + length > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabOffset = 0;
  }
  const result = new Uint8Array(slab, slabOffset, length);
  // A plain loop: for short keys it beats creating a subarray view for `set`.
  for (let i = 0; i < length; i++) result[i] = source[i];
  // Keep views 8-byte aligned so DataViews and wider typed arrays over them stay cheap.
  slabOffset += (length + 7) & ~7;
  return result;
}

/** Appends bytes to an internal buffer that doubles when full; `finish()` copies out the written bytes. */
export class ByteWriter {
  bytes: Uint8Array;
  view: DataView;
  /** Number of bytes written so far. */
  length = 0;

  constructor(initialCapacityBytes = INITIAL_CAPACITY_BYTES) {
    this.bytes = new Uint8Array(initialCapacityBytes);
    this.view = new DataView(this.bytes.buffer);
  }

  /** Forgets the written bytes, keeping the allocation. */
  reset(): void {
    this.length = 0;
  }

  /** Makes room for `additionalBytes` more bytes. */
  reserve(additionalBytes: number): void {
    const needed = this.length + additionalBytes;
    if (needed <= this.bytes.length) return;
    let capacity = this.bytes.length * 2;
    while (capacity < needed) capacity *= 2;
    const grown = new Uint8Array(capacity);
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
    this.view = new DataView(grown.buffer);
  }

  /** Appends one byte; the caller has reserved room. */
  pushUnchecked(byte: number): void {
    this.bytes[this.length++] = byte;
  }

  /** Appends one byte. */
  push(byte: number): void {
    if (this.length === this.bytes.length) this.reserve(1);
    this.bytes[this.length++] = byte;
  }

  /** A copy of the written bytes, exactly as long as what was written (see {@link copyToPooledArray}). */
  finish(): Uint8Array {
    return copyToPooledArray(this.bytes, this.length);
  }
}
