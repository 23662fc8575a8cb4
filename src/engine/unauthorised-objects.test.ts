// Junk uploads, as someone with write access to the storage makes them: bytes that hash to their
// names under snapshots/, index/, audit/ (with a real sequence number) and data/ (without the fan-out
// folder). Every reader ignores and reports them and none is blocked by them: verify (exit 0),
// audit verify (the real chain is intact, and a real entry removed or altered is still caught) and
// prune. A damaged snapshot that was really written still stops prune. On the fs store (through the
// CLI), behind a vault on 127.0.0.1 (written straight into its directory) and in an S3 bucket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { systemClock } from '../core/clock.ts';
import { initRepository, openRepository } from '../repo/repository.ts';
import { createHttpStore } from '../storage/http/http-store.ts';
import type { Store } from '../storage/store.ts';
import {
  createScratchRepo,
  flipByte,
  liftAttributes,
  listNames,
  makeTempDir,
  rejectsWithCode,
  removeTree,
  seededBytes,
  TEST_PASSPHRASE,
  useTemporaryWriterCache,
} from '../testing/repo-fixture.ts';
import { freshS3Store, whenS3 } from '../testing/s3-fixture.ts';
import { startVault } from '../vault/server.ts';
import { createToken } from '../vault/tokens.ts';
import { backup } from './backup.ts';
import { verify } from './verify.ts';
import { verifyAudit } from '../governance/audit-log.ts';
import { prune } from '../protection/prune.ts';
import { listSnapshots } from './snapshots.ts';
import { testOperation, testRetentionClock } from '../testing/operation.ts';
import type { Operation } from '../governance/operation.ts';

const BIN = fileURLToPath(new URL('../../bin/amber.js', import.meta.url));
const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** The four junk objects of the red team's report: random bytes, each named by its own hash. */
function junkObjects(): { name: string; bytes: Buffer }[] {
  const make = (name: (hash: string) => string) => {
    const bytes = randomBytes(300);
    return { name: name(sha(bytes)), bytes };
  };
  return [
    make((hash) => `snapshots/${hash}`),
    make((hash) => `index/${hash}`),
    make((hash) => `audit/000000000001-${hash}`),
    make((hash) => `data/${hash}`),
  ];
}

/** Written as the attacker would: new files straight into the repository's directories (as root: appending to an append-only directory is allowed). */
async function plantFiles(repoDir: string, junk: { name: string; bytes: Buffer }[]): Promise<void> {
  for (const { name, bytes } of junk) {
    await fs.mkdir(join(repoDir, name, '..'), { recursive: true });
    await fs.writeFile(join(repoDir, name), bytes, { flag: 'wx' });
  }
}

/** What every reader must do with the junk in `repo`, which holds `snapshots` real backups. */
async function assertJunkIgnored(
  repo: Operation,
  junk: { name: string; bytes: Buffer }[],
  snapshots: number,
): Promise<void> {
  const junkNames = junk.map(({ name }) => name).sort();
  const verified = await verify({ repo, readDataFraction: 1 });
  assert.deepEqual(verified.problems, [], 'no damage to anything a snapshot needs');
  assert.deepEqual(
    verified.ignored.map(({ object }) => object).sort(),
    junkNames,
    'each junk object is reported, once',
  );
  assert.equal(verified.snapshots, snapshots);

  const audit = await verifyAudit(repo);
  assert.deepEqual(audit.problems, [], 'the real chain is not called tampered');
  assert.equal(audit.firstBad, null);
  assert.deepEqual(
    audit.ignored.map(({ name }) => name),
    junkNames.filter((name) => name.startsWith('audit/')),
  );

  const pruned = await prune({ repo, graceMs: 0 });
  assert.deepEqual(
    pruned.ignored.map(({ name }) => name),
    junkNames.filter((name) => name.startsWith('snapshots/')),
  );
  assert.equal((await listSnapshots(repo)).length, snapshots);
}

test('fs: the four junk objects are ignored and reported by verify (exit 0), audit verify and prune; a real entry altered or removed is still caught', async (t) => {
  const dir = await makeTempDir('junk-fs');
  t.after(() => removeTree(dir));
  const repo = join(dir, 'repo');
  const source = join(dir, 'source');
  await fs.mkdir(source);
  await fs.writeFile(join(source, 'a.bin'), seededBytes(200_000, 'junk-fs'));
  const env = {
    PATH: process.env.PATH,
    AMBER_PASSWORD: TEST_PASSPHRASE,
    AMBER_KDF_LOG_N: '10',
    AMBER_REPO: repo,
    AMBER_CACHE_DIR: join(dir, 'cache'),
  };
  const amber = (...args: string[]) => {
    const run = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env });
    return { status: run.status, stdout: run.stdout, stderr: run.stderr };
  };
  assert.equal(amber('init').status, 0);
  assert.equal(amber('backup', source).status, 0);
  await fs.writeFile(join(source, 'b.bin'), seededBytes(50_000, 'junk-fs-2'));
  assert.equal(amber('backup', source).status, 0);

  const junk = junkObjects();
  await plantFiles(repo, junk);

  const verified = amber('verify', '--read-data');
  assert.equal(
    verified.status,
    0,
    `verify exits 0 when every real snapshot and its data are intact:\n${verified.stdout}${verified.stderr}`,
  );
  for (const { name } of junk)
    assert.ok(verified.stdout.includes(`warning: ignored: ${name}`), `verify names ${name}:\n${verified.stdout}`);
  assert.match(verified.stdout, /4 unauthorised objects ignored/);
  assert.match(verified.stdout, /no problems found/);
  const audit = amber('audit', 'verify');
  assert.equal(audit.status, 0, audit.stdout + audit.stderr);
  assert.match(audit.stdout, /the audit log is intact/);
  assert.match(audit.stdout, new RegExp(`warning: ignored ${junk[2].name}`));
  const pruned = amber('prune', '--grace', '0s');
  assert.equal(pruned.status, 0, pruned.stdout + pruned.stderr);
  assert.match(pruned.stdout, new RegExp(`warning: ignored ${junk[0].name}, which is no snapshot`));

  const owner = testOperation(
    await openRepository({
      store: (await import('../storage/fs/fs-store.ts')).createFsStore(repo),
      passphrase: TEST_PASSPHRASE,
      clock: systemClock,
    }),
  );
  await assertJunkIgnored(owner, junk, 2);

  // With the junk still there, a real entry altered, or removed, is still tampering.
  const [first] = (await listNames(owner.store, 'audit/')).filter(
    (name) => name.startsWith('audit/000000000001-') && name !== junk[2].name,
  );
  await flipByte(join(repo, first));
  const altered = await verifyAudit(owner);
  assert.equal(altered.firstBad?.name, first);
  assert.match(altered.firstBad!.problem, /does not hash to its name/);
  assert.equal(amber('audit', 'verify').status, 1);
  await liftAttributes(join(repo, 'audit'));
  await fs.rm(join(repo, first));
  const removed = await verifyAudit(owner);
  assert.ok(
    removed.problems.some(({ problem }) => /which is missing \(removed\)/.test(problem)),
    JSON.stringify(removed.problems),
  );
});

test('a damaged snapshot object that was really written still stops prune, and verify fails on it', async (t) => {
  const { dir, repoPath, owner } = await createScratchRepo(t, 'junk-damaged');
  const source = join(dir, 'source');
  await fs.mkdir(source);
  await fs.writeFile(join(source, 'a.bin'), seededBytes(100_000, 'junk-damaged'));
  const { snapshotId } = await backup({ repo: owner, paths: [source] });
  await plantFiles(repoPath, junkObjects());
  await flipByte(join(repoPath, 'snapshots', snapshotId));
  const error = await rejectsWithCode(prune({ repo: owner, graceMs: 0 }), 'VERIFY_FAILED');
  assert.match(error.message, new RegExp(`snapshots/${snapshotId}`));
  const { problems } = await verify({ repo: owner, readDataFraction: 0 });
  assert.ok(
    problems.some(({ object, code }) => object === `snapshots/${snapshotId}` && code === 'OBJECT_CORRUPT'),
    JSON.stringify(problems),
  );
});

test('vault: junk written straight into the directory behind a vault is ignored by verify, audit verify and prune through it', async (t) => {
  const dir = await makeTempDir('junk-vault');
  useTemporaryWriterCache(dir);
  const dataDir = join(dir, 'data');
  const vault = await startVault({
    dataDir,
    port: 0,
    clock: systemClock,
    retentionClock: testRetentionClock(systemClock),
  });
  t.after(async () => {
    await vault.close();
    await removeTree(dir);
  });
  const admin = createHttpStore(`${vault.url}/team`, {
    token: createToken(dataDir, { role: 'admin', repo: 'team', nowMs: Date.now() }).token,
    attempts: 1,
  });
  await admin.createRepository();
  testOperation(await initRepository({ store: admin, passphrase: TEST_PASSPHRASE, clock: systemClock, kdfLogN: 10 }));
  // A maintainer may read everything and prune; a writer backs up.
  const as = async (role: 'writer' | 'maintainer') =>
    openRepository({
      store: createHttpStore(`${vault.url}/team`, {
        token: createToken(dataDir, { role, repo: 'team', nowMs: Date.now() }).token,
        attempts: 1,
      }),
      passphrase: TEST_PASSPHRASE,
      clock: systemClock,
    }).then((opened) => testOperation(opened));
  const source = join(dir, 'source');
  await fs.mkdir(source);
  await fs.writeFile(join(source, 'a.bin'), seededBytes(100_000, 'junk-vault'));
  await backup({ repo: await as('writer'), paths: [source] });
  const junk = junkObjects();
  await plantFiles(join(dataDir, 'repos', 'team'), junk);
  await assertJunkIgnored(await as('maintainer'), junk, 1);
});

whenS3(() => {
  test('S3: junk put straight into the bucket with write credentials is ignored by verify, audit verify and prune', async (t) => {
    const dir = await makeTempDir('junk-s3');
    t.after(() => removeTree(dir));
    const store: Store = await freshS3Store();
    const owner = testOperation(
      await initRepository({ store, passphrase: TEST_PASSPHRASE, clock: systemClock, kdfLogN: 10 }),
    );
    const source = join(dir, 'source');
    await fs.mkdir(source);
    await fs.writeFile(join(source, 'a.bin'), seededBytes(100_000, 'junk-s3'));
    await backup({ repo: owner, paths: [source] });
    const junk = junkObjects();
    // Plain PUTs: the store's put is the S3 client's, and checks nothing about the bytes.
    for (const { name, bytes } of junk) await store.put(name, bytes);
    await assertJunkIgnored(owner, junk, 1);
  });
});
