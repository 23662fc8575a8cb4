import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMemoryStore } from './memory-store.ts';
import { describeStoreConformance } from '../../testing/store-conformance.ts';

describeStoreConformance('memory', async () => createMemoryStore());

test('the memory store reports its location and that the client enforces nothing beyond the process', () => {
  const store = createMemoryStore('memory:unit');
  assert.equal(store.location, 'memory:unit');
  assert.deepEqual(store.enforcement().holdsAgainst, []);
  assert.equal(store.enforcement().enforcer, 'client');
});
