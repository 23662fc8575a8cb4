// Reading signed, content-addressed records from the store. A record whose bytes do not hash to its
// name, or that no authorised key signed, is ignored and reported; it never changes what Amber does.
import { AmberError, isAmberError, type ErrorCode } from '../core/errors.ts';
import type { KeyId } from '../core/ids.ts';
import { asBuffer, type Store } from '../storage/store.ts';
import { hashOfName, PREFIX, type PrefixKind } from './layout.ts';
import type { ObjectKind } from './object-header.ts';
import type { RecordCache } from './record-cache.ts';
import { sha256Hex } from '../crypto/index.ts';
import { decodeSignedRecord, hasValidSignature, type SignedRecord } from './signed-record.ts';

export interface RecordProblem {
  name: string;
  problem: string;
  code?: ErrorCode;
  /**
   * The key id the record's envelope names as its signer, when no key with the authority matches it.
   * A claim only (anyone can write any id), until a record of the repository names that key (§16.8).
   */
  signer?: KeyId;
}

/** The signer a SIGNATURE_INVALID error names, if any. */
export const claimedSigner = (error: AmberError): KeyId | undefined =>
  typeof error.details?.signer === 'string' ? (error.details.signer as KeyId) : undefined;

/** What a reader may rely on once a record's name, hash and signer's authority are checked. */
export type VerifiedRecord = Pick<SignedRecord, 'payload' | 'signerKeyId'>;

export interface LoadedRecord {
  name: string;
  record: VerifiedRecord;
  /** When the store received it (its own clock), where the store reports that. */
  writtenMs?: number;
}

export type SignerLookup = (signerKeyId: KeyId, name: string) => Buffer | undefined;

export async function readRecord(
  store: Store,
  name: string,
  kind: ObjectKind,
  signers: SignerLookup,
): Promise<SignedRecord> {
  const bytes = asBuffer(await store.get(name));
  const expectedHash = hashOfName(name);
  if (expectedHash === undefined) {
    throw new AmberError(
      'SIGNATURE_INVALID',
      `${name} is not a name Amber writes (it carries no hash of its bytes), so no key with the authority wrote it`,
    );
  }
  // The hash first: bytes that match their name are exactly what someone stored, so a record that
  // then fails to decode was never written by an authorised author (damage would break the hash).
  if (expectedHash !== sha256Hex(bytes)) {
    throw new AmberError('OBJECT_CORRUPT', `${name} does not hash to its name (altered or renamed)`);
  }
  let record: SignedRecord;
  try {
    record = decodeSignedRecord(kind, bytes, name);
  } catch (error) {
    if (!isAmberError(error, 'OBJECT_CORRUPT')) throw error;
    throw new AmberError(
      'SIGNATURE_INVALID',
      `${error.message}: its bytes match its name, so no damage made it and no key with the authority wrote it`,
      { cause: error },
    );
  }
  const publicKey = signers(record.signerKeyId, name);
  if (!publicKey || !hasValidSignature(kind, record, publicKey)) {
    throw new AmberError('SIGNATURE_INVALID', `${name} is not signed by a key with the authority to write it`, {
      details: { signer: record.signerKeyId },
    });
  }
  return record;
}

/** A record checked once before comes from the cache while its signer still has the authority. */
export async function readCheckedRecord(
  store: Store,
  name: string,
  kind: ObjectKind,
  signers: SignerLookup,
  cache?: RecordCache,
): Promise<VerifiedRecord> {
  const cached = cache?.get(name);
  if (cached && signers(cached.signerKeyId, name)) return cached;
  const record = await readRecord(store, name, kind, signers);
  cache?.remember(name, { payload: record.payload, signerKeyId: record.signerKeyId });
  return record;
}

const BAD_RECORD: readonly ErrorCode[] = ['OBJECT_CORRUPT', 'SIGNATURE_INVALID', 'FORMAT_UNSUPPORTED'];

/** Whether an error says a record is bad (reported and ignored), not that reading failed. */
export const isBadRecord = (error: unknown): error is AmberError =>
  isAmberError(error) && BAD_RECORD.includes(error.code);

/** Every valid record under a prefix; invalid ones land in `problems`. Bounded by the listing. */
export async function readRecords(
  store: Store,
  prefix: PrefixKind,
  kind: ObjectKind,
  signers: SignerLookup,
  problems: RecordProblem[],
  cache?: RecordCache,
): Promise<LoadedRecord[]> {
  const loaded: LoadedRecord[] = [];
  for await (const { name, writtenMs } of store.list(PREFIX[prefix])) {
    try {
      loaded.push({ name, record: await readCheckedRecord(store, name, kind, signers, cache), writtenMs });
    } catch (error) {
      if (!isBadRecord(error)) throw error;
      const signer = claimedSigner(error);
      problems.push({ name, problem: error.message, code: error.code, ...(signer ? { signer } : {}) });
    }
  }
  loaded.sort((a, b) => (a.name < b.name ? -1 : 1));
  return loaded;
}
