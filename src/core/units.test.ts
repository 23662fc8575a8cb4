import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  addDurationMs,
  formatBytes,
  formatDurationMs,
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
  for (const bad of ['', '10', '3mon', '-1d', 'd', '1.5d']) {
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
  assert.equal(parseDateMs('+1000y', now), Date.UTC(3026, 0, 1), '+y counts calendar years');
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

test('durations print as people write them, and 0 needs no unit', () => {
  const day = 86_400_000;
  assert.equal(formatDurationMs(30 * day), '30d');
  assert.equal(formatDurationMs(36 * 3_600_000), '36h');
  assert.equal(formatDurationMs(84 * 3_600_000), '3d12h');
  assert.equal(formatDurationMs(2 * 3_600_000), '2h');
  assert.equal(formatDurationMs(42 * 60_000), '42m');
  assert.equal(formatDurationMs(90_000), '1m30s');
  assert.equal(formatDurationMs(7 * 365 * day), '7y');
  assert.equal(formatDurationMs(5_000), '5.0s');
  assert.equal(formatDurationMs(1_500), '1.5s');
  assert.equal(formatDurationMs(250), '250ms');
  assert.equal(parseDurationMs('0'), 0);
  assert.throws(() => parseDurationMs('0x'), /is not a duration/);
});

test('counted from a date, y and mo are calendar years and months in UTC', () => {
  const at = (iso: string) => Date.parse(iso);
  const iso = (ms: number) => new Date(ms).toISOString();
  assert.equal(iso(addDurationMs(at('2026-12-01T00:00:00Z'), '7y')), '2033-12-01T00:00:00.000Z');
  assert.equal(iso(addDurationMs(at('2026-12-01T09:30:00Z'), '1y6mo')), '2028-06-01T09:30:00.000Z');
  assert.equal(iso(addDurationMs(at('2026-01-31T00:00:00Z'), '1mo')), '2026-02-28T00:00:00.000Z');
  assert.equal(iso(addDurationMs(at('2028-02-29T00:00:00Z'), '1y')), '2029-02-28T00:00:00.000Z');
  assert.equal(iso(addDurationMs(at('2026-12-01T00:00:00Z'), '30d')), '2026-12-31T00:00:00.000Z');
  assert.equal(iso(addDurationMs(at('2026-11-15T00:00:00Z'), '2mo1d')), '2027-01-16T00:00:00.000Z');
  assert.equal(iso(parseDateMs('+7y', at('2026-12-01T00:00:00Z'))), '2033-12-01T00:00:00.000Z');
  // As a length alone, mo is 30 days and m stays minutes.
  assert.equal(parseDurationMs('1mo'), 30 * 86_400_000);
  assert.equal(parseDurationMs('1m'), 60_000);
  assert.throws(() => addDurationMs(0, '5 years'), /is not a duration/);
});
