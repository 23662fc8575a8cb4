import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatBytes,
  MAX_DATE_MS,
  MAX_DURATION_MS,
  parseDateMs,
  parseDurationMs,
  parseSizeBytes,
  formatTime,
} from './units.ts';
import { isAmberError } from './errors.ts';

test('durations use s m h d w y with m meaning minutes', () => {
  assert.equal(parseDurationMs('30s'), 30_000);
  assert.equal(parseDurationMs('5m'), 300_000);
  assert.equal(parseDurationMs('1d12h'), 36 * 3_600_000);
  assert.equal(parseDurationMs('2w'), 14 * 86_400_000);
  assert.equal(parseDurationMs('1y'), 365 * 86_400_000);
});

test('a malformed duration is refused with a hint', () => {
  for (const bad of ['', '10', '3mo', '-1d', 'd', '1.5d']) {
    assert.throws(
      () => parseDurationMs(bad),
      (error) => isAmberError(error, 'INVALID_DURATION') && error.hint !== undefined,
    );
  }
});

test('dates accept ISO and +duration from now', () => {
  const now = Date.UTC(2026, 0, 1);
  assert.equal(parseDateMs('+90d', now), now + 90 * 86_400_000);
  assert.equal(parseDateMs('2027-01-31T00:00:00Z', now), Date.UTC(2027, 0, 31));
  assert.throws(
    () => parseDateMs('tomorrow', now),
    (error) => isAmberError(error, 'INVALID_DURATION'),
  );
});

test('durations and dates are bounded when parsed: at most 1000y and 9999-12-31, the value and the limit named', () => {
  const now = Date.UTC(2026, 0, 1);
  assert.equal(parseDurationMs('1000y'), MAX_DURATION_MS);
  assert.equal(parseDateMs('+1000y', now), now + MAX_DURATION_MS);
  assert.equal(parseDateMs('9999-12-31T23:59:59.999Z', now), MAX_DATE_MS);
  for (const bad of ['1001y', '1000y1s', '99999999999y', `${'9'.repeat(400)}s`]) {
    assert.throws(
      () => parseDurationMs(bad),
      (error) => isAmberError(error, 'INVALID_DURATION') && error.message.includes(bad) && /1000y/.test(error.message),
    );
    assert.throws(
      () => parseDateMs(`+${bad}`, now),
      (error) => isAmberError(error, 'INVALID_DURATION') && /1000y/.test(error.message),
    );
  }
  // A +DURATION within the bound that still lands past year 9999 (a clock far in the future).
  assert.throws(
    () => parseDateMs('+1000y', MAX_DATE_MS - 1000),
    (error) => isAmberError(error, 'INVALID_DURATION') && /9999-12-31/.test(error.message),
  );
});

test('byte sizes are printed in binary units', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(433.0966522), '433 B');
  assert.equal(formatBytes(1536), '1.50 KiB');
  assert.equal(formatBytes(3 * 1024 ** 3), '3.00 GiB');
});

test('sizes: bytes, or K M G T as powers of 1024; anything else is refused', () => {
  assert.equal(parseSizeBytes('4096'), 4096);
  assert.equal(parseSizeBytes('50M'), 50 * 1024 * 1024);
  assert.equal(parseSizeBytes('1.5GiB'), 1.5 * 1024 ** 3);
  assert.equal(parseSizeBytes('20 kb'), 20 * 1024);
  for (const bad of ['', 'lots', '0', '-1M', '5X', '1e9'])
    assert.throws(() => parseSizeBytes(bad), /is not a size/, JSON.stringify(bad));
});

test('times print in local time with their offset, whatever the zone', () => {
  const zone = process.env.TZ;
  try {
    for (const [tz, shown] of [
      ['America/New_York', '2026-12-03 09:46:20 -05:00'],
      ['Asia/Kolkata', '2026-12-03 20:16:20 +05:30'],
      ['UTC', '2026-12-03 14:46:20 +00:00'],
    ]) {
      process.env.TZ = tz;
      assert.equal(formatTime('2026-12-03T14:46:20.000Z'), shown, tz);
    }
  } finally {
    if (zone === undefined) delete process.env.TZ;
    else process.env.TZ = zone;
  }
  assert.equal(formatTime('not a date'), 'not a date');
});
