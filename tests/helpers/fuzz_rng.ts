/**
 * The fuzz test's own small PRNG (xoshiro128**, seeded through splitmix32): deterministic for a seed, so any failing
 * case can be regenerated from `(seed, case index)` alone, whatever order concurrent cases ran in.
 */

/** The seed used when `DENVEX_FUZZ_SEED` is not set. */
export const DEFAULT_FUZZ_SEED = 0x5eed_d0e5;

/** The seed of this run: `DENVEX_FUZZ_SEED` (decimal or 0x-hex) or {@link DEFAULT_FUZZ_SEED}. */
export function fuzzSeed(): number {
  const text = Deno.env.get("DENVEX_FUZZ_SEED");
  if (text === undefined || text.trim() === "") return DEFAULT_FUZZ_SEED;
  const seed = Number(text.trim());
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`DENVEX_FUZZ_SEED must be a non-negative integer`);
  return seed >>> 0;
}

function splitmix32(state: number): [number, number] {
  state = (state + 0x9e3779b9) | 0;
  let z = state;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return [state, (z ^ (z >>> 16)) >>> 0];
}

/** A deterministic random source. */
export class Rng {
  readonly #s = new Uint32Array(4);

  /** A generator for `seed`; `stream` separates independent sequences of one seed (e.g. one per case). */
  constructor(seed: number, stream = 0) {
    let state = (seed ^ Math.imul(stream + 1, 0x27d4eb2d)) | 0;
    for (let i = 0; i < 4; i++) [state, this.#s[i]] = splitmix32(state);
    if (this.#s.every((word) => word === 0)) this.#s[0] = 1;
  }

  /** A uniform 32-bit unsigned integer. */
  next(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** An integer in `[0, n)`. */
  int(n: number): number {
    if (!(n > 0)) throw new RangeError(`int(${n})`);
    return Math.floor((this.next() / 0x1_0000_0000) * n);
  }

  /** An integer in `[min, max]`. */
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() / 0x1_0000_0000 < p;
  }

  /** One element of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** `length` random bytes. */
  bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = this.next() & 0xff;
    return out;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
