import { test } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock } from '../core/clock.ts';
import { isAmberError, type ErrorCode } from '../core/errors.ts';
import { asKeyId, asSnapshotId } from '../core/ids.ts';
import { randomKey, sha256Hex } from '../crypto/index.ts';
import { createMemoryStore } from '../storage/memory/memory-store.ts';
import type { Store } from '../storage/store.ts';
import type { RevocationRecord } from '../repo/authority.ts';
import { blobIdOf, encodeBlob } from '../repo/blob-codec.ts';
import type { EpochRecord } from '../repo/epochs.ts';
import { encodeIndex } from '../repo/index-file.ts';
import { addKey, findKey, listKeys, revokeKey, rotateKey } from './key-admin.ts';
import type { KeyFileInfo } from '../repo/keys.ts';
import { objectName, packName, snapshotName } from '../repo/layout.ts';
import { assemblePack, newPackKey } from '../repo/pack.ts';
import { readRecords, type RecordProblem } from '../repo/records.ts';
import { initRepository, openRepository } from '../repo/repository.ts';
import { encodeSnapshot, type Snapshot } from '../repo/snapshot.ts';
import { parseJsonPayload } from '../repo/signed-record.ts';
import { testOperation } from '../testing/operation.ts';
import type { Operation } from '../governance/operation.ts';
import { readAuditLog, verifyAudit } from '../governance/audit-log.ts';

const KDF = 10;
const open = (store: Store, passphrase: string) =>
  openRepository({ store, passphrase, clock: systemClock }).then((opened) => testOperation(opened));
const fails = (code: ErrorCode) => (error: unknown) => isAmberError(error, code);

async function newRepo(): Promise<{ store: Store; owner: Operation }> {
  const store = createMemoryStore();
  const owner = testOperation(await initRepository({ store, passphrase: 'owner', clock: systemClock, kdfLogN: KDF }));
  return { store, owner };
}

/** The owner-signed records under a prefix, decoded. */
async function storedRecords<T>(
  store: Store,
  prefix: 'epochs' | 'revocations',
  kind: 'epoch' | 'revocation',
): Promise<T[]> {
  const config = (await open(store, 'owner')).config;
  const ownerKey = Buffer.from(config.ownerPublicKey, 'hex');
  const problems: RecordProblem[] = [];
  const records = await readRecords(store, prefix, kind, () => ownerKey, problems);
  assert.deepEqual(problems, []);
  return records.map(({ name, record }) => parseJsonPayload<T>(record, name));
}

test('a second full key opens the repository and holds every epoch private key the first one has', async () => {
  const { store, owner } = await newRepo();
  await rotateKey(owner, { reason: 'test' });
  const added = await addKey(owner, { passphrase: 'second', role: 'full', label: 'laptop', kdfLogN: KDF });
  assert.equal(added.role, 'full');
  assert.deepEqual(added.epochsGranted, [0, 1]);
  assert.equal(added.name, objectName('keys', added.name.slice('keys/'.length)));

  const second = await open(store, 'second');
  assert.equal(second.key.keyId, added.keyId);
  assert.equal(second.key.role, 'full');
  assert.equal(second.currentEpoch.epoch, 1);
  for (const epoch of [0, 1]) {
    assert.ok(second.epochs.get(epoch)?.privateKey?.equals(owner.epochs.get(epoch)!.privateKey!), `epoch ${epoch}`);
  }
  assert.equal(second.authority.ownerKeyId, owner.authority.ownerKeyId);
});

test('a write-only key opens without any epoch private key and cannot administer keys', async () => {
  const { store, owner } = await newRepo();
  const added = await addKey(owner, { passphrase: 'writer', role: 'write-only', kdfLogN: KDF });
  assert.deepEqual(added.epochsGranted, []);
  const writer = await open(store, 'writer');
  assert.equal(writer.key.role, 'write-only');
  assert.equal(writer.key.signer.keyId, added.keyId);
  assert.equal(writer.currentEpoch.privateKey, undefined);
  assert.ok(writer.key.secrets.indexKey.equals(owner.key.secrets.indexKey));

  await assert.rejects(addKey(writer, { passphrase: 'x', role: 'full', kdfLogN: KDF }), fails('WRITE_ONLY_KEY'));
  await assert.rejects(revokeKey(writer, owner.key.keyId, { reason: 'x' }), fails('WRITE_ONLY_KEY'));
  await assert.rejects(rotateKey(writer), fails('WRITE_ONLY_KEY'));
  // Listing is harmless: key files are public, signed metadata.
  assert.equal((await listKeys(writer)).length, 2);
});

test('a passphrase that already opens a key is refused for a new one', async () => {
  const { owner } = await newRepo();
  await assert.rejects(
    addKey(owner, { passphrase: 'owner', role: 'write-only', kdfLogN: KDF }),
    fails('PASSPHRASE_IN_USE'),
  );
});

test('listKeys shows roles, the current key and revocations', async () => {
  const { store, owner } = await newRepo();
  const writer = await addKey(owner, { passphrase: 'writer', role: 'write-only', label: 'server-1', kdfLogN: KDF });
  const second = await addKey(owner, { passphrase: 'second', role: 'full', kdfLogN: KDF });
  await revokeKey(owner, writer.keyId.slice(0, 10), { reason: 'server retired' });

  const keys = await listKeys(await open(store, 'second'));
  assert.equal(keys.length, 3);
  const byId = new Map(keys.map((key) => [key.keyId, key]));
  assert.deepEqual(
    {
      role: byId.get(owner.key.keyId)!.role,
      current: byId.get(owner.key.keyId)!.current,
      revoked: byId.get(owner.key.keyId)!.revoked,
    },
    { role: 'full', current: false, revoked: false },
  );
  assert.equal(byId.get(second.keyId)!.current, true);
  const revoked = byId.get(writer.keyId)!;
  assert.equal(revoked.role, 'write-only');
  assert.equal(revoked.label, 'server-1');
  assert.equal(revoked.revoked, true);
  assert.equal(revoked.revokeReason, 'server retired');
  assert.ok(revoked.revokedAt && !Number.isNaN(Date.parse(revoked.revokedAt)));
  assert.ok(keys.every((key) => typeof key.hostname === 'string' && typeof key.username === 'string' && key.createdAt));
});

test('revoking the key in use, an unknown or short prefix, or a key twice is refused', async () => {
  const { store, owner } = await newRepo();
  const writer = await addKey(owner, { passphrase: 'writer', role: 'write-only', kdfLogN: KDF });
  await assert.rejects(revokeKey(owner, owner.key.keyId, { reason: 'x' }), fails('KEY_IN_USE'));
  await assert.rejects(revokeKey(owner, owner.key.keyId.slice(0, 6), { reason: 'x' }), fails('KEY_IN_USE'));
  const unknown = writer.keyId.startsWith('0000') ? 'ffff' : '0000';
  await assert.rejects(revokeKey(owner, unknown, { reason: 'x' }), fails('KEY_NOT_FOUND'));
  await assert.rejects(revokeKey(owner, writer.keyId.slice(0, 3), { reason: 'x' }), fails('KEY_NOT_FOUND'));
  await assert.rejects(revokeKey(owner, 'not-hex!', { reason: 'x' }), fails('KEY_NOT_FOUND'));
  await revokeKey(owner, writer.keyId.toUpperCase(), { reason: 'x' });
  await assert.rejects(revokeKey(owner, writer.keyId, { reason: 'again' }), fails('KEY_ALREADY_REVOKED'));
  await assert.rejects(open(store, 'writer'), fails('KEY_REVOKED'));
  assert.equal((await storedRecords<RevocationRecord>(store, 'revocations', 'revocation')).length, 1);
});

test('findKey tells an ambiguous prefix from an unknown one', () => {
  const info = (keyId: string) => ({ keyId: asKeyId(keyId) }) as KeyFileInfo;
  const keys = [info(`abcd1${'0'.repeat(59)}`), info(`abcd2${'0'.repeat(59)}`)];
  assert.throws(() => findKey(keys, 'abcd', 'memory:'), fails('KEY_AMBIGUOUS'));
  assert.equal(findKey(keys, 'abcd2', 'memory:').keyId, keys[1].keyId);
  assert.throws(() => findKey(keys, 'abce', 'memory:'), fails('KEY_NOT_FOUND'));
});

test('a revocation accepts exactly the snapshots, index objects and packs the writer signed until then', async () => {
  const { store, owner } = await newRepo();
  await addKey(owner, { passphrase: 'writer', role: 'write-only', kdfLogN: KDF });
  const writer = await open(store, 'writer');
  const written = await writeObjects(writer, 'mine');
  const ownerWritten = await writeObjects(owner, 'owner');

  const result = await revokeKey(owner, writer.key.keyId, { reason: 'laptop stolen' });
  assert.equal(result.acceptedObjects, 3);
  const [record] = await storedRecords<RevocationRecord>(store, 'revocations', 'revocation');
  assert.deepEqual(record.acceptedObjects, [...written].sort());
  assert.equal(record.keyId, writer.key.keyId);
  assert.equal(record.reason, 'laptop stolen');

  const reopened = await open(store, 'owner');
  for (const name of written) assert.ok(reopened.authority.signingKeyFor(writer.key.keyId, name), name);
  assert.equal(reopened.authority.signingKeyFor(writer.key.keyId, `snapshots/${'e'.repeat(64)}`), undefined);
  assert.ok(reopened.authority.isRevoked(writer.key.keyId));
  // The revoking session sees the revocation at once, too.
  assert.ok(owner.authority.isRevoked(writer.key.keyId));
  assert.ok(ownerWritten.every((name) => !record.acceptedObjects.includes(name)));
});

test('rotateKey starts a new epoch granted only to full keys that are not revoked', async () => {
  const { store, owner } = await newRepo();
  const second = await addKey(owner, { passphrase: 'second', role: 'full', kdfLogN: KDF });
  const third = await addKey(owner, { passphrase: 'third', role: 'full', kdfLogN: KDF });
  const writer = await addKey(owner, { passphrase: 'writer', role: 'write-only', kdfLogN: KDF });
  await revokeKey(owner, third.keyId, { reason: 'left the company' });

  const rotated = await rotateKey(owner, { reason: 'after revoking a key' });
  assert.equal(rotated.epoch, 1);
  assert.deepEqual(new Set(rotated.grantedTo), new Set([owner.key.keyId, second.keyId]));
  assert.equal(owner.currentEpoch.epoch, 1);
  const epochs = await storedRecords<EpochRecord>(store, 'epochs', 'epoch');
  const newest = epochs.find((record) => record.epoch === 1)!;
  assert.equal(newest.reason, 'after revoking a key');
  assert.ok(!newest.grants.some((grant) => grant.keyId === third.keyId || grant.keyId === writer.keyId));

  const reopened = await open(store, 'second');
  assert.equal(reopened.currentEpoch.epoch, 1);
  assert.ok(reopened.currentEpoch.privateKey?.equals(owner.currentEpoch.privateKey!));
  assert.ok(reopened.epochs.get(0)?.privateKey);
  const writerRepo = await open(store, 'writer');
  assert.equal(writerRepo.currentEpoch.epoch, 1);
  assert.equal(writerRepo.currentEpoch.privateKey, undefined);
  await assert.rejects(open(store, 'third'), fails('KEY_REVOKED'));
  assert.equal((await rotateKey(reopened)).epoch, 2);
});

/** A pack, an index object and a snapshot signed by `repo`'s key; returns their names. */
async function writeObjects(repo: Operation, text: string): Promise<string[]> {
  const plaintext = Buffer.from(text);
  const id = blobIdOf(repo.key.secrets.idKey, plaintext);
  const packKey = newPackKey(repo.currentEpoch.epoch, repo.currentEpoch.publicKey, randomKey());
  const pack = assemblePack(
    [encodeBlob({ plaintext, id, type: 'data', dataKey: packKey.dataKey })],
    packKey,
    repo.key.signer,
  );
  await repo.store.put(packName(pack.id), pack.bytes);
  const index = encodeIndex([{ id: pack.id, entries: pack.entries }], repo.key.secrets.indexKey, repo.key.signer);
  const indexName = objectName('index', sha256Hex(index));
  await repo.store.put(indexName, index);
  const snapshot = encodeSnapshot(
    { time: text, tree: id.toString('hex') } as unknown as Snapshot,
    repo.currentEpoch,
    repo.key.signer,
  );
  const name = snapshotName(asSnapshotId(sha256Hex(snapshot)));
  await repo.store.put(name, snapshot);
  return [packName(pack.id), indexName, name];
}

test('records written by key administration carry the owner signature', async () => {
  const { store, owner } = await newRepo();
  await addKey(owner, { passphrase: 'writer', role: 'write-only', kdfLogN: KDF });
  const ownerKey = Buffer.from(owner.config.ownerPublicKey, 'hex');
  const lookup = () => ownerKey;
  const problems: RecordProblem[] = [];
  const keys = await readRecords(store, 'keys', 'key', lookup, problems);
  assert.equal(keys.length, 2);
  assert.deepEqual(problems, []);
  const infos = keys.map(({ name, record }) => parseJsonPayload<KeyFileInfo>(record, name));
  assert.ok(infos.every((info) => info.configHash === owner.configHash));
});

test('every key change writes its own audit entry, whoever calls the service (not only the CLI)', async () => {
  const { owner } = await newRepo();
  const added = await addKey(owner, { passphrase: 'writer', role: 'write-only', label: 'db1', kdfLogN: KDF });
  await revokeKey(owner, added.keyId, { reason: 'host retired' });
  const rotated = await rotateKey(owner, { reason: 'after revoking' });
  const entries = (await readAuditLog(owner)).entries.map(({ entry }) => [entry.action, entry.target, entry.details]);
  assert.deepEqual(entries, [
    ['key.add', added.keyId, { role: 'write-only', label: 'db1', keyFile: added.name }],
    ['key.revoke', added.keyId, { reason: 'host retired' }],
    [
      'key.rotate',
      owner.config.repositoryId,
      { epoch: rotated.epoch, record: rotated.name, grantedTo: rotated.grantedTo, reason: 'after revoking' },
    ],
  ]);
  assert.deepEqual((await verifyAudit(owner)).problems, []);
});
