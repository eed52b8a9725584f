/**
 * Reads a ZIP file on disk by its central directory (so entries written with data descriptors, as streaming writers
 * write them, are read right): lists entries, then streams one entry's bytes, inflated, with its CRC checked at the
 * end. Stored (0) and deflated (8) entries; no ZIP64, no encryption. Nothing is held in memory but the directory.
 */
import { crc32 } from "./zip_writer.ts";

const END_OF_CENTRAL_DIRECTORY_SIGNATURE = 0x06054b50;
const CENTRAL_HEADER_SIGNATURE = 0x02014b50;
const LOCAL_HEADER_SIGNATURE = 0x04034b50;
/** The end record is 22 bytes plus a comment of at most 65,535. */
const MAX_END_RECORD_BYTES = 22 + 0xffff;
const READ_CHUNK_BYTES = 64 * 1024;

/** One entry of the directory. */
export interface ZipEntry {
  path: string;
  method: number;
  crc: number;
  compressedBytes: number;
  uncompressedBytes: number;
  localHeaderOffset: number;
}

/** A ZIP file that is not one this reader can read. */
export class ZipFormatError extends Error {}

/** The entries of the ZIP at `path`. */
export async function readZipDirectory(path: string): Promise<ZipEntry[]> {
  using file = await Deno.open(path, { read: true });
  const sizeBytes = (await file.stat()).size;
  const tailBytes = Math.min(sizeBytes, MAX_END_RECORD_BYTES);
  const tail = await readAt(file, sizeBytes - tailBytes, tailBytes);
  const view = new DataView(tail.buffer);
  let end = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (view.getUint32(i, true) === END_OF_CENTRAL_DIRECTORY_SIGNATURE) {
      end = i;
      break;
    }
  }
  if (end < 0) throw new ZipFormatError("not a ZIP file (no end of central directory)");
  const count = view.getUint16(end + 10, true);
  const directoryBytes = view.getUint32(end + 12, true);
  const directoryOffset = view.getUint32(end + 16, true);
  if (count === 0xffff || directoryOffset === 0xffffffff) throw new ZipFormatError("ZIP64 archives are not supported");
  if (directoryOffset + directoryBytes > sizeBytes) throw new ZipFormatError("the ZIP's central directory is cut off");
  const directory = await readAt(file, directoryOffset, directoryBytes);
  const entries: ZipEntry[] = [];
  const dir = new DataView(directory.buffer);
  let at = 0;
  const decoder = new TextDecoder("utf-8", { fatal: true });
  for (let i = 0; i < count; i++) {
    if (at + 46 > directory.length || dir.getUint32(at, true) !== CENTRAL_HEADER_SIGNATURE) {
      throw new ZipFormatError("the ZIP's central directory is malformed");
    }
    const nameBytes = dir.getUint16(at + 28, true);
    const extraBytes = dir.getUint16(at + 30, true);
    const commentBytes = dir.getUint16(at + 32, true);
    entries.push({
      method: dir.getUint16(at + 10, true),
      crc: dir.getUint32(at + 16, true),
      compressedBytes: dir.getUint32(at + 20, true),
      uncompressedBytes: dir.getUint32(at + 24, true),
      localHeaderOffset: dir.getUint32(at + 42, true),
      path: decoder.decode(directory.subarray(at + 46, at + 46 + nameBytes)),
    });
    at += 46 + nameBytes + extraBytes + commentBytes;
  }
  return entries;
}

/** The bytes of `entry`, inflated; throws a ZipFormatError at the end when the CRC or size does not match. */
export async function* readZipEntry(path: string, entry: ZipEntry): AsyncGenerator<Uint8Array> {
  if (entry.method !== 0 && entry.method !== 8) {
    throw new ZipFormatError(`${entry.path}: compression method ${entry.method} is not supported`);
  }
  using file = await Deno.open(path, { read: true });
  const header = await readAt(file, entry.localHeaderOffset, 30);
  const view = new DataView(header.buffer);
  if (view.getUint32(0, true) !== LOCAL_HEADER_SIGNATURE) throw new ZipFormatError(`${entry.path}: bad local header`);
  const dataOffset = entry.localHeaderOffset + 30 + view.getUint16(26, true) + view.getUint16(28, true);
  const raw = ReadableStream.from(fileRange(file, dataOffset, entry.compressedBytes));
  const bytes = entry.method === 8 ? raw.pipeThrough(new DecompressionStream("deflate-raw")) : raw;
  let crc = 0;
  let sizeBytes = 0;
  for await (const chunk of bytes) {
    crc = crc32(crc, chunk);
    sizeBytes += chunk.length;
    if (sizeBytes > entry.uncompressedBytes) throw new ZipFormatError(`${entry.path}: longer than its directory says`);
    yield chunk;
  }
  if (crc !== entry.crc || sizeBytes !== entry.uncompressedBytes) {
    throw new ZipFormatError(`${entry.path}: CRC or size mismatch (a corrupt ZIP)`);
  }
}

/** Splits a byte stream into text lines (UTF-8, `\n`-separated, a trailing `\r` dropped); skips empty lines. */
export async function* textLines(bytes: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let pending = "";
  for await (const chunk of bytes) {
    pending += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, newline).replace(/\r$/, "");
      pending = pending.slice(newline + 1);
      if (line.trim() !== "") yield line;
    }
  }
  pending += decoder.decode();
  if (pending.trim() !== "") yield pending.replace(/\r$/, "");
}

async function readAt(file: Deno.FsFile, offset: number, lengthBytes: number): Promise<Uint8Array<ArrayBuffer>> {
  const buffer = new Uint8Array(lengthBytes);
  await file.seek(offset, Deno.SeekMode.Start);
  let filled = 0;
  while (filled < lengthBytes) {
    const read = await file.read(buffer.subarray(filled));
    if (read === null) throw new ZipFormatError("the ZIP file is cut off");
    filled += read;
  }
  return buffer;
}

async function* fileRange(
  file: Deno.FsFile,
  offset: number,
  lengthBytes: number,
): AsyncGenerator<Uint8Array<ArrayBuffer>> {
  let remaining = lengthBytes;
  let at = offset;
  while (remaining > 0) {
    const chunk = await readAt(file, at, Math.min(remaining, READ_CHUNK_BYTES));
    at += chunk.length;
    remaining -= chunk.length;
    yield chunk;
  }
}
