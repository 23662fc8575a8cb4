// Snapshots: what was backed up, when, by whom, and under which retention. The JSON body is sealed
// to the current epoch's public key (a write-only key can write but never read snapshots) and the
// object is signed by its writer.
//   payload = epoch u32 ‖ sealed box(JSON)
import { AmberError } from '../core/errors.ts';
import { isHexId, type TreeId } from '../core/ids.ts';
import { openWithPrivateKey, sealToPublicKey } from '../crypto/index.ts';
import { canOpenEpoch, openUnderEpoch, type EpochKey } from './epochs.ts';
import { encodeSignedRecord, jsonBytes, type Signer } from './signed-record.ts';

export interface SnapshotSummary {
  filesNew: number;
  filesChanged: number;
  filesUnchanged: number;
  dirs: number;
  filesSkipped: number;
  bytesRead: number;
  bytesAdded: number;
  bytesStored: number;
  blobsAdded: number;
  durationMs: number;
}

/** The summary a backup starts from, every count zero. */
export function emptySummary(): SnapshotSummary {
  return {
    filesNew: 0,
    filesChanged: 0,
    filesUnchanged: 0,
    dirs: 0,
    filesSkipped: 0,
    bytesRead: 0,
    bytesAdded: 0,
    bytesStored: 0,
    blobsAdded: 0,
    durationMs: 0,
  };
}

export interface Retention {
  mode: 'governance' | 'compliance';
  until: string;
}

export interface Snapshot {
  time: string;
  host: string;
  username: string;
  paths: string[];
  tags: string[];
  tree: TreeId;
  parent?: string;
  summary: SnapshotSummary;
  /** The snapshot's retention intent; objects carry the enforced retention (see docs/format.md). */
  retention: Retention | null;
  /** e.g. "partial" when files were skipped, "changed-while-read" when a file changed. */
  flags: string[];
  program: string;
  [unknownField: string]: unknown;
}

const AAD = Buffer.from('amber/v1/snapshot', 'ascii');

export function encodeSnapshot(snapshot: Snapshot, epoch: EpochKey, signer: Signer): Buffer {
  const epochBytes = Buffer.alloc(4);
  epochBytes.writeUInt32BE(epoch.epoch);
  const payload = Buffer.concat([epochBytes, sealToPublicKey(epoch.publicKey, jsonBytes(snapshot), AAD)]);
  return encodeSignedRecord('snapshot', payload, signer);
}

export function decodeSnapshotPayload(payload: Buffer, epochs: Map<number, EpochKey>, where: string): Snapshot {
  if (payload.length < 4) throw new AmberError('OBJECT_CORRUPT', `${where} is truncated`);
  const epoch = epochs.get(payload.readUInt32BE(0));
  if (!canOpenEpoch(epoch)) {
    throw new AmberError('WRITE_ONLY_KEY', `${where} cannot be read with this key`, {
      hint: 'reading snapshots needs a full-access key (write-only keys can only add backups)',
    });
  }
  let snapshot: Snapshot;
  try {
    const json = openUnderEpoch(epoch, (pair) => openWithPrivateKey(pair, payload.subarray(4), AAD));
    snapshot = JSON.parse(json.toString('utf8')) as Snapshot;
  } catch (cause) {
    throw new AmberError('OBJECT_CORRUPT', `${where} failed authentication`, { cause });
  }
  if (!isHexId(snapshot?.tree)) throw new AmberError('OBJECT_CORRUPT', `${where} names no root tree (64 hex digits)`);
  const problem = snapshotProblem(snapshot);
  if (problem) throw new AmberError('OBJECT_CORRUPT', `${where} ${problem}`);
  return snapshot;
}

/**
 * Deepest nesting a snapshot's JSON may have: a copy of a copy adds one level per generation, and a
 * copy writes every field it keeps again, which JSON.stringify cannot do for a few thousand levels.
 */
export const MAX_SNAPSHOT_DEPTH = 64;

const isTimeString = (value: unknown): value is string => {
  if (typeof value !== 'string') return false;
  const ms = Date.parse(value);
  return Number.isFinite(ms) && new Date(ms).toISOString() === value;
};
const isStringList = (value: unknown): value is string[] =>
  Array.isArray(value) && value.every((item) => typeof item === 'string');

/**
 * Why a signed snapshot cannot be used as one, or undefined. Readers use these fields as their
 * types say (sorting by time, joining paths and tags, re-encoding the whole object for a copy), so a
 * snapshot whose writer held a key but wrote them otherwise is refused here, as damage is, instead
 * of breaking `snapshots`, `forget`, `copy` and `copy status` for every other snapshot
 * (test/redteam/copy-hostile-snapshots.test.ts).
 */
export function snapshotProblem(snapshot: Snapshot): string | undefined {
  if (!snapshot || typeof snapshot !== 'object' || Array.isArray(snapshot)) return 'is not a JSON object';
  if (!isTimeString(snapshot.time)) return 'has a time that is not an ISO 8601 UTC time with milliseconds';
  if (typeof snapshot.host !== 'string') return 'has a host that is not text';
  for (const field of ['paths', 'tags', 'flags'] as const)
    if (!isStringList(snapshot[field])) return `has ${field} that are not a list of text`;
  for (const field of ['username', 'program'] as const)
    if (snapshot[field] !== undefined && typeof snapshot[field] !== 'string') return `has a ${field} that is not text`;
  if (snapshot.parent !== undefined && !isHexId(snapshot.parent)) return 'has a parent that is not a snapshot id';
  const { summary, retention } = snapshot;
  if (summary !== undefined && (summary === null || typeof summary !== 'object' || Array.isArray(summary)))
    return 'has a summary that is not an object';
  if (
    retention !== undefined &&
    retention !== null &&
    (typeof retention !== 'object' ||
      (retention.mode !== 'governance' && retention.mode !== 'compliance') ||
      !isTimeString(retention.until))
  )
    return 'has a retention that is neither null nor {mode, until}';
  // Iterative: a recursive walk would overflow on the very nesting it looks for.
  const stack: [unknown, number][] = [[snapshot, 1]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (value === null || typeof value !== 'object') continue;
    if (depth > MAX_SNAPSHOT_DEPTH) return `nests deeper than ${MAX_SNAPSHOT_DEPTH} levels`;
    for (const child of Object.values(value)) stack.push([child, depth + 1]);
  }
  return undefined;
}
