// Snapshot locks: extend (never shorten) and lift (refused: it needs the quorum); the coverage proof is
// engine/lock-coverage.ts, which verify shares.
import { AmberError } from '../core/errors.ts';
import { isoDate } from '../core/units.ts';
import type { SnapshotId } from '../core/ids.ts';
import type { RetentionMode } from '../storage/store.ts';
import type { Operation } from '../governance/operation.ts';
import { loadIndex } from '../repo/index-loader.ts';
import { createBlobReader } from '../repo/blob-reader.ts';
import { retentionUnder } from '../governance/policy.ts';
import type { ObjectLock } from '../governance/retention.ts';
import { writeGrant } from '../engine/backup-lock.ts';
import { appendAudit } from '../governance/audit-log.ts';
import { findSnapshot } from '../engine/snapshots.ts';
import { snapshotNeeds, snapshotObject } from '../engine/snapshot-objects.ts';

export interface ExtendOptions {
  repo: Operation;
  snapshot: string;
  untilMs: number;
  mode?: RetentionMode;
}

export interface ExtendResult {
  snapshotId: SnapshotId;
  previous: { mode: RetentionMode; until: string } | null;
  mode: RetentionMode;
  until: string;
  objects: number;
  grant: string;
}

/** Raises a snapshot's lock and the retention of every object it needs; refuses anything that would lower it. */
export async function extendLock(options: ExtendOptions): Promise<ExtendResult> {
  const { repo } = options;
  const clock = repo.retentionClock;
  const state = await repo.retentionState();
  const entry = await findSnapshot(repo, options.snapshot);
  const current = state.ledger.snapshotLock(entry.id, entry.snapshot.retention);
  const mode = options.mode ?? current?.mode ?? state.policy.settings.defaultMode;
  refuseWeakening(entry.id, current, options.untilMs, mode);
  retentionUnder(state.policy.settings, { mode, retainMs: Math.max(0, options.untilMs - clock.retentionBaseMs()) });
  const { index } = await loadIndex(repo);
  const needs = await snapshotNeeds(createBlobReader(repo, index), index, entry.snapshot.tree);
  const objects = [snapshotObject(entry.id), ...[...needs.packs].sort()];
  const { grant, metadataLock } = await writeGrant(repo, state, {
    snapshotId: entry.id,
    entries: [{ mode, until: isoDate(options.untilMs), objects }],
    untilMs: options.untilMs,
    mode,
    nowMs: repo.clock.nowMs(),
  });
  repo.retentionStateChanged();
  const result = {
    snapshotId: entry.id,
    previous: current ? { mode: current.mode, until: isoDate(current.untilMs) } : null,
    mode,
    until: isoDate(options.untilMs),
    objects: objects.length,
    grant,
  };
  await appendAudit(
    repo,
    {
      action: 'lock.extend',
      target: entry.id,
      details: { previous: result.previous, mode, until: result.until, objects: objects.length, grant },
    },
    { lock: metadataLock },
  );
  return result;
}

function refuseWeakening(id: SnapshotId, current: ObjectLock | undefined, untilMs: number, mode: RetentionMode): void {
  if (!current) return;
  if (current.mode === 'compliance' && mode !== 'compliance') {
    throw new AmberError(
      'RETENTION_LOCKED',
      `snapshot ${id.slice(0, 8)} is under a compliance lock until ${isoDate(current.untilMs)}; it cannot become governance`,
      {
        hint: 'a compliance lock can only be extended',
      },
    );
  }
  if (untilMs >= current.untilMs) return;
  if (current.mode === 'compliance') {
    throw new AmberError(
      'RETENTION_LOCKED',
      `snapshot ${id.slice(0, 8)} is under a compliance lock until ${isoDate(current.untilMs)}; nothing can shorten it`,
      {
        hint: `choose a date after ${isoDate(current.untilMs)} to extend it`,
      },
    );
  }
  throw new AmberError(
    'APPROVAL_REQUIRED',
    `shortening the governance lock of snapshot ${id.slice(0, 8)} (until ${isoDate(current.untilMs)}) needs a request approved by the approver quorum`,
    {
      hint: `ask the approvers: amber request unlock|shorten ${id.slice(0, 8)} --reason TEXT`,
    },
  );
}

/** Lifting a lock is shortening it to now: refused the same way. */
export async function liftLock(options: { repo: Operation; snapshot: string }): Promise<never> {
  const { repo } = options;
  const state = await repo.retentionState();
  const entry = await findSnapshot(repo, options.snapshot);
  const current = state.ledger.snapshotLock(entry.id, entry.snapshot.retention);
  const nowMs = repo.retentionClock.deletionNowMs();
  if (!current || current.untilMs <= nowMs) {
    throw new AmberError('USAGE', `snapshot ${entry.id.slice(0, 8)} has no lock in force to lift`);
  }
  refuseWeakening(entry.id, current, nowMs, current.mode);
  throw new Error('unreachable: refuseWeakening refuses every shortening');
}
