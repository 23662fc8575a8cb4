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
  return snapshot;
}
