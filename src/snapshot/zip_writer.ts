/**
 * A streaming ZIP writer: entries are deflated (`CompressionStream("deflate-raw")`) as their bytes arrive and sizes
 * and CRCs follow each entry in a data descriptor, so nothing is buffered but the central directory (one small record
 * per entry). Without ZIP64 an archive holds at most 65,535 entries and 4 GiB; past that the writer throws rather than
 * write a corrupt file.
 */

const LOCAL_HEADER_SIGNATURE = 0x04034b50;
const DATA_DESCRIPTOR_SIGNATURE = 0x08074b50;
const CENTRAL_HEADER_SIGNATURE = 0x02014b50;
const END_OF_CENTRAL_DIRECTORY_SIGNATURE = 0x06054b50;
/** Bit 3: sizes and CRC follow the data; bit 11: names are UTF-8. */
const FLAGS = 0x0808;
const METHOD_DEFLATE = 8;
const VERSION_NEEDED = 20;
/** Made by Unix (3), so the external attributes carry permissions. */
const VERSION_MADE_BY = (3 << 8) | VERSION_NEEDED;
/** Regular file, rw-r--r--. */
const EXTERNAL_ATTRIBUTES = (0o100644 << 16) >>> 0;
const MAX_ENTRIES = 0xffff;
const MAX_OFFSET_BYTES = 0xffffffff;

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** Continues a CRC-32 over `bytes` (start with 0). */
export function crc32(crc: number, bytes: Uint8Array): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

interface CentralRecord {
  name: Uint8Array;
  crc: number;
  compressedBytes: number;
  uncompressedBytes: number;
  offsetBytes: number;
}

/** See the module comment. Yield its generators' chunks, in order, into one output stream. */
export class ZipWriter {
  readonly #records: CentralRecord[] = [];
  #offsetBytes = 0;
  readonly #dosTime: number;
  readonly #dosDate: number;

  constructor(modified = new Date()) {
    this.#dosTime = (modified.getUTCHours() << 11) | (modified.getUTCMinutes() << 5) |
      Math.floor(modified.getUTCSeconds() / 2);
    this.#dosDate = ((modified.getUTCFullYear() - 1980) << 9) | ((modified.getUTCMonth() + 1) << 5) |
      modified.getUTCDate();
  }

  /** One entry named `path` holding the bytes of `content`, deflated as they stream. */
  async *entry(path: string, content: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    if (this.#records.length >= MAX_ENTRIES) throw new Error(`a snapshot ZIP holds at most ${MAX_ENTRIES} entries`);
    const name = new TextEncoder().encode(path);
    const record: CentralRecord = { name, crc: 0, compressedBytes: 0, uncompressedBytes: 0, offsetBytes: 0 };
    record.offsetBytes = this.#offsetBytes;
    yield this.#count(this.#localHeader(name));
    const source = ReadableStream.from(measured(content, record));
    for await (const chunk of source.pipeThrough(new CompressionStream("deflate-raw"))) {
      record.compressedBytes += chunk.length;
      yield this.#count(chunk);
    }
    const descriptor = new DataView(new ArrayBuffer(16));
    descriptor.setUint32(0, DATA_DESCRIPTOR_SIGNATURE, true);
    descriptor.setUint32(4, record.crc, true);
    descriptor.setUint32(8, record.compressedBytes, true);
    descriptor.setUint32(12, record.uncompressedBytes, true);
    this.#records.push(record);
    yield this.#count(new Uint8Array(descriptor.buffer));
  }

  /** The central directory and its end record: the archive's last bytes. */
  *finish(): Generator<Uint8Array> {
    const directoryOffsetBytes = this.#offsetBytes;
    for (const record of this.#records) yield this.#count(this.#centralHeader(record));
    const end = new DataView(new ArrayBuffer(22));
    end.setUint32(0, END_OF_CENTRAL_DIRECTORY_SIGNATURE, true);
    end.setUint16(8, this.#records.length, true);
    end.setUint16(10, this.#records.length, true);
    end.setUint32(12, this.#offsetBytes - directoryOffsetBytes, true);
    end.setUint32(16, directoryOffsetBytes, true);
    yield new Uint8Array(end.buffer);
  }

  #count(chunk: Uint8Array): Uint8Array {
    this.#offsetBytes += chunk.length;
    if (this.#offsetBytes > MAX_OFFSET_BYTES) throw new Error("a snapshot ZIP holds at most 4 GiB (no ZIP64 yet)");
    return chunk;
  }

  #localHeader(name: Uint8Array): Uint8Array {
    const header = new Uint8Array(30 + name.length);
    const view = new DataView(header.buffer);
    view.setUint32(0, LOCAL_HEADER_SIGNATURE, true);
    view.setUint16(4, VERSION_NEEDED, true);
    view.setUint16(6, FLAGS, true);
    view.setUint16(8, METHOD_DEFLATE, true);
    view.setUint16(10, this.#dosTime, true);
    view.setUint16(12, this.#dosDate, true);
    // CRC and sizes (14..25) stay zero: the data descriptor carries them.
    view.setUint16(26, name.length, true);
    header.set(name, 30);
    return header;
  }

  #centralHeader(record: CentralRecord): Uint8Array {
    const header = new Uint8Array(46 + record.name.length);
    const view = new DataView(header.buffer);
    view.setUint32(0, CENTRAL_HEADER_SIGNATURE, true);
    view.setUint16(4, VERSION_MADE_BY, true);
    view.setUint16(6, VERSION_NEEDED, true);
    view.setUint16(8, FLAGS, true);
    view.setUint16(10, METHOD_DEFLATE, true);
    view.setUint16(12, this.#dosTime, true);
    view.setUint16(14, this.#dosDate, true);
    view.setUint32(16, record.crc, true);
    view.setUint32(20, record.compressedBytes, true);
    view.setUint32(24, record.uncompressedBytes, true);
    view.setUint16(28, record.name.length, true);
    view.setUint32(38, EXTERNAL_ATTRIBUTES, true);
    view.setUint32(42, record.offsetBytes, true);
    header.set(record.name, 46);
    return header;
  }
}

/** Passes `content` through, adding its bytes to the record's CRC and uncompressed size. */
async function* measured(
  content: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  record: CentralRecord,
): AsyncGenerator<Uint8Array<ArrayBuffer>> {
  for await (const chunk of content) {
    record.crc = crc32(record.crc, chunk);
    record.uncompressedBytes += chunk.length;
    if (record.uncompressedBytes > MAX_OFFSET_BYTES) throw new Error("a ZIP entry holds at most 4 GiB (no ZIP64 yet)");
    // The compressor's input type excludes shared buffers; a chunk here never is one.
    yield chunk as Uint8Array<ArrayBuffer>;
  }
}
