import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createBlobIndex } from './blob-index.ts';
import { asPackId } from '../core/ids.ts';

const idOf = (n: number) => createHash('sha256').update(`blob ${n}`).digest();
const pack = (n: number) => asPackId(createHash('sha256').update(`pack ${n}`).digest('hex'));

test('finds every added blob and nothing else', () => {
  const index = createBlobIndex();
  for (let n = 0; n < 10_000; n++) {
    index.add(idOf(n), {
      packId: pack(n % 7),
      type: n % 3 === 0 ? 'tree' : 'data',
      compression: n % 2,
      offset: n,
      sealedLength: n + 1,
      rawLength: n + 2,
      trusted: n % 5 !== 0,
    });
  }
  assert.equal(index.size, 10_000);
  for (let n = 0; n < 10_000; n++) {
    const location = index.get(idOf(n));
    assert.ok(location, `blob ${n} is found`);
    assert.deepEqual(location, {
      packId: pack(n % 7),
      type: n % 3 === 0 ? 'tree' : 'data',
      compression: n % 2,
      offset: n,
      sealedLength: n + 1,
      rawLength: n + 2,
      trusted: n % 5 !== 0,
    });
    assert.equal(index.hasTrusted(idOf(n)), n % 5 !== 0);
  }
  assert.equal(index.get(idOf(10_001)), undefined);
  assert.equal(index.hasTrusted(idOf(10_001)), false);
});

test('a pending blob dedups within the session and resolves to its pack once stored', () => {
  const index = createBlobIndex();
  index.addPending(idOf(1));
  assert.equal(index.hasTrusted(idOf(1)), true);
  assert.equal(index.get(idOf(1)), undefined, 'a pending blob has no location yet');
  index.add(idOf(1), {
    packId: pack(1),
    type: 'data',
    compression: 0,
    offset: 8,
    sealedLength: 100,
    rawLength: 72,
    trusted: true,
  });
  assert.equal(index.get(idOf(1))?.offset, 8);
  assert.equal(index.size, 1);
});

test('a second untrusted copy keeps the first location', () => {
  const index = createBlobIndex();
  index.add(idOf(1), {
    packId: pack(1),
    type: 'data',
    compression: 0,
    offset: 8,
    sealedLength: 10,
    rawLength: 10,
    trusted: false,
  });
  index.add(idOf(1), {
    packId: pack(2),
    type: 'data',
    compression: 0,
    offset: 99,
    sealedLength: 10,
    rawLength: 10,
    trusted: false,
  });
  assert.equal(index.get(idOf(1))?.packId, pack(1));
  assert.equal(index.hasTrusted(idOf(1)), false);
});

test('memory per blob is a few dozen bytes, not a JS object per blob', () => {
  const index = createBlobIndex();
  const count = 500_000;
  for (let n = 0; n < count; n++) {
    index.add(idOf(n), {
      packId: pack(n >> 10),
      type: 'data',
      compression: 1,
      offset: n,
      sealedLength: 1,
      rawLength: 1,
      trusted: true,
    });
  }
  const perBlob = index.memoryBytes() / count;
  assert.ok(perBlob < 80, `index uses ${perBlob.toFixed(1)} bytes per blob`);
  assert.ok(perBlob >= 50, 'the estimate counts the 50 bytes every entry needs');
});

test('a trusted copy replaces an untrusted location, never the reverse', () => {
  const index = createBlobIndex();
  const forged = {
    packId: pack(9),
    type: 'data' as const,
    compression: 0,
    offset: 999,
    sealedLength: 10,
    rawLength: 10,
    trusted: false,
  };
  const real = {
    packId: pack(1),
    type: 'data' as const,
    compression: 0,
    offset: 8,
    sealedLength: 10,
    rawLength: 10,
    trusted: true,
  };
  index.add(idOf(1), forged);
  index.add(idOf(1), real);
  assert.deepEqual(index.get(idOf(1)), real);
  index.add(idOf(1), forged);
  assert.deepEqual(index.get(idOf(1)), real);
});

test('reserving a blob that only an untrusted key stored makes this session store its own copy once', () => {
  const index = createBlobIndex();
  index.add(idOf(1), {
    packId: pack(9),
    type: 'data',
    compression: 0,
    offset: 9,
    sealedLength: 10,
    rawLength: 10,
    trusted: false,
  });
  assert.equal(index.hasTrusted(idOf(1)), false);
  index.addPending(idOf(1));
  assert.equal(index.hasTrusted(idOf(1)), true, 'the same chunk met again this session is not stored twice');
  index.add(idOf(1), {
    packId: pack(2),
    type: 'data',
    compression: 0,
    offset: 8,
    sealedLength: 10,
    rawLength: 10,
    trusted: true,
  });
  assert.equal(index.get(idOf(1))?.packId, pack(2));
});
