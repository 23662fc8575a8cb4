import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nextDue, parseSchedule, type Schedule } from './schedule.ts';

const parsed = (text: string): Schedule => {
  const result = parseSchedule(text);
  if ('problem' in result) throw new Error(result.problem);
  return result;
};
const at = (iso: string) => Date.parse(iso);

test('every N with s, m, h or d is an interval from the last start; a missed one runs at once', () => {
  const hourly = parsed('every 1h');
  assert.equal(hourly.intervalMs(), 3_600_000);
  assert.equal(parsed('every 2s').intervalMs(), 2000);
  assert.equal(parsed('every 3d').intervalMs(), 3 * 86_400_000);
  const now = at('2026-12-02T10:00:00Z');
  assert.equal(nextDue(hourly, undefined, now), now, 'never run: now');
  assert.equal(nextDue(hourly, at('2026-12-02T09:30:00Z'), now), at('2026-12-02T10:30:00Z'));
  assert.equal(nextDue(hourly, at('2026-12-01T00:00:00Z'), now), now, 'after downtime: at once');
});

test('a cron expression fires at its minutes in UTC and catches up a firing missed while down', () => {
  const quarter = parsed('15 * * * *');
  assert.equal(quarter.intervalMs(), 3_600_000);
  const now = at('2026-12-02T10:20:00Z');
  assert.equal(nextDue(quarter, at('2026-12-02T10:15:00Z'), now), at('2026-12-02T11:15:00Z'));
  assert.equal(nextDue(quarter, at('2026-12-02T08:15:00Z'), now), now, 'the 09:15 and 10:15 runs were missed');
  assert.equal(quarter.next(at('2026-12-02T10:15:00Z')), at('2026-12-02T10:15:00Z'));
});

test('what is not a schedule says what to write instead', () => {
  for (const [text, words] of [
    ['every hour', /whole number with s, m, h or d/],
    ['every 0s', /whole number/],
    ['every 5w', /whole number/],
    ['hourly', /five fields/],
    ['61 * * * *', /not a cron expression: .*minute/],
    ['* * *', /five fields/],
  ] as const) {
    const result = parseSchedule(text);
    assert.ok('problem' in result, text);
    assert.match(result.problem, words, text);
  }
});
