// Listing and finding snapshots. Only snapshots signed by a key with the authority are listed;
// the others are reported as problems.
import { AmberError } from '../core/errors.ts';
import { asSnapshotId, type SnapshotId } from '../core/ids.ts';
import { decodeSnapshotPayload, type Snapshot } from '../repo/snapshot.ts';
import { readRecords, type RecordProblem } from '../repo/records.ts';
import type { Repository } from '../repo/repository.ts';
import { hashOfName } from '../repo/layout.ts';

export interface SnapshotEntry {
  id: SnapshotId;
  snapshot: Snapshot;
  signer: string;
}

export async function listSnapshots(repo: Repository, problems: RecordProblem[] = []): Promise<SnapshotEntry[]> {
  const records = await readRecords(repo.store, 'snapshots', 'snapshot', repo.authority.signingKeyFor, problems);
  const entries = records.map(({ name, record }) => ({
    id: asSnapshotId(hashOfName(name)!),
    snapshot: decodeSnapshotPayload(record.payload, repo.epochs, name),
    signer: repo.authority.describe(record.signerKeyId),
  }));
  return entries.sort((a, b) => (a.snapshot.time < b.snapshot.time ? -1 : a.snapshot.time > b.snapshot.time ? 1 : a.id < b.id ? -1 : 1));
}

/** Resolves `latest`, a full id or a unique prefix of at least 4 hex digits. */
export async function findSnapshot(repo: Repository, ref: string): Promise<SnapshotEntry> {
  const all = await listSnapshots(repo);
  if (ref === 'latest') {
    const latest = all.at(-1);
    if (!latest) throw new AmberError('SNAPSHOT_NOT_FOUND', `${repo.store.location} has no snapshots yet`, { hint: 'run `amber backup` first' });
    return latest;
  }
  if (!/^[0-9a-f]{4,64}$/.test(ref)) {
    throw new AmberError('SNAPSHOT_NOT_FOUND', `"${ref}" is not a snapshot id`, { hint: 'use `latest` or an id (or prefix) from `amber snapshots`' });
  }
  const matches = all.filter((entry) => entry.id.startsWith(ref));
  if (matches.length > 1) {
    throw new AmberError('SNAPSHOT_AMBIGUOUS', `"${ref}" matches ${matches.length} snapshots`, { hint: 'give more digits of the id' });
  }
  if (matches.length === 0) {
    throw new AmberError('SNAPSHOT_NOT_FOUND', `no snapshot ${ref} in ${repo.store.location}`, { hint: 'list them with `amber snapshots`' });
  }
  return matches[0];
}
