// Durations (s m h d w y; m is minutes, there are no months), dates and byte sizes as people type them.
import { AmberError } from './errors.ts';

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, y: 31_536_000_000 } as const;
const DURATION = /^(\d+)([smhdwy])$/;
const DURATION_PARTS = /^(?:\d+[smhdwy])+$/;

/** Parses `90d`, `1y2w`, `36h` into milliseconds. */
export function parseDurationMs(text: string): number {
  const trimmed = text.trim();
  if (!DURATION_PARTS.test(trimmed)) {
    throw new AmberError('INVALID_DURATION', `"${text}" is not a duration`, {
      hint: 'use a number followed by s, m (minutes), h, d, w or y, for example 90d or 1y',
    });
  }
  let total = 0;
  for (const part of trimmed.match(/\d+[smhdwy]/g) ?? []) {
    const [, count, unit] = DURATION.exec(part)!;
    total += Number(count) * UNIT_MS[unit as keyof typeof UNIT_MS];
  }
  return total;
}

/** Parses an ISO date/time or `+DURATION` (from now) into epoch milliseconds. */
export function parseDateMs(text: string, nowMs: number): number {
  if (text.startsWith('+')) return nowMs + parseDurationMs(text.slice(1));
  const ms = Date.parse(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(ms)) {
    throw new AmberError('INVALID_DURATION', `"${text}" is not a date`, {
      hint: 'use an ISO date such as 2027-01-31 or 2027-01-31T12:00:00Z, or +DURATION such as +90d',
    });
  }
  return ms;
}

export function formatDurationMs(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  const seconds = ms / 1_000;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${Math.round(seconds % 60)}s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h${minutes % 60}m`;
  return `${Math.floor(hours / 24)}d${hours % 24}h`;
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
