// GFS tiers as per-snapshot locks. The first snapshot of a source in each period of a tier (UTC
// hour, day, ISO week, month, year) is the tier's keeper: it is locked for the longest tier it
// keeps for, when it is made. Later snapshots in the same periods get the repository policy's
// default. Nothing is shortened afterwards: a lock only ever rises.
import type { RetainTiers } from './policy-types.ts';

export const TIERS = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
export type Tier = (typeof TIERS)[number];

/** The period of `ms` a tier counts in, as a string that differs between periods. */
export function periodOf(tier: Tier, ms: number): string {
  const iso = new Date(ms).toISOString();
  switch (tier) {
    case 'hourly':
      return iso.slice(0, 13);
    case 'daily':
      return iso.slice(0, 10);
    case 'monthly':
      return iso.slice(0, 7);
    case 'yearly':
      return iso.slice(0, 4);
    case 'weekly': {
      // ISO 8601 week: the week with the year's first Thursday is week 1.
      const date = new Date(
        Date.UTC(new Date(ms).getUTCFullYear(), new Date(ms).getUTCMonth(), new Date(ms).getUTCDate()),
      );
      const weekday = date.getUTCDay() || 7;
      date.setUTCDate(date.getUTCDate() + 4 - weekday);
      const yearStart = Date.UTC(date.getUTCFullYear(), 0, 1);
      const week = Math.ceil(((date.getTime() - yearStart) / 86_400_000 + 1) / 7);
      return `${date.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
    }
  }
}

const msOf = (tiers: RetainTiers, tier: Tier): number | undefined => tiers[`${tier}Ms`];

export interface TierChoice {
  /** The tier whose lock this snapshot gets; undefined: the policy's default. */
  tier?: Tier;
  retainMs?: number;
  /** The periods to record once the snapshot is made (every configured tier's). */
  periods: Partial<Record<Tier, string>>;
}

/** `kept`: the period of each tier's last keeper (from the agent's state). */
export function chooseTier(tiers: RetainTiers, nowMs: number, kept: Partial<Record<Tier, string>>): TierChoice {
  let choice: { tier: Tier; ms: number } | undefined;
  const periods: Partial<Record<Tier, string>> = {};
  for (const tier of TIERS) {
    const ms = msOf(tiers, tier);
    if (ms === undefined) continue;
    const period = periodOf(tier, nowMs);
    periods[tier] = period;
    if (kept[tier] === period) continue;
    if (!choice || ms > choice.ms) choice = { tier, ms };
  }
  return { tier: choice?.tier, retainMs: choice?.ms, periods };
}
