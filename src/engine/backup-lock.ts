// The retention a backup gives what it stores and what it reuses: one grant record per backup, written
// before the snapshot so no snapshot is ever visible without its locks. New objects get the
// snapshot's date; reused packs are extended only when their date is earlier, to a date rounded up to
// the policy's step; metadata (config, keys, index, records) is kept as long as anything needs it.
import { AmberError } from '../core/errors.ts';
import type { RetentionMode } from '../storage/store.ts';
import type { Repository } from '../repo/repository.ts';
import { asPackId } from '../core/ids.ts';
import { METADATA_PREFIXES, PREFIX, packName } from '../repo/layout.ts';
import { sharedMetadata } from './snapshot-objects.ts';
import { CONDEMNS, GRANTS, loadRecords, putRecord, type GrantEntry } from '../repo/retention-records.ts';
import { retentionUnder, type RetentionRequest } from '../governance/policy.ts';
import { covers, roundUpMs, strongerMode } from '../governance/retention.ts';
import type { RetentionClock, RetentionState } from './retention-state.ts';

export interface LockPlan {
  mode: RetentionMode;
  retainMs: number;
  untilMs: number;
}

export function planLock(state: RetentionState, request: RetentionRequest, clock: RetentionClock): LockPlan {
  const { mode, retainMs } = retentionUnder(state.policy.settings, request);
  return { mode, retainMs, untilMs: clock.retentionBaseMs() + retainMs };
}

/** Packs a backup in `mode` may dedup against: none locked in the other mode (the index loader
 *  already keeps condemned packs out). */
export function dedupablePacks(state: RetentionState, mode: RetentionMode): (packId: string) => boolean {
  return (packId) => {
    const lock = state.ledger.lockOf(packName(asPackId(packId)));
    return lock === undefined || lock.mode === mode;
  };
}

/** Thrown when a prune condemned a pack this backup reused while it ran: the backup starts again. */
export class CondemnedDuringBackup extends Error {}

/** Re-reads condemn notices just before the commit; a reused pack named in a new one means retry. */
export async function checkNotCondemned(repo: Repository, state: RetentionState, reused: ReadonlySet<string>): Promise<void> {
  const fresh = await loadRecords(repo, CONDEMNS, []);
  for (const { value } of fresh) {
    const hit = value.objects.find(({ name }) => reused.has(name) && !state.condemned.has(name));
    if (hit) throw new CondemnedDuringBackup(`${hit.name} was condemned by a prune while this backup ran`);
  }
}

export interface LockCommit {
  grant: string;
  entries: GrantEntry[];
  /** What metadata (and so the audit entry for this operation) is kept until. */
  metadataLock: { untilMs: number; mode: RetentionMode };
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Adds the metadata entry (everything every reader needs, kept until the latest date anything is
 * retained, rounded up), writes the grant, and applies the store's own protection to every object
 * it names except `skip` (an object not stored yet: the caller protects it once it is).
 */
export async function writeGrant(repo: Repository, state: RetentionState, grant: {
  snapshotId: string; entries: GrantEntry[]; untilMs: number; mode: RetentionMode; nowMs: number; skip?: string;
}): Promise<LockCommit> {
  const { ledger, policy } = state;
  const metaUntilMs = roundUpMs(Math.max(grant.untilMs, ledger.maxUntilMs), policy.settings.extendStepMs);
  const metaMode = strongerMode(grant.mode, ledger.strongestMode)!;
  const metadata = (await sharedMetadata(repo, METADATA_PREFIXES)).map(({ name }) => name).filter((name) => !covers(ledger.lockOf(name), metaUntilMs, metaMode));
  const entries = metadata.length > 0 ? [...grant.entries, { mode: metaMode, until: iso(metaUntilMs), objects: metadata }] : grant.entries;
  const name = await putRecord(repo, GRANTS, { time: iso(grant.nowMs), snapshot: grant.snapshotId, entries }, { retainUntilMs: metaUntilMs, mode: metaMode });
  // Issued together: a store that locks in batches (fs: one chattr process) does it in one go.
  await Promise.all([
    ...entries.map(({ objects, until, mode }) => {
      // Every object again, covered or not: this is also how `lock extend` re-applies a lifted attribute.
      const names = objects.filter((object) => object !== grant.skip);
      return names.length > 0 ? repo.store.protect(names, { untilMs: Date.parse(until), mode }) : undefined;
    }),
    repo.store.protect([name], { untilMs: metaUntilMs, mode: metaMode }),
  ]);
  return { grant: name, entries, metadataLock: { untilMs: metaUntilMs, mode: metaMode } };
}

/** The backup's grant: new objects at the snapshot's date, reused packs extended in policy steps. */
export async function grantBackupLocks(repo: Repository, state: RetentionState, options: {
  plan: LockPlan;
  snapshotId: string;
  written: readonly string[];
  reused: ReadonlySet<string>;
  nowMs: number;
}): Promise<LockCommit> {
  const { plan, snapshotId } = options;
  const writtenSet = new Set(options.written);
  const newPacks = options.written.filter((name) => name.startsWith(PREFIX.data));
  const snapshot = `snapshots/${snapshotId}`;
  const entries: GrantEntry[] = [{ mode: plan.mode, until: iso(plan.untilMs), objects: [...newPacks, snapshot] }];
  const extend = [...options.reused].filter((name) => !writtenSet.has(name) && !covers(state.ledger.lockOf(name), plan.untilMs, plan.mode));
  if (extend.length > 0) entries.push({ mode: plan.mode, until: iso(roundUpMs(plan.untilMs, state.policy.settings.extendStepMs)), objects: extend.sort() });
  return writeGrant(repo, state, { snapshotId, entries, untilMs: plan.untilMs, mode: plan.mode, nowMs: options.nowMs, skip: snapshot });
}

export function lockError(error: unknown): never {
  if (error instanceof CondemnedDuringBackup) {
    throw new AmberError('STORAGE_TRANSIENT', `${error.message}; the backup read from standard input cannot be repeated`, {
      hint: 'run the backup again: it will store its own copy of what was condemned',
    });
  }
  throw error;
}
