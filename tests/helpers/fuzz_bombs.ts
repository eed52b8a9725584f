/**
 * Compression bombs for the fuzz test: bodies of a few hundred bytes that expand to up to 190 MiB. Every one is
 * checked here against {@link MAX_BOMB_EXPANDED_BYTES} (decompressed with that cap), so a wrong constant cannot turn
 * the test into a real memory bomb for the server or the machine.
 */
import { brotliDecompressSync, gzipSync } from "node:zlib";

const MIB = 1024 * 1024;
/** No bomb may expand beyond this (the brief's cap: a failure must not take the machine down). */
export const MAX_BOMB_EXPANDED_BYTES = 200_000_000;

/**
 * Brotli (quality 11, lgwin 24) of 190 MiB of zero bytes: beyond the push endpoints' 160 MiB decompression limit.
 * Generated once with `brotliCompressSync(new Uint8Array(190 * MIB), {params: {QUALITY: 11, LGWIN: 24}})` (slow:
 * ~10 s, hence a constant).
 */
const BROTLI_ZEROS_190_MIB = "z///f/gnAOKxQCD3/p/////wTwDEYQGA7v0/////4Z8AiMMiAN37f/7//8M/ARCHBQC69//8//+HfwIgDgsA" +
  "dO//+f//D/8EQBwWAOje//P//x/+CYA4LADQvf/n//8//BMAcVgAoHv/z///f/gnAOKwAED3/p/////wTwDEYQGA7v0/////4Z8AiMMCAN37" +
  "//z//8Y/ARCHBQC6998=";
/** Brotli of `{"appDefinition":"aaa…"}` with 150 MiB of `a`: valid JSON just under the 160 MiB limit. */
const BROTLI_JSON_150_MIB = "z///f/iN1GDNmGO1iA7cnggrdD4rBHBiKj88vf8X/P//h18CIA4LAHTv//n//w+/BEAcFgHo3v/z//8ffgmAOCwA" +
  "0L3/5///P/wSAHFYAKB7/8///3/4JQDisABA9/6f////8EsAxGEBgO79P////+GXAIjDAgDd+3/+///DLwEQhwUAuvf/OQEAhl9KpK8kOSwA" +
  "yHz/RQ==";

/** One bomb: its bytes, the `Content-Encoding` that announces it, and how far it expands. */
export interface Bomb {
  name: string;
  encoding: string;
  bytes: Uint8Array;
  expandedBytes: number;
}

/** The bombs of one run. */
export interface Bombs {
  all: Bomb[];
}

function brotliBomb(name: string, base64: string, expectedBytes: number): Bomb {
  const bytes = Uint8Array.fromBase64(base64);
  const expanded = brotliDecompressSync(bytes, { maxOutputLength: MAX_BOMB_EXPANDED_BYTES });
  if (expanded.length !== expectedBytes) throw new Error(`bomb ${name} expands to ${expanded.length} bytes`);
  return { name, encoding: "br", bytes, expandedBytes: expanded.length };
}

/** Builds (and checks) the bombs. */
export function makeBombs(): Bombs {
  const zeros = new Uint8Array(64 * MIB);
  const gzip = gzipSync(zeros, { level: 9 });
  const all = [
    brotliBomb("br-190MiB-zeros", BROTLI_ZEROS_190_MIB, 190 * MIB),
    brotliBomb("br-150MiB-json", BROTLI_JSON_150_MIB, 150 * MIB + 20),
    { name: "gzip-64MiB-zeros", encoding: "gzip", bytes: new Uint8Array(gzip), expandedBytes: zeros.length },
  ];
  for (const bomb of all) {
    if (bomb.expandedBytes > MAX_BOMB_EXPANDED_BYTES) throw new Error(`bomb ${bomb.name} is over the cap`);
  }
  return { all };
}
