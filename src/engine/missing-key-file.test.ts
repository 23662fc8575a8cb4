// A key file removed by root (or anyone who may delete from the store) makes everything its key
// signed read as unauthorised. The repository's own records still name the key — the owner's
// key.add entry, and the writer's audit entries, which carry its owner-signed key file — so verify,
// audit verify and prune must not take that writer's backups for junk (docs/format.md §16.8).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateSigningKeyPair } from '../crypto/index.ts';
import { systemClock } from '../core/clock.ts';
import { addKey } from '../protection/key-admin.ts';
import { createFsStore } from '../storage/fs/fs-store.ts';
import { backup } from './backup.ts';
import { createKeyFile, newRepoSecrets, signerOf } from '../repo/keys.ts';
import { putAuditEntry } from '../repo/audit-records.ts';
import { DeleteObjectCommand, ListObjectVersionsCommand, S3Client } from '@aws-sdk/client-s3';
import {
  createScratchRepo,
  makeTempDir,
  openTestRepo,
  removeTree,
  seededBytes,
  TEST_PASSPHRASE,
  useTemporaryWriterCache,
} from '../testing/repo-fixture.ts';
import { freshS3Store, s3Env, whenS3 } from '../testing/s3-fixture.ts';
import { createS3Store } from '../storage/s3/s3-store.ts';
import { initRepository, openRepository } from '../repo/repository.ts';
import { listSnapshots } from './snapshots.ts';
import { appendAudit, readAuditLog, verifyAudit } from '../governance/audit-log.ts';
import { verify } from './verify.ts';
import { prune } from '../protection/prune.ts';
import { testOperation } from '../testing/operation.ts';
import type { Operation } from '../governance/operation.ts';
import { objectName } from '../repo/layout.ts';
import { sha256Hex } from '../crypto/index.ts';

const BIN = fileURLToPath(new URL('../../bin/amber.js', import.meta.url));

/** As root by hand: lift the attributes (where chattr works), remove the file, set the directory's again. */
/**
 * A write-only key added the way Amber did before `addKey` wrote its own key.add entry: a key file
 * and nothing in the log, so only the writer's own entries name it.
 */
async function addKeyWithoutEntry(owner: Operation, passphrase: string): Promise<{ keyId: string; name: string }> {
  const { bytes, info } = await createKeyFile({
    role: 'write-only',
    passphrase,
    secrets: owner.key.secrets,
    owner: owner.key.signer,
    configHash: owner.configHash,
    createdAt: new Date().toISOString(),
    kdfLogN: 10,
  });
  const name = objectName('keys', sha256Hex(bytes));
  await owner.store.put(name, bytes);
  return { keyId: info.keyId, name };
}

async function removeAsRoot(repoPath: string, name: string): Promise<void> {
  const path = join(repoPath, name);
  const chattr = (...args: string[]) => spawnSync('chattr', args, { stdio: 'ignore' }).status === 0;
  chattr('-i', path);
  const appendOnly = chattr('-a', dirname(path));
  await fs.rm(path);
  if (appendOnly) chattr('+a', dirname(path));
}

test('a removed writer key file: verify, audit verify and prune fail, naming the key, the record that names it and the repair', async (t) => {
  const dir = await makeTempDir('missing-key-cli');
  t.after(() => removeTree(dir));
  const repo = join(dir, 'repo');
  const source = join(dir, 'source');
  await fs.mkdir(source);
  const base = { PATH: process.env.PATH, AMBER_KDF_LOG_N: '10', AMBER_REPO: repo, AMBER_CACHE_DIR: join(dir, 'cache') };
  const amber = (password: string, ...args: string[]) => {
    const run = spawnSync(process.execPath, [BIN, ...args], {
      encoding: 'utf8',
      env: { ...base, AMBER_PASSWORD: password, AMBER_NEW_PASSWORD: 'db1 writer passphrase' },
    });
    return { status: run.status, out: `${run.stdout}${run.stderr}`, stdout: run.stdout };
  };
  assert.equal(amber(TEST_PASSPHRASE, 'init').status, 0);
  const added = amber(TEST_PASSPHRASE, 'key', 'add', '--write-only', '--label', 'db1', '--json');
  assert.equal(added.status, 0, added.out);
  const { keyId, name: keyFile } = JSON.parse(added.stdout) as { keyId: string; name: string };
  for (let i = 0; i < 2; i++) {
    await fs.writeFile(join(source, `f${i}.bin`), seededBytes(60_000, `missing-key-${i}`));
    const run = amber('db1 writer passphrase', 'backup', source, '--retain', '7y', '--lock-mode', 'compliance');
    assert.equal(run.status, 0, run.out);
  }
  assert.equal(amber(TEST_PASSPHRASE, 'verify').status, 0, 'intact before the attack');
  await removeAsRoot(repo, keyFile);

  const checked = amber(TEST_PASSPHRASE, 'verify');
  assert.equal(checked.status, 1, checked.out);
  const line = checked.out
    .split('\n')
    .find((text) => text.startsWith('error:') && text.includes(`the key file ${keyFile} of key ${keyId} is missing`));
  assert.ok(line, checked.out);
  assert.match(line, /key\.add entry audit\/\d{12}-[0-9a-f]{64}/);
  assert.match(line, new RegExp(`Put ${keyFile} back from an isolated copy`));
  assert.match(
    checked.out,
    /error: .*snapshots\/[0-9a-f]{64}.*whose key file keys\/[0-9a-f]{64} is missing/,
    'its snapshots are reported, not ignored',
  );

  const audit = amber(TEST_PASSPHRASE, 'audit', 'verify');
  assert.equal(audit.status, 1, audit.out);
  assert.ok(audit.out.includes(`the key file ${keyFile} of key ${keyId} is missing`), audit.out);

  const pruned = amber(TEST_PASSPHRASE, 'prune');
  assert.notEqual(pruned.status, 0, pruned.out);
  assert.match(
    pruned.out,
    new RegExp(`prune stopped: .*signed by key ${keyId.slice(0, 8)}, whose key file ${keyFile} is missing`),
  );
});

test("a writer whose key file is gone keeps its snapshots out of prune's junk even when only its own entries name it", async (t) => {
  const { dir, repoPath, owner } = await createScratchRepo(t, 'missing-key-prune');
  const source = join(dir, 'source');
  await fs.mkdir(source);
  await fs.writeFile(join(source, 'a.bin'), seededBytes(40_000, 'missing-key-prune'));
  const added = await addKeyWithoutEntry(owner, 'writer pass');
  const writer = testOperation(
    await openRepository({ store: createFsStore(repoPath), passphrase: 'writer pass', clock: systemClock }),
  );
  await backup({ repo: writer, paths: [source] });
  await removeAsRoot(repoPath, added.name);
  const repo = await openTestRepo(repoPath);
  await assert.rejects(
    prune({ repo, graceMs: 0, dryRun: true }),
    (error: Error) =>
      /prune stopped/.test(error.message) &&
      error.message.includes(added.name) &&
      error.message.includes(added.keyId.slice(0, 8)),
  );
  const log = await readAuditLog(repo);
  assert.deepEqual([...log.certifiedKeys.keys()], [added.keyId], 'its entry is read through the key file it carries');
  assert.deepEqual(
    (await verifyAudit(repo)).missingKeys.map(({ keyId, keyFile, how }) => [keyId, keyFile, how]),
    [[added.keyId, added.name, 'signed with it']],
  );
});

test('an old key.add entry that names only the key id is checked against the key ids in keys/', async (t) => {
  const { repoPath, owner } = await createScratchRepo(t, 'missing-key-old-entry');
  const added = await addKeyWithoutEntry(owner, 'second key');
  const entry = await appendAudit(owner, {
    action: 'key.add',
    target: added.keyId,
    details: { role: 'write-only', label: '' },
  });
  await removeAsRoot(repoPath, added.name);
  const repo = await openTestRepo(repoPath);
  const audit = await verifyAudit(repo);
  assert.deepEqual(
    audit.problems.map(({ name }) => name),
    [entry.name],
  );
  assert.match(
    audit.problems[0].problem,
    new RegExp(`key ${added.keyId} is missing.*it is the key file whose keyId is ${added.keyId}`),
  );
  const { problems } = await verify({ repo, readDataFraction: 0 });
  assert.deepEqual(
    problems.map(({ object, code }) => [object, code]),
    [[`keys/ (key ${added.keyId})`, 'OBJECT_NOT_FOUND']],
  );
});

test('an entry carrying a key file the owner did not sign stays unauthorised junk: verify and audit verify pass', async (t) => {
  const { repoPath, owner } = await createScratchRepo(t, 'missing-key-forged');
  const forgedOwner = signerOf(generateSigningKeyPair());
  const forged = await createKeyFile({
    role: 'write-only',
    passphrase: 'x',
    secrets: newRepoSecrets(),
    owner: forgedOwner,
    configHash: owner.configHash,
    createdAt: new Date().toISOString(),
    kdfLogN: 10,
  });
  const log = await readAuditLog(owner);
  const written = await putAuditEntry(
    owner.store,
    {
      repository: owner.config.repositoryId,
      seq: 1 + Math.max(0, ...log.entries.map(({ entry }) => entry.seq)),
      time: new Date().toISOString(),
      actor: 'mallory',
      action: 'backup',
      target: 'ab'.repeat(32),
      details: {},
      previous: [],
      signerKeyFile: forged.bytes.toString('base64'),
    },
    forged.key.signer,
  );
  const repo = await openTestRepo(repoPath);
  const audit = await verifyAudit(repo);
  assert.deepEqual(audit.problems, []);
  assert.deepEqual(audit.missingKeys, []);
  assert.ok(audit.ignored.some(({ name }) => name === written.name));
  const checked = await verify({ repo, readDataFraction: 0 });
  assert.deepEqual(checked.problems, []);
  assert.ok(checked.ignored.some(({ object }) => object === written.name));
});

whenS3(() => {
  test("S3: a writer's key file is locked by its first backup; the bucket's admin can only hide it behind a delete marker, which changes nothing and verify reports", async (t) => {
    const dir = await makeTempDir('missing-key-s3');
    useTemporaryWriterCache(dir);
    t.after(() => removeTree(dir));
    const source = join(dir, 'source');
    await fs.mkdir(source);
    await fs.writeFile(join(source, 'a.bin'), seededBytes(40_000, 'missing-key-s3'));
    const store = await freshS3Store();
    const owner = testOperation(
      await initRepository({ store, passphrase: TEST_PASSPHRASE, clock: systemClock, kdfLogN: 10 }),
    );
    const added = await addKey(owner, { passphrase: 'writer pass', role: 'write-only', kdfLogN: 10 });
    await appendAudit(owner, {
      action: 'key.add',
      target: added.keyId,
      details: { role: added.role, keyFile: added.name },
    });
    const writer = testOperation(await openRepository({ store, passphrase: 'writer pass', clock: systemClock }));
    const { snapshotId } = await backup({
      repo: writer,
      paths: [source],
      retainMs: 86_400_000,
      lockMode: 'compliance',
    });
    const s3 = new S3Client({
      endpoint: s3Env!.endpoint,
      forcePathStyle: true,
      region: s3Env!.region,
      credentials: s3Env!.credentials,
      requestChecksumCalculation: 'WHEN_REQUIRED',
    });
    const { Versions } = await s3.send(new ListObjectVersionsCommand({ Bucket: store.bucket, Prefix: added.name }));
    assert.equal(Versions?.length, 1);
    await assert.rejects(
      s3.send(
        new DeleteObjectCommand({
          Bucket: store.bucket,
          Key: added.name,
          VersionId: Versions![0].VersionId,
          BypassGovernanceRetention: true,
        }),
      ),
    );
    await s3.send(new DeleteObjectCommand({ Bucket: store.bucket, Key: added.name }));
    const fresh = createS3Store(
      { endpoint: s3Env!.endpoint, bucket: store.bucket, prefix: '' },
      { clock: systemClock, credentials: s3Env!.credentials, region: s3Env!.region },
    );
    const repo = testOperation(await openRepository({ store: fresh, passphrase: TEST_PASSPHRASE, clock: systemClock }));
    assert.ok(
      (await listSnapshots(repo)).some(({ id }) => id === snapshotId),
      'Amber reads the oldest version: the key file is still there',
    );
    const { problems } = await verify({ repo, readDataFraction: 0 });
    assert.deepEqual(
      problems.map(({ object, code }) => [object, code]),
      [[added.name, 'STORAGE_TAMPERED']],
    );
  });
});
