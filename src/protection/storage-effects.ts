// An approved request's effect on the storage. Amber's records already carry the decision: the
// ledger caps the snapshot's governance grants, the released hold no longer counts. Two things are
// left: objects the unlocked snapshot shares with snapshots still locked are granted again at their
// locks (a backup that reused them did not grant them while the unlocked lock covered them), and a
// store with retention of its own (S3 Object Lock) still holds the old governance dates and legal
// holds until someone allowed to bypass governance retention (the unlock executor) lowers them.
// Nothing here touches compliance dates, and no object goes below what another lock still needs.
import { AmberError } from '../core/errors.ts';
import { isoDate } from '../core/units.ts';
import type { SnapshotId } from '../core/ids.ts';
import { nowIso } from '../core/clock.ts';
import type { Operation } from '../governance/operation.ts';
import { GRANTS, HOLDS, loadRecords, putRecord, type GrantEntry } from '../repo/retention-records.ts';
import { loadIndex } from '../repo/index-loader.ts';
import { createBlobReader } from '../repo/blob-reader.ts';
import { covers, foldGrants, raise, type ObjectLock, type RetentionLedger } from '../governance/retention.ts';
import { sharedMetadata, snapshotNeeds, snapshotObject } from '../engine/snapshot-objects.ts';
import { listSnapshots } from '../engine/snapshots.ts';
import { appendAudit } from '../governance/audit-log.ts';
import { findRequest } from '../governance/requests.ts';
import {
  governanceEnds,
  metadataLock,
  type GovernanceRequest,
  type RetentionClock,
  type RetentionState,
} from '../governance/retention-state.ts';

export interface StorageEffect {
  request: string;
  kind: string;
  /** Objects whose governance date the store lowered. */
  lowered: number;
  /** Objects other locked snapshots need that were granted again at those snapshots' dates. */
  regranted: number;
  /** Objects whose legal hold the store lifted. */
  released: number;
}

export async function applyToStorage(repo: Operation, requestRef: string): Promise<StorageEffect> {
  const clock = repo.retentionClock;
  const state = await repo.retentionState();
  const request = await findRequest(repo, state.policy, clock.retentionBaseMs(), requestRef);
  if (request.status !== 'executed') {
    throw new AmberError(
      'APPROVAL_REQUIRED',
      `request ${request.id.slice(0, 12)} is ${request.status}: only an approved request changes the storage`,
    );
  }
  const { store } = repo;
  const effect: StorageEffect = { request: request.id, kind: request.kind, lowered: 0, regranted: 0, released: 0 };
  if (request.kind === 'unlock' || request.kind === 'shorten') {
    const unlock = state.governanceRequests.find(({ id }) => id === request.id);
    if (!unlock)
      throw new AmberError('APPROVAL_REQUIRED', `request ${request.id.slice(0, 12)} is no approved unlock or shorten`);
    const { objects, needed, regranted, after } = await regrantShared(repo, state, unlock);
    effect.regranted = regranted;
    if (store.lowerGovernanceRetention) {
      // Every object granted for the snapshot, each down to the latest date anything still needs of
      // it: the ledger with this snapshot's objects capped, raised by what the surviving locks need
      // (what was just granted again).
      const byDate = new Map<number, string[]>();
      for (const name of objects) {
        const untilMs = Math.max(after.lockOf(name)?.untilMs ?? 0, needed.get(name)?.untilMs ?? 0);
        byDate.set(untilMs, [...(byDate.get(untilMs) ?? []), name]);
      }
      for (const [untilMs, names] of byDate) effect.lowered += await store.lowerGovernanceRetention(names, untilMs);
    }
  }
  if (request.kind === 'release-hold' && store.setLegalHold) {
    const released = (await loadRecords(repo, HOLDS, [])).find(({ name }) => name === request.target);
    const stillHeld = new Set(state.holds.flatMap(({ value }) => value.objects ?? []));
    const lift = (released?.value.objects ?? []).filter((name) => !stillHeld.has(name));
    if (lift.length > 0) await store.setLegalHold(lift, false);
    effect.released = lift.length;
  }
  await appendAudit(repo, {
    action: 'request.apply',
    target: request.id,
    details: { kind: request.kind, lowered: effect.lowered, regranted: effect.regranted, released: effect.released },
  });
  return effect;
}

/**
 * After a quorum unlocked or shortened `snapshot`: a later backup that reused one of its packs did
 * not grant it again while this snapshot's longer lock covered it. Grants every object the snapshot
 * was granted that a snapshot still locked needs, at that snapshot's lock, so the ledger (and lock
 * status) keeps covering it. Idempotent: what is covered already is left alone.
 */
export async function regrantShared(
  repo: Operation,
  state: RetentionState,
  unlock: GovernanceRequest,
): Promise<{ objects: string[]; needed: Map<string, ObjectLock>; regranted: number; after: RetentionLedger }> {
  const { retentionClock: clock } = repo;
  const request = unlock.id;
  const { grants } = state;
  const requests = [...state.governanceRequests.filter(({ id }) => id !== request), unlock];
  const objects = [
    ...new Set(
      grants
        .filter(({ value }) => value.snapshot === unlock.snapshot)
        .flatMap(({ value }) => value.entries.flatMap(({ objects: names }) => names)),
    ),
  ];
  // Which other locks are still in force is an expiry decision: judged by the time that moving the
  // clock forward cannot raise (retentionBaseMs would count a lock as over on a host set ahead).
  const needed = await neededByOthers(repo, state, unlock.snapshot, clock.deletionNowMs());
  // Judged against the ledger as it will be once this grant is written: the snapshot's shared
  // objects capped too (until now only its own object was).
  const after = foldGrants(grants, governanceEnds(requests, new Set([...state.regranted, request])));
  const regrant = objects.filter((name) => {
    const lock = needed.get(name);
    return lock !== undefined && !covers(after.lockOf(name), lock.untilMs, lock.mode);
  });
  // Written even when nothing needs it: the grant is the owner's word that the cap may now apply.
  const regranted =
    state.regranted.has(request) && regrant.length === 0
      ? 0
      : await grantSurvivors(
          repo,
          state,
          request,
          regrant.map((name) => [name, needed.get(name)!]),
          clock,
        );
  repo.retentionStateChanged();
  return { objects, needed, regranted, after };
}

/** What every other snapshot still locked needs (itself, its packs, the shared metadata), at its lock. */
async function neededByOthers(
  repo: Operation,
  state: RetentionState,
  unlocked: SnapshotId,
  nowMs: number,
): Promise<Map<string, ObjectLock>> {
  const { index } = await loadIndex(repo);
  const reader = createBlobReader(repo, index);
  const metadata = (await sharedMetadata(repo)).map(({ name }) => name);
  const needed = new Map<string, ObjectLock>();
  for (const entry of await listSnapshots(repo)) {
    const lock = entry.id === unlocked ? undefined : state.ledger.snapshotLock(entry.id, entry.snapshot.retention);
    if (!lock || lock.untilMs <= nowMs) continue;
    const { packs } = await snapshotNeeds(reader, index, entry.snapshot.tree);
    for (const name of [snapshotObject(entry.id), ...packs, ...metadata])
      needed.set(name, raise(needed.get(name), lock.untilMs, lock.mode));
  }
  return needed;
}

async function grantSurvivors(
  repo: Operation,
  state: RetentionState,
  request: string,
  locks: [string, ObjectLock][],
  clock: RetentionClock,
): Promise<number> {
  const entries = new Map<string, GrantEntry>();
  for (const [name, { untilMs, mode }] of locks) {
    const key = `${mode} ${untilMs}`;
    if (!entries.has(key)) entries.set(key, { mode, until: isoDate(untilMs), objects: [] });
    entries.get(key)!.objects.push(name);
  }
  const metadata = metadataLock(state, clock.retentionBaseMs());
  const keep = {
    untilMs: Math.max(metadata.untilMs, ...locks.map(([, lock]) => lock.untilMs)),
    mode: locks.some(([, lock]) => lock.mode === 'compliance') ? ('compliance' as const) : metadata.mode,
  };
  const value = { time: nowIso(repo.clock), snapshot: null, entries: [...entries.values()], regrantFor: request };
  const grant = await putRecord(repo, GRANTS, value, { retainUntilMs: keep.untilMs, mode: keep.mode });
  await repo.store.protect([grant], keep);
  return locks.length;
}
