// forget: marks snapshots as forgotten — only those no keep rule keeps, whose lock has ended by the
// guarded clock and on which no hold applies. Snapshots whose claimed time cannot be trusted (in the
// future, or far from when the store received them) take no part in the keep rules and are never
// forgotten: forged times must not push real snapshots out of the daily/weekly buckets.
import { matchesFilter, type SnapshotFilter } from '../engine/snapshot-filter.ts';
import { AmberError } from '../core/errors.ts';
import { isoDate } from '../core/units.ts';
import type { SnapshotId } from '../core/ids.ts';
import type { Operation } from '../governance/operation.ts';
import { FORGETS, putRecord } from '../repo/retention-records.ts';
import { appendAudit } from '../governance/audit-log.ts';
import { applyKeepRules, hasAnyRule, type KeepRules } from '../governance/keep-rules.ts';
import { listSnapshots, type SnapshotEntry } from '../engine/snapshots.ts';
import { copiedFromOf, type CopiedFrom } from '../engine/copy.ts';

/** How far a snapshot's claimed time may be from when the store received it. */
export const TIME_TOLERANCE_MS = 60 * 60_000;

export interface ForgetOptions {
  repo: Operation;
  keep: KeepRules;
  dryRun?: boolean;
  /** Only these snapshots are considered (--host, --tag, --path); the others are left as they are. */
  filter?: SnapshotFilter;
}

export interface ForgetDecision {
  snapshotId: SnapshotId;
  time: string;
  host: string;
  paths: string[];
  /** Why it is kept; empty when it is forgotten. */
  keptBecause: string[];
}

export interface ForgetResult {
  forgotten: ForgetDecision[];
  kept: ForgetDecision[];
  mark: string | null;
  dryRun: boolean;
}

/** Why a snapshot's time cannot be used for keep rules, or undefined when it can. */
export function untrustedTime(entry: SnapshotEntry, nowMs: number): string | undefined {
  const timeMs = Date.parse(entry.snapshot.time);
  if (!Number.isFinite(timeMs)) return 'its time is not a date';
  if (timeMs > nowMs + TIME_TOLERANCE_MS) return `its time ${entry.snapshot.time} is in the future`;
  const from = copiedFromOf(entry.snapshot);
  if (from) return untrustedCopyTime(entry, timeMs, from);
  if (entry.writtenMs !== undefined && Math.abs(timeMs - entry.writtenMs) > TIME_TOLERANCE_MS) {
    return `its time ${entry.snapshot.time} is far from when the store received it (${isoDate(entry.writtenMs)})`;
  }
  return undefined;
}

/**
 * A copy keeps its source's time, which may lie long before the copy was made (a history copied at
 * once, a nightly copy hours after the backups). Its own writer recorded when it copied it
 * (`copiedAt`, checked against when this store received it) and when the primary's store had
 * received the source (`receivedAt`); the source's time is used when it fits both, as the primary
 * judged it.
 */
function untrustedCopyTime(entry: SnapshotEntry, timeMs: number, from: CopiedFrom): string | undefined {
  const copiedMs = Date.parse(from.copiedAt);
  if (!Number.isFinite(copiedMs)) return 'its copy time is not a date';
  if (entry.writtenMs !== undefined && Math.abs(copiedMs - entry.writtenMs) > TIME_TOLERANCE_MS)
    return `it says it was copied at ${from.copiedAt}, far from when the store received it (${isoDate(entry.writtenMs)})`;
  if (timeMs > copiedMs + TIME_TOLERANCE_MS)
    return `its time ${entry.snapshot.time} is after it was copied (${from.copiedAt})`;
  const receivedMs = from.receivedAt === undefined ? Number.NaN : Date.parse(from.receivedAt);
  if (Number.isFinite(receivedMs) && Math.abs(timeMs - receivedMs) > TIME_TOLERANCE_MS)
    return `its time ${entry.snapshot.time} is far from when the primary's store received it (${from.receivedAt})`;
  return undefined;
}

/**
 * Copies made in a later run than the copy of a newer snapshot of the same source: the primary
 * showed them only after it had shown something newer. A run copies oldest first, so a history
 * copied at once never looks so; a snapshot dated into the past after the copy had seen later ones
 * does, and its time (with the primary store's receipt, `receivedAt`) is then the word of whoever
 * owns the primary alone. Taken at its word, it would displace a real snapshot of that day from the
 * keep rules' buckets, and the copy would forget the real one once its lock ended
 * (test/redteam/copy-forget-backdated.test.ts). Such copies take no part in the keep rules and are
 * never forgotten, as any snapshot whose time cannot be trusted.
 */
function backfilledCopies(entries: SnapshotEntry[]): Map<SnapshotId, string> {
  const groups = new Map<string, { entry: SnapshotEntry; copiedMs: number; timeMs: number }[]>();
  for (const entry of entries) {
    const from = copiedFromOf(entry.snapshot);
    if (!from) continue;
    const key = `${from.repository}\0${entry.snapshot.host}\0${entry.snapshot.paths.join('\0')}`;
    const row = { entry, copiedMs: Date.parse(from.copiedAt), timeMs: Date.parse(entry.snapshot.time) };
    groups.set(key, [...(groups.get(key) ?? []), row]);
  }
  const found = new Map<SnapshotId, string>();
  for (const rows of groups.values()) {
    rows.sort((a, b) => a.copiedMs - b.copiedMs);
    let newest: (typeof rows)[number] | undefined;
    let next = 0;
    for (const row of rows) {
      // The newest source time among copies made strictly before this one.
      for (; next < rows.length && rows[next].copiedMs < row.copiedMs; next++)
        if (!newest || rows[next].timeMs > newest.timeMs) newest = rows[next];
      if (newest && newest.timeMs > row.timeMs)
        found.set(
          row.entry.id,
          `it was copied (${copiedFromOf(row.entry.snapshot)!.copiedAt}) after the copy of a newer snapshot of its source (${newest.entry.snapshot.time}): the primary showed it only later`,
        );
    }
  }
  return found;
}

export async function forget(options: ForgetOptions): Promise<ForgetResult> {
  const { repo } = options;
  if (!hasAnyRule(options.keep)) {
    throw new AmberError('USAGE', 'forget needs at least one --keep-* rule', {
      hint: 'for example --keep-daily 7 --keep-weekly 4; snapshots no rule keeps are forgotten once their lock ends',
    });
  }
  const nowMs = repo.retentionClock.deletionNowMs();
  const state = await repo.retentionState();
  const snapshots = (await listSnapshots(repo, [], { state })).filter(
    ({ snapshot }) => !options.filter || matchesFilter(snapshot, options.filter),
  );
  const reasons = new Map<SnapshotId, string[]>(snapshots.map(({ id }) => [id, []]));
  const timed = snapshots.filter((entry) => {
    const why = untrustedTime(entry, nowMs);
    if (why) reasons.get(entry.id)!.push(`time untrusted: ${why}`);
    return !why;
  });
  const backfill = backfilledCopies(timed);
  const trusted = timed.filter((entry) => {
    const why = backfill.get(entry.id);
    if (why) reasons.get(entry.id)!.push(`time untrusted: ${why}`);
    return !why;
  });
  // Keep rules group snapshots of the same host and paths, as restic does.
  const groups = new Map<string, SnapshotEntry[]>();
  for (const entry of trusted) {
    const key = `${entry.snapshot.host}\0${entry.snapshot.paths.join('\0')}`;
    groups.set(key, [...(groups.get(key) ?? []), entry]);
  }
  for (const group of groups.values()) {
    const kept = applyKeepRules(
      group.map(({ id, snapshot }) => ({ id, timeMs: Date.parse(snapshot.time) })),
      options.keep,
    );
    for (const [id, rules] of kept) reasons.get(id)!.push(`policy: ${rules.join(', ')}`);
  }
  for (const { id, snapshot } of snapshots) {
    const lock = state.ledger.snapshotLock(id, snapshot.retention);
    if (lock && lock.untilMs > nowMs) reasons.get(id)!.push(`locked until ${isoDate(lock.untilMs)} (${lock.mode})`);
    for (const { value } of state.holds) if (value.snapshot === id) reasons.get(id)!.push(`held: ${value.reason}`);
  }
  const decide = ({ id, snapshot }: SnapshotEntry): ForgetDecision => ({
    snapshotId: id,
    time: snapshot.time,
    host: snapshot.host,
    paths: snapshot.paths,
    keptBecause: reasons.get(id)!,
  });
  const decisions = snapshots.map(decide);
  let forgotten = decisions.filter(({ keptBecause }) => keptBecause.length === 0);
  let mark: string | null = null;
  if (!options.dryRun && forgotten.length > 0) {
    mark = await putRecord(repo, FORGETS, {
      time: isoDate(nowMs),
      snapshots: forgotten.map(({ snapshotId }) => snapshotId),
      rule: describeRules(options.keep),
    });
    await appendAudit(repo, {
      action: 'forget',
      target: mark,
      details: { snapshots: forgotten.map(({ snapshotId }) => snapshotId), rule: describeRules(options.keep) },
    });
    repo.retentionStateChanged();
    // Readers honour the mark by the store's clock, not this host's: say which snapshots it cannot forget.
    const receivedMs = (await repo.store.stat(mark)).writtenMs;
    const own = new Map(snapshots.map(({ id, snapshot }) => [id, snapshot.retention]));
    for (const decision of forgotten) {
      const lock = state.ledger.snapshotLock(decision.snapshotId, own.get(decision.snapshotId) ?? null);
      if (lock !== undefined && (receivedMs === undefined || lock.untilMs > receivedMs)) {
        decision.keptBecause.push(
          `locked until ${isoDate(lock.untilMs)} by the store's clock ` +
            `(${receivedMs === undefined ? 'unknown' : isoDate(receivedMs)}, behind this host's); run forget again later`,
        );
      }
    }
    forgotten = forgotten.filter(({ keptBecause }) => keptBecause.length === 0);
  }
  return {
    forgotten,
    kept: decisions.filter(({ keptBecause }) => keptBecause.length > 0),
    mark,
    dryRun: options.dryRun === true,
  };
}

export function describeRules(rules: KeepRules): string {
  return Object.entries(rules)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key}=${value}`)
    .join(' ');
}
