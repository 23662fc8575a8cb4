// Who may sign what. The owner key signs everything; a write-only key may sign packs, index objects
// and snapshots while it is certified by an owner-signed key file and not revoked. Objects a revoked
// writer signed before its revocation stay valid only when the revocation record lists them.
import type { KeyId } from '../core/ids.ts';
import { keyIdOf } from './signed-record.ts';
import type { KeyFileInfo } from './keys.ts';

export interface RevocationRecord {
  keyId: KeyId;
  revokedAt: string;
  reason: string;
  /** Names of objects the revoked key signed that the owner still accepts. */
  acceptedObjects: string[];
  [unknownField: string]: unknown;
}

export interface Authority {
  readonly ownerKeyId: KeyId;
  /** The public key that may sign `objectName` as `signerKeyId`, or undefined when none may. */
  signingKeyFor(signerKeyId: KeyId, objectName: string): Buffer | undefined;
  /** The owner's public key when `signerKeyId` is the owner: records only the owner may sign. */
  ownerKeyFor(signerKeyId: KeyId): Buffer | undefined;
  /** Any key the owner ever certified, revoked or not, and witnesses: who may have written an audit entry (the log judges revocation by position). */
  certifiedKeyFor(signerKeyId: KeyId): Buffer | undefined;
  /** Vault keys the owner accepted as witnesses (audit entries only). */
  readonly witnesses: { publicKey: string; label: string }[];
  isRevoked(keyId: KeyId): boolean;
  describe(signerKeyId: KeyId): string;
}

/** A key the owner accepts as a signer of audit entries only: a vault's, which records what its clients did. */
export interface WitnessRecord {
  time: string;
  publicKey: string;
  label: string;
  [unknownField: string]: unknown;
}

export function createAuthority(
  ownerPublicKey: Buffer,
  keyFiles: KeyFileInfo[],
  revocations: RevocationRecord[],
  witnessRecords: WitnessRecord[] = [],
): Authority {
  const ownerKeyId = keyIdOf(ownerPublicKey);
  const witnesses = new Map(
    witnessRecords
      .filter(({ publicKey }) => /^[0-9a-f]{64}$/.test(publicKey))
      .map(({ publicKey, label }) => [
        keyIdOf(Buffer.from(publicKey, 'hex')) as string,
        { key: Buffer.from(publicKey, 'hex'), label },
      ]),
  );
  const writers = new Map<string, Buffer>();
  for (const info of keyFiles) {
    if (info.role === 'write-only') writers.set(info.keyId, Buffer.from(info.signingPublicKey, 'hex'));
  }
  const revoked = new Map<string, Set<string>>();
  for (const record of revocations) {
    const accepted = revoked.get(record.keyId) ?? new Set<string>();
    for (const name of record.acceptedObjects ?? []) accepted.add(name);
    revoked.set(record.keyId, accepted);
  }
  return {
    ownerKeyId,
    signingKeyFor(signerKeyId, objectName) {
      if (signerKeyId === ownerKeyId) return ownerPublicKey;
      const writer = writers.get(signerKeyId);
      if (!writer) return undefined;
      const accepted = revoked.get(signerKeyId);
      return accepted && !accepted.has(objectName) ? undefined : writer;
    },
    ownerKeyFor: (signerKeyId) => (signerKeyId === ownerKeyId ? ownerPublicKey : undefined),
    certifiedKeyFor: (signerKeyId) =>
      signerKeyId === ownerKeyId ? ownerPublicKey : (writers.get(signerKeyId) ?? witnesses.get(signerKeyId)?.key),
    witnesses: [...witnesses.values()].map(({ key, label }) => ({ publicKey: key.toString('hex'), label })),
    isRevoked: (keyId) => revoked.has(keyId),
    describe(signerKeyId) {
      if (signerKeyId === ownerKeyId) return 'owner';
      const witness = witnesses.get(signerKeyId);
      if (witness) return `witness ${witness.label}`;
      if (!writers.has(signerKeyId)) return `unknown key ${signerKeyId.slice(0, 8)}`;
      return `${revoked.has(signerKeyId) ? 'revoked ' : ''}writer ${signerKeyId.slice(0, 8)}`;
    },
  };
}
