// A backup killed (SIGKILL) right after it stored its grant, or its snapshot, leaves whole objects
// that never got the immutable attribute. That is no damage: the next backup protects what it relies
// on, and verify protects what the grants retain, each saying so; only where the process may not set
// the attribute is it a problem, and then the message names the repair. Needs root and a filesystem
// with attributes (the tests' temporary directory on ext4/xfs); otherwise skipped with the reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BackupChildRequest } from '../testing/backup-child.ts';
import { listNames, makeTempDir, removeTree, seededBytes, TEST_PASSPHRASE } from '../testing/repo-fixture.ts';
import { createFsStore } from '../storage/fs/fs-store.ts';
import { openRepository } from '../repo/repository.ts';
import { systemClock } from '../core/clock.ts';
import { verify } from './verify.ts';
import { testOperation } from '../testing/operation.ts';

const BIN = fileURLToPath(new URL('../../bin/amber.js', import.meta.url));
const CHILD = fileURLToPath(new URL('../testing/backup-child.ts', import.meta.url));

const flagsOf = (path: string) =>
  spawnSync('lsattr', ['-d', '--', path], { encoding: 'utf8' }).stdout.split(' ')[0] ?? '';
const immutable = (path: string) => flagsOf(path).includes('i');

/** Why the immutable attribute cannot be tested here, or undefined when it can. */
async function whyNoAttributes(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root to set the immutable attribute';
  const dir = await makeTempDir('attr-probe');
  try {
    const file = join(dir, 'f');
    await fs.writeFile(file, 'x');
    if (spawnSync('chattr', ['+i', '--', file]).status !== 0)
      return `chattr +i does not work in ${dir} (no attributes on this filesystem?)`;
    const ok = immutable(file);
    spawnSync('chattr', ['-i', '--', file]);
    return ok ? undefined : `lsattr does not show the attribute chattr set in ${dir}`;
  } finally {
    await removeTree(dir);
  }
}
const skip = await whyNoAttributes();

async function scene(t: { after(fn: () => unknown): void }, label: string) {
  const dir = await makeTempDir(label);
  t.after(() => removeTree(dir));
  const repo = join(dir, 'repo');
  const source = join(dir, 'source');
  await fs.mkdir(source);
  await fs.writeFile(join(source, 'a.bin'), seededBytes(300_000, label));
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
  assert.equal(amber('backup', source).status, 0);
  // New data for the backup that will be killed.
  await fs.writeFile(join(source, 'b.bin'), seededBytes(300_000, `${label}-b`));
  /** The backup, killed by itself right after it stored the first object named `prefix…`. */
  const killedBackup = async (prefix: string) => {
    const request: BackupChildRequest = { repo, passphrase: TEST_PASSPHRASE, paths: [source], killAfterPutOf: prefix };
    const child = spawn(process.execPath, [CHILD, JSON.stringify(request)], { stdio: 'ignore' });
    const signal = await new Promise((resolve) => child.on('close', (_, sig) => resolve(sig)));
    assert.equal(signal, 'SIGKILL', `the backup was killed right after storing ${prefix}…`);
  };
  return { repo, source, amber, killedBackup };
}

const unprotected = async (repo: string, prefix: string) =>
  (await listNames(createFsStore(repo), prefix)).filter((name) => !immutable(join(repo, name)));

test('killed right after its grant: the next backup finishes the protection of the packs it reuses and says so; verify then passes', {
  skip,
}, async (t) => {
  const { repo, source, amber, killedBackup } = await scene(t, 'killed-grant');
  await killedBackup('grants/');
  const open = await unprotected(repo, 'data/');
  assert.ok(open.length > 0, 'the killed run left its packs without the attribute');
  const rerun = amber('backup', source);
  assert.equal(rerun.status, 0, rerun.out);
  assert.match(rerun.out, /finished the protection of \d+ objects? an interrupted run left unprotected/);
  assert.deepEqual(await unprotected(repo, 'data/'), []);
  assert.deepEqual(await unprotected(repo, 'grants/'), [], "the killed run's grant is protected by the next one");
  const verified = amber('verify');
  assert.equal(verified.status, 0, verified.out);
  assert.match(verified.out, /a backup killed between its grant and its snapshot leaves this \(harmless\)/);
});

test('killed right after its snapshot: verify finishes its protection and says so (exit 0); the next run of verify has nothing to do', {
  skip,
}, async (t) => {
  const { repo, amber, killedBackup } = await scene(t, 'killed-snapshot');
  await killedBackup('snapshots/');
  const [left] = await unprotected(repo, 'snapshots/');
  assert.ok(left, 'the killed run left its snapshot without the attribute');
  const verified = amber('verify');
  assert.equal(verified.status, 0, verified.out);
  assert.match(
    verified.out,
    new RegExp(
      `finished the protection of 1 object an interrupted run left unprotected \\(or whose attribute was lifted\\): ${left}`,
    ),
  );
  assert.ok(immutable(join(repo, left)));
  const again = amber('verify');
  assert.equal(again.status, 0, again.out);
  assert.doesNotMatch(again.out, /finished the protection/);
});

test('where the process may not set the attribute, the unprotected snapshot is a LOCK_GAP whose message names the repair', {
  skip,
}, async (t) => {
  const { repo, amber, killedBackup } = await scene(t, 'killed-no-repair');
  await killedBackup('snapshots/');
  const [left] = await unprotected(repo, 'snapshots/');
  // A store that may not lock (as a user without CAP_LINUX_IMMUTABLE): it still reads the attributes.
  const owner = testOperation(
    await openRepository({
      store: createFsStore(repo, { lockObjects: false }),
      passphrase: TEST_PASSPHRASE,
      clock: systemClock,
    }),
  );
  const { problems, notices } = await verify({ repo: owner, readDataFraction: 0 });
  const gap = problems.find(({ object }) => object === left);
  assert.equal(gap?.code, 'LOCK_GAP', JSON.stringify(problems));
  assert.match(gap.message, /run `amber verify` as root to finish its protection/);
  assert.match(gap.message, /repair: `amber lock extend [0-9a-f]{8} --until \S+`/);
  assert.deepEqual(
    notices.filter((notice) => /finished the protection/.test(notice)),
    [],
  );
  assert.ok(!immutable(join(repo, left)));
  // Then, as root, verify repairs it.
  assert.equal(amber('verify').status, 0);
  assert.ok(immutable(join(repo, left)));
});

test('killed right after its snapshot: the next backup, whose parent it is, finishes its protection and says so', {
  skip,
}, async (t) => {
  const { repo, source, amber, killedBackup } = await scene(t, 'killed-parent');
  await killedBackup('snapshots/');
  const [left] = await unprotected(repo, 'snapshots/');
  assert.ok(left, 'the killed run left its snapshot without the attribute');
  const rerun = amber('backup', source);
  assert.equal(rerun.status, 0, rerun.out);
  assert.match(rerun.out, /finished the protection of 1 object an interrupted run left unprotected/);
  assert.ok(immutable(join(repo, left)));
  const verified = amber('verify');
  assert.equal(verified.status, 0, verified.out);
  assert.doesNotMatch(verified.out, /finished the protection/);
});
