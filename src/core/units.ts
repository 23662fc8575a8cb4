// Durations (ms s m h d w mo y; m is minutes, mo months), dates and byte sizes as people type them.
// Counted from a date (a lock from now: addDurationMs), y and mo are calendar years and months in
// UTC, so 7y from 2026-12-01 ends on 2033-12-01; as a length alone (a policy bound, an interval)
// y is 365 days and mo 30.
import { AmberError } from './errors.ts';

const UNIT_MS = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
  mo: 2_592_000_000,
  y: 31_536_000_000,
} as const;
const DURATION = /^(\d+)(ms|mo|[smhdwy])$/;
const DURATION_PARTS = /^(?:\d+(?:ms|mo|[smhdwy]))+$/;

/**
 * The longest duration Amber accepts: 1000 years (of 365 days, as `y` counts). Retention, grace
 * periods and expiries are bounded when they are parsed, before anything is written: beyond this a
 * date no longer fits the format's four-digit ISO years once added to today, and a typo such as
 * `99999999999y` would otherwise get as far as a RangeError after a backup had written its packs.
 */
export const MAX_DURATION_MS = 1000 * UNIT_MS.y;
export const MAX_DURATION_TEXT = '1000y';
/** The latest date Amber accepts: the last instant a four-digit ISO year (as the format stores dates) can name. */
export const MAX_DATE_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
export const MAX_DATE_TEXT = '9999-12-31T23:59:59.999Z';

/** Parses `90d`, `1y2w`, `36h` into milliseconds, at most MAX_DURATION_MS. */
export function parseDurationMs(text: string): number {
  const trimmed = text.trim();
  // Zero needs no unit: --grace 0.
  if (/^0+$/.test(trimmed)) return 0;
  if (!DURATION_PARTS.test(trimmed)) {
    throw new AmberError('INVALID_DURATION', `"${text}" is not a duration`, {
      hint: 'use a number followed by ms, s, m (minutes), h, d, w, mo (months) or y, for example 90d or 7y',
    });
  }
  let total = 0;
  for (const part of trimmed.match(/\d+(?:ms|mo|[smhdwy])/g) ?? []) {
    const [, count, unit] = DURATION.exec(part)!;
    total += Number(count) * UNIT_MS[unit as keyof typeof UNIT_MS];
  }
  if (!(total <= MAX_DURATION_MS)) {
    throw new AmberError(
      'INVALID_DURATION',
      `"${text}" is longer than ${MAX_DURATION_TEXT} (1000 years), the longest duration Amber accepts`,
      {
        hint: `give a duration of at most ${MAX_DURATION_TEXT}, for example 7y or 10y`,
      },
    );
  }
  return total;
}

const SIZE = /^(\d+(?:\.\d+)?)\s*(|b|k|kb|kib|m|mb|mib|g|gb|gib|t|tb|tib)$/i;
const SIZE_POWER: Record<string, number> = { '': 0, b: 0, k: 1, m: 2, g: 3, t: 4 };

/** Parses `50M`, `1.5GiB`, `4096` into bytes; K, M, G, T are powers of 1024 (as restic and kopia count them). */
export function parseSizeBytes(text: string): number {
  const match = SIZE.exec(text.trim());
  const bytes = match ? Math.round(Number(match[1]) * 1024 ** SIZE_POWER[match[2].toLowerCase()[0] ?? '']) : Number.NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0)
    throw new AmberError('USAGE', `"${text}" is not a size`, {
      hint: 'use a number of bytes or a number followed by K, M, G or T (powers of 1024), for example 50M',
    });
  return bytes;
}

/**
 * `fromMs` plus a duration, with y and mo as calendar years and months in UTC (a day of the month
 * the target month lacks becomes its last day: 2028-02-29 + 1y is 2029-02-28), the other units as
 * fixed lengths. Bounded as parseDurationMs is.
 */
export function addDurationMs(fromMs: number, text: string): number {
  parseDurationMs(text); // the same refusals, the same bound
  let months = 0;
  let fixed = 0;
  for (const part of text.trim().match(/\d+(?:ms|mo|[smhdwy])/g) ?? []) {
    const [, count, unit] = DURATION.exec(part)!;
    if (unit === 'y') months += 12 * Number(count);
    else if (unit === 'mo') months += Number(count);
    else fixed += Number(count) * UNIT_MS[unit as keyof typeof UNIT_MS];
  }
  const from = new Date(fromMs);
  const month = from.getUTCMonth() + months;
  const year = from.getUTCFullYear() + Math.floor(month / 12);
  const inYear = ((month % 12) + 12) % 12;
  const lastDay = new Date(Date.UTC(year, inYear + 1, 0)).getUTCDate();
  const shifted = Date.UTC(
    year,
    inYear,
    Math.min(from.getUTCDate(), lastDay),
    from.getUTCHours(),
    from.getUTCMinutes(),
    from.getUTCSeconds(),
    from.getUTCMilliseconds(),
  );
  return shifted + fixed;
}

/** Parses an ISO date/time or `+DURATION` (from now) into epoch milliseconds, at most MAX_DATE_MS. */
export function parseDateMs(text: string, nowMs: number): number {
  const ms = text.startsWith('+') ? addDurationMs(nowMs, text.slice(1)) : Date.parse(text);
  if (!text.startsWith('+') && (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(ms))) {
    throw new AmberError('INVALID_DURATION', `"${text}" is not a date`, {
      hint: 'use an ISO date such as 2027-01-31 or 2027-01-31T12:00:00Z, or +DURATION such as +90d',
    });
  }
  if (ms > MAX_DATE_MS) {
    throw new AmberError(
      'INVALID_DURATION',
      `"${text}" is later than ${MAX_DATE_TEXT}, the latest date Amber accepts`,
      {
        hint: `give a date up to ${MAX_DATE_TEXT.slice(0, 10)}, or a +DURATION of at most ${MAX_DURATION_TEXT}`,
      },
    );
  }
  return ms;
}

/** Epoch milliseconds as an ISO 8601 UTC date/time (2027-01-31T12:00:00.000Z): how Amber writes every date. */
export function isoDate(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * A duration as people write it, to two units at most and without a zero part: 30d, 3d12h, 36h,
 * 42m, 1m30s, 7y (a whole number of 365-day years, as `y` counts), 5.0s, 250ms.
 */
export function formatDurationMs(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  const seconds = ms / 1_000;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)}s`;
  if (ms % UNIT_MS.y === 0) return `${ms / UNIT_MS.y}y`;
  const two = (big: number, bigUnit: string, small: number, smallUnit: string) =>
    small === 0 ? `${big}${bigUnit}` : `${big}${bigUnit}${small}${smallUnit}`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return two(minutes, 'm', Math.round(seconds % 60) % 60, 's');
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return two(hours, 'h', minutes % 60, 'm');
  return two(Math.floor(hours / 24), 'd', hours % 24, 'h');
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${BYTE_UNITS[unit]}`;
}

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/**
 * An instant as people read it: local time with its UTC offset, "2026-12-03 09:46:20 -05:00"
 * (`amber --utc` sets TZ=UTC, and the offset reads +00:00). Text that is no date comes back as it is.
 */
export function formatTime(when: string | number): string {
  const date = new Date(when);
  if (Number.isNaN(date.getTime())) return String(when);
  const pad = (n: number) => String(n).padStart(2, '0');
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? '+' : '-';
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())} ${sign}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`;
}
