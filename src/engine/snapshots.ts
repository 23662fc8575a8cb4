// Listing and finding snapshots. Only snapshots signed by a key with the authority are listed;
// the others are reported as problems.
import { AmberError, isAmberError } from '../core/errors.ts';
import type { KeyId, SnapshotId } from '../core/ids.ts';
import { decodeSnapshotPayload, type Snapshot } from '../repo/snapshot.ts';
import { readRecords, type RecordProblem } from '../repo/records.ts';
import type { Repository } from '../repo/repository.ts';
import { hashOfName, PREFIX, snapshotIdOf } from '../repo/layout.ts';
import { isForgotten, loadRetentionState, type RetentionState } from '../governance/retention-state.ts';
import type { Operation } from '../governance/operation.ts';

/**
 * The retention state when any forget mark exists: most repositories have none and skip loading it.
 * An operation's own state is used (it is read once per operation).
 */
async function stateForForgets(repo: Repository | Operation): Promise<RetentionState | undefined> {
  for await (const _mark of repo.store.list(PREFIX.forgets))
    return 'retentionState' in repo ? repo.retentionState() : loadRetentionState(repo);
  return undefined;
}

export interface SnapshotEntry {
  id: SnapshotId;
  snapshot: Snapshot;
  signer: string;
  signerKeyId: KeyId;
  /** When the store received the snapshot object, by the store's clock (where it says). */
  writtenMs?: number;
}

/** Snapshots an owner-signed forget mark names are left out unless `includeForgotten`. */
/** `state`: the retention state the caller has loaded already, so that it is not read again. */
export async function listSnapshots(
  repo: Repository,
  problems: RecordProblem[] = [],
  options: { includeForgotten?: boolean; state?: RetentionState } = {},
): Promise<SnapshotEntry[]> {
  if (repo.key.role !== 'full') {
    throw new AmberError(
      'WRITE_ONLY_KEY',
      `key ${repo.key.keyId.slice(0, 8)} is write-only: it can add backups but not list, read or restore them`,
      {
        hint: 'use a full-access key for snapshots, ls, dump, restore and verify',
      },
    );
  }
  const records = await readRecords(repo.store, 'snapshots', 'snapshot', repo.authority.signingKeyFor, problems);
  // Forged, premature and hand-dated marks forget nothing; they are reported (verify fails on them).
  const state = options.includeForgotten ? undefined : (options.state ?? (await stateForForgets(repo)));
  const entries: SnapshotEntry[] = [];
  for (const { name, record, writtenMs } of records) {
    try {
      const id = snapshotIdOf(name);
      if (id === undefined)
        throw new AmberError('OBJECT_CORRUPT', `${name} is not named as a snapshot is (snapshots/<64 hex digits>)`);
      const snapshot = decodeSnapshotPayload(record.payload, repo.epochs, name);
      if (state && isForgotten(state, id, snapshot.retention, problems, repo.clock.nowMs())) continue;
      entries.push({
        writtenMs,
        id,
        snapshot,
        signer: repo.authority.describe(record.signerKeyId),
        signerKeyId: record.signerKeyId,
      });
    } catch (error) {
      // One signed snapshot that does not open must not hide all the others.
      if (!isAmberError(error, 'OBJECT_CORRUPT')) throw error;
      problems.push({ name, problem: error.message, code: error.code });
    }
  }
  return entries.sort((a, b) =>
    a.snapshot.time < b.snapshot.time ? -1 : a.snapshot.time > b.snapshot.time ? 1 : a.id < b.id ? -1 : 1,
  );
}

/** Resolves `latest`, a full id or a unique prefix of at least 4 hex digits. */
export async function findSnapshot(repo: Repository, ref: string): Promise<SnapshotEntry> {
  const problems: RecordProblem[] = [];
  const all = await listSnapshots(repo, problems);
  // A damaged snapshot asked for by id is named as damaged, not reported as absent.
  const damaged =
    /^[0-9a-f]{4,64}$/.test(ref) && !all.some((entry) => entry.id.startsWith(ref))
      ? problems.find(({ name }) => hashOfName(name)?.startsWith(ref))
      : undefined;
  if (damaged) {
    throw new AmberError(
      damaged.code ?? 'OBJECT_CORRUPT',
      `snapshot ${ref} is damaged or unauthorised and was ignored: ${damaged.problem}`,
      {
        hint: 'run `amber verify` to see what else is affected; restore from another snapshot',
      },
    );
  }
  if (ref === 'latest') {
    const latest = all.at(-1);
    if (!latest && problems.length > 0) {
      throw new AmberError(
        'SNAPSHOT_NOT_FOUND',
        `${repo.store.location} has no readable snapshot; ${problems.length} damaged or unauthorised one(s) were ignored, such as ${problems[0].name}`,
        {
          hint: 'run `amber verify` to see what is damaged',
        },
      );
    }
    if (!latest)
      throw new AmberError('SNAPSHOT_NOT_FOUND', `${repo.store.location} has no snapshots yet`, {
        hint: 'run `amber backup` first',
      });
    return latest;
  }
  if (!/^[0-9a-f]{4,64}$/.test(ref)) {
    const short = /^[0-9a-f]{1,3}$/.test(ref);
    throw new AmberError(
      'SNAPSHOT_NOT_FOUND',
      short
        ? `"${ref}" is too short for a snapshot id: give at least 4 of its hex digits`
        : `"${ref}" is not a snapshot id`,
      { hint: 'use `latest` or an id (or a prefix of at least 4 hex digits) from `amber snapshots`' },
    );
  }
  const matches = all.filter((entry) => entry.id.startsWith(ref));
  if (matches.length > 1) {
    throw new AmberError('SNAPSHOT_AMBIGUOUS', `"${ref}" matches ${matches.length} snapshots`, {
      hint: 'give more digits of the id',
    });
  }
  if (matches.length === 0) {
    throw new AmberError('SNAPSHOT_NOT_FOUND', `no snapshot ${ref} in ${repo.store.location}`, {
      hint: 'list them with `amber snapshots`',
    });
  }
  return matches[0];
}
