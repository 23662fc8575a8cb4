// The RPO seen from the vault: when each writer token last completed a snapshot, by the vault's
// own clock, against the objectives its operator set. A client that is compromised or gone simply
// stops writing; only the side that keeps receiving can notice, so the vault raises rpo.missed
// itself. State (last snapshot per repository and writer, and what was announced) is kept in
// DATA/vault/last-snapshots.json, so a restart neither forgets a writer nor announces twice.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/atomic-file.ts';
import { formatDurationMs, isoDate } from '../core/units.ts';
import type { AmberEvent } from '../ops/notify/event.ts';
import type { Family } from '../ops/prometheus-text.ts';
import type { TokenInfo } from './tokens.ts';

/** A repository's objective (any writer's snapshot counts), or one writer's (by token id or label). */
export interface VaultObjective {
  repo: string;
  writer?: string;
  rpoMs: number;
}

interface WriterRecord {
  label: string;
  lastMs: number;
}

interface WatchState {
  /** repo → token id → its last snapshot. */
  writers: Record<string, Record<string, WriterRecord>>;
  /** Objective key → when the watch began (the age of an objective no snapshot has met yet). */
  since: Record<string, number>;
  /** Objective keys announced as missed and not recovered since. */
  missed: string[];
}

export interface RpoWatch {
  snapshotStored(repo: string, token: TokenInfo, nowMs: number): void;
  /** Compares each objective with the clock; announces what changed. */
  check(nowMs: number): void;
  families(nowMs: number): Family[];
}

const keyOf = (objective: VaultObjective) => `${objective.repo}/${objective.writer ?? '*'}`;

export function createRpoWatch(options: {
  dataDir: string;
  objectives: VaultObjective[];
  notify: (event: AmberEvent) => void;
  nowMs: number;
  log?: (message: string) => void;
}): RpoWatch {
  const file = join(options.dataDir, 'vault', 'last-snapshots.json');
  const state = load(file, options.log);
  const watched = new Set(options.objectives.map((objective) => objective.repo));
  const save = () => writeFileAtomic(file, `${JSON.stringify(state, null, 2)}\n`, 0o600);

  /** The newest snapshot that meets the objective: the repository's newest, or that writer's. */
  const newest = (objective: VaultObjective): { id?: string; label?: string; lastMs?: number } => {
    let best: { id?: string; label?: string; lastMs?: number } = {};
    for (const [id, record] of Object.entries(state.writers[objective.repo] ?? {})) {
      if (objective.writer !== undefined && objective.writer !== id && objective.writer !== record.label) continue;
      if (best.lastMs === undefined || record.lastMs > best.lastMs) best = { id, ...record };
    }
    return best;
  };
  const standing = (objective: VaultObjective, nowMs: number) => {
    const last = newest(objective);
    const fromMs = last.lastMs ?? state.since[keyOf(objective)] ?? nowMs;
    const ageMs = Math.max(0, nowMs - fromMs);
    return { ...last, ageMs, missed: ageMs > objective.rpoMs };
  };

  let changed = false;
  for (const objective of options.objectives)
    if (state.since[keyOf(objective)] === undefined) {
      state.since[keyOf(objective)] = options.nowMs;
      changed = true;
    }
  if (changed) save();

  return {
    snapshotStored(repo, token, nowMs) {
      if (!watched.has(repo)) return;
      const writers = (state.writers[repo] ??= {});
      writers[token.id] = { label: token.label, lastMs: nowMs };
      save();
    },
    check(nowMs) {
      const missed = new Set(state.missed);
      let dirty = false;
      // A time later than now was stamped by a clock that ran ahead and has been put right: left so,
      // the objective would read as met until the clock caught up (a year, say). It counts from now.
      for (const writers of Object.values(state.writers))
        for (const record of Object.values(writers))
          if (record.lastMs > nowMs) {
            options.log?.(
              `a snapshot time in the future (${isoDate(record.lastMs)}) is taken as now: the clock moved back`,
            );
            record.lastMs = nowMs;
            dirty = true;
          }
      for (const [key, sinceMs] of Object.entries(state.since))
        if (sinceMs > nowMs) {
          state.since[key] = nowMs;
          dirty = true;
        }
      for (const objective of options.objectives) {
        const key = keyOf(objective);
        const now = standing(objective, nowMs);
        if (now.missed === missed.has(key)) continue;
        dirty = true;
        if (now.missed) missed.add(key);
        else missed.delete(key);
        const whose =
          objective.writer === undefined
            ? `repository ${objective.repo}`
            : `writer ${objective.writer} of ${objective.repo}`;
        options.notify({
          type: now.missed ? 'rpo.missed' : 'rpo.recovered',
          time: isoDate(nowMs),
          repository: objective.repo,
          writer: now.id ?? objective.writer,
          code: now.missed ? 'RPO_MISSED' : undefined,
          message: now.missed
            ? `the vault has no snapshot of ${whose} newer than its RPO of ${formatDurationMs(objective.rpoMs)}: the last ${now.lastMs === undefined ? 'never came' : `came ${isoDate(now.lastMs)}${now.label ? ` from ${now.label}` : ''}`}`
            : `${whose} is within its RPO again: a snapshot came ${isoDate(now.lastMs!)}${now.label ? ` from ${now.label}` : ''}`,
          details: {
            side: 'vault',
            rpoSeconds: objective.rpoMs / 1000,
            ageSeconds: Math.round(now.ageMs / 1000),
            lastSnapshot: now.lastMs === undefined ? null : isoDate(now.lastMs),
            writerLabel: now.label,
          },
        });
      }
      if (dirty) {
        state.missed = [...missed];
        save();
      }
    },
    families(nowMs) {
      const last: Family = {
        name: 'amber_vault_last_snapshot_timestamp_seconds',
        help: 'When each writer token last stored a snapshot, by the vault clock (repositories with an objective only).',
        type: 'gauge',
        samples: [],
      };
      for (const repo of watched)
        for (const [id, record] of Object.entries(state.writers[repo] ?? {}))
          last.samples.push({ labels: { repo, writer: id, label: record.label }, value: record.lastMs / 1000 });
      const objective: Family = {
        name: 'amber_vault_rpo_objective_seconds',
        help: 'The RPO set for a repository (writer="*": any writer) or for one writer.',
        type: 'gauge',
        samples: [],
      };
      const age: Family = {
        name: 'amber_vault_rpo_age_seconds',
        help: 'Age of the newest snapshot that counts for the objective (since the watch began, if none yet).',
        type: 'gauge',
        samples: [],
      };
      const missed: Family = {
        name: 'amber_vault_rpo_missed',
        help: '1 while the objective is missed.',
        type: 'gauge',
        samples: [],
      };
      for (const item of options.objectives) {
        const labels = { repo: item.repo, writer: item.writer ?? '*' };
        const now = standing(item, nowMs);
        objective.samples.push({ labels, value: item.rpoMs / 1000 });
        age.samples.push({ labels, value: Math.round(now.ageMs / 1000) });
        missed.samples.push({ labels, value: now.missed ? 1 : 0 });
      }
      return [last, objective, age, missed];
    },
  };
}

function load(file: string, log?: (message: string) => void): WatchState {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<WatchState> | null;
    // Only what has the right shape is kept: a wrong type is a damaged entry, begun again now.
    const isRecord = (value: unknown): value is Record<string, unknown> =>
      typeof value === 'object' && value !== null && !Array.isArray(value);
    const writers: WatchState['writers'] = {};
    for (const [repo, byToken] of Object.entries(isRecord(parsed?.writers) ? parsed.writers : {})) {
      if (!isRecord(byToken)) continue;
      for (const [id, record] of Object.entries(byToken))
        if (isRecord(record) && Number.isFinite(record.lastMs))
          (writers[repo] ??= {})[id] = { label: String(record.label ?? ''), lastMs: record.lastMs as number };
    }
    const since: WatchState['since'] = {};
    for (const [key, ms] of Object.entries(isRecord(parsed?.since) ? parsed.since : {}))
      if (Number.isFinite(ms)) since[key] = ms as number;
    const missed = Array.isArray(parsed?.missed) ? parsed.missed.filter((key) => typeof key === 'string') : [];
    return { writers, since, missed };
  } catch (error) {
    // Damaged or gone: the watch begins again now, so an alert comes at most one RPO late, never not at all.
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
      log?.(`${file} could not be read (${(error as Error).message}); the RPO watch begins again now`);
    return { writers: {}, since: {}, missed: [] };
  }
}
