// The coverage proof of snapshot locks: the retention every object a snapshot needs actually has in
// the store and its grant records, not what the snapshot claims. Read-only; `lock status` and verify share it.
import { isAmberError } from '../core/errors.ts';
import { isoDate } from '../core/units.ts';
import type { SnapshotId, TreeId } from '../core/ids.ts';
import type { Enforcement, ObjectProtection, RetentionMode } from '../storage/store.ts';
import type { Repository } from '../repo/repository.ts';
import type { Operation } from '../governance/operation.ts';
import { findAllLocations, loadIndex } from '../repo/index-loader.ts';
import { packName } from '../repo/layout.ts';
import { createBlobReader } from '../repo/blob-reader.ts';
import { approverSet, isLocked, type Policy } from '../governance/policy.ts';
import { covers, type ObjectLock } from '../governance/retention.ts';
import { finishProtection } from './backup-lock.ts';
import type { RetentionState } from '../governance/retention-state.ts';
import { findSnapshot, listSnapshots, type SnapshotEntry } from './snapshots.ts';
import { collectPacks, sharedMetadata, snapshotNeeds, snapshotObject, type SnapshotNeeds } from './snapshot-objects.ts';

export interface ObjectGap {
  name: string;
  problem: string;
}

export interface LockStatus {
  snapshotId: SnapshotId;
  time: string;
  host: string;
  /** The snapshot's lock: its own field raised by extensions. */
  lock: { mode: RetentionMode; until: string } | null;
  /** Every object it needs is retained at least until the lock's date, in its mode. */
  covered: boolean;
  /** The earliest date any object it needs could be deleted; null when one could be deleted now. */
  earliestDeletable: string | null;
  objects: number;
  /** Objects the store itself refuses to change or remove (fs: immutable attribute). */
  lockedByStore: number;
  holds: { reason: string; time: string }[];
  /** Who can end the lock before its date, besides whoever can defeat the enforcer. */
  liftableBy: string;
  enforcement: Enforcement;
  gaps: ObjectGap[];
}

/** Who could end a lock of `mode` early under `policy` (judged at `nowMs`). */
export function liftableBy(mode: RetentionMode | undefined, policy: Policy, nowMs: number): string {
  if (mode === undefined) return 'no lock';
  if (mode === 'compliance') return 'nobody (compliance)';
  const { approvers, quorum } = approverSet(policy.settings);
  if (!isLocked(policy, nowMs))
    return 'the key holder (until the policy is locked, the owner can register approvers of their own)';
  if (quorum === 0) return 'nobody (the locked policy has no approver quorum)';
  return `a quorum of ${quorum} of ${approvers.length} approvers (amber request unlock)`;
}

/** Reads the actual retention of everything each snapshot needs and says whether it covers the lock. */
export async function lockStatus(options: {
  repo: Operation;
  snapshot?: string;
  state?: RetentionState;
}): Promise<LockStatus[]> {
  const { repo } = options;
  const policyNowMs = repo.retentionClock.retentionBaseMs();
  const state = options.state ?? (await repo.retentionState());
  const entries: SnapshotEntry[] = options.snapshot
    ? [await findSnapshot(repo, options.snapshot)]
    : await listSnapshots(repo, [], { state });
  const { index } = await loadIndex(repo);
  const reader = createBlobReader(repo, index);
  const metadata = await sharedMetadata(repo);
  const needsOf = new Map<
    SnapshotId,
    { objects: string[]; unlocated: string[]; blobsByPack?: Map<string, string[]> }
  >();
  const all = new Set<string>(metadata.map(({ name }) => name));
  for (const entry of entries) {
    let needs: { packs: Set<string>; unlocated: string[]; blobsByPack?: Map<string, string[]> };
    try {
      needs = await snapshotNeeds(reader, index, entry.snapshot.tree, true);
    } catch (error) {
      // A snapshot whose trees do not read cannot prove coverage; verify reports the damage itself.
      if (!isAmberError(error)) throw error;
      needs = { packs: new Set(), unlocated: [`its trees cannot be read (${error.message})`] };
    }
    const objects = [snapshotObject(entry.id), ...needs.packs];
    needsOf.set(entry.id, { objects, unlocated: needs.unlocated, blobsByPack: needs.blobsByPack });
    for (const name of objects) all.add(name);
  }
  const protection = new Map<string, ObjectProtection>();
  const names = [...all];
  for (const [i, found] of (await protectionOf(repo, names)).entries()) if (found) protection.set(names[i], found);
  const enforcement = repo.store.enforcement();
  const storeLocks = [...protection.values()].some(({ locked }) => locked);
  const statuses: LockStatus[] = [];
  for (const entry of entries) {
    const lock = state.ledger.snapshotLock(entry.id, entry.snapshot.retention);
    const { objects, unlocated, blobsByPack } = needsOf.get(entry.id)!;
    const gaps: ObjectGap[] = unlocated.map((id) =>
      /^[0-9a-f]{64}$/.test(id)
        ? { name: `blob ${id.slice(0, 16)}`, problem: 'no index entry locates it' }
        : { name: snapshotObject(entry.id), problem: id },
    );
    let earliest = Number.POSITIVE_INFINITY;
    let lockedByStore = 0;
    // Metadata written after the snapshot (a later key, epoch or index object) is not needed by it.
    const committedMs = entry.writtenMs ?? Number.POSITIVE_INFINITY;
    const neededMetadata = metadata
      .filter(({ writtenMs }) => writtenMs === undefined || writtenMs <= committedMs)
      .map(({ name }) => name);
    for (const name of [...objects, ...neededMetadata]) {
      const found = protection.get(name);
      if (found?.locked) lockedByStore += 1;
      const held = found && heldLock(state, name, found);
      earliest = Math.min(earliest, held?.untilMs ?? Number.NEGATIVE_INFINITY);
      const gap = await gapOf(repo, state, { name, found, lock, storeLocks, blobs: () => blobsByPack?.get(name) });
      if (gap) gaps.push(gap);
    }
    statuses.push({
      snapshotId: entry.id,
      time: entry.snapshot.time,
      host: entry.snapshot.host,
      lock: lock ? { mode: lock.mode, until: isoDate(lock.untilMs) } : null,
      covered: gaps.length === 0,
      earliestDeletable: Number.isFinite(earliest) ? isoDate(earliest) : null,
      objects: objects.length + neededMetadata.length,
      lockedByStore,
      holds: state.holds
        .filter(({ value }) => value.snapshot === entry.id)
        .map(({ value }) => ({ reason: value.reason, time: value.time })),
      liftableBy: liftableBy(lock?.mode, state.policy, policyNowMs),
      enforcement,
      gaps,
    });
  }
  return statuses;
}

/** A store that keeps dates is the enforcer; otherwise the signed grants are. */
function heldLock(state: RetentionState, name: string, found: ObjectProtection): ObjectLock | undefined {
  return found.untilMs !== undefined
    ? { untilMs: found.untilMs, mode: found.mode ?? 'governance' }
    : state.ledger.lockOf(name);
}

/** What is wrong with one object a snapshot under `lock` needs, if anything. */
async function gapOf(
  repo: Repository,
  state: RetentionState,
  object: {
    name: string;
    found: ObjectProtection | undefined;
    lock: ObjectLock | undefined;
    storeLocks: boolean;
    blobs: () => string[] | undefined | Promise<string[] | undefined>;
  },
): Promise<ObjectGap | undefined> {
  const { name, found, lock } = object;
  if (!found) return { name, problem: 'missing from the store' };
  const held = heldLock(state, name, found);
  if (
    lock &&
    !covers(held, lock.untilMs, lock.mode) &&
    !(await otherCopiesCover(repo, state, await object.blobs(), lock))
  ) {
    return {
      name,
      problem: held
        ? `retained only until ${isoDate(held.untilMs)} (${held.mode}), the lock needs ${isoDate(lock.untilMs)} (${lock.mode})`
        : 'has no retention at all',
    };
  }
  if (object.storeLocks && !found.locked) {
    // verify and the next backup set it again where they may; this says what to run where they may not.
    return {
      name,
      problem:
        'is not immutable although the store makes objects so (a run killed before protecting it, or the attribute was lifted): run `amber verify` as root to finish its protection',
    };
  }
  return undefined;
}

export interface SnapshotGap {
  snapshotId: SnapshotId;
  lock: { mode: RetentionMode; until: string };
  gap: ObjectGap;
}

/**
 * The gaps alone, for verify: snapshots are taken from the strongest and latest lock down, and each
 * tree is read once per lock mode, by the first snapshot that reaches it — the one whose lock its
 * packs must cover longest. A gap is blamed on that snapshot. Blobs no index locates are verify's
 * structure check's to report.
 */
export async function lockGaps(
  repo: Operation,
  state: RetentionState,
  graph?: TreeGraph,
  reprotected: string[] = [],
): Promise<SnapshotGap[]> {
  const { index } = await loadIndex(repo);
  const reader = createBlobReader(repo, index);
  const collect = graph
    ? async (tree: TreeId, seen: Set<TreeId>, needs: SnapshotNeeds) => walkGraph(graph, tree, seen, needs)
    : (tree: TreeId, seen: Set<TreeId>, needs: SnapshotNeeds) => collectPacks(reader, index, tree, seen, needs);
  const metadata = await sharedMetadata(repo);
  const locked = (await listSnapshots(repo))
    .map((entry) => ({ entry, lock: state.ledger.snapshotLock(entry.id, entry.snapshot.retention) }))
    .filter((item): item is { entry: SnapshotEntry; lock: ObjectLock } => item.lock !== undefined)
    .sort((a, b) =>
      a.lock.mode === b.lock.mode ? b.lock.untilMs - a.lock.untilMs : a.lock.mode === 'compliance' ? -1 : 1,
    );
  const seen = { compliance: new Set<TreeId>(), governance: new Set<TreeId>() };
  const checkedMetadata = { compliance: new Set<string>(), governance: new Set<string>() };
  const duties: { name: string; item: (typeof locked)[number] }[] = [];
  for (const item of locked) {
    const needs: SnapshotNeeds = { packs: new Set(), unlocated: [] };
    try {
      await collect(item.entry.snapshot.tree, seen[item.lock.mode], needs);
    } catch (error) {
      if (!isAmberError(error)) throw error; // damaged trees: the structure check reports them
    }
    const committedMs = item.entry.writtenMs ?? Number.POSITIVE_INFINITY;
    const newMetadata = metadata.filter(
      ({ name, writtenMs }) =>
        (writtenMs === undefined || writtenMs <= committedMs) && !checkedMetadata[item.lock.mode].has(name),
    );
    for (const { name } of newMetadata) checkedMetadata[item.lock.mode].add(name);
    for (const name of [snapshotObject(item.entry.id), ...needs.packs, ...newMetadata.map(({ name: n }) => n)])
      duties.push({ name, item });
  }
  const names = [...new Set(duties.map(({ name }) => name))];
  const protection = new Map<string, ObjectProtection>();
  for (const [i, found] of (await protectionOf(repo, names)).entries()) if (found) protection.set(names[i], found);
  const storeLocks = [...protection.values()].some(({ locked: isLocked }) => isLocked);
  // Whole objects left unprotected (an interrupted run, a lifted attribute) are protected again
  // where this process may; only those it cannot protect are gaps. Reported by the caller.
  const unlocked =
    storeLocks && repo.store.enforcement().enforcer === 'client'
      ? duties
          .filter(({ name }) => protection.get(name)?.locked === false)
          .map(({ name, item }) => ({ name, fallback: item.lock }))
      : [];
  // Whose lock has ended is judged by the time a clock moved forward cannot raise.
  for (const name of await finishProtection(repo, state, unlocked, repo.retentionClock.deletionNowMs())) {
    if (protection.get(name)?.locked === false) reprotected.push(name);
    protection.set(name, { ...protection.get(name)!, locked: true });
  }
  const blobsOf = new Map<SnapshotId, Promise<Map<string, string[]> | undefined>>();
  const gaps: SnapshotGap[] = [];
  for (const { name, item } of duties) {
    const blobs = async () => {
      // Only for a gap: which blobs of this snapshot led to the pack (their other copies may cover them).
      if (!blobsOf.has(item.entry.id))
        blobsOf.set(
          item.entry.id,
          snapshotNeeds(reader, index, item.entry.snapshot.tree, true).then(
            (needs) => needs.blobsByPack,
            () => undefined,
          ),
        );
      return (await blobsOf.get(item.entry.id))?.get(name);
    };
    const gap = await gapOf(repo, state, { name, found: protection.get(name), lock: item.lock, storeLocks, blobs });
    if (gap)
      gaps.push({ snapshotId: item.entry.id, lock: { mode: item.lock.mode, until: isoDate(item.lock.untilMs) }, gap });
  }
  return gaps;
}

/** Trees already read (by verify's structure check): each tree's own pack and its chunks' packs, and its subtrees. */
export type TreeGraph = Map<TreeId, { packs: Set<string>; subtrees: TreeId[] }>;

/** collectPacks over a graph in memory; a tree the graph lacks (unreadable) adds nothing. */
function walkGraph(graph: TreeGraph, root: TreeId, seen: Set<TreeId>, needs: SnapshotNeeds): void {
  const stack = [root];
  while (stack.length > 0) {
    const tree = stack.pop()!;
    if (seen.has(tree)) continue;
    seen.add(tree);
    const node = graph.get(tree);
    if (!node) continue;
    for (const pack of node.packs) needs.packs.add(pack);
    stack.push(...node.subtrees);
  }
}

/**
 * Whether every blob that led to an uncovered pack also has a copy in a pack that is covered: two
 * writers may each store the same blob, and the index keeps only one of the copies. Slow (it reads
 * every index object per blob), so it runs only for a gap.
 */
async function otherCopiesCover(
  repo: Repository,
  state: RetentionState,
  blobs: string[] | undefined,
  lock: ObjectLock,
): Promise<boolean> {
  if (!blobs || blobs.length === 0) return false;
  for (const id of blobs) {
    const copies = await findAllLocations(repo, Buffer.from(id, 'hex'));
    if (!copies.some(({ packId }) => covers(state.ledger.lockOf(packName(packId)), lock.untilMs, lock.mode)))
      return false;
  }
  return true;
}

/** The store's protection for each name; a missing object yields undefined instead of failing the whole batch. */
async function protectionOf(repo: Repository, names: string[]): Promise<(ObjectProtection | undefined)[]> {
  try {
    return await repo.store.protection(names);
  } catch {
    const result: (ObjectProtection | undefined)[] = [];
    for (const name of names)
      result.push(
        await repo.store.protection([name]).then(
          ([one]) => one,
          () => undefined,
        ),
      );
    return result;
  }
}
