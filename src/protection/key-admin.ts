// Key administration: add, list and revoke keys, and rotate the data key epoch. Only a full key (it
// holds the owner signing key) may change who has access, and every change is a new owner-signed,
// write-once record: key files, epoch grants and revocations are added, never edited.
//
// What revocation and rotation can and cannot do (the honest limits of a write-once store):
// - A revoked key file can never be deleted, so the revoked passphrase still decrypts it. Amber
//   refuses to open the repository with it (KEY_REVOKED), but its holder still knows what it had:
//   the shared secrets (id key, gear seed, index key: enough to read the index and to confirm that a
//   known file is stored) and, for a full key, the private key of every epoch it was granted.
// - Rotation starts a new epoch whose grants leave revoked keys out. It protects data written after
//   it only; packs and snapshots of earlier epochs stay readable to whoever held those epochs.
// - A revoked write-only key is shut out cryptographically: it signs with its own key, and objects it
//   signs are accepted only when a revocation record lists them (its objects that existed at the time).
// - A full key holds the owner signing key itself. Revoking one stops honest Amber from opening with
//   it and keeps it out of new epochs, but a holder running modified software could still sign owner
//   records (e.g. a new epoch with a data key of its own). Fully retiring a leaked full key needs a
//   new owner key, i.e. a new repository (copy the data into it).
// - Two rotations at the same time pick the same epoch number with different keys. Both stay usable
//   (see collectEpochKeys); new data goes to the one with the lower public key.
import { AmberError, isAmberError } from '../core/errors.ts';
import { nowIso } from '../core/clock.ts';
import { asPackId, type KeyId } from '../core/ids.ts';
import { generateBoxKeyPair, sha256Hex, SIGNATURE_BYTES } from '../crypto/index.ts';
import { createAuthority, type RevocationRecord, type WitnessRecord } from '../repo/authority.ts';
import {
  collectEpochKeys,
  encodeEpochRecord,
  epochKeyVariants,
  type EpochKey,
  type EpochRecord,
} from '../repo/epochs.ts';
import { createKeyFile, unlockKeyFile, type KeyFileInfo, type KeyRole } from '../repo/keys.ts';
import { hashOfName, objectName, packName, PREFIX } from '../repo/layout.ts';
import type { ObjectKind } from '../repo/object-header.ts';
import { decodeTrailer, TRAILER_BYTES } from '../repo/pack.ts';
import { readRecord, readRecords, type RecordProblem } from '../repo/records.ts';
import type { Operation } from '../governance/operation.ts';
import { appendAudit } from '../governance/audit-log.ts';
import type { ObjectLock } from '../governance/retention.ts';
import { encodeSignedRecord, jsonBytes, parseJsonPayload } from '../repo/signed-record.ts';

/** Short key ids must have at least this many hex digits, as for snapshots. */
export const MIN_KEY_PREFIX = 4;
/** Ranged reads of pack trailers in flight at once while a revocation lists a writer's packs. */
const TRAILER_READS_IN_FLIGHT = 8;
const KEY_ID_BYTES = 32;

export interface AddKeyOptions {
  passphrase: string;
  role: KeyRole;
  label?: string;
  /** scrypt cost (log2 N); tests pass a small one. */
  kdfLogN?: number;
}

export interface AddedKey {
  keyId: KeyId;
  role: KeyRole;
  /** The key file's object name. */
  name: string;
  /** Epochs the new key was granted (full keys only; empty for write-only keys). */
  epochsGranted: number[];
}

export interface KeyListing {
  keyId: KeyId;
  role: KeyRole;
  label: string;
  createdAt: string;
  hostname: string;
  username: string;
  revoked: boolean;
  revokedAt?: string;
  revokeReason?: string;
  /** The key this repository was opened with. */
  current: boolean;
}

export interface RevokedKey {
  keyId: KeyId;
  role: KeyRole;
  revokedAt: string;
  /** The revocation record's object name. */
  name: string;
  /** Objects the revoked key signed before now that stay valid. */
  acceptedObjects: number;
}

export interface RotatedKey {
  epoch: number;
  /** The epoch record's object name. */
  name: string;
  /** Full keys that were granted the new epoch. */
  grantedTo: KeyId[];
}

/** Adds a full or write-only key. Grants come before the key file, so a crash leaves no half key. */
export async function addKey(repo: Operation, options: AddKeyOptions): Promise<AddedKey> {
  requireFullKey(repo, 'add a key');
  const state = await loadKeyState(repo);
  await refuseReusedPassphrase(
    state.keyFiles.map(({ info }) => info),
    options.passphrase,
    state.revoked,
  );
  const createdAt = nowIso(repo.clock);
  const { bytes, info } = await createKeyFile({
    role: options.role,
    passphrase: options.passphrase,
    secrets: repo.key.secrets,
    owner: repo.key.signer,
    configHash: repo.configHash,
    createdAt,
    label: options.label,
    kdfLogN: options.kdfLogN,
  });
  const epochsGranted: number[] = [];
  if (options.role === 'full') {
    const holders = [{ keyId: info.keyId, holderPublicKey: Buffer.from(info.holderPublicKey!, 'hex') }];
    for (const epoch of readableEpochs(repo, state.epochRecords)) {
      const grant = encodeEpochRecord({
        epoch: epoch.epoch,
        dataPair: { publicKey: epoch.publicKey, privateKey: epoch.privateKey! },
        holders,
        createdAt,
        owner: repo.key.signer,
      });
      await putRecord(repo, 'epochs', grant);
      epochsGranted.push(epoch.epoch);
    }
  }
  const name = await putRecord(repo, 'keys', bytes);
  repo.keyFiles.push({ name, info });
  refreshAuthority(repo);
  await appendAudit(repo, {
    action: 'key.add',
    target: info.keyId,
    details: { role: info.role, label: options.label ?? '', keyFile: name },
  });
  return { keyId: info.keyId, role: info.role, name, epochsGranted };
}

/** Every key pinned to this repository's config, oldest first. Any key may list them. */
export async function listKeys(repo: Operation): Promise<KeyListing[]> {
  const state = await loadKeyState(repo);
  return state.keyFiles
    .map(({ info }): KeyListing => {
      const revocation = state.revoked.get(info.keyId);
      return {
        keyId: info.keyId,
        role: info.role,
        label: info.label ?? '',
        createdAt: info.createdAt,
        hostname: info.hostname,
        username: info.username,
        revoked: revocation !== undefined,
        ...(revocation ? { revokedAt: revocation.revokedAt, revokeReason: revocation.reason } : {}),
        current: info.keyId === repo.key.keyId,
      };
    })
    .sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.keyId < b.keyId ? -1 : 1));
}

/**
 * Revokes a key by id or unique prefix. The revoked key can no longer open the repository; objects
 * it signed until now are listed in the record and stay valid, anything it signs later is ignored.
 * See the top of this file for what revocation cannot undo.
 */
export async function revokeKey(
  repo: Operation,
  keyIdOrPrefix: string,
  options: { reason: string },
): Promise<RevokedKey> {
  requireFullKey(repo, 'revoke a key');
  const state = await loadKeyState(repo);
  const info = findKey(
    state.keyFiles.map(({ info }) => info),
    keyIdOrPrefix,
    repo.store.location,
  );
  if (info.keyId === repo.key.keyId) {
    throw new AmberError(
      'KEY_IN_USE',
      `key ${info.keyId.slice(0, 8)} is the key this command runs with; it cannot revoke itself`,
      {
        hint: 'open the repository with another full-access key to revoke this one',
      },
    );
  }
  const earlier = state.revoked.get(info.keyId);
  if (earlier) {
    // A second record would accept objects the key signed after its first revocation.
    throw new AmberError(
      'KEY_ALREADY_REVOKED',
      `key ${info.keyId.slice(0, 8)} was already revoked at ${earlier.revokedAt}`,
    );
  }
  // A full key signs with the owner key, whose objects stay valid anyway: nothing to list for it.
  const acceptedObjects = info.role === 'write-only' ? await objectsSignedBy(repo, info) : [];
  const record: RevocationRecord = {
    keyId: info.keyId,
    revokedAt: nowIso(repo.clock),
    reason: options.reason,
    acceptedObjects,
  };
  const name = await putRecord(
    repo,
    'revocations',
    encodeSignedRecord('revocation', jsonBytes(record), repo.key.signer),
  );
  repo.revocations.push(record);
  refreshAuthority(repo);
  await appendAudit(repo, { action: 'key.revoke', target: info.keyId, details: { reason: options.reason } });
  return {
    keyId: info.keyId,
    role: info.role,
    revokedAt: record.revokedAt,
    name,
    acceptedObjects: acceptedObjects.length,
  };
}

/**
 * Starts a new epoch with a fresh data key pair, granted to every full key that is not revoked.
 * Backups sealed after this (by any key that opens the repository afterwards) use the new epoch.
 */
export async function rotateKey(repo: Operation, options: { reason?: string } = {}): Promise<RotatedKey> {
  requireFullKey(repo, 'rotate the data key');
  const state = await loadKeyState(repo);
  const known = collectEpochKeys(state.epochRecords, repo.key.keyId, repo.key.holder);
  const epoch = Math.max(repo.currentEpoch.epoch, ...known.keys()) + 1;
  const holders = state.keyFiles
    .map(({ info }) => info)
    .filter((info) => info.role === 'full' && info.holderPublicKey && !state.revoked.has(info.keyId))
    .map((info) => ({ keyId: info.keyId, holderPublicKey: Buffer.from(info.holderPublicKey!, 'hex') }));
  const dataPair = generateBoxKeyPair();
  const bytes = encodeEpochRecord({
    epoch,
    dataPair,
    holders,
    createdAt: nowIso(repo.clock),
    owner: repo.key.signer,
    reason: options.reason,
  });
  const name = await putRecord(repo, 'epochs', bytes);
  const entry: EpochKey = { epoch, publicKey: dataPair.publicKey, privateKey: dataPair.privateKey };
  repo.epochs.set(epoch, entry);
  repo.currentEpoch = entry;
  const grantedTo = holders.map(({ keyId }) => keyId);
  await appendAudit(repo, {
    action: 'key.rotate',
    target: repo.config.repositoryId,
    details: { epoch, record: name, grantedTo, reason: options.reason ?? null },
  });
  return { epoch, name, grantedTo };
}

/** The one key whose id is `ref` or starts with it. */
export function findKey(keys: KeyFileInfo[], ref: string, location: string): KeyFileInfo {
  const prefix = ref.trim().toLowerCase();
  if (!new RegExp(`^[0-9a-f]{${MIN_KEY_PREFIX},64}$`).test(prefix)) {
    throw new AmberError('KEY_NOT_FOUND', `"${ref}" is not a key id`, {
      hint: `give at least ${MIN_KEY_PREFIX} hex digits of an id from \`amber key list\``,
    });
  }
  const matches = [
    ...new Map(keys.filter((info) => info.keyId.startsWith(prefix)).map((info) => [info.keyId, info])).values(),
  ];
  if (matches.length > 1) {
    throw new AmberError('KEY_AMBIGUOUS', `"${ref}" matches ${matches.length} keys`, {
      hint: 'give more digits of the key id',
    });
  }
  if (matches.length === 0) {
    throw new AmberError('KEY_NOT_FOUND', `no key ${ref} in ${location}`, {
      hint: 'list the keys with `amber key list`',
    });
  }
  return matches[0];
}

function requireFullKey(repo: Operation, action: string): void {
  if (repo.key.role !== 'full' || repo.key.signer.keyId !== repo.authority.ownerKeyId) {
    throw new AmberError('WRITE_ONLY_KEY', `a write-only key cannot ${action}`, {
      hint: 'open the repository with a full-access key to administer keys',
    });
  }
}

interface KeyState {
  keyFiles: { name: string; info: KeyFileInfo }[];
  revoked: Map<string, RevocationRecord>;
  epochRecords: EpochRecord[];
  problems: RecordProblem[];
}

/** Key files, revocations and epochs as stored now (another admin may have changed them since open). */
async function loadKeyState(repo: Operation): Promise<KeyState> {
  const ownerPublicKey = Buffer.from(repo.config.ownerPublicKey, 'hex');
  const owner = (keyId: KeyId) => (keyId === repo.authority.ownerKeyId ? ownerPublicKey : undefined);
  const problems: RecordProblem[] = [];
  const keyFiles = (await readRecords(repo.store, 'keys', 'key', owner, problems))
    .map(({ name, record }) => ({ name, info: parseJsonPayload<KeyFileInfo>(record, name) }))
    .filter(({ info }) => info.configHash === repo.configHash);
  const revoked = new Map<string, RevocationRecord>();
  for (const { name, record } of await readRecords(repo.store, 'revocations', 'revocation', owner, problems)) {
    const revocation = parseJsonPayload<RevocationRecord>(record, name);
    const first = revoked.get(revocation.keyId);
    if (!first || revocation.revokedAt < first.revokedAt) revoked.set(revocation.keyId, revocation);
  }
  const epochRecords = (await readRecords(repo.store, 'epochs', 'epoch', owner, problems)).map(({ name, record }) =>
    parseJsonPayload<EpochRecord>(record, name),
  );
  return { keyFiles, revoked, epochRecords, problems };
}

/** Epochs whose private key the opening key holds, from the stored records and from this session. */
function readableEpochs(repo: Operation, records: EpochRecord[]): EpochKey[] {
  const epochs = collectEpochKeys(records, repo.key.keyId, repo.key.holder);
  for (const [number, epoch] of repo.epochs) if (!epochs.get(number)?.privateKey) epochs.set(number, epoch);
  return [...epochs.values()]
    .flatMap(epochKeyVariants)
    .filter((epoch) => epoch.privateKey)
    .sort((a, b) => a.epoch - b.epoch);
}

/** Refuses a passphrase that already opens a key: only the first key it opens would ever be used. */
async function refuseReusedPassphrase(
  keys: KeyFileInfo[],
  passphrase: string,
  revoked: Map<string, RevocationRecord>,
): Promise<void> {
  for (const info of keys) {
    const opened = await unlockKeyFile(info, passphrase).catch((error: unknown) => {
      if (isAmberError(error)) return undefined; // a damaged key file opens nothing
      throw error;
    });
    if (!opened) continue;
    throw new AmberError(
      'PASSPHRASE_IN_USE',
      `the new passphrase already opens key ${info.keyId.slice(0, 8)}${revoked.has(info.keyId) ? ' (revoked)' : ''}`,
      {
        hint: 'choose a different passphrase for each key',
      },
    );
  }
}

async function putRecord(
  repo: Operation,
  prefix: 'keys' | 'epochs' | 'revocations' | 'witnesses',
  bytes: Buffer,
): Promise<string> {
  const name = objectName(prefix, sha256Hex(bytes));
  await repo.store.put(name, bytes);
  // Who may sign what changed, and with it which retention records count.
  repo.retentionStateChanged();
  return name;
}

/**
 * Accepts a vault's key as a witness: it may sign audit entries (what the vault's clients did), and
 * nothing else. Owner only. Adding the same key twice changes nothing.
 */
export async function addWitness(
  repo: Operation,
  publicKey: string,
  label: string,
  audit: { lock?: ObjectLock } = {},
): Promise<string | undefined> {
  if (repo.key.role !== 'full') throw new AmberError('WRITE_ONLY_KEY', 'accepting a witness needs a full-access key');
  if (!/^[0-9a-f]{64}$/.test(publicKey))
    throw new AmberError('USAGE', 'a witness key is 64 hex digits (an Ed25519 public key)');
  if (repo.witnesses.some((witness) => witness.publicKey === publicKey)) return undefined;
  const record: WitnessRecord = { time: nowIso(repo.clock), publicKey, label };
  const name = await putRecord(repo, 'witnesses', encodeSignedRecord('witness', jsonBytes(record), repo.key.signer));
  repo.witnesses = [...repo.witnesses, record];
  refreshAuthority(repo);
  await appendAudit(repo, { action: 'witness.add', target: publicKey, details: { label } }, audit);
  return name;
}

function refreshAuthority(repo: Operation): void {
  repo.authority = createAuthority(
    Buffer.from(repo.config.ownerPublicKey, 'hex'),
    repo.keyFiles.map(({ info }) => info),
    repo.revocations,
    repo.witnesses,
  );
}

/** Names of the snapshots, index objects and packs that `writer` signed and that exist now. */
async function objectsSignedBy(repo: Operation, writer: KeyFileInfo): Promise<string[]> {
  const publicKey = Buffer.from(writer.signingPublicKey, 'hex');
  const found: string[] = [];
  // Its grants too: a revocation must not take back the retention the key gave its own backups.
  for (const [prefix, kind] of [
    ['snapshots', 'snapshot'],
    ['index', 'index'],
    ['grants', 'grant'],
  ] as const) {
    found.push(...(await recordsSignedBy(repo, prefix, kind, writer.keyId, publicKey)));
  }
  found.push(...(await packsSignedBy(repo, writer.keyId)));
  return found.sort();
}

/** Records whose envelope names `keyId` as signer (read from the tail) and whose signature holds. */
async function recordsSignedBy(
  repo: Operation,
  prefix: 'snapshots' | 'index' | 'grants',
  kind: ObjectKind,
  keyId: KeyId,
  publicKey: Buffer,
): Promise<string[]> {
  const tailBytes = KEY_ID_BYTES + SIGNATURE_BYTES;
  return mapLimited(repo.store.list(PREFIX[prefix]), async ({ name, sizeBytes }) => {
    if (hashOfName(name) === undefined || sizeBytes < tailBytes) return undefined;
    const tail = await repo.store.get(name, { offset: sizeBytes - tailBytes, length: KEY_ID_BYTES });
    if (Buffer.from(tail).toString('hex') !== keyId) return undefined;
    try {
      await readRecord(repo.store, name, kind, (signer) => (signer === keyId ? publicKey : undefined));
      return name;
    } catch (error) {
      if (isAmberError(error) && ['OBJECT_CORRUPT', 'SIGNATURE_INVALID', 'FORMAT_UNSUPPORTED'].includes(error.code))
        return undefined;
      throw error;
    }
  });
}

/**
 * Packs whose trailer names `keyId`. Only the trailer is read (packs are large): listing a pack does
 * not make it valid, since every full read still checks its hash and signature.
 */
async function packsSignedBy(repo: Operation, keyId: KeyId): Promise<string[]> {
  return mapLimited(repo.store.list(PREFIX.data), async ({ name, sizeBytes }) => {
    const hash = hashOfName(name);
    if (!hash || name !== packName(asPackId(hash)) || sizeBytes < TRAILER_BYTES) return undefined;
    try {
      const trailer = decodeTrailer(
        await repo.store.get(name, { offset: sizeBytes - TRAILER_BYTES, length: TRAILER_BYTES }),
        name,
      );
      return trailer.signerKeyId === keyId ? name : undefined;
    } catch (error) {
      if (isAmberError(error, 'OBJECT_CORRUPT') || isAmberError(error, 'OBJECT_NOT_FOUND')) return undefined;
      throw error;
    }
  });
}

/** Runs `work` over a listing with a few calls in flight; keeps the defined results, throws the first error. */
async function mapLimited<T, R>(items: AsyncIterable<T>, work: (item: T) => Promise<R | undefined>): Promise<R[]> {
  const results: R[] = [];
  const running = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  for await (const item of items) {
    if (failure) break;
    const task: Promise<void> = work(item)
      .then(
        (result) => {
          if (result !== undefined) results.push(result);
        },
        (error: unknown) => {
          failure ??= { error };
        },
      )
      .finally(() => running.delete(task));
    running.add(task);
    if (running.size >= TRAILER_READS_IN_FLIGHT) await Promise.race(running);
  }
  await Promise.all(running);
  if (failure) throw failure.error;
  return results;
}
