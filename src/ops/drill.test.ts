import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SnapshotEntry } from '../engine/snapshots.ts';
import { AmberError } from '../core/errors.ts';
import { chooseSnapshot, seededRandom } from './drill.ts';

const DAY = 86_400_000;
const NOW = Date.parse('2026-12-02T12:00:00Z');

/** One snapshot a day for 60 days, the oldest first, alternating two hosts. */
const entries = Array.from({ length: 60 }, (_, i) => ({
  id: i.toString(16).padStart(64, '0'),
  snapshot: {
    time: new Date(NOW - (59 - i) * DAY).toISOString(),
    host: i % 2 === 0 ? 'db1' : 'web1',
    paths: i % 2 === 0 ? ['/srv/db'] : ['/srv/www'],
  },
})) as unknown as SnapshotEntry[];

test('latest within a window is the newest eligible snapshot', () => {
  assert.equal(chooseSnapshot(entries, { select: 'latest', nowMs: NOW }).snapshot, entries[59]);
  const ofDb = chooseSnapshot(entries, { select: 'latest', host: 'db1', nowMs: NOW });
  assert.equal(ofDb.snapshot, entries[58]);
  assert.equal(ofDb.candidates, 30);
  assert.equal(
    chooseSnapshot(entries, { select: 'latest', path: '/srv/www', withinMs: 10 * DAY, nowMs: NOW }).candidates,
    6,
    'days 0 to 10 back, inclusive: the six of web1',
  );
});

test('random within a window is seeded, stays in the window and covers all of it', () => {
  const within = 30 * DAY;
  const chosen = new Map<string, number>();
  for (let seed = 0; seed < 3000; seed++) {
    const { snapshot, candidates } = chooseSnapshot(entries, { select: 'random', withinMs: within, seed, nowMs: NOW });
    assert.equal(candidates, 31);
    assert.ok(Date.parse(snapshot.snapshot.time) >= NOW - within, `seed ${seed} chose ${snapshot.snapshot.time}`);
    chosen.set(snapshot.id, (chosen.get(snapshot.id) ?? 0) + 1);
  }
  assert.equal(chosen.size, 31, 'every snapshot in the window is chosen by some seed');
  // Roughly uniform: 3000 draws over 31 snapshots is about 97 each.
  for (const [id, count] of chosen) assert.ok(count > 50 && count < 160, `${id}: ${count}`);
  const again = chooseSnapshot(entries, { select: 'random', withinMs: within, seed: 42, nowMs: NOW });
  assert.equal(
    again.snapshot,
    chooseSnapshot(entries, { select: 'random', withinMs: within, seed: 42, nowMs: NOW }).snapshot,
  );
  assert.ok(seededRandom(1) !== seededRandom(2));
});

test('an empty window says what it looked for', () => {
  assert.throws(
    () => chooseSnapshot(entries, { select: 'random', withinMs: 1000, host: 'db1', nowMs: NOW + 10 * DAY }),
    (error: unknown) =>
      error instanceof AmberError &&
      error.code === 'SNAPSHOT_NOT_FOUND' &&
      /within 1\.0s, of host db1/.test(error.message),
  );
});
