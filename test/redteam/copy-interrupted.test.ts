// Red team, issue 18: a copy interrupted at every write step. docs/isolation.md: "A copy killed at
// any point leaves the copy valid, and the next run completes it." Each case fails one put of the
// copy's store (its first data pack, index object, grant, snapshot, audit entry, checkpoint, or the
// run's anchor) and stops the run there; then the copy must verify clean reading every byte, every
// snapshot it lists must restore, and a new run (a new process: the repository opened again) must
// complete with no lock gap. One case kills a real `amber copy` process with SIGKILL mid-run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { backup } from '../../src/engine/backup.ts';
import { copySnapshots } from '../../src/engine/copy.ts';
import { lockStatus } from '../../src/engine/lock-coverage.ts';
import { restore } from '../../src/engine/restore.ts';
import { listSnapshots } from '../../src/engine/snapshots.ts';
import { verify } from '../../src/engine/verify.ts';
import type { Operation } from '../../src/governance/operation.ts';
import { createFaultyStore } from '../../src/testing/faulty-store.ts';
import {
  createScratchRepo,
  createTestRepo,
  openTestRepo,
  removeTree,
  SMALL_CHUNKER,
  seededBytes,
  TEST_PASSPHRASE,
} from '../../src/testing/repo-fixture.ts';
import { compareTrees } from '../../src/testing/tree-compare.ts';

const BIN = fileURLToPath(new URL('../../bin/amber.js', import.meta.url));

/** The copy is valid: it verifies clean reading all data, and every snapshot it lists restores. */
async function assertValid(copy: Operation, dir: string, label: string): Promise<void> {
  const checked = await verify({ repo: copy, readDataFraction: 1 });
  assert.deepEqual(checked.problems, [], `${label}: ${JSON.stringify(checked.problems)}`);
  for (const entry of await listSnapshots(copy)) {
    const target = join(dir, `restore-${entry.id.slice(0, 12)}-${Math.random().toString(36).slice(2)}`);
    const outcome = await restore({ repo: copy, snapshot: entry, target });
    assert.deepEqual(outcome.errors, [], label);
    await removeTree(target);
  }
}

test('a copy stopped at each of its writes is valid, and the next run completes it', async (t) => {
  const { dir, owner: primary } = await createScratchRepo(t, 'rt-copy-stop', { chunker: SMALL_CHUNKER });
  const source = join(dir, 'src');
  await fs.mkdir(join(source, 'sub'), { recursive: true });
  await fs.writeFile(join(source, 'a.bin'), seededBytes(150_000, 'stop-a'));
  await fs.writeFile(join(source, 'sub', 'b.bin'), seededBytes(60_000, 'stop-b'));
  await backup({ repo: primary, paths: [source] });
  await fs.writeFile(join(source, 'c.bin'), seededBytes(100_000, 'stop-c'));
  await backup({ repo: primary, paths: [source] });

  // [what the failing put's name starts with, which such put of the run fails (1 = its first)]
  const cases: [string, number][] = [
    ['data/', 1],
    ['index/', 1],
    ['grants/', 1],
    ['snapshots/', 1],
    ['audit/', 1], // the first snapshot's `copy` entry
    ['checkpoints/', 1],
    ['audit/', 3], // the run's anchor
  ];
  for (const [prefix, nth] of cases) {
    const label = `${prefix} #${nth}`;
    const copyPath = join(dir, `copy-${prefix.replace('/', '')}-${nth}`);
    let armed = false;
    let seen = 0;
    const copy = await createTestRepo(copyPath, {
      copyOf: primary,
      wrap: (store) =>
        createFaultyStore(store, { failPutNames: (name) => armed && name.startsWith(prefix) && ++seen === nth }),
    });
    armed = true;
    await assert.rejects(copySnapshots({ copy, primary }), /Injected failure/, label);
    assert.equal(seen >= nth, true, `${label}: the fault was reached`);
    const reopened = await openTestRepo(copyPath);
    await assertValid(reopened, dir, `${label}, after the interruption`);
    const again = await copySnapshots({ copy: reopened, primary });
    assert.deepEqual(again.failed, [], label);
    assert.equal((await listSnapshots(reopened)).length, 2, label);
    assert.ok(
      (await lockStatus({ repo: reopened })).every(({ gaps }) => gaps.length === 0),
      label,
    );
    assert.deepEqual((await verify({ repo: reopened, readDataFraction: 0 })).problems, [], label);
    await removeTree(copyPath);
  }
});

test('amber copy killed with SIGKILL mid-run leaves a valid copy; the next run completes it', async (t) => {
  const { dir, repoPath, owner: primary } = await createScratchRepo(t, 'rt-copy-kill');
  const source = join(dir, 'src');
  await fs.mkdir(source);
  for (let n = 0; n < 3; n++) {
    await fs.writeFile(join(source, `f${n}.bin`), seededBytes(8 * 1024 * 1024, `kill-${n}`));
    await backup({ repo: primary, paths: [source] });
  }
  const copyPath = join(dir, 'copy');
  await createTestRepo(copyPath, { copyOf: primary });
  const env = {
    PATH: process.env.PATH,
    AMBER_PASSWORD: TEST_PASSPHRASE,
    AMBER_FROM_PASSWORD: TEST_PASSPHRASE,
    AMBER_CACHE_DIR: join(dir, 'cache'),
  };
  const args = [BIN, 'copy', '--repo', copyPath, '--from-repo', repoPath];
  // Killed once the first snapshot is committed and the second one's packs are being written.
  const child = spawn(process.execPath, args, { env, stdio: 'ignore' });
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  const count = async (sub: string) =>
    (await fs.readdir(join(copyPath, sub), { recursive: true, withFileTypes: true }).catch(() => [])).filter((entry) =>
      entry.isFile(),
    ).length;
  let killed = false;
  let packsAtFirst: number | undefined;
  while (child.exitCode === null && !killed) {
    const packs = await count('data');
    if (packsAtFirst === undefined && (await count('snapshots')) >= 1) packsAtFirst = packs;
    if (packsAtFirst !== undefined && packs > packsAtFirst) {
      child.kill('SIGKILL');
      killed = true;
    } else await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await exited;
  assert.ok(killed, 'the run was killed before it ended');
  const copy = await openTestRepo(copyPath);
  assert.ok((await listSnapshots(copy)).length < 3, 'the kill came before the run was done');
  await assertValid(copy, dir, 'after SIGKILL');
  const again = spawnSync(process.execPath, args, { env });
  assert.equal(again.status, 0, String(again.stderr));
  assert.equal((await listSnapshots(copy)).length, 3);
  assert.ok((await lockStatus({ repo: copy })).every(({ gaps }) => gaps.length === 0));
  assert.deepEqual((await verify({ repo: copy, readDataFraction: 1 })).problems, []);
  const [, , newest] = await listSnapshots(copy);
  const target = join(dir, 'restored');
  await restore({ repo: copy, snapshot: newest, target });
  assert.deepEqual(await compareTrees(source, join(target, source), { ignoreRootMeta: true }), []);
});
