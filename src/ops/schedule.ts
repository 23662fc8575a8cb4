// When a job runs: `every 90s|15m|1h|1d` (from the last run's start) or a cron expression of five
// fields, read in UTC unless the file says otherwise. Cron is parsed by croner: no parser of our own.
import { Cron } from 'croner';

export interface Schedule {
  /** As written in the file. */
  text: string;
  /** The first time at or after `afterMs` this schedule fires (for `every`: afterMs itself). */
  next(afterMs: number): number;
  /** The nominal gap between two runs: `every`'s interval, or cron's next two firings apart. */
  intervalMs(): number;
}

const EVERY = /^every\s+([1-9][0-9]*)\s*(s|m|h|d)$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const MAX_INTERVAL_MS = 1000 * 365 * 86_400_000;

/** The reason `text` is not a schedule, or the schedule. */
export function parseSchedule(text: string, timezone = 'UTC'): Schedule | { problem: string } {
  const trimmed = text.trim();
  const every = EVERY.exec(trimmed);
  if (every) {
    const ms = Number(every[1]) * UNIT_MS[every[2] as keyof typeof UNIT_MS];
    // Past every date (and every lock): a next run no clock shows, an `amber status` that cannot print it.
    if (ms > MAX_INTERVAL_MS)
      return { problem: `"${text}" is longer than 1000 years between runs: write a shorter interval, e.g. every 1d` };
    return { text, next: (afterMs) => afterMs, intervalMs: () => ms };
  }
  if (/^every\b/.test(trimmed))
    return { problem: `"${text}" is not an interval: write every and a whole number with s, m, h or d, e.g. every 1h` };
  const fields = trimmed.split(/\s+/);
  if (fields.length !== 5)
    return {
      problem: `"${text}" is neither "every N(s|m|h|d)" nor a cron expression of five fields (minute hour day month weekday), e.g. "15 * * * *"`,
    };
  let cron: Cron;
  try {
    cron = new Cron(trimmed, { paused: true, timezone });
  } catch (error) {
    return { problem: `"${text}" is not a cron expression: ${(error as Error).message.replace(/^CronPattern: /, '')}` };
  }
  const next = (afterMs: number) => {
    if (!Number.isFinite(afterMs)) return Number.POSITIVE_INFINITY;
    const at = cron.nextRun(new Date(afterMs - 1));
    return at ? at.getTime() : Number.POSITIVE_INFINITY;
  };
  // A day no month has ("0 0 30 2 *") is a valid pattern that never fires: the job would never run,
  // and its interval (Infinity - Infinity) would break every step of the scheduler.
  const first = next(Date.now());
  if (!Number.isFinite(first) || !Number.isFinite(next(first + 1)))
    return { problem: `"${text}" never fires (no date matches it): check its day and month fields` };
  return {
    text,
    next,
    intervalMs: () => {
      const first = next(Date.now());
      return next(first + 1) - first;
    },
  };
}

/**
 * When a job with this schedule is due next, given when it last started successfully (undefined:
 * never). `every` runs a missed interval at once (catch-up after downtime); cron runs a firing
 * missed since the last run at once too, then keeps to the expression.
 */
export function nextDue(schedule: Schedule, lastStartMs: number | undefined, nowMs: number): number {
  if (lastStartMs === undefined) return nowMs;
  const every = EVERY.test(schedule.text.trim());
  if (every) return Math.max(nowMs, lastStartMs + schedule.intervalMs());
  const missed = schedule.next(lastStartMs + 1);
  return Math.max(missed, nowMs);
}
