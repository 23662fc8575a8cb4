// Legal holds: a held snapshot is never forgotten and nothing it needs is pruned, whatever its
// retention. Adding a hold needs the owner key; releasing one needs an approved request.
import { AmberError, isAmberError } from '../core/errors.ts';
import { nowIso } from '../core/clock.ts';
import type { Operation } from '../governance/operation.ts';
import { HOLDS, putRecord, type Hold } from '../repo/retention-records.ts';
import { metadataLock } from '../governance/retention-state.ts';
import { appendAudit } from '../governance/audit-log.ts';
import { findSnapshot } from '../engine/snapshots.ts';
import { loadIndex } from '../repo/index-loader.ts';
import { createBlobReader } from '../repo/blob-reader.ts';
import { snapshotNeeds, snapshotObject } from '../engine/snapshot-objects.ts';

export interface HoldEntry extends Hold {
  name: string;
  /** On a store with legal holds of its own (S3): whether it placed them, or why not. */
  storageHold?: string;
}

/** Holds a snapshot in the name of the operation's actor. */
export async function addHold(repo: Operation, options: { snapshot: string; reason: string }): Promise<HoldEntry> {
  if (options.reason.trim() === '')
    throw new AmberError('USAGE', 'a hold needs a reason', { hint: 'pass --reason "case 2026-17"' });
  const entry = await findSnapshot(repo, options.snapshot);
  const state = await repo.retentionState();
  const { index } = await loadIndex(repo);
  const needs = await snapshotNeeds(createBlobReader(repo, index), index, entry.snapshot.tree);
  const hold: Hold = {
    time: nowIso(repo.clock),
    snapshot: entry.id,
    reason: options.reason,
    actor: repo.actor,
    objects: [snapshotObject(entry.id), ...[...needs.packs].sort()],
  };
  // A hold is kept at least as long as anything else is retained.
  const lock = metadataLock(state, repo.retentionClock.retentionBaseMs());
  const name = await putRecord(repo, HOLDS, hold, { retainUntilMs: lock.untilMs, mode: lock.mode });
  await repo.store.protect([name], lock);
  repo.retentionStateChanged();
  // Where the storage has legal holds of its own (S3), it keeps the snapshot's objects whatever their
  // dates. Credentials without that permission still record the hold, which prune and the vault obey.
  let storageHold: string | undefined;
  if (repo.store.setLegalHold) {
    storageHold = await repo.store.setLegalHold(hold.objects ?? [], true).then(
      () => 'placed',
      (error: unknown) => {
        if (!isAmberError(error, 'STORAGE_ACCESS_DENIED')) throw error;
        return "not placed: these credentials may not set S3 legal holds (the unlock executor's may: docs/s3.md)";
      },
    );
  }
  await appendAudit(
    repo,
    { action: 'hold.add', target: entry.id, details: { reason: hold.reason, hold: name } },
    { lock },
  );
  return { ...hold, name, ...(storageHold ? { storageHold } : {}) };
}

export async function listHolds(repo: Operation): Promise<HoldEntry[]> {
  // Holds a quorum-approved request released are left out.
  return (await repo.retentionState()).holds
    .map(({ name, value }) => ({ ...value, name }))
    .sort((a, b) => (a.time < b.time ? -1 : 1));
}

export async function releaseHold(repo: Operation, options: { snapshot: string }): Promise<never> {
  const entry = await findSnapshot(repo, options.snapshot);
  const holds = (await listHolds(repo)).filter(({ snapshot }) => snapshot === entry.id);
  if (holds.length === 0) throw new AmberError('USAGE', `no hold applies to snapshot ${entry.id.slice(0, 8)}`);
  throw new AmberError(
    'APPROVAL_REQUIRED',
    `releasing the legal hold on snapshot ${holds[0].snapshot.slice(0, 8)} ("${holds[0].reason}") needs a request approved by the approver quorum`,
    {
      hint: `ask the approvers: amber request release-hold ${holds[0].snapshot.slice(0, 8)} --reason TEXT`,
    },
  );
}
