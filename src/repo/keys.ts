// Key files: who may open the repository and with which role. Each key file is signed by the owner
// key, pins the config hash, and holds the key's secrets wrapped under a passphrase-derived key.
//
// Roles: a full key holds the owner signing key and a holder key pair through which it receives
// every epoch's data private key; a write-only key holds only the shared secrets (id key, gear seed,
// index key) and its own signing key, so it can add data but never decrypt what is stored.
import { hostName, userName } from '../core/operator.ts';
import { AmberError } from '../core/errors.ts';
import type { KeyId } from '../core/ids.ts';
import {
  deriveWrappingKey,
  generateBoxKeyPair,
  generateSigningKeyPair,
  newScryptParams,
  open,
  randomKey,
  seal,
  type BoxKeyPair,
  type ScryptParams,
  type SigningKeyPair,
} from '../crypto/index.ts';
import { encodeSignedRecord, jsonBytes, keyIdOf, type Signer } from './signed-record.ts';

export type KeyRole = 'full' | 'write-only';

/** Secrets every key of a repository shares. */
export interface RepoSecrets {
  idKey: Buffer;
  gearSeed: Buffer;
  indexKey: Buffer;
}

export interface KeyFileInfo {
  keyId: KeyId;
  role: KeyRole;
  createdAt: string;
  hostname: string;
  username: string;
  label: string;
  configHash: string;
  signingPublicKey: string;
  holderPublicKey?: string;
  kdf: { algorithm: 'scrypt' } & ScryptParams;
  wrapped: string;
  [unknownField: string]: unknown;
}

export interface UnlockedKey {
  keyId: KeyId;
  role: KeyRole;
  secrets: RepoSecrets;
  /** The owner key for a full key, the writer's own key for a write-only key. */
  signer: Signer;
  holder?: BoxKeyPair;
}

interface WrappedSecrets {
  idKey: string;
  gearSeed: string;
  indexKey: string;
  signing: { publicKey: string; privateKey: string };
  holder?: { publicKey: string; privateKey: string };
}

export function newRepoSecrets(): RepoSecrets {
  return { idKey: randomKey(), gearSeed: randomKey(), indexKey: randomKey() };
}

export function signerOf(pair: SigningKeyPair): Signer {
  return { keyId: keyIdOf(pair.publicKey), publicKey: pair.publicKey, privateKey: pair.privateKey };
}

const wrapAad = (keyId: string) => Buffer.from(`amber/v1/key-secret\0${keyId}`, 'ascii');
const b64 = (bytes: Buffer) => bytes.toString('base64');
const pairToJson = (pair: SigningKeyPair) => ({ publicKey: b64(pair.publicKey), privateKey: b64(pair.privateKey) });
const pairFromJson = (json: { publicKey: string; privateKey: string }): SigningKeyPair => ({
  publicKey: Buffer.from(json.publicKey, 'base64'),
  privateKey: Buffer.from(json.privateKey, 'base64'),
});

export interface NewKeyOptions {
  role: KeyRole;
  passphrase: string;
  secrets: RepoSecrets;
  owner: Signer;
  configHash: string;
  createdAt: string;
  label?: string;
  kdfLogN?: number;
}

/** Creates a key file (signed by the owner) and the unlocked key it opens to. */
export async function createKeyFile(
  options: NewKeyOptions,
): Promise<{ bytes: Buffer; key: UnlockedKey; info: KeyFileInfo }> {
  const writer = options.role === 'write-only' ? generateSigningKeyPair() : undefined;
  const holder = options.role === 'full' ? generateBoxKeyPair() : undefined;
  const signing: SigningKeyPair = writer ?? {
    publicKey: options.owner.publicKey,
    privateKey: options.owner.privateKey,
  };
  const keyId = keyIdOf(holder ? holder.publicKey : signing.publicKey);
  const kdf = newScryptParams(options.kdfLogN);
  const secret: WrappedSecrets = {
    idKey: b64(options.secrets.idKey),
    gearSeed: b64(options.secrets.gearSeed),
    indexKey: b64(options.secrets.indexKey),
    signing: pairToJson(signing),
    ...(holder ? { holder: pairToJson(holder) } : {}),
  };
  const wrappingKey = await deriveWrappingKey(options.passphrase, kdf);
  const info: KeyFileInfo = {
    keyId,
    role: options.role,
    createdAt: options.createdAt,
    hostname: hostName(),
    username: userName(),
    label: options.label ?? '',
    configHash: options.configHash,
    signingPublicKey: signing.publicKey.toString('hex'),
    ...(holder ? { holderPublicKey: holder.publicKey.toString('hex') } : {}),
    kdf: { algorithm: 'scrypt', ...kdf },
    wrapped: b64(seal(wrappingKey, jsonBytes(secret), wrapAad(keyId))),
  };
  const key: UnlockedKey = { keyId, role: options.role, secrets: options.secrets, signer: signerOf(signing), holder };
  return { bytes: encodeSignedRecord('key', jsonBytes(info), options.owner), key, info };
}

/** Unwraps a key with a passphrase; undefined when the passphrase does not open it. */
export async function unlockKeyFile(info: KeyFileInfo, passphrase: string): Promise<UnlockedKey | undefined> {
  const wrappingKey = await deriveWrappingKey(passphrase, info.kdf);
  let secret: WrappedSecrets;
  try {
    secret = JSON.parse(open(wrappingKey, Buffer.from(info.wrapped, 'base64'), wrapAad(info.keyId)).toString('utf8'));
  } catch (error) {
    if (error instanceof AmberError) return undefined;
    throw error;
  }
  const signing = pairFromJson(secret.signing);
  if (signing.publicKey.toString('hex') !== info.signingPublicKey) {
    throw new AmberError(
      'OBJECT_CORRUPT',
      `key ${info.keyId.slice(0, 8)} holds a signing key that does not match its public part`,
    );
  }
  return {
    keyId: info.keyId,
    role: info.role,
    secrets: {
      idKey: Buffer.from(secret.idKey, 'base64'),
      gearSeed: Buffer.from(secret.gearSeed, 'base64'),
      indexKey: Buffer.from(secret.indexKey, 'base64'),
    },
    signer: signerOf(signing),
    holder: secret.holder ? pairFromJson(secret.holder) : undefined,
  };
}
