// Which snapshots a forget policy keeps (the grandfather-father-son rules people know from restic):
// the last N, the newest in each of the last N hours/days/weeks/months/years, and all within a span
// of the newest. Pure: the caller decides which snapshots may take part (trusted times only).
import type { SnapshotId } from '../core/ids.ts';

export interface KeepRules {
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
  withinMs?: number;
}

export interface Dated {
  id: SnapshotId;
  timeMs: number;
}

const pad = (n: number) => String(n).padStart(2, '0');

/** ISO 8601 week of a UTC date, as "YYYY-Www". */
function isoWeek(date: Date): string {
  const day = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()));
  const weekday = day.getUTCDay() || 7;
  day.setUTCDate(day.getUTCDate() + 4 - weekday);
  const yearStart = Date.UTC(day.getUTCFullYear(), 0, 1);
  return `${day.getUTCFullYear()}-W${pad(Math.ceil(((day.getTime() - yearStart) / 86_400_000 + 1) / 7))}`;
}

const BUCKETS: [keyof KeepRules, string, (d: Date) => string][] = [
  ['hourly', 'hourly', (d) => `${d.toISOString().slice(0, 13)}`],
  ['daily', 'daily', (d) => d.toISOString().slice(0, 10)],
  ['weekly', 'weekly', isoWeek],
  ['monthly', 'monthly', (d) => d.toISOString().slice(0, 7)],
  ['yearly', 'yearly', (d) => d.toISOString().slice(0, 4)],
];

export function hasAnyRule(rules: KeepRules): boolean {
  return Object.values(rules).some((value) => value !== undefined);
}

/** For each kept snapshot, the rules that keep it. Snapshots absent from the map are not kept by any rule. */
export function applyKeepRules(snapshots: Dated[], rules: KeepRules): Map<SnapshotId, string[]> {
  const newestFirst = [...snapshots].sort((a, b) => b.timeMs - a.timeMs || (a.id < b.id ? -1 : 1));
  const kept = new Map<SnapshotId, string[]>();
  const keep = (id: SnapshotId, reason: string) => kept.set(id, [...(kept.get(id) ?? []), reason]);
  for (const { id } of newestFirst.slice(0, rules.last ?? 0)) keep(id, 'last');
  for (const [rule, label, bucketOf] of BUCKETS) {
    let left = (rules[rule] as number | undefined) ?? 0;
    let previous: string | undefined;
    for (const { id, timeMs } of newestFirst) {
      if (left <= 0) break;
      const bucket = bucketOf(new Date(timeMs));
      if (bucket === previous) continue;
      previous = bucket;
      left -= 1;
      keep(id, `${label} ${bucket}`);
    }
  }
  if (rules.withinMs !== undefined && newestFirst.length > 0) {
    const from = newestFirst[0].timeMs - rules.withinMs;
    for (const { id, timeMs } of newestFirst) if (timeMs >= from) keep(id, 'within');
  }
  return kept;
}
