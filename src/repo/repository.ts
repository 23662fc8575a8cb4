// Creating and opening a repository: config, key files, epochs and revocations,
// each checked against the owner key before anything trusts it.
import { createHmac } from 'node:crypto';
import { join } from 'node:path';
import { AmberError, isAmberError } from '../core/errors.ts';
import type { Clock } from '../core/clock.ts';
import { nowIso } from '../core/clock.ts';
import type { KeyId } from '../core/ids.ts';
import { generateBoxKeyPair, generateSigningKeyPair, sha256Hex } from '../crypto/index.ts';
import type { ChunkerParams } from '../chunker/fastcdc.ts';
import { asBuffer, type PutOptions, type Store } from '../storage/store.ts';
import { createAuthority, type Authority, type RevocationRecord, type WitnessRecord } from './authority.ts';
import { decodeConfig, encodeConfig, newConfig, type RepoConfig } from './config.ts';
import {
  collectEpochKeys,
  decodeEpochRecord,
  encodeEpochRecord,
  noUsableEpochError,
  type EpochKey,
  type EpochRecord,
} from './epochs.ts';
import {
  createKeyFile,
  newRepoSecrets,
  signerOf,
  unlockKeyFile,
  type KeyFileInfo,
  type RepoSecrets,
  type UnlockedKey,
} from './keys.ts';
import { CONFIG_NAME, objectName } from './layout.ts';
import { openRecordCache, type RecordCache } from './record-cache.ts';
import { isBadRecord, readRecords, type RecordProblem } from './records.ts';
import { keyIdOf, parseJsonPayload } from './signed-record.ts';

/** An opened repository: the view anyone may read, and the key that opened it. */
export interface Repository extends RepositoryView {
  clock: Clock;
  key: UnlockedKey;
  epochs: Map<number, EpochKey>;
  currentEpoch: EpochKey;
  /** Who is acting, as the audit log names them (user@host, and the vault token); the key's id when not given. */
  actor: string;
}

export interface InitOptions {
  store: Store;
  passphrase: string;
  clock: Clock;
  chunker?: ChunkerParams;
  packTargetBytes?: number;
  kdfLogN?: number;
  actor?: string;
  cacheDir?: string;
  /** Retention for the config, first key and epoch, on stores that keep dates as objects are written (S3). */
  retention?: PutOptions;
  /**
   * A copy's dedup secrets, taken from the repository it copies (docs/isolation.md): blobs keep their
   * ids and chunk boundaries between the two. Every other secret and key is the new repository's own.
   */
  dedupSecrets?: Pick<RepoSecrets, 'idKey' | 'gearSeed'>;
}

/** Writes epoch 0, the first full key, then `config` last: a crash before it leaves no repository. */
export async function initRepository(options: InitOptions): Promise<Repository> {
  const { store, clock } = options;
  if (await store.exists()) {
    throw new AmberError('REPO_EXISTS', `${store.location} already holds a repository or other files`, {
      hint: 'choose an empty or new directory; Amber never overwrites a repository',
    });
  }
  const owner = signerOf(generateSigningKeyPair());
  const createdAt = nowIso(clock);
  const config = newConfig({
    ownerPublicKey: owner.publicKey,
    createdAt,
    chunker: options.chunker,
    packTargetBytes: options.packTargetBytes,
  });
  const configBytes = encodeConfig(config, owner);
  const configHash = sha256Hex(configBytes);
  const { bytes: keyBytes, info } = await createKeyFile({
    role: 'full',
    passphrase: options.passphrase,
    secrets: { ...newRepoSecrets(), ...options.dedupSecrets },
    owner,
    configHash,
    createdAt,
    kdfLogN: options.kdfLogN,
  });
  const epochBytes = encodeEpochRecord({
    epoch: 0,
    dataPair: generateBoxKeyPair(),
    holders: [{ keyId: info.keyId, holderPublicKey: Buffer.from(info.holderPublicKey!, 'hex') }],
    createdAt,
    owner,
  });
  await store.put(objectName('epochs', sha256Hex(epochBytes)), epochBytes, options.retention);
  await store.put(objectName('keys', sha256Hex(keyBytes)), keyBytes, options.retention);
  try {
    await store.put(CONFIG_NAME, configBytes, options.retention);
  } catch (error) {
    if (isAmberError(error, 'OBJECT_EXISTS'))
      throw new AmberError('REPO_EXISTS', `${store.location} already holds a repository`);
    throw error;
  }
  return openRepository({
    store,
    passphrase: options.passphrase,
    clock,
    actor: options.actor,
    cacheDir: options.cacheDir,
  });
}

export interface OpenOptions {
  store: Store;
  passphrase: string;
  clock: Clock;
  /** Who is acting, as the audit log names them; default: `key <id>`. */
  actor?: string;
  /** This host's local state directory: with it, retention records verified on an earlier run are cached there. */
  cacheDir?: string;
}

/**
 * What anyone may read without a passphrase: the config, the owner-signed key files and revocations,
 * and so who may sign what. An auditor checks the audit log with this alone.
 */
export interface RepositoryView {
  store: Store;
  config: RepoConfig;
  configHash: string;
  authority: Authority;
  keyFiles: { name: string; info: KeyFileInfo }[];
  revocations: RevocationRecord[];
  /** Vault keys the owner accepted as signers of audit entries. */
  witnesses: WitnessRecord[];
  /** Records that were ignored because they were forged, damaged or unauthorised. */
  problems: RecordProblem[];
  /** Records checked on an earlier run (see record-cache.ts); verification reads around it. */
  recordCache?: RecordCache;
}

export async function openRepositoryView(store: Store): Promise<RepositoryView> {
  const configBytes = await readConfigBytes(store);
  const config = decodeConfig(configBytes, store.location);
  const configHash = sha256Hex(configBytes);
  const ownerPublicKey = Buffer.from(config.ownerPublicKey, 'hex');
  const problems: RecordProblem[] = [];
  const owner = ownerOnly(ownerPublicKey);
  const keyFiles = (await readRecords(store, 'keys', 'key', owner, problems)).map(({ name, record }) => ({
    name,
    info: parseJsonPayload<KeyFileInfo>(record, name),
  }));
  const pinned = keyFiles.filter(({ info }) => info.configHash === configHash);
  // Key files signed by another owner than the config names also mean the config was replaced.
  if (pinned.length === 0 && (keyFiles.length > 0 || problems.some(({ code }) => code === 'SIGNATURE_INVALID'))) {
    throw new AmberError(
      'CONFIG_CORRUPT',
      `the config in ${store.location} is not the one its keys were made for (it was replaced)`,
      {
        hint: 'restore the original config object; Amber refuses a replaced config',
      },
    );
  }
  if (pinned.length === 0 && problems.length > 0) {
    throw new AmberError(
      'OBJECT_CORRUPT',
      `no key file in ${store.location} is intact: ${problems.map(({ name }) => name).join(', ')}`,
      {
        hint: 'restore the key files from a copy of the repository',
      },
    );
  }
  const revocations = (await readRecords(store, 'revocations', 'revocation', owner, problems)).map(({ name, record }) =>
    parseJsonPayload<RevocationRecord>(record, name),
  );
  const witnesses = (await readRecords(store, 'witnesses', 'witness', owner, problems)).map(({ name, record }) =>
    parseJsonPayload<WitnessRecord>(record, name),
  );
  return {
    store,
    config,
    configHash,
    revocations,
    witnesses,
    problems,
    keyFiles: pinned,
    authority: createAuthority(
      ownerPublicKey,
      pinned.map(({ info }) => info),
      revocations,
      witnesses,
    ),
  };
}

const ownerOnly = (ownerPublicKey: Buffer) => {
  const ownerKeyId = keyIdOf(ownerPublicKey);
  return (keyId: KeyId) => (keyId === ownerKeyId ? ownerPublicKey : undefined);
};

export async function openRepository(options: OpenOptions): Promise<Repository> {
  const { store, clock } = options;
  const view = await openRepositoryView(store);
  const key = await unlock(
    view.keyFiles.map(({ info }) => info),
    options.passphrase,
    view.revocations,
    store.location,
  );
  const ownerPublicKey = Buffer.from(view.config.ownerPublicKey, 'hex');
  const epochProblems: RecordProblem[] = [];
  const epochRecords: EpochRecord[] = [];
  for (const { name, record } of await readRecords(
    store,
    'epochs',
    'epoch',
    ownerOnly(ownerPublicKey),
    epochProblems,
  )) {
    try {
      epochRecords.push(decodeEpochRecord(record, name));
    } catch (error) {
      if (!isBadRecord(error)) throw error;
      epochProblems.push({ name, problem: error.message, code: error.code });
    }
  }
  view.problems.push(...epochProblems);
  const epochs = collectEpochKeys(epochRecords, key.keyId, key.holder);
  const currentEpoch = [...epochs.values()].sort((a, b) => b.epoch - a.epoch)[0];
  if (!currentEpoch) throw noUsableEpochError(store.location, epochProblems);
  const repo: Repository = {
    ...view,
    clock,
    key,
    epochs,
    currentEpoch,
    actor: options.actor ?? `key ${key.keyId.slice(0, 8)}`,
  };
  if (options.cacheDir !== undefined) {
    repo.recordCache = openRecordCache(
      join(options.cacheDir, view.config.repositoryId, 'records.jsonl'),
      localStateKey(repo, 'record-cache'),
    );
  }
  return repo;
}

/** MAC key for this host's local state about a repository (clock, record cache): only key holders can forge it. */
export function localStateKey(repo: Repository, purpose: string): Buffer {
  return createHmac('sha256', repo.key.secrets.idKey).update(`amber/v1/${purpose}`).digest();
}

async function readConfigBytes(store: Store): Promise<Buffer> {
  try {
    return asBuffer(await store.get(CONFIG_NAME));
  } catch (error) {
    if (isAmberError(error, 'OBJECT_NOT_FOUND')) {
      throw new AmberError('REPO_NOT_FOUND', `there is no repository at ${store.location}`, {
        hint: 'check --repo (or AMBER_REPO), or create one with `amber init`',
      });
    }
    throw error;
  }
}

async function unlock(
  keys: KeyFileInfo[],
  passphrase: string,
  revocations: RevocationRecord[],
  location: string,
): Promise<UnlockedKey> {
  const revoked = new Set(revocations.map((record) => record.keyId));
  for (const info of keys) {
    const key = await unlockKeyFile(info, passphrase);
    if (!key) continue;
    if (revoked.has(info.keyId)) {
      throw new AmberError('KEY_REVOKED', `the key ${info.keyId.slice(0, 8)} that this passphrase opens was revoked`, {
        hint: 'ask the repository owner for a new key (`amber key add`)',
      });
    }
    return key;
  }
  throw new AmberError('WRONG_PASSWORD', `no key in ${location} opens with the given passphrase`, {
    hint: 'check AMBER_PASSWORD or --password-file; passphrases are case-sensitive',
  });
}
