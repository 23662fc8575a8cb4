import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { disableContextReuse, zstdCompress, zstdDecompress } from './zstd.ts';

const text = (bytes: number, seed: number) => {
  const words = ['backup', 'restore', 'retention', 'snapshot', 'quorum', 'audit', String(seed)];
  const parts: string[] = [];
  for (let n = 0, length = 0; length < bytes; n++) {
    const word = words[(n * 7 + seed) % words.length] + (n % 11 === 0 ? '\n' : ' ');
    parts.push(word);
    length += word.length;
  }
  return Buffer.from(parts.join('').slice(0, bytes));
};

const compress = (input: Buffer, level = 1) => {
  const frame = zstdCompress(input, level, input.length);
  assert.ok(frame, `${input.length} bytes of text compress`);
  return Buffer.from(frame);
};

function roundTrips(): void {
  for (const level of [1, 3]) {
    for (const size of [64, 1500, 100_000, 3 * 1024 * 1024]) {
      const input = text(size, size + level);
      const frame = compress(input, level);
      assert.ok(frame.length < input.length);
      assert.deepEqual(zstdDecompress(frame, input.length), input, `${size} bytes at level ${level}`);
      // Plain zstd frames both ways: any zstd reader reads them, and Amber reads any writer's.
      assert.deepEqual(zstdDecompressSync(frame), input);
      assert.deepEqual(zstdDecompress(zstdCompressSync(input), input.length), input);
    }
  }
}

test('frames round-trip at every size and level, and are plain zstd both ways', roundTrips);

test('each frame stands alone: a reused context carries no history from the previous blob', () => {
  const first = Buffer.concat([randomBytes(20_000), text(30_000, 1)]);
  const second = Buffer.concat([first.subarray(0, 20_000), text(5_000, 2)]);
  compress(first);
  const frame = compress(second);
  // A fresh reader with nothing before it decodes the second frame, so no match reaches into the first.
  assert.deepEqual(zstdDecompressSync(frame), second);
  assert.ok(
    frame.length > 20_000,
    `the random 20 kB the blobs share was stored again, not referenced (${frame.length} bytes)`,
  );
});

test('input that would not shrink below the limit is left uncompressed', () => {
  assert.equal(zstdCompress(randomBytes(200_000), 1, 196_000), undefined);
  assert.equal(zstdCompress(text(10_000, 3), 1, 10), undefined);
  // The context is still good after giving up half way.
  const input = text(10_000, 4);
  assert.deepEqual(zstdDecompress(compress(input), input.length), input);
});

test('a damaged frame throws, and the next frame still decodes', () => {
  const input = text(100_000, 5);
  const frame = compress(input);
  const damaged = Buffer.from(frame);
  damaged.fill(0xa5, 4, 40);
  assert.throws(() => {
    const output = zstdDecompress(damaged, input.length);
    assert.notDeepEqual(output, input);
    throw new Error('damaged frame decoded to other bytes');
  });
  assert.deepEqual(zstdDecompress(frame, input.length), input);
});

test('more output than expected and a truncated frame are errors', () => {
  const input = text(100_000, 6);
  const frame = compress(input);
  assert.throws(() => zstdDecompress(frame, input.length - 1), /exceeds the expected/);
  assert.throws(() => zstdDecompress(frame.subarray(0, frame.length - 20), input.length), /unexpected end/);
  assert.deepEqual(zstdDecompress(frame, input.length), input);
});

test('output goes into the memory given when it has room for one byte more, else into new memory', () => {
  const input = text(50_000, 9);
  const frame = compress(input);
  const room = Buffer.alloc(60_000);
  const into = zstdDecompress(frame, input.length, room);
  assert.deepEqual(into, input);
  assert.equal(into.buffer, room.buffer, 'a view of the memory given');
  const exact = Buffer.alloc(input.length);
  const fresh = zstdDecompress(frame, input.length, exact);
  assert.deepEqual(fresh, input);
  assert.notEqual(fresh.buffer, exact.buffer, 'no room to notice excess output: new memory');
  assert.throws(() => zstdDecompress(frame, input.length - 10, room), /exceeds the expected/);
});

test("without context reuse, Node's one-shot functions give the same results", () => {
  disableContextReuse();
  roundTrips();
  assert.equal(zstdCompress(randomBytes(200_000), 1, 196_000), undefined);
  assert.throws(() => zstdDecompress(compress(text(1000, 7)), 999));
  assert.throws(() => zstdDecompress(compress(text(100_000, 8)).subarray(0, 200), 100_000), /unexpected end/);
});
