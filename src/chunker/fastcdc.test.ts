import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHash } from 'node:crypto';
import {
  chunkStream,
  createChunker,
  createGearTable,
  DEFAULT_CHUNKER_PARAMS,
  validateChunkerParams,
} from './fastcdc.ts';
import type { Chunker, ChunkerParams } from './fastcdc.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const TINY: ChunkerParams = { minSizeBytes: 64, avgSizeBytes: 256, maxSizeBytes: 1024 };
const SMALL: ChunkerParams = { minSizeBytes: 32 * KiB, avgSizeBytes: 64 * KiB, maxSizeBytes: 512 * KiB };

/** Deterministic pseudo-random bytes (AES-CTR keystream), so statistical tests cannot flake. */
function pseudoRandomBytes(length: number, label: string): Buffer {
  const key = createHash('sha256').update(label).digest().subarray(0, 16);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

function seedOf(label: string): Buffer {
  return createHash('sha256').update(`seed ${label}`).digest();
}

/** FastCDC with normalized chunking, one byte at a time, as the paper's pseudocode reads. */
function referenceCutPoint(
  params: ChunkerParams,
  gear: Uint32Array,
  data: Uint8Array,
  start: number,
  end: number,
): number {
  const bits = Math.log2(params.avgSizeBytes);
  const maskHard = (0xffffffff << (32 - (bits + 2))) >>> 0;
  const maskEasy = (0xffffffff << (32 - (bits - 2))) >>> 0;
  let n = end - start;
  if (n <= params.minSizeBytes) return n;
  if (n > params.maxSizeBytes) n = params.maxSizeBytes;
  const normal = Math.min(n, params.avgSizeBytes);
  let hash = 0;
  for (let i = params.minSizeBytes; i < n; i++) {
    hash = ((hash << 1) + gear[data[start + i]]) >>> 0;
    if ((hash & (i < normal ? maskHard : maskEasy)) >>> 0 === 0) return i + 1;
  }
  return n;
}

function cutAll(chunker: Chunker, data: Uint8Array): number[] {
  const lengths: number[] = [];
  for (let start = 0; start < data.length; ) {
    const length = chunker.cutPoint(data, start, data.length);
    lengths.push(length);
    start += length;
  }
  return lengths;
}

async function* fromPieces(pieces: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const piece of pieces) yield piece;
}

async function collect(source: AsyncIterable<Uint8Array>, chunker: Chunker): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  for await (const chunk of chunkStream(source, chunker)) chunks.push(Buffer.from(chunk));
  return chunks;
}

/** Splits data into pieces of pseudo-random sizes up to maxPieceBytes, including empty ones. */
function split(data: Uint8Array, maxPieceBytes: number, label: string): Uint8Array[] {
  const sizes = pseudoRandomBytes(data.length + 1, label);
  const pieces: Uint8Array[] = [];
  for (let offset = 0, k = 0; offset < data.length; k++) {
    const size = Math.min(data.length - offset, Math.floor((sizes[k % sizes.length] / 256) * (maxPieceBytes + 1)));
    pieces.push(data.subarray(offset, offset + size));
    offset += size;
  }
  return pieces;
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

test('the gear table is 256 values determined by the seed alone', () => {
  const table = createGearTable(seedOf('a'));
  assert.equal(table.length, 256);
  assert.deepEqual(createGearTable(seedOf('a')), table);
  assert.notDeepEqual(createGearTable(seedOf('b')), table);
  assert.ok(new Set(table).size > 250, 'values look random, not repeated');
});

test('the gear table refuses a seed that is not 32 bytes', () => {
  for (const length of [0, 16, 31, 33, 64]) {
    assert.throws(() => createGearTable(new Uint8Array(length)), /seed must be 32 bytes/);
  }
});

test('chunker parameters must be ordered, integral and have a power-of-two average', () => {
  validateChunkerParams(DEFAULT_CHUNKER_PARAMS);
  validateChunkerParams(TINY);
  const bad: ChunkerParams[] = [
    { minSizeBytes: 256, avgSizeBytes: 256, maxSizeBytes: 1024 },
    { minSizeBytes: 64, avgSizeBytes: 1024, maxSizeBytes: 1024 },
    { minSizeBytes: 512, avgSizeBytes: 256, maxSizeBytes: 1024 },
    { minSizeBytes: 64, avgSizeBytes: 300, maxSizeBytes: 1024 },
    { minSizeBytes: 1.5, avgSizeBytes: 256, maxSizeBytes: 1024 },
    { minSizeBytes: 0, avgSizeBytes: 256, maxSizeBytes: 1024 },
    { minSizeBytes: 8, avgSizeBytes: 32, maxSizeBytes: 1024 },
    { minSizeBytes: 64, avgSizeBytes: 256, maxSizeBytes: 4 * 1024 * MiB },
    { minSizeBytes: 64, avgSizeBytes: 256, maxSizeBytes: Number.NaN },
  ];
  for (const params of bad) {
    assert.throws(() => createChunker(params, seedOf('a')), /chunker/, JSON.stringify(params));
  }
});

test('cutPoint finds the same boundaries as a byte-at-a-time FastCDC at every alignment', () => {
  const seed = seedOf('reference');
  const gear = createGearTable(seed);
  const bytes = pseudoRandomBytes(256 * KiB + 3, 'reference data');
  for (const params of [TINY, { minSizeBytes: 2 * KiB, avgSizeBytes: 8 * KiB, maxSizeBytes: 64 * KiB }]) {
    const chunker = createChunker(params, seed);
    for (let shift = 0; shift < 4; shift++) {
      // A plain Uint8Array at an odd byteOffset as well as a Buffer.
      for (const data of [bytes.subarray(shift), new Uint8Array(bytes.buffer, bytes.byteOffset + shift, 200 * KiB)]) {
        for (let start = 0; start < data.length; ) {
          const expected = referenceCutPoint(params, gear, data, start, data.length);
          assert.equal(chunker.cutPoint(data, start, data.length), expected, `start ${start} shift ${shift}`);
          start += expected;
        }
      }
    }
  }
});

test('cutPoint returns short input whole and cuts at max size when no boundary is found', () => {
  const chunker = createChunker(TINY, seedOf('a'));
  const data = pseudoRandomBytes(4096, 'short');
  assert.equal(chunker.cutPoint(data, 100, 150), 50);
  assert.equal(chunker.cutPoint(data, 100, 164), 64);
  assert.equal(chunker.cutPoint(new Uint8Array(4096), 0, 4096), 1024);
  assert.throws(() => chunker.cutPoint(data, 10, 10), /start < end/);
  assert.throws(() => chunker.cutPoint(data, 0, 4097), /start < end/);
});

test('the same seed and data always give the same boundaries', async () => {
  const data = pseudoRandomBytes(4 * MiB, 'determinism');
  const first = (await collect(fromPieces([data]), createChunker(SMALL, seedOf('a')))).map((chunk) => chunk.length);
  const second = (await collect(fromPieces(split(data, 100 * KiB, 'split')), createChunker(SMALL, seedOf('a')))).map(
    (chunk) => chunk.length,
  );
  assert.deepEqual(second, first);
  assert.deepEqual(cutAll(createChunker(SMALL, seedOf('a')), data), first);
  assert.ok(first.length > 20);
});

test('different seeds give different boundaries on the same data', () => {
  const data = pseudoRandomBytes(4 * MiB, 'seeds');
  const a = cutAll(createChunker(SMALL, seedOf('a')), data);
  const b = cutAll(createChunker(SMALL, seedOf('b')), data);
  const offsetsA = new Set(a.map((_, i) => a.slice(0, i + 1).reduce((sum, n) => sum + n, 0)));
  const shared = b.map((_, i) => b.slice(0, i + 1).reduce((sum, n) => sum + n, 0)).filter((end) => offsetsA.has(end));
  assert.deepEqual(shared, [data.length], 'only the end of the data is a boundary under both seeds');
});

test('chunks reassemble the input and respect the size bounds however the source is split', async () => {
  const chunker = createChunker(TINY, seedOf('split'));
  const data = pseudoRandomBytes(24 * KiB + 17, 'split data');
  const expected = cutAll(chunker, data);
  const splittings: Array<[string, Uint8Array[]]> = [
    ['one buffer', [data]],
    ['1-byte pieces', Array.from({ length: data.length }, (_, i) => data.subarray(i, i + 1))],
    ['pieces around max size', split(data, 2500, 'a')],
    ['small pieces with empty ones', split(data, 40, 'b')],
    ['a big piece after a small one', [data.subarray(0, 100), data.subarray(100)]],
    ...Array.from({ length: 12 }, (_, k): [string, Uint8Array[]] => [`random ${k}`, split(data, 1 + 97 * k, `r${k}`)]),
  ];
  for (const [name, pieces] of splittings) {
    const chunks = await collect(fromPieces(pieces), chunker);
    assert.deepEqual(Buffer.concat(chunks), data, name);
    assert.deepEqual(
      chunks.map((chunk) => chunk.length),
      expected,
      `${name}: boundaries do not depend on the splitting`,
    );
    for (const chunk of chunks.slice(0, -1)) {
      assert.ok(chunk.length > TINY.minSizeBytes && chunk.length <= TINY.maxSizeBytes, `${name}: ${chunk.length}`);
    }
  }
});

test('a data set of exactly max size, or min size, or one byte, comes back whole', async () => {
  const chunker = createChunker(TINY, seedOf('edges'));
  for (const length of [1, 63, 64, 65, 1023, 1024, 1025, 2048]) {
    const data = new Uint8Array(length).fill(7);
    const chunks = await collect(fromPieces([data]), chunker);
    assert.deepEqual(Buffer.concat(chunks), Buffer.from(data), `length ${length}`);
  }
});

test('an empty source yields nothing', async () => {
  const chunker = createChunker(TINY, seedOf('a'));
  assert.deepEqual(await collect(fromPieces([]), chunker), []);
  assert.deepEqual(await collect(fromPieces([new Uint8Array(0), new Uint8Array(0)]), chunker), []);
});

test('copies of the chunks rebuild the stream even when the source reuses its buffer', async () => {
  const chunker = createChunker(TINY, seedOf('reuse'));
  const data = pseudoRandomBytes(16 * KiB, 'reuse data');
  async function* reusingSource(pieceBytes: number): AsyncGenerator<Uint8Array> {
    const buffer = new Uint8Array(pieceBytes);
    for (let offset = 0; offset < data.length; offset += pieceBytes) {
      const piece = data.subarray(offset, offset + pieceBytes);
      buffer.set(piece);
      yield buffer.subarray(0, piece.length);
      buffer.fill(0xee);
    }
  }
  for (const pieceBytes of [1, 100, 3000]) {
    const chunks = await collect(reusingSource(pieceBytes), chunker);
    assert.deepEqual(Buffer.concat(chunks), data, `pieces of ${pieceBytes}`);
  }
});

test('inserting bytes near the start changes only the chunks around the insertion', () => {
  const chunker = createChunker(SMALL, seedOf('shift'));
  const original = pseudoRandomBytes(32 * MiB, 'shift data');
  const edited = Buffer.concat([original.subarray(0, 100_000), Buffer.from('inserted'), original.subarray(100_000)]);
  const hashesOf = (data: Uint8Array): string[] => {
    const hashes: string[] = [];
    for (let start = 0, length = 0; start < data.length; start += length) {
      length = chunker.cutPoint(data, start, data.length);
      hashes.push(sha256(data.subarray(start, start + length)));
    }
    return hashes;
  };
  const before = hashesOf(original);
  const after = new Set(hashesOf(edited));
  const lost = before.filter((hash) => !after.has(hash));
  assert.ok(before.length > 300, `${before.length} chunks`);
  assert.ok(lost.length >= 1 && lost.length <= 3, `${lost.length} of ${before.length} chunks changed`);
});

test('the mean chunk size of random data is close to the average size', () => {
  const chunker = createChunker(SMALL, seedOf('mean'));
  const lengths = cutAll(chunker, pseudoRandomBytes(32 * MiB, 'mean data'));
  const mean = (32 * MiB) / lengths.length;
  // Skipping minSize bytes and the easier mask after avgSize put the mean a little above avgSize.
  assert.ok(mean > 0.8 * SMALL.avgSizeBytes && mean < 1.5 * SMALL.avgSizeBytes, `mean ${mean}`);
  const belowAvg = lengths.filter((length) => length < SMALL.avgSizeBytes).length;
  assert.ok(belowAvg > 0.05 * lengths.length && belowAvg < 0.3 * lengths.length, `${belowAvg} below avg`);
});

test('all-zero data is cut at max size', async () => {
  const chunker = createChunker(SMALL, seedOf('zeros'));
  const chunks = await collect(fromPieces(split(new Uint8Array(5 * MiB + 1), 300 * KiB, 'zeros')), chunker);
  assert.deepEqual(
    chunks.map((chunk) => chunk.length),
    [...Array(10).fill(512 * KiB), 1],
  );
});

test('the default parameters chunk a stream within their bounds', async () => {
  const chunker = createChunker(DEFAULT_CHUNKER_PARAMS, seedOf('default'));
  const data = pseudoRandomBytes(24 * MiB, 'default data');
  const chunks = await collect(fromPieces(split(data, 256 * KiB, 'default split')), chunker);
  assert.equal(sha256(Buffer.concat(chunks)), sha256(data));
  for (const chunk of chunks.slice(0, -1)) {
    assert.ok(chunk.length > 512 * KiB && chunk.length <= 8 * MiB, `${chunk.length}`);
  }
  assert.deepEqual(
    chunks.map((chunk) => chunk.length),
    cutAll(chunker, data),
  );
});
