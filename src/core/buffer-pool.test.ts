import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBufferPool } from './buffer-pool.ts';

test('a buffer given back is taken again for a request of the same size class', () => {
  const pool = createBufferPool(1024 * 1024);
  const first = pool.take(100_000);
  assert.equal(first.length, 100_000);
  assert.equal(first.byteOffset, 0);
  assert.equal(first.buffer.byteLength, 128 * 1024);
  pool.give(first.buffer as ArrayBuffer);
  assert.equal(pool.retainedBytes, 128 * 1024);
  const second = pool.take(70_000);
  assert.equal(second.buffer, first.buffer);
  assert.equal(pool.retainedBytes, 0);
  assert.notEqual(pool.take(70_000).buffer, first.buffer, 'memory in use is never handed out twice');
});

test('the pool keeps at most its retention and ignores memory that is not one of its sizes', () => {
  const pool = createBufferPool(128 * 1024);
  const a = pool.take(64 * 1024);
  const b = pool.take(64 * 1024);
  const c = pool.take(64 * 1024);
  for (const buffer of [a, b, c]) pool.give(buffer.buffer as ArrayBuffer);
  assert.equal(pool.retainedBytes, 128 * 1024);
  pool.give(new ArrayBuffer(100_000));
  assert.equal(pool.retainedBytes, 128 * 1024);
});
