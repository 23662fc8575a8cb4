import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createFaultyStore } from './faulty-store.ts';
import { assertAmberCode, assertBytesEqual, describeStoreConformance, listAll } from './store-conformance.ts';
import { createMemoryStore } from '../storage/memory/memory-store.ts';

// Without faults the wrapper must be invisible.
describeStoreConformance('faulty (no faults)', async () => createFaultyStore(createMemoryStore(), {}));

test('a put that does not fit fails with STORAGE_FULL and stores nothing', async () => {
  const inner = createMemoryStore();
  const store = createFaultyStore(inner, { fullAfterBytes: 10 });
  await store.put('data/a', new Uint8Array(6));
  await assertAmberCode(store.put('data/b', new Uint8Array(6)), 'STORAGE_FULL');
  assert.deepEqual(
    (await listAll(inner, '')).map(({ name, sizeBytes }) => ({ name, sizeBytes })),
    [{ name: 'data/a', sizeBytes: 6 }],
  );
  await assertAmberCode(inner.stat('data/b'), 'OBJECT_NOT_FOUND');
  // What still fits is accepted.
  await store.put('data/c', new Uint8Array(4));
  await assertAmberCode(store.put('data/d', new Uint8Array(1)), 'STORAGE_FULL');
});

test('a refused put does not count against the space', async () => {
  const store = createFaultyStore(createMemoryStore(), { fullAfterBytes: 8 });
  await store.put('data/a', new Uint8Array(4));
  await assertAmberCode(store.put('data/a', new Uint8Array(4)), 'OBJECT_EXISTS');
  await store.put('data/b', new Uint8Array(4));
});

test('concurrent puts cannot together overshoot the space', async () => {
  const store = createFaultyStore(createMemoryStore(), { fullAfterBytes: 10 });
  const results = await Promise.allSettled([1, 2, 3].map((i) => store.put(`data/${i}`, new Uint8Array(4))));
  assert.deepEqual(
    results.map((result) => result.status),
    ['fulfilled', 'fulfilled', 'rejected'],
  );
});

test('chosen gets and puts fail with STORAGE_TRANSIENT', async () => {
  const inner = createMemoryStore();
  const store = createFaultyStore(inner, {
    failGet: (name) => name.startsWith('data/'),
    failPutNames: (name) => name === 'index/flaky',
  });
  await store.put('data/a', new Uint8Array([1, 2, 3]));
  await assertAmberCode(store.get('data/a'), 'STORAGE_TRANSIENT');
  assertBytesEqual(await inner.get('data/a'), new Uint8Array([1, 2, 3]));
  await assertAmberCode(store.put('index/flaky', new Uint8Array([1])), 'STORAGE_TRANSIENT');
  await assertAmberCode(inner.stat('index/flaky'), 'OBJECT_NOT_FOUND');
});
