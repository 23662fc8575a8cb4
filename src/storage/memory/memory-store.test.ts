import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMemoryStore } from './memory-store.ts';
import { isAmberError } from '../../core/errors.ts';
import { assertAmberCode, describeStoreConformance, listAll } from '../../testing/store-conformance.ts';

describeStoreConformance('memory', async () => createMemoryStore());

test('the memory store reports its location and that the client enforces nothing beyond the process', () => {
  const store = createMemoryStore('memory:unit');
  assert.equal(store.location, 'memory:unit');
  assert.deepEqual(store.enforcement().holdsAgainst, []);
  assert.equal(store.enforcement().enforcer, 'client');
});

/** A clock the test moves by hand. */
function manualClock(startMs: number) {
  let nowMs = startMs;
  return {
    clock: { nowMs: () => nowMs, monotonicMs: () => nowMs },
    advance(ms: number) {
      nowMs += ms;
    },
  };
}

const DAY_MS = 24 * 60 * 60 * 1000;
const START_MS = Date.UTC(2030, 0, 1);

test('the memory store refuses to delete an object before its date, by its own clock, and removes it after', async () => {
  const time = manualClock(START_MS);
  const store = createMemoryStore('memory:retention', { clock: time.clock });
  await store.put('snapshots/s1', new Uint8Array([1]));
  assert.equal((await store.stat('snapshots/s1')).writtenMs, START_MS);
  await store.protect(['snapshots/s1'], { untilMs: START_MS + 10 * DAY_MS, mode: 'governance' });
  assert.deepEqual(await store.protection(['snapshots/s1']), [
    { name: 'snapshots/s1', untilMs: START_MS + 10 * DAY_MS, mode: 'governance', locked: true },
  ]);
  const refused = await store.deleteExpired('snapshots/s1').then(
    () => assert.fail('deleted while retained'),
    (error: unknown) => error,
  );
  assert.ok(isAmberError(refused, 'RETENTION_ACTIVE'), String(refused));
  assert.match(refused.message, /snapshots\/s1/);
  assert.match(refused.message, /memory:retention/);
  assert.match(refused.message, /2030-01-11T00:00:00\.000Z/);
  assert.ok(refused.hint !== undefined);
  time.advance(10 * DAY_MS);
  // The date itself is still inside: retained *until* it, so removable from the next moment.
  assert.equal((await store.protection(['snapshots/s1']))[0].locked, false);
  await store.deleteExpired('snapshots/s1');
  await assertAmberCode(store.get('snapshots/s1'), 'OBJECT_NOT_FOUND');
});

test('a put with a retention date holds the object from the start', async () => {
  const time = manualClock(START_MS);
  const store = createMemoryStore('memory:', { clock: time.clock });
  await store.put('data/ab/p1', new Uint8Array([1]), { retainUntilMs: START_MS + DAY_MS, mode: 'compliance' });
  assert.deepEqual(await store.protection(['data/ab/p1']), [
    { name: 'data/ab/p1', untilMs: START_MS + DAY_MS, mode: 'compliance', locked: true },
  ]);
  await assertAmberCode(store.deleteExpired('data/ab/p1'), 'RETENTION_ACTIVE');
  time.advance(DAY_MS + 1);
  await store.deleteExpired('data/ab/p1');
  assert.deepEqual(await listAll(store, ''), []);
});

test('protect raises dates only and never weakens a mode; governance may become compliance', async () => {
  const time = manualClock(START_MS);
  const store = createMemoryStore('memory:', { clock: time.clock });
  await store.put('data/ab/c', new Uint8Array([1]));
  await store.put('data/ab/g', new Uint8Array([2]));
  await store.protect(['data/ab/c'], { untilMs: START_MS + 5 * DAY_MS, mode: 'compliance' });
  await store.protect(['data/ab/g'], { untilMs: START_MS + 5 * DAY_MS, mode: 'governance' });
  await store.protect(['data/ab/c', 'data/ab/g'], { untilMs: START_MS + DAY_MS, mode: 'governance' });
  assert.deepEqual(
    (await store.protection(['data/ab/c', 'data/ab/g'])).map(({ untilMs, mode }) => ({ untilMs, mode })),
    [
      { untilMs: START_MS + 5 * DAY_MS, mode: 'compliance' },
      { untilMs: START_MS + 5 * DAY_MS, mode: 'governance' },
    ],
  );
  await store.protect(['data/ab/g'], { untilMs: START_MS + 2 * DAY_MS, mode: 'compliance' });
  await store.protect(['data/ab/c'], { untilMs: START_MS + 9 * DAY_MS, mode: 'governance' });
  assert.deepEqual(
    (await store.protection(['data/ab/c', 'data/ab/g'])).map(({ untilMs, mode }) => ({ untilMs, mode })),
    [
      { untilMs: START_MS + 9 * DAY_MS, mode: 'compliance' },
      { untilMs: START_MS + 5 * DAY_MS, mode: 'compliance' },
    ],
  );
  // A missing name in the batch changes nothing at all.
  await assertAmberCode(
    store.protect(['data/ab/g', 'data/ab/missing'], { untilMs: START_MS + 99 * DAY_MS, mode: 'compliance' }),
    'OBJECT_NOT_FOUND',
  );
  assert.equal((await store.protection(['data/ab/g']))[0].untilMs, START_MS + 5 * DAY_MS);
});

test('the memory store says when each object was written, by its clock', async () => {
  const time = manualClock(START_MS);
  const store = createMemoryStore('memory:', { clock: time.clock });
  await store.put('index/i1', new Uint8Array([1]));
  time.advance(1000);
  await store.put('index/i2', new Uint8Array([2]));
  assert.deepEqual(await listAll(store, 'index/'), [
    { name: 'index/i1', sizeBytes: 1, writtenMs: START_MS },
    { name: 'index/i2', sizeBytes: 1, writtenMs: START_MS + 1000 },
  ]);
  assert.equal((await store.stat('index/i2')).writtenMs, START_MS + 1000);
});
