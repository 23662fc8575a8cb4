// How far a copy is behind its primary, per source (host and paths): the newest snapshot at each
// site and the lag. The lag is how long the primary has held a recovery point the copy lacks: from
// the time of the oldest snapshot at the primary that the copy does not hold, to now (a time in the
// future counts as now); 0 when the copy holds them all. That is the window an attack on the primary
// could still lose. It is not measured from the copy's newest snapshot: the primary chooses the
// times, and one snapshot dated in the future would make every later one look older than it.
import type { SnapshotId } from '../core/ids.ts';
import type { Repository } from '../repo/repository.ts';
import { copiesFrom, matchesFilter, type CopyFilter } from './copy.ts';
import { listSnapshots, type SnapshotEntry } from './snapshots.ts';

export interface CopyLag {
  host: string;
  paths: string[];
  primary: { snapshot: SnapshotId; time: string } | null;
  /** The newest snapshot of this source at the copy, with the primary snapshot it is a copy of. */
  copy: { snapshot: SnapshotId; source: SnapshotId; time: string } | null;
  /** Snapshots of this source at the primary the copy does not hold (older ones that failed included). */
  missing: number;
  /** Seconds since the oldest snapshot the copy lacks; 0 when it lacks none; null when the primary no longer has this source. */
  lagSeconds: number | null;
}

export async function copyLag(options: {
  copy: Repository;
  primary: Repository;
  nowMs: number;
  filter?: CopyFilter;
}): Promise<CopyLag[]> {
  const { copy, primary, nowMs } = options;
  const filter = options.filter ?? {};
  const atPrimary = (await listSnapshots(primary)).filter((entry) => matchesFilter(entry, filter));
  const held = copiesFrom(await listSnapshots(copy, [], { includeForgotten: true }), primary.config.repositoryId);
  const groups = new Map<
    string,
    { host: string; paths: string[]; primary: SnapshotEntry[]; copies: SnapshotEntry[] }
  >();
  const groupOf = (host: string, paths: string[]) => {
    const key = JSON.stringify([host, [...paths].sort()]);
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { host, paths: [...paths].sort(), primary: [], copies: [] }));
    return group;
  };
  for (const entry of atPrimary) groupOf(entry.snapshot.host, entry.snapshot.paths).primary.push(entry);
  for (const [, entry] of held) {
    if (matchesFilter(entry, { ...filter, snapshots: undefined }))
      groupOf(entry.snapshot.host, entry.snapshot.paths).copies.push(entry);
  }
  const copiedIds = new Set(held.keys());
  const rows: CopyLag[] = [];
  for (const group of groups.values()) {
    // Lists are sorted oldest first by listSnapshots; copies by their source time, which they keep.
    group.copies.sort((a, b) => (a.snapshot.time < b.snapshot.time ? -1 : 1));
    const newestPrimary = group.primary.at(-1);
    const newestCopy = group.copies.at(-1);
    const uncopied = group.primary.filter((entry) => !copiedIds.has(entry.id));
    const oldestMs = Math.min(nowMs, ...uncopied.map((entry) => Date.parse(entry.snapshot.time) || nowMs));
    rows.push({
      host: group.host,
      paths: group.paths,
      primary: newestPrimary ? { snapshot: newestPrimary.id, time: newestPrimary.snapshot.time } : null,
      copy: newestCopy
        ? {
            snapshot: newestCopy.id,
            source: (newestCopy.snapshot.copiedFrom as { snapshot: SnapshotId }).snapshot,
            time: newestCopy.snapshot.time,
          }
        : null,
      missing: uncopied.length,
      lagSeconds: !newestPrimary ? null : uncopied.length === 0 ? 0 : Math.round((nowMs - oldestMs) / 1000),
    });
  }
  return rows.sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : a.paths.join() < b.paths.join() ? -1 : 1));
}
