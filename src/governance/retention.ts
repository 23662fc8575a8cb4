// Retention as the enforcer sees it: the date and mode that hold each object, folded from grant
// records (the fs store and the vault keep no dates of their own), and the rules for raising them.
// Dates only ever go up and modes only ever get stronger, whatever order the grants are read in.
import type { RetentionMode } from '../storage/store.ts';
import type { Retention } from '../repo/snapshot.ts';
import type { Grant, Loaded } from '../repo/retention-records.ts';
import { snapshotName } from '../repo/layout.ts';
import type { SnapshotId } from '../core/ids.ts';

export interface ObjectLock {
  untilMs: number;
  mode: RetentionMode;
}

export interface RetentionLedger {
  /** The highest date (and strongest mode) any grant gives the object; undefined when none does. */
  lockOf(name: string): ObjectLock | undefined;
  /** A snapshot's retention intent: its own field raised by every grant that names it. */
  snapshotLock(snapshotId: SnapshotId, own: Retention | null): ObjectLock | undefined;
  /** Every object name some grant names. */
  names(): Iterable<string>;
  /** The latest date anything is retained until (0 when nothing is). */
  readonly maxUntilMs: number;
  /** Compliance once any grant used it: metadata then needs compliance too. */
  readonly strongestMode: RetentionMode | undefined;
}

export const strongerMode = (a: RetentionMode | undefined, b: RetentionMode | undefined): RetentionMode | undefined =>
  a === 'compliance' || b === 'compliance' ? 'compliance' : (a ?? b);

export function raise(lock: ObjectLock | undefined, untilMs: number, mode: RetentionMode): ObjectLock {
  return { untilMs: Math.max(lock?.untilMs ?? 0, untilMs), mode: strongerMode(lock?.mode, mode)! };
}

/** Whether `lock` already holds at least until `untilMs` in at least `mode`. */
export function covers(lock: ObjectLock | undefined, untilMs: number, mode: RetentionMode): boolean {
  return lock !== undefined && lock.untilMs >= untilMs && (mode === 'governance' || lock.mode === 'compliance');
}

/** Extensions go to the next multiple of the step, so an object reused daily is touched about once a step. */
export function roundUpMs(ms: number, stepMs: number): number {
  return Math.ceil(ms / stepMs) * stepMs;
}

/**
 * When quorum-approved requests ended a snapshot's governance locks. `snapshotMs`: the earliest
 * approved end, which holds for the snapshot object itself at once. `objectsMs`: the earliest end of
 * those requests whose shared objects a full key has since granted again for the snapshots still
 * locked (`regrantFor` grants, storage-effects.ts); only then do the snapshot's packs and other
 * objects lose their governance dates too. Until then a later backup that reused one of those packs,
 * and wrote no grant of its own because this snapshot's lock covered it, is still covered.
 */
export interface GovernanceEnd {
  snapshotMs: number;
  objectsMs?: number;
}

/**
 * `governanceEnds` maps a snapshot to where quorum-approved requests ended its governance locks:
 * the governance entries of grants made for that snapshot hold only until then (compliance ones are
 * untouched — nothing shortens them); other snapshots' grants on the same objects still hold.
 */
export function foldGrants(
  grants: Loaded<Grant>[],
  governanceEnds: ReadonlyMap<SnapshotId, GovernanceEnd> = new Map(),
): RetentionLedger {
  const objects = new Map<string, ObjectLock>();
  const snapshots = new Map<SnapshotId, ObjectLock>();
  let maxUntilMs = 0;
  let strongest: RetentionMode | undefined;
  for (const { value } of grants) {
    const end = value.snapshot === null ? undefined : governanceEnds.get(value.snapshot);
    const snapshotObject = value.snapshot === null ? undefined : snapshotName(value.snapshot);
    for (const entry of value.entries) {
      const granted = Date.parse(entry.until);
      const capped = (endMs: number | undefined) =>
        entry.mode === 'governance' && endMs !== undefined ? Math.min(granted, endMs) : granted;
      strongest = strongerMode(strongest, entry.mode);
      for (const name of entry.objects) {
        const untilMs = capped(name === snapshotObject ? end?.snapshotMs : end?.objectsMs);
        maxUntilMs = Math.max(maxUntilMs, untilMs);
        objects.set(name, raise(objects.get(name), untilMs, entry.mode));
        if (name === snapshotObject)
          snapshots.set(value.snapshot!, raise(snapshots.get(value.snapshot!), untilMs, entry.mode));
      }
    }
  }
  return {
    lockOf: (name) => objects.get(name),
    names: () => objects.keys(),
    snapshotLock(snapshotId, own) {
      const granted = snapshots.get(snapshotId);
      if (!own) return granted;
      const endMs = governanceEnds.get(snapshotId)?.snapshotMs;
      const ownUntilMs =
        own.mode === 'governance' && endMs !== undefined
          ? Math.min(Date.parse(own.until), endMs)
          : Date.parse(own.until);
      return raise(granted, ownUntilMs, own.mode);
    },
    maxUntilMs,
    strongestMode: strongest,
  };
}
