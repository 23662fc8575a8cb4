// The retention a backup gives what it stores and what it reuses: one grant record per backup, written
// before the snapshot so no snapshot is ever visible without its locks. New objects get the
// snapshot's date; reused packs are extended only when their date is earlier, to a date rounded up to
// the policy's step; metadata (config, keys, index, records) is kept as long as anything needs it.
import { AmberError, isAmberError } from '../core/errors.ts';
import type { RetentionMode, Store } from '../storage/store.ts';
import type { Repository } from '../repo/repository.ts';
import type { PackId, SnapshotId } from '../core/ids.ts';
import { isoDate } from '../core/units.ts';
import { METADATA_PREFIXES, PREFIX, packName, snapshotName } from '../repo/layout.ts';
import { sharedMetadata } from './snapshot-objects.ts';
import { CONDEMNS, GRANTS, loadRecords, putRecord, type GrantEntry } from '../repo/retention-records.ts';
import { retentionUnder, type RetentionRequest } from '../governance/policy.ts';
import { covers, roundUpMs, strongerMode, type ObjectLock } from '../governance/retention.ts';
import type { RetentionClock, RetentionState } from '../governance/retention-state.ts';

export interface LockPlan {
  mode: RetentionMode;
  retainMs: number;
  untilMs: number;
}

export function planLock(state: RetentionState, request: RetentionRequest, clock: RetentionClock): LockPlan {
  const { mode, retainMs } = retentionUnder(state.policy.settings, request);
  return { mode, retainMs, untilMs: clock.retentionBaseMs() + retainMs };
}

/**
 * Packs a backup in `mode` may dedup against (the index loader already keeps condemned packs out).
 * Every object a snapshot needs must end up locked at least as long and as strongly as the snapshot:
 * - a governance snapshot may rely on any pack: a compliance pack is stronger already, and its grant
 *   extends the date (a compliance lock is extended in compliance, whatever the request's mode);
 * - a compliance snapshot may rely on a governance pack only where its grant can raise that pack to
 *   compliance. Stores whose dates are the grant records themselves (`client` enforcement: fs, memory)
 *   fold every grant in its strongest mode, so they can. S3 cannot without the bypass permission,
 *   which backup credentials must not hold (the pack would stay governance: a lock gap), and a vault
 *   client cannot tell what its server keeps objects on; there only compliance packs are reused, and
 *   the backup stores its own compliance copy of anything else.
 */
export function dedupablePacks(
  state: RetentionState,
  mode: RetentionMode,
  store: Pick<Store, 'enforcement'>,
): (packId: PackId) => boolean {
  if (mode === 'governance' || raisesToCompliance(store)) return () => true;
  return (packId) => state.ledger.lockOf(packName(packId))?.mode === 'compliance';
}

/** Whether a compliance grant raises an object held in governance to compliance on this store. */
export function raisesToCompliance(store: Pick<Store, 'enforcement'>): boolean {
  return store.enforcement().enforcer === 'client';
}

/** Thrown when a prune condemned a pack this backup reused while it ran: the backup starts again. */
export class CondemnedDuringBackup extends Error {}

/** Re-reads condemn notices just before the commit; a reused pack named in a new one means retry. */
export async function checkNotCondemned(
  repo: Repository,
  state: RetentionState,
  reused: ReadonlySet<string>,
): Promise<void> {
  const fresh = await loadRecords(repo, CONDEMNS, []);
  for (const { value } of fresh) {
    const hit = value.objects.find(({ name }) => reused.has(name) && !state.condemned.has(name));
    if (hit) throw new CondemnedDuringBackup(`${hit.name} was condemned by a prune while this backup ran`);
  }
}

/**
 * Finishes the protection of objects the store reports unprotected although the grants retain them
 * (fs: not immutable). A run killed between writing an object and protecting it leaves that, and so
 * does root lifting the attribute by hand; either way the object is whole (its name is its hash), so
 * setting the protection again is the repair. `fallback` is the lock for an object whose own grants
 * have ended (a snapshot still locked needs it). Returns the names that are protected now; where the
 * process may not set the attribute (not root) nothing changes and the caller reports the gap.
 */
export async function finishProtection(
  repo: Repository,
  state: RetentionState,
  unprotected: Iterable<{ name: string; fallback?: ObjectLock }>,
  nowMs: number,
): Promise<string[]> {
  const groups = new Map<string, { lock: ObjectLock; names: string[] }>();
  for (const { name, fallback } of unprotected) {
    const own = state.ledger.lockOf(name);
    const lock = own && own.untilMs > nowMs ? own : fallback;
    if (!lock || lock.untilMs <= nowMs) continue;
    const key = `${lock.mode} ${lock.untilMs}`;
    if (!groups.has(key)) groups.set(key, { lock, names: [] });
    groups.get(key)!.names.push(name);
  }
  const names = [...groups.values()].flatMap((group) => group.names);
  if (names.length === 0) return [];
  try {
    await Promise.all([...groups.values()].map(({ lock, names: some }) => repo.store.protect(some, lock)));
    return (await repo.store.protection(names)).filter(({ locked }) => locked).map(({ name }) => name);
  } catch (error) {
    // A store or token that may not protect (a vault reader) leaves the gaps to be reported.
    if (isAmberError(error, 'ROLE_FORBIDDEN') || isAmberError(error, 'STORAGE_ACCESS_DENIED')) return [];
    throw error;
  }
}

/** Of `names` (all stored), those a store that locks objects itself (fs) reports unlocked; none elsewhere. */
export async function unlockedObjects(repo: Repository, names: string[]): Promise<string[]> {
  // Stores that keep dates (S3, the vault) set them with the put itself: a crash cannot leave a gap.
  if (names.length === 0 || repo.store.enforcement().enforcer !== 'client') return [];
  try {
    return (await repo.store.protection(names)).filter(({ locked }) => !locked).map(({ name }) => name);
  } catch (error) {
    // A parent a write-only key remembers but the store no longer holds: no repair now; verify reports it.
    if (isAmberError(error, 'OBJECT_NOT_FOUND')) return [];
    throw error;
  }
}

export interface LockCommit {
  grant: string;
  /** Objects this backup relies on that an interrupted run had left unprotected, protected now. */
  reprotected: string[];
  entries: GrantEntry[];
  /** What metadata (and so the audit entry for this operation) is kept until. */
  metadataLock: { untilMs: number; mode: RetentionMode };
}

/**
 * Adds the metadata entry (everything every reader needs, kept until the latest date anything is
 * retained, rounded up), writes the grant, and applies the store's own protection to every object
 * it names except `skip` (an object not stored yet: the caller protects it once it is).
 */
export async function writeGrant(
  repo: Repository,
  state: RetentionState,
  grant: {
    snapshotId: SnapshotId | null;
    entries: GrantEntry[];
    untilMs: number;
    mode: RetentionMode;
    nowMs: number;
    skip?: string;
  },
): Promise<LockCommit> {
  const { ledger, policy } = state;
  const metaUntilMs = roundUpMs(Math.max(grant.untilMs, ledger.maxUntilMs), policy.settings.extendStepMs);
  const metaMode = strongerMode(grant.mode, ledger.strongestMode)!;
  const metadata = (await sharedMetadata(repo, METADATA_PREFIXES))
    .map(({ name }) => name)
    .filter((name) => !covers(ledger.lockOf(name), metaUntilMs, metaMode));
  const entries =
    metadata.length > 0
      ? [...grant.entries, { mode: metaMode, until: isoDate(metaUntilMs), objects: metadata }]
      : grant.entries;
  const name = await putRecord(
    repo,
    GRANTS,
    { time: isoDate(grant.nowMs), snapshot: grant.snapshotId, entries },
    { retainUntilMs: metaUntilMs, mode: metaMode },
  );
  // Issued together: a store that locks in batches (fs: one chattr process) does it in one go.
  await Promise.all([
    ...entries.map(({ objects, until, mode }) => {
      // Every object again, covered or not: this is also how `lock extend` re-applies a lifted attribute.
      const names = objects.filter((object) => object !== grant.skip);
      return names.length > 0 ? repo.store.protect(names, { untilMs: Date.parse(until), mode }) : undefined;
    }),
    repo.store.protect([name], { untilMs: metaUntilMs, mode: metaMode }),
  ]);
  return { grant: name, entries, metadataLock: { untilMs: metaUntilMs, mode: metaMode }, reprotected: [] };
}

/** The backup's grant: new objects at the snapshot's date, reused packs extended in policy steps. */
export async function grantBackupLocks(
  repo: Repository,
  state: RetentionState,
  options: {
    plan: LockPlan;
    snapshotId: SnapshotId;
    written: readonly string[];
    reused: ReadonlySet<string>;
    /** The parent snapshot's object, which the backup also relies on. */
    parent?: string;
    nowMs: number;
  },
): Promise<LockCommit> {
  const { plan, snapshotId } = options;
  const writtenSet = new Set(options.written);
  const newPacks = options.written.filter((name) => name.startsWith(PREFIX.data));
  const snapshot = snapshotName(snapshotId);
  const entries: GrantEntry[] = [{ mode: plan.mode, until: isoDate(plan.untilMs), objects: [...newPacks, snapshot] }];
  const extend = [...options.reused].filter(
    (name) => !writtenSet.has(name) && !covers(state.ledger.lockOf(name), plan.untilMs, plan.mode),
  );
  if (extend.length > 0)
    entries.push({
      mode: plan.mode,
      until: isoDate(roundUpMs(plan.untilMs, state.policy.settings.extendStepMs)),
      objects: extend.sort(),
    });
  // What this backup relies on and did not write: a backup killed after storing them but before
  // protecting them left them open, and covered packs are not even in this grant. Counted before the
  // grant's own protect, so that the backup can say what it finished.
  const relied = [...options.reused].filter((name) => !writtenSet.has(name));
  if (options.parent) relied.push(options.parent);
  const unlocked = await unlockedObjects(repo, relied);
  const commit = await writeGrant(repo, state, {
    snapshotId,
    entries,
    untilMs: plan.untilMs,
    mode: plan.mode,
    nowMs: options.nowMs,
    skip: snapshot,
  });
  const fallback = { untilMs: plan.untilMs, mode: plan.mode };
  return {
    ...commit,
    reprotected: await finishProtection(
      repo,
      state,
      unlocked.map((name) => ({ name, fallback })),
      options.nowMs,
    ),
  };
}

export function lockError(error: unknown): never {
  if (error instanceof CondemnedDuringBackup) {
    throw new AmberError(
      'STORAGE_TRANSIENT',
      `${error.message}; the backup read from standard input cannot be repeated`,
      {
        hint: 'run the backup again: it will store its own copy of what was condemned',
      },
    );
  }
  throw error;
}
