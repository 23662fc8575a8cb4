import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseTier, periodOf } from './gfs-tiers.ts';

const at = (iso: string) => Date.parse(iso);
const DAY = 86_400_000;
const tiers = { dailyMs: 35 * DAY, weeklyMs: 56 * DAY, monthlyMs: 365 * DAY, yearlyMs: 7 * 365 * DAY };

test('ISO weeks: the week with the first Thursday is week 1, and the days around New Year belong where ISO says', () => {
  assert.equal(periodOf('weekly', at('2026-01-01T12:00:00Z')), '2026-W01'); // a Thursday
  assert.equal(periodOf('weekly', at('2027-01-01T12:00:00Z')), '2026-W53'); // a Friday, in 2026's last week
  assert.equal(periodOf('weekly', at('2024-12-30T00:00:00Z')), '2025-W01'); // a Monday, in 2025's first week
  assert.equal(periodOf('weekly', at('2026-12-02T09:00:00Z')), '2026-W49');
  assert.equal(periodOf('hourly', at('2026-12-02T09:59:59Z')), '2026-12-02T09');
  assert.equal(periodOf('monthly', at('2026-12-31T23:59:59Z')), '2026-12');
});

test('the first snapshot of each period is locked for the longest tier it keeps for; the rest get the default', () => {
  const kept = {};
  const first = chooseTier(tiers, at('2026-12-02T09:00:00Z'), kept);
  assert.equal(first.tier, 'yearly', 'nothing kept yet: the first snapshot keeps for every tier');
  Object.assign(kept, first.periods);
  const sameDay = chooseTier(tiers, at('2026-12-02T21:00:00Z'), kept);
  assert.equal(sameDay.tier, undefined);
  assert.equal(sameDay.retainMs, undefined);
  const nextDay = chooseTier(tiers, at('2026-12-03T01:00:00Z'), kept);
  assert.equal(nextDay.tier, 'daily');
  assert.equal(nextDay.retainMs, 35 * DAY);
  Object.assign(kept, nextDay.periods);
  assert.equal(chooseTier(tiers, at('2026-12-07T01:00:00Z'), kept).tier, 'weekly', 'Monday starts a week');
  assert.equal(chooseTier(tiers, at('2027-01-01T00:30:00Z'), kept).tier, 'yearly');
  assert.equal(chooseTier(tiers, at('2026-12-04T00:30:00Z'), kept).tier, 'daily', 'a new day in a week kept');
});

test('a clock set back or forward can only make an extra keeper, never skip one', () => {
  const kept = chooseTier(tiers, at('2026-12-02T09:00:00Z'), {}).periods;
  assert.equal(chooseTier(tiers, at('2020-06-01T00:00:00Z'), kept).tier, 'yearly', 'back in time: another keeper');
  assert.equal(chooseTier(tiers, at('2031-06-01T00:00:00Z'), kept).tier, 'yearly', 'ahead: another keeper');
});

test('only the configured tiers count: with daily alone, each day has one keeper', () => {
  const daily = { dailyMs: 7 * DAY };
  const first = chooseTier(daily, at('2026-12-02T09:00:00Z'), {});
  assert.deepEqual(first, { tier: 'daily', retainMs: 7 * DAY, periods: { daily: '2026-12-02' } });
});
