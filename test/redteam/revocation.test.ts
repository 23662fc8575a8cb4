// Red team: revoking a write-only key (the documented response to a stolen backup host) makes every
// grant that key wrote unauthorised — revocations accept only its snapshots, index objects and packs,
// never its grants — so its snapshots lose every lock. A full-key holder can then hide them at once
// with a forget mark on any store (fs, S3), and through a vault forget, condemn and delete them once
// the policy's *default* retention has passed since upload, whatever their compliance lock says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { systemClock, type Clock } from '../../src/core/clock.ts';
import { initRepository, openRepository } from '../../src/repo/repository.ts';
import { createHttpStore } from '../../src/storage/http/http-store.ts';
import {
  makeTempDir,
  removeTree,
  seededBytes,
  TEST_PASSPHRASE,
  useTemporaryWriterCache,
  createTestRepo,
  openTestRepo,
} from '../../src/testing/repo-fixture.ts';
import { backup } from '../../src/engine/backup.ts';
import { listSnapshots } from '../../src/engine/snapshots.ts';
import { verify } from '../../src/engine/verify.ts';
import { addKey, revokeKey } from '../../src/protection/key-admin.ts';
import { CONDEMNS, FORGETS, putRecord } from '../../src/repo/retention-records.ts';
import { startVault } from '../../src/vault/server.ts';
import { createToken } from '../../src/vault/tokens.ts';
import { createFsStore } from '../../src/storage/fs/fs-store.ts';
import { testOperation, testRetentionClock } from '../../src/testing/operation.ts';

const DAY = 86_400_000;
const WRITER_PASS = 'writer passphrase for the db1 host';

test('fs: after revoking a writer, a forget mark hides its 7-year compliance snapshot at once and verify is green', async (t) => {
  const dir = await makeTempDir('rt-revoke-fs');
  useTemporaryWriterCache(dir);
  t.after(() => removeTree(dir));
  const source = join(dir, 'src');
  await fs.mkdir(source);
  await fs.writeFile(join(source, 'a.bin'), seededBytes(200_000, 'a'));
  const owner = await createTestRepo(join(dir, 'repo'));
  const added = await addKey(owner, { passphrase: WRITER_PASS, role: 'write-only', kdfLogN: 10 });
  const writer = testOperation(
    await openRepository({ store: createFsStore(join(dir, 'repo')), passphrase: WRITER_PASS, clock: systemClock }),
  );
  const { snapshotId } = await backup({
    repo: writer,
    paths: [source],
    retainMs: 7 * 365 * DAY,
    lockMode: 'compliance',
  });
  await revokeKey(owner, added.keyId, { reason: 'db1 stolen' });
  const reopened = await openTestRepo(join(dir, 'repo'));
  await putRecord(reopened, FORGETS, { time: new Date().toISOString(), snapshots: [snapshotId], rule: 'last=0' });
  const after = await openTestRepo(join(dir, 'repo'));
  assert.deepEqual(
    (await listSnapshots(after)).map(({ id }) => id),
    [snapshotId],
    'a compliance-locked snapshot must stay listed',
  );
  const checked = await verify({ repo: after, readDataFraction: 0 });
  assert.notDeepEqual(checked.problems, [], 'verify must not be green while a locked snapshot is hidden');
});

test('vault: after revoking a writer, a maintainer with the full key forgets, condemns and deletes its 7-year compliance snapshot 31 days later', async (t) => {
  const dir = await makeTempDir('rt-revoke-vault');
  useTemporaryWriterCache(dir);
  const dataDir = join(dir, 'data');
  let offsetMs = 0;
  const vaultClock: Clock = { nowMs: () => Date.now() + offsetMs, monotonicMs: () => systemClock.monotonicMs() };
  const vault = await startVault({
    dataDir,
    port: 0,
    clock: vaultClock,
    retentionClock: testRetentionClock(vaultClock),
  });
  t.after(async () => {
    await vault.close();
    await removeTree(dir);
  });
  const token = (role: 'admin' | 'writer' | 'maintainer' | 'reader') =>
    createToken(dataDir, { role, repo: 'team', nowMs: Date.now() }).token;
  const storeFor = (secret: string) => createHttpStore(`${vault.url}/team`, { token: secret, attempts: 1 });
  const adminStore = storeFor(token('admin'));
  await adminStore.createRepository();
  const owner = testOperation(
    await initRepository({ store: adminStore, passphrase: TEST_PASSPHRASE, clock: systemClock, kdfLogN: 10 }),
  );
  const added = await addKey(owner, { passphrase: WRITER_PASS, role: 'write-only', kdfLogN: 10 });
  const source = join(dir, 'src');
  await fs.mkdir(source);
  await fs.writeFile(join(source, 'a.bin'), seededBytes(200_000, 'a'));
  const writer = testOperation(
    await openRepository({ store: storeFor(token('writer')), passphrase: WRITER_PASS, clock: systemClock }),
  );
  const { snapshotId } = await backup({
    repo: writer,
    paths: [source],
    retainMs: 7 * 365 * DAY,
    lockMode: 'compliance',
  });
  // The owner revokes the stolen host's key, as the docs say to.
  await revokeKey(
    testOperation(
      await openRepository({ store: storeFor(token('admin')), passphrase: TEST_PASSPHRASE, clock: systemClock }),
    ),
    added.keyId,
    { reason: 'db1 stolen' },
  );

  offsetMs = 31 * DAY; // a month later, by the vault's own (honest) clock
  const maintainer = testOperation(
    await openRepository({ store: storeFor(token('maintainer')), passphrase: TEST_PASSPHRASE, clock: vaultClock }),
  );
  const snapshot = `snapshots/${snapshotId}`;
  const forgot = await putRecord(maintainer, FORGETS, {
    time: new Date(vaultClock.nowMs()).toISOString(),
    snapshots: [snapshotId],
    rule: 'last=0',
  }).then(
    () => 'stored',
    (error: Error & { code?: string }) => error.code,
  );
  const packs = (await fs.readdir(join(dataDir, 'repos/team/data'), { recursive: true }))
    .filter((p) => /\/[0-9a-f]{64}$/.test(p))
    .map((p) => `data/${p}`);
  const condemned = await putRecord(maintainer, CONDEMNS, {
    time: new Date(vaultClock.nowMs()).toISOString(),
    graceMs: 0,
    objects: [snapshot, ...packs].map((name) => ({ name, sizeBytes: 1 })),
  }).then(
    () => 'stored',
    (error: Error & { code?: string }) => error.code,
  );
  offsetMs += 1000;
  const deleted: string[] = [];
  for (const name of [snapshot, ...packs])
    await maintainer.store.deleteExpired(name).then(
      () => deleted.push(name),
      () => undefined,
    );
  assert.deepEqual(
    { forgot, condemned, deleted },
    { forgot: 'RETENTION_ACTIVE', condemned: 'RETENTION_ACTIVE', deleted: [] },
    'the vault must refuse to forget, condemn or delete a snapshot under a 7-year compliance lock',
  );
});
