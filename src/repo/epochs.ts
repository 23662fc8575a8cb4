// Key epochs: each epoch has an X25519 data key pair. New data is sealed to the newest epoch's public
// key; full keys receive each epoch's private key through grants sealed to their holder key.
// `key rotate` starts a new epoch whose grants exclude revoked keys.
import { AmberError } from '../core/errors.ts';
import type { KeyId } from '../core/ids.ts';
import { openWithPrivateKey, sealToPublicKey, type BoxKeyPair } from '../crypto/index.ts';
import type { RecordProblem } from './records.ts';
import { encodeSignedRecord, jsonBytes, parseJsonPayload, type SignedRecord, type Signer } from './signed-record.ts';

export interface EpochRecord {
  epoch: number;
  dataPublicKey: string;
  createdAt: string;
  grants: { keyId: KeyId; box: string }[];
  [unknownField: string]: unknown;
}

export interface EpochKey {
  epoch: number;
  publicKey: Buffer;
  /** Present only for full keys that were granted this epoch. */
  privateKey?: Buffer;
  /** Other keys under the same number, left by concurrent rotations. */
  alternatives?: EpochKey[];
}

const grantAad = (epoch: number, keyId: string) => Buffer.from(`amber/v1/epoch-grant\0${epoch}\0${keyId}`, 'ascii');

export function encodeEpochRecord(options: {
  epoch: number;
  dataPair: BoxKeyPair;
  holders: { keyId: KeyId; holderPublicKey: Buffer }[];
  createdAt: string;
  owner: Signer;
  /** Why the epoch was started (e.g. a rotation after a revocation); recorded as given. */
  reason?: string;
}): Buffer {
  const record: EpochRecord = {
    epoch: options.epoch,
    dataPublicKey: options.dataPair.publicKey.toString('hex'),
    createdAt: options.createdAt,
    grants: options.holders.map(({ keyId, holderPublicKey }) => ({
      keyId,
      box: sealToPublicKey(holderPublicKey, options.dataPair.privateKey, grantAad(options.epoch, keyId)).toString(
        'base64',
      ),
    })),
    ...(options.reason ? { reason: options.reason } : {}),
  };
  return encodeSignedRecord('epoch', jsonBytes(record), options.owner);
}

/**
 * An epoch record's payload, checked for the fields the fold below reads: a signed but malformed
 * record is reported by name as damaged instead of failing later with a TypeError.
 */
export function decodeEpochRecord(record: Pick<SignedRecord, 'payload'>, name: string): EpochRecord {
  const value = parseJsonPayload<Partial<EpochRecord>>(record, name);
  const ok =
    typeof value === 'object' &&
    value !== null &&
    Number.isSafeInteger(value.epoch) &&
    (value.epoch as number) >= 0 &&
    typeof value.dataPublicKey === 'string' &&
    /^[0-9a-f]{64}$/.test(value.dataPublicKey) &&
    Array.isArray(value.grants) &&
    value.grants.every((grant) => typeof grant?.keyId === 'string' && typeof grant?.box === 'string');
  if (!ok) throw new AmberError('OBJECT_CORRUPT', `${name} is not a valid epoch record (missing or malformed fields)`);
  return value as EpochRecord;
}

/**
 * The error for a repository none of whose epoch records could be used. Without one nothing can be
 * encrypted or read, so it names every record that was refused and why (the messages of readRecord:
 * altered, truncated, signed by another owner — e.g. copied from another repository — or malformed).
 */
export function noUsableEpochError(location: string, problems: RecordProblem[]): AmberError {
  if (problems.length === 0) {
    return new AmberError('CONFIG_CORRUPT', `${location} has no key epoch record (nothing under epochs/)`, {
      hint: 'the epochs/ objects were removed: restore them from a copy of the repository (Amber writes them once and never removes them)',
    });
  }
  const causes = problems.map(
    ({ name, problem, code }) =>
      (problem.startsWith(name) ? problem : `${name}: ${problem}`) +
      (code === 'SIGNATURE_INVALID' ? ' (a bad signature, or a record from another repository)' : ''),
  );
  return new AmberError('CONFIG_CORRUPT', `${location} has no usable key epoch record: ${causes.join('; ')}`, {
    hint: `restore ${problems.map(({ name }) => name).join(', ')} from a copy of the repository (objects are write-once: copy the original file back, do not edit it); until then the repository cannot be opened`,
    details: { objects: problems.map(({ name }) => name) },
  });
}

/**
 * Folds owner-signed epoch records into one key per epoch number, unwrapping what `holder` was
 * granted. Two rotations at once can give one number two keys; both stay usable (data may be sealed
 * to either) and the one with the lower public key is the primary, so every writer picks the same.
 */
export function collectEpochKeys(
  records: EpochRecord[],
  keyId: KeyId,
  holder: BoxKeyPair | undefined,
): Map<number, EpochKey> {
  const byKey = new Map<string, EpochKey>();
  for (const record of records) {
    const entry = byKey.get(record.dataPublicKey) ?? {
      epoch: record.epoch,
      publicKey: Buffer.from(record.dataPublicKey, 'hex'),
    };
    if (entry.epoch !== record.epoch) continue; // one key under two numbers: the first record stands
    const grant = holder ? record.grants.find((candidate) => candidate.keyId === keyId) : undefined;
    if (grant && holder && !entry.privateKey) {
      entry.privateKey = openWithPrivateKey(holder, Buffer.from(grant.box, 'base64'), grantAad(record.epoch, keyId));
    }
    byKey.set(record.dataPublicKey, entry);
  }
  const keys = new Map<number, EpochKey>();
  for (const [, entry] of [...byKey].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const primary = keys.get(entry.epoch);
    if (!primary) keys.set(entry.epoch, entry);
    else (primary.alternatives ??= []).push(entry);
  }
  return keys;
}

/** Every key of an epoch number this key can open, primary first. */
export function epochKeyVariants(epoch: EpochKey): EpochKey[] {
  return [epoch, ...(epoch.alternatives ?? [])];
}

export function canOpenEpoch(epoch: EpochKey | undefined): epoch is EpochKey {
  return epoch !== undefined && epochKeyVariants(epoch).some((variant) => variant.privateKey !== undefined);
}

/** Opens something sealed to an epoch with whichever of its keys fits; rethrows the first failure. */
export function openUnderEpoch<T>(epoch: EpochKey, open: (pair: BoxKeyPair) => T): T {
  let firstError: unknown;
  for (const variant of epochKeyVariants(epoch)) {
    if (!variant.privateKey) continue;
    try {
      return open({ publicKey: variant.publicKey, privateKey: variant.privateKey });
    } catch (error) {
      firstError ??= error;
    }
  }
  throw firstError ?? new AmberError('WRITE_ONLY_KEY', `key epoch ${epoch.epoch} was not granted to this key`);
}
