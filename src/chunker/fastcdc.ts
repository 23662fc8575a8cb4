// FastCDC content-defined chunking (Xia et al., USENIX ATC 2016) with normalized chunking level 2,
// keyed by a per-repository secret so chunk boundaries do not fingerprint known files across
// repositories. Pure: no I/O, no clock.
import { createHmac } from 'node:crypto';

export interface ChunkerParams {
  minSizeBytes: number;
  /** A power of two; the two normalized-chunking masks are derived from it. */
  avgSizeBytes: number;
  maxSizeBytes: number;
}

export const DEFAULT_CHUNKER_PARAMS: Readonly<ChunkerParams> = Object.freeze({
  minSizeBytes: 512 * 1024,
  avgSizeBytes: 1024 * 1024,
  maxSizeBytes: 8 * 1024 * 1024,
});

export const GEAR_SEED_BYTES = 32;

/** Normalization level 2: the mask is 2 bits harder before the average size and 2 bits easier after. */
const NORMALIZATION_LEVEL = 2;
const MIN_AVG_BITS = 6;
const MAX_AVG_BITS = 28;
/** Bounds the working buffer of `chunkStream` (2 × max). */
const MAX_MAX_SIZE_BYTES = 1024 * 1024 * 1024;
const GEAR_LABEL = 'amber fastcdc gear v1';

export interface Chunker {
  readonly params: Readonly<ChunkerParams>;
  /**
   * Length of the next chunk of `data` starting at `start`, looking only at bytes in [start, end).
   * The result is always in [1, maxSizeBytes] (given start < end) and is final only if a boundary
   * was found before `end`, or `end - start >= maxSizeBytes`, or `end` is the end of the stream.
   * A caller that is not at end of stream MUST therefore pass at least maxSizeBytes bytes;
   * with fewer, a result equal to `end - start` means "no boundary yet", not "cut here".
   */
  cutPoint(data: Uint8Array, start: number, end: number): number;
}

/**
 * 256 pseudo-random 32-bit gear values from HMAC-SHA-256 in counter mode keyed by the repository's
 * secret chunker seed. Deterministic: the same seed always gives the same table.
 */
export function createGearTable(seed: Uint8Array): Uint32Array {
  if (!(seed instanceof Uint8Array) || seed.length !== GEAR_SEED_BYTES) {
    throw new Error(`chunker seed must be ${GEAR_SEED_BYTES} bytes, got ${seed?.length}`);
  }
  const table = new Uint32Array(256);
  const perBlock = 32 / 4;
  const counter = Buffer.alloc(4);
  for (let block = 0; block < 256 / perBlock; block++) {
    counter.writeUInt32BE(block);
    const digest = createHmac('sha256', seed).update(GEAR_LABEL).update(counter).digest();
    for (let j = 0; j < perBlock; j++) table[block * perBlock + j] = digest.readUInt32BE(j * 4);
  }
  return table;
}

/** Throws a plain Error (a programmer mistake) unless the parameters can drive FastCDC. */
export function validateChunkerParams(params: ChunkerParams): void {
  const { minSizeBytes: min, avgSizeBytes: avg, maxSizeBytes: max } = params;
  for (const [name, value] of Object.entries({ minSizeBytes: min, avgSizeBytes: avg, maxSizeBytes: max })) {
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new Error(`chunker ${name} must be a positive integer, got ${value}`);
    }
  }
  if (!(min < avg && avg < max)) {
    throw new Error(`chunker sizes must satisfy min < avg < max, got ${min} / ${avg} / ${max}`);
  }
  const avgBits = Math.log2(avg);
  if (!Number.isInteger(avgBits) || avgBits < MIN_AVG_BITS || avgBits > MAX_AVG_BITS) {
    throw new Error(
      `chunker avgSizeBytes must be a power of two from 2^${MIN_AVG_BITS} to 2^${MAX_AVG_BITS}, got ${avg}`,
    );
  }
  if (max > MAX_MAX_SIZE_BYTES) {
    throw new Error(`chunker maxSizeBytes must be at most ${MAX_MAX_SIZE_BYTES}, got ${max}`);
  }
}

/**
 * A mask of the `bits` highest bits of the 32-bit gear hash, as an int32. High bits are used because
 * bit k of `(h << 1) + gear[b]` depends on the last k + 1 bytes only: the top bits see the whole
 * 32-byte window, which is what the paper's spread-out 64-bit masks achieve.
 */
function topBitsMask(bits: number): number {
  return (0xffffffff << (32 - bits)) | 0;
}

export function createChunker(params: ChunkerParams, seed: Uint8Array): Chunker {
  validateChunkerParams(params);
  const gear = createGearTable(seed);
  const { minSizeBytes: minSize, avgSizeBytes: avgSize, maxSizeBytes: maxSize } = params;
  const avgBits = Math.log2(avgSize);
  const maskHard = topBitsMask(avgBits + NORMALIZATION_LEVEL);
  const maskEasy = topBitsMask(avgBits - NORMALIZATION_LEVEL);
  const frozen = Object.freeze({ ...params });

  function cutPoint(data: Uint8Array, start: number, end: number): number {
    const available = end - start;
    if (available <= minSize) return available;
    const limit = start + (available < maxSize ? available : maxSize);
    const normal = start + (available < avgSize ? available : avgSize);
    // Cut-point skipping: the first minSize bytes are never hashed.
    let i = start + minSize;
    let hash = 0;
    for (; i < normal; i++) {
      hash = ((hash << 1) + gear[data[i]]) | 0;
      if ((hash & maskHard) === 0) return i + 1 - start;
    }
    for (; i < limit; i++) {
      hash = ((hash << 1) + gear[data[i]]) | 0;
      if ((hash & maskEasy) === 0) return i + 1 - start;
    }
    return limit - start;
  }

  return { params: frozen, cutPoint };
}

/**
 * Splits a byte stream into content-defined chunks. Every yielded chunk is a fresh Buffer the
 * consumer owns: it stays valid after the next iteration and the source's buffers may be reused.
 * An empty source yields nothing.
 *
 * Bytes are copied at most twice: once into a working buffer of 2 × maxSize (only for pieces of the
 * source that are too short to cut in place, and for a chunk that straddles two pieces) and once
 * out into the chunk. Pieces of at least maxSize bytes are cut where they lie.
 */
export async function* chunkStream(source: AsyncIterable<Uint8Array>, chunker: Chunker): AsyncGenerator<Buffer> {
  const maxSize = chunker.params.maxSizeBytes;
  const work = Buffer.allocUnsafeSlow(2 * maxSize);
  // Invariant between pieces: end - start < maxSize; the bytes in [start, end) are not yet chunked.
  let start = 0;
  let end = 0;
  for await (const piece of source) {
    let offset = 0;
    while (offset < piece.length) {
      if (start === end && piece.length - offset >= maxSize) {
        const length = chunker.cutPoint(piece, offset, piece.length);
        yield copyChunk(piece, offset, length);
        offset += length;
        continue;
      }
      // Top up to exactly maxSize bytes (or all the piece has), making room first if needed.
      const wanted = maxSize - (end - start);
      if (work.length - end < wanted) {
        work.copyWithin(0, start, end);
        end -= start;
        start = 0;
      }
      const copied = Math.min(piece.length - offset, wanted);
      work.set(piece.subarray(offset, offset + copied), end);
      end += copied;
      offset += copied;
      if (end - start < maxSize) continue;
      const length = chunker.cutPoint(work, start, end);
      yield copyChunk(work, start, length);
      start += length;
      // If every byte left over came from this piece, cut the rest of it in place instead.
      const leftover = end - start;
      if (leftover <= copied) {
        offset -= leftover;
        start = 0;
        end = 0;
      }
    }
  }
  while (start < end) {
    const length = chunker.cutPoint(work, start, end);
    yield copyChunk(work, start, length);
    start += length;
  }
}

function copyChunk(data: Uint8Array, start: number, length: number): Buffer {
  const chunk = Buffer.allocUnsafeSlow(length);
  chunk.set(data.subarray(start, start + length));
  return chunk;
}
