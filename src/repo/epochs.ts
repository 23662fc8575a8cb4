// Key epochs: each epoch has an X25519 data key pair. New data is sealed to the newest epoch's public
// key; full keys receive each epoch's private key through grants sealed to their holder key.
// `key rotate` starts a new epoch whose grants exclude revoked keys.
import { AmberError } from '../core/errors.ts';
import type { KeyId } from '../core/ids.ts';
import { openWithPrivateKey, sealToPublicKey, type BoxKeyPair } from '../crypto/index.ts';
import { encodeSignedRecord, jsonBytes, type Signer } from './signed-record.ts';

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
      box: sealToPublicKey(holderPublicKey, options.dataPair.privateKey, grantAad(options.epoch, keyId)).toString('base64'),
    })),
    ...(options.reason ? { reason: options.reason } : {}),
  };
  return encodeSignedRecord('epoch', jsonBytes(record), options.owner);
}

/** Folds owner-signed epoch records into one key per epoch, unwrapping what `holder` was granted. */
export function collectEpochKeys(records: EpochRecord[], keyId: KeyId, holder: BoxKeyPair | undefined): Map<number, EpochKey> {
  const keys = new Map<number, EpochKey>();
  for (const record of records) {
    const publicKey = Buffer.from(record.dataPublicKey, 'hex');
    const known = keys.get(record.epoch);
    if (known && !known.publicKey.equals(publicKey)) {
      throw new AmberError('SIGNATURE_INVALID', `two owner-signed records give epoch ${record.epoch} different keys`);
    }
    const entry = known ?? { epoch: record.epoch, publicKey };
    const grant = holder ? record.grants.find((candidate) => candidate.keyId === keyId) : undefined;
    if (grant && holder && !entry.privateKey) {
      entry.privateKey = openWithPrivateKey(holder, Buffer.from(grant.box, 'base64'), grantAad(record.epoch, keyId));
    }
    keys.set(record.epoch, entry);
  }
  return keys;
}
