// Seeded, deterministic randomness for the benchmark's data: the same seed gives the same tree on
// every machine and every Node version (no Math.random, no platform-dependent floats beyond IEEE).
import { createCipheriv, createHash } from 'node:crypto';

export interface Random {
  /** A uniformly distributed unsigned 32-bit integer. */
  uint32(): number;
  /** A float in [0, 1). */
  float(): number;
  /** An integer in [min, maxExclusive). */
  int(min: number, maxExclusive: number): number;
  chance(probability: number): boolean;
  pick<T>(items: readonly T[]): T;
  /** A value spread evenly over orders of magnitude between min and max. */
  logUniform(min: number, max: number): number;
  /** A log-normal value with the given median and spread (sigma of the underlying normal). */
  logNormal(median: number, sigma: number): number;
}

const rotl = (value: number, bits: number) => (value << bits) | (value >>> (32 - bits));

/** xoshiro128** seeded from SHA-256 of the seed string. */
export function createRandom(seed: string): Random {
  const digest = createHash('sha256').update(seed).digest();
  let a = digest.readUInt32LE(0) | 1;
  let b = digest.readUInt32LE(4);
  let c = digest.readUInt32LE(8);
  let d = digest.readUInt32LE(12);
  const uint32 = (): number => {
    const result = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = b << 9;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return result;
  };
  const float = () => uint32() / 4294967296;
  return {
    uint32,
    float,
    int: (min, maxExclusive) => min + Math.floor(float() * (maxExclusive - min)),
    chance: (probability) => float() < probability,
    pick: (items) => items[Math.floor(float() * items.length)],
    logUniform: (min, max) => Math.exp(Math.log(min) + float() * (Math.log(max) - Math.log(min))),
    logNormal(median, sigma) {
      // Box-Muller; 1 - float() is in (0, 1], so the logarithm is finite.
      const normal = Math.sqrt(-2 * Math.log(1 - float())) * Math.cos(2 * Math.PI * float());
      return median * Math.exp(sigma * normal);
    },
  };
}

/** Incompressible bytes: AES-256-CTR keystream keyed by the seed, read in pieces of any size. */
export function createRandomBytes(seed: string): (lengthBytes: number) => Buffer {
  const key = createHash('sha256').update(`bytes:${seed}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  let zeros = Buffer.alloc(0);
  return (lengthBytes) => {
    if (zeros.length < lengthBytes) zeros = Buffer.alloc(lengthBytes);
    return cipher.update(zeros.subarray(0, lengthBytes));
  };
}
