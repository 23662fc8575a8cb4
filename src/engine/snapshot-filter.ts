// Which snapshots a command is about, as restic's --host, --tag and --path say it: each option
// narrows (a snapshot must match every kind given); within a kind any value matches, and a --tag
// value "a,b" needs both tags.
import type { Snapshot } from '../repo/snapshot.ts';

export interface SnapshotFilter {
  hosts?: string[];
  /** Each entry a comma-separated set that must all be present; any entry may match. */
  tags?: string[];
  paths?: string[];
}

export function matchesFilter(snapshot: Snapshot, filter: SnapshotFilter): boolean {
  if (filter.hosts?.length && !filter.hosts.includes(snapshot.host)) return false;
  if (filter.tags?.length) {
    const has = new Set(snapshot.tags);
    const wanted = filter.tags.map((set) => set.split(',').filter(Boolean));
    if (!wanted.some((set) => set.every((tag) => has.has(tag)))) return false;
  }
  if (filter.paths?.length && !filter.paths.some((path) => snapshot.paths.includes(path))) return false;
  return true;
}
