import { test } from 'node:test';
import assert from 'node:assert/strict';
import { emptyJobState } from './agent-state.ts';
import type { Job } from './jobs.ts';
import { retryDelayMs, standingOf } from './objectives.ts';
import { parseSchedule, type Schedule } from './schedule.ts';

const schedule = (text: string) => parseSchedule(text) as Schedule;
const job = (rpoMs?: number): Job => ({
  kind: 'backup',
  id: 'source-finance',
  name: 'finance',
  source: {
    name: 'finance',
    paths: ['/srv'],
    exclude: [],
    repository: 'main',
    schedule: schedule('every 1h'),
    rpoMs,
    copyTo: [],
    tags: [],
  },
});
const HOUR = 3_600_000;
const NOW = Date.parse('2026-12-02T10:00:00Z');

test('the retry backoff doubles from 30 s and never waits longer than the schedule', () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7, 8, 60].map((n) => retryDelayMs(n, HOUR) / 1000),
    [30, 60, 120, 240, 480, 960, 1920, 3600, 3600],
  );
  assert.equal(retryDelayMs(3, 2000), 2000);
});

test('the RPO age runs from the last success, or from when the agent first knew the job', () => {
  const state = { ...emptyJobState(), sinceMs: NOW - 3 * HOUR };
  assert.equal(standingOf(job(2 * HOUR), state, NOW).rpoMissed, true, 'never succeeded in 3 h');
  const fresh = { ...emptyJobState(), sinceMs: NOW - 60_000 };
  assert.equal(standingOf(job(2 * HOUR), fresh, NOW).rpoMissed, false);
  const succeeded = { ...state, lastSuccess: { startMs: NOW - HOUR, endMs: NOW - HOUR + 5000 } };
  const standing = standingOf(job(2 * HOUR), succeeded, NOW);
  assert.equal(standing.ageMs, HOUR);
  assert.equal(standing.rpoMissed, false);
  assert.equal(standing.dueMs, NOW, 'an hourly job an hour after its start is due');
  assert.equal(standingOf(job(), succeeded, NOW).rpoMissed, false, 'no objective, nothing missed');
  const unknown = standingOf(job(2 * HOUR), emptyJobState(), NOW);
  assert.equal(unknown.ageMs, undefined);
  assert.equal(unknown.rpoMissed, true, 'no state at all (agent never ran, state deleted): not met');
});

test('after failures the next run waits for the backoff, even when the schedule says now', () => {
  const failing = {
    ...emptyJobState(),
    lastSuccess: { startMs: NOW - 5 * HOUR, endMs: NOW - 5 * HOUR },
    lastFailure: { startMs: NOW - 20_000, endMs: NOW - 10_000, code: 'STORE_UNAVAILABLE', message: 'down' },
    consecutiveFailures: 2,
  };
  const standing = standingOf(job(HOUR), failing, NOW);
  assert.equal(standing.retryAtMs, NOW - 10_000 + 60_000);
  assert.equal(standing.dueMs, NOW + 50_000);
});
