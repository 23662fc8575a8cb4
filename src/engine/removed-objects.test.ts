// Deletion, the one attack left to root on an fs repository (or to write credentials on storage that
// lets them delete): a removed snapshot object is caught by verify through the grant and the audit
// entry that name it, and a removed newest audit entry through the checkpoint every full-key
// operation writes. Objects are deleted as the attacker would: lift the attributes, then rm.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { systemClock } from '../core/clock.ts';
import { openRepository } from '../repo/repository.ts';
import { addKey } from '../protection/key-admin.ts';
import { createFsStore } from '../storage/fs/fs-store.ts';
import {
  listNames,
  makeTempDir,
  openTestRepo,
  removeTree,
  seededBytes,
  TEST_PASSPHRASE,
  createScratchRepo,
} from '../testing/repo-fixture.ts';
import { backup } from './backup.ts';
import { verify } from './verify.ts';
import { readAuditLog, verifyAudit } from '../governance/audit-log.ts';
import { testOperation } from '../testing/operation.ts';

const BIN = fileURLToPath(new URL('../../bin/amber.js', import.meta.url));

/**
 * As root by hand: lift the file's immutable attribute and its directory's append-only one, remove
 * the file, and set the directory's attribute again (where chattr works; elsewhere rm alone does it).
 */
async function removeAsRoot(repoPath: string, name: string): Promise<void> {
  const path = join(repoPath, name);
  const chattr = (...args: string[]) => spawnSync('chattr', args, { stdio: 'ignore' }).status === 0;
  chattr('-i', path);
  const appendOnly = chattr('-a', dirname(path));
  await fs.rm(path);
  if (appendOnly) chattr('+a', dirname(path));
}

/** A repository (made with the CLI) holding three backups; the CLI to run against it. */
async function threeBackups(t: { after(fn: () => unknown): void }, label: string) {
  const dir = await makeTempDir(label);
  t.after(() => removeTree(dir));
  const repo = join(dir, 'repo');
  const source = join(dir, 'source');
  await fs.mkdir(source);
  const env = {
    PATH: process.env.PATH,
    AMBER_PASSWORD: TEST_PASSPHRASE,
    AMBER_KDF_LOG_N: '10',
    AMBER_REPO: repo,
    AMBER_CACHE_DIR: join(dir, 'cache'),
  };
  const amber = (...args: string[]) => {
    const run = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env });
    return { status: run.status, out: `${run.stdout}${run.stderr}`, stdout: run.stdout };
  };
  assert.equal(amber('init').status, 0);
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    await fs.writeFile(join(source, `f${i}.bin`), seededBytes(60_000, `${label}-${i}`));
    const run = amber('backup', source, '--json');
    assert.equal(run.status, 0, run.out);
    ids.push(JSON.parse(run.stdout).id);
  }
  assert.equal(amber('verify').status, 0, 'intact before the attack');
  return { repo, ids, amber };
}

for (const which of ['newest', 'oldest'] as const) {
  test(`deleting the ${which} snapshot object makes verify exit 1, naming the snapshot, the records that name it and the repair`, async (t) => {
    const { repo, ids, amber } = await threeBackups(t, `removed-${which}`);
    const id = which === 'newest' ? ids[2] : ids[0];
    await removeAsRoot(repo, `snapshots/${id}`);
    const run = amber('verify');
    assert.equal(run.status, 1, run.out);
    const line = run.out
      .split('\n')
      .find((text) => text.startsWith('error:') && text.includes(`snapshot ${id} is missing from the store`));
    assert.ok(line, run.out);
    assert.match(line, /the audit entry audit\/\d{12}-[0-9a-f]{64}/);
    assert.match(line, /the grant grants\/[0-9a-f]{64}/);
    assert.match(line, /put snapshots\/[0-9a-f]{64} back from an isolated copy/i);
    const { problems } = await verify({ repo: await openTestRepo(repo), readDataFraction: 0 });
    assert.deepEqual(
      problems.map(({ object, code }) => [object, code]),
      [[`snapshots/${id}`, 'OBJECT_NOT_FOUND']],
    );
  });
}

test('deleting the newest audit entry after a full-key backup is reported as truncation by audit verify', async (t) => {
  const { repo, amber } = await threeBackups(t, 'removed-audit');
  const names = await listNames(createFsStore(repo), 'audit/');
  await removeAsRoot(repo, names.at(-1)!);
  const run = amber('audit', 'verify');
  assert.equal(run.status, 1, run.out);
  assert.match(run.out, /names head [0-9a-f]{12}, which is missing \(log truncated\)/);
});

test('a write-only key cannot checkpoint: its newest entry is covered from the next full-key operation on', async (t) => {
  const { dir, repoPath, owner } = await createScratchRepo(t, 'removed-writer-audit');
  const source = join(dir, 'source');
  await fs.mkdir(source);
  await fs.writeFile(join(source, 'a.bin'), seededBytes(30_000, 'writer-audit'));
  await backup({ repo: owner, paths: [source] });
  await addKey(owner, { passphrase: 'writer pass', role: 'write-only', kdfLogN: 10 });
  const laptop = testOperation(
    await openRepository({ store: createFsStore(repoPath), passphrase: 'writer pass', clock: systemClock }),
  );
  await backup({ repo: laptop, paths: [source] });
  const entries = (await readAuditLog(owner)).entries;
  const newest = entries.at(-1)!;
  assert.equal(newest.signerKeyId, laptop.key.keyId, 'the writer logged its backup');
  const sealed = (await verifyAudit(owner)).checkpoint;
  assert.ok(sealed && sealed.seq < newest.entry.seq, "and signed no checkpoint over it; the owner's backup did");
  // What holds for a writer's newest entry: removed before any full-key operation, nothing reveals it.
  await removeAsRoot(repoPath, newest.name);
  assert.deepEqual((await verifyAudit(owner)).problems, []);
});
