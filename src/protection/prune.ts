// prune never deletes on sight. A run first deletes what earlier runs condemned, once the grace has
// passed and only if each object is still unreferenced, expired and unheld; then it condemns (in a
// signed notice) the packs no remaining snapshot needs and the objects of forgotten snapshots whose
// retention has ended. Backups never dedup against a condemned pack, and re-check notices before they
// commit, so a deletion can never take data a newer snapshot uses.
import { AmberError, isAmberError } from '../core/errors.ts';
import type { Operation } from '../governance/operation.ts';
import { loadIndex } from '../repo/index-loader.ts';
import { createBlobReader } from '../repo/blob-reader.ts';
import { PREFIX, snapshotIdOf, snapshotName } from '../repo/layout.ts';
import { CONDEMNS, putRecord } from '../repo/retention-records.ts';
import { appendAudit, missingKeys, readAuditLog, type NamedKey } from '../governance/audit-log.ts';
import { merkleRoot } from '../core/merkle.ts';
import type { SnapshotId, TreeId } from '../core/ids.ts';
import { isoDate } from '../core/units.ts';
import type { RecordProblem } from '../repo/records.ts';
import type { RetentionState } from '../governance/retention-state.ts';
import { listSnapshots } from '../engine/snapshots.ts';
import { collectPacks, type SnapshotNeeds } from '../engine/snapshot-objects.ts';

export interface PruneOptions {
  repo: Operation;
  /** How long a condemned object waits before a later prune may delete it. */
  graceMs: number;
  dryRun?: boolean;
  onDelete?: (name: string, sizeBytes: number) => void;
}

export interface PrunedObject {
  name: string;
  sizeBytes: number;
}

export interface PruneResult {
  dryRun: boolean;
  deleted: PrunedObject[];
  /** Condemned earlier but kept, with the reason (still referenced, retained, grace not over). */
  spared: (PrunedObject & { reason: string })[];
  condemned: PrunedObject[];
  notice: string | null;
  bytesFreed: number;
  bytesCondemned: number;
  /** Delete markers removed (S3): nothing Amber writes makes one, and they hide objects from other tools. */
  deleteMarkersRemoved: number;
  /** Snapshot objects no key with the authority wrote: no snapshot, so they keep nothing alive. */
  ignored: { name: string; problem: string }[];
}

export async function prune(options: PruneOptions): Promise<PruneResult> {
  const { repo } = options;
  if (repo.key.role !== 'full') {
    throw new AmberError(
      'WRITE_ONLY_KEY',
      'prune reads every snapshot and signs condemn notices, which needs a full-access key',
      {
        hint: 'run prune with the owner passphrase',
      },
    );
  }
  const nowMs = repo.retentionClock.deletionNowMs();
  const state = await repo.retentionState();
  const { packs: needed, ignored } = await neededPacks(repo, state);
  const stored = new Map<string, { sizeBytes: number; writtenMs?: number }>();
  for (const prefix of [PREFIX.data, PREFIX.snapshots]) {
    for await (const { name, sizeBytes, writtenMs } of repo.store.list(prefix))
      stored.set(name, { sizeBytes, writtenMs });
  }
  const live = new Set((await listSnapshots(repo, [], { state })).map(({ id }) => snapshotName(id)));
  const heldSnapshots = new Set(state.holds.map(({ value }) => snapshotName(value.snapshot)));

  /** Why an object must stay, or undefined when it may go. */
  const keepReason = (name: string): string | undefined => {
    if (needed.has(name)) return 'a snapshot needs it';
    if (live.has(name)) return 'the snapshot is not forgotten';
    if (heldSnapshots.has(name)) return 'a legal hold applies';
    const untilMs = retainedUntil(state, name, stored.get(name)?.writtenMs);
    if (untilMs > nowMs) return `retained until ${isoDate(untilMs)}`;
    return undefined;
  };

  const result: PruneResult = {
    dryRun: options.dryRun === true,
    deleted: [],
    spared: [],
    condemned: [],
    notice: null,
    bytesFreed: 0,
    bytesCondemned: 0,
    deleteMarkersRemoved: 0,
    ignored,
  };
  for (const { value } of state.condemns) {
    const dueMs = Date.parse(value.time) + value.graceMs;
    for (const { name, sizeBytes } of value.objects) {
      if (!stored.has(name) || result.deleted.some((done) => done.name === name)) continue;
      const reason = dueMs > nowMs ? `grace period until ${isoDate(dueMs)}` : keepReason(name);
      if (reason) {
        result.spared.push({ name, sizeBytes, reason });
        continue;
      }
      // The storage has the last word: an object it still retains stays, and maintenance goes on.
      const refused = options.dryRun ? undefined : await deleteObject(repo, name);
      if (refused) {
        result.spared.push({ name, sizeBytes, reason: refused });
        continue;
      }
      result.deleted.push({ name, sizeBytes });
      result.bytesFreed += sizeBytes;
      options.onDelete?.(name, sizeBytes);
    }
  }
  for (const [name, { sizeBytes }] of stored) {
    if (state.condemned.has(name) || keepReason(name)) continue;
    result.condemned.push({ name, sizeBytes });
    result.bytesCondemned += sizeBytes;
  }
  result.condemned.sort((a, b) => (a.name < b.name ? -1 : 1));
  if (!options.dryRun && result.condemned.length > 0) {
    result.notice = await putRecord(repo, CONDEMNS, {
      time: isoDate(nowMs),
      graceMs: options.graceMs,
      objects: result.condemned,
    });
  }
  if (!options.dryRun && repo.store.removeDeleteMarkers)
    result.deleteMarkersRemoved = await repo.store.removeDeleteMarkers('');
  if (!options.dryRun && (result.deleted.length > 0 || result.notice)) {
    await appendAudit(repo, {
      action: 'prune',
      target: result.notice ?? 'repository',
      details: {
        // The names are in the condemn notices; the entry proves which of them went.
        deleted: result.deleted.length,
        deletedRoot: merkleRoot(result.deleted.map(({ name }) => name)),
        bytesFreed: result.bytesFreed,
        condemned: result.condemned.length,
        bytesCondemned: result.bytesCondemned,
        graceMs: options.graceMs,
      },
    });
    repo.retentionStateChanged();
  }
  return result;
}

/**
 * The date an object is retained until: its grants, or — for an object no grant names, such as a
 * pack from a backup that crashed before its grant — the policy's default retention from when the
 * store received it (unknown: retained indefinitely).
 */
function retainedUntil(state: RetentionState, name: string, writtenMs: number | undefined): number {
  const lock = state.ledger.lockOf(name);
  if (lock) return lock.untilMs;
  return writtenMs === undefined ? Number.POSITIVE_INFINITY : writtenMs + state.policy.settings.defaultRetentionMs;
}

/**
 * Packs that any snapshot not forgotten needs. A snapshot whose trees cannot be read stops the prune,
 * and so does a snapshot object that is damaged or that a grant names (every backup writes its grant
 * first) but does not read, or whose signer is a key the audit log names but whose key file is
 * gone: what a real snapshot needs is unknown. An object no key with the authority wrote, that no
 * grant names and whose signer no record names, is no snapshot: it is returned as ignored.
 */
async function neededPacks(
  repo: Operation,
  state: RetentionState,
): Promise<{ packs: Set<string>; ignored: { name: string; problem: string }[] }> {
  const { index } = await loadIndex(repo);
  const reader = createBlobReader(repo, index);
  const needs: SnapshotNeeds = { packs: new Set(), unlocated: [] };
  const seen = new Set<TreeId>();
  const problems: RecordProblem[] = [];
  for (const { id, snapshot } of await listSnapshots(repo, problems, { state })) {
    try {
      await collectPacks(reader, index, snapshot.tree, seen, needs);
    } catch (error) {
      if (!isAmberError(error)) throw error;
      throw new AmberError(
        'VERIFY_FAILED',
        `prune stopped: the trees of snapshot ${id.slice(0, 8)} cannot be read (${error.message}), so what it needs is unknown`,
        {
          cause: error,
          hint: 'run `amber verify --read-data` and repair the repository before pruning',
        },
      );
    }
  }
  // A signer the repository's records name (a key.add entry, a writer's own certified entries) whose
  // key file is gone is a real writer: its snapshots are real backups we cannot read, not junk.
  const missing = await keysWithoutFile(repo);
  const missingSigner = (problem: RecordProblem) =>
    problem.signer === undefined ? undefined : missing.get(problem.signer);
  const hasGrant = (id: SnapshotId | undefined) => id !== undefined && state.snapshotGrants.has(id);
  const junk = (problem: RecordProblem) =>
    problem.code === 'SIGNATURE_INVALID' && !missingSigner(problem) && !hasGrant(snapshotIdOf(problem.name));
  // A forget mark that forgets nothing (its snapshot stays, and is among those walked above) hides
  // nothing from prune; verify reports it.
  const markOnly = (problem: RecordProblem) => problem.name.startsWith(PREFIX.forgets);
  const blocking = problems.filter((problem) => !junk(problem) && !markOnly(problem));
  const lost = blocking.map(missingSigner).find((key) => key !== undefined);
  if (lost) {
    throw new AmberError(
      'VERIFY_FAILED',
      `prune stopped: snapshot objects such as ${blocking.find((problem) => missingSigner(problem) === lost)!.name} are signed by key ${lost.keyId.slice(0, 8)}, ` +
        `whose key file${lost.keyFile ? ` ${lost.keyFile}` : ''} is missing although ${lost.namedBy} names the key, so what they need is unknown`,
      {
        hint: 'put the key file back from an isolated copy of this repository (the same bytes: its name is their hash), check with `amber verify`, then prune',
      },
    );
  }
  if (blocking.length > 0) {
    throw new AmberError(
      'VERIFY_FAILED',
      `prune stopped: ${blocking.length} snapshot object(s) are damaged, or named by a grant and unreadable, so what they need is unknown, such as ${blocking[0].name}: ${blocking[0].problem}`,
      {
        hint: 'run `amber verify` to see them; put damaged objects back from an isolated copy, then prune',
      },
    );
  }
  return { packs: needs.packs, ignored: problems.filter(junk).map(({ name, problem }) => ({ name, problem })) };
}

/** Keys the audit log names whose key file is gone. A vault token that may not read the log goes without. */
async function keysWithoutFile(repo: Operation): Promise<Map<string, NamedKey>> {
  const log = await readAuditLog({ ...repo, recordCache: undefined }).catch((error) => {
    if (isAmberError(error, 'ROLE_FORBIDDEN')) return undefined;
    throw error;
  });
  return new Map((log ? missingKeys(repo, log) : []).map((key) => [key.keyId as string, key]));
}

/** Deletes the object; the storage's reason when it refuses because the object is still retained. */
async function deleteObject(repo: Operation, name: string): Promise<string | undefined> {
  try {
    await repo.store.deleteExpired(name);
  } catch (error) {
    if (isAmberError(error, 'RETENTION_ACTIVE')) return `the storage still retains it (${error.message})`;
    if (!isAmberError(error, 'OBJECT_NOT_FOUND')) throw error;
  }
  return undefined;
}
