// Incremental backups with a write-only key: it cannot read its earlier snapshots, so it relies on its
// local cache, and must stay correct when the cache is missing, stale or tampered with.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { systemClock } from '../core/clock.ts';
import { createFsStore } from '../storage/fs/fs-store.ts';
import { openRepository } from '../repo/repository.ts';
import { addKey } from '../protection/key-admin.ts';
import { compareTrees } from '../testing/tree-compare.ts';
import { createScratchRepo, openTestRepo, seededBytes, SMALL_CHUNKER } from '../testing/repo-fixture.ts';
import { backup } from './backup.ts';
import { restore } from './restore.ts';
import { findSnapshot } from './snapshots.ts';
import { cacheRoot } from '../core/local-paths.ts';
import { testOperation } from '../testing/operation.ts';

test('a write-only key reuses unchanged files from its local cache, and falls back to reading when the cache lies', async (t) => {
  const { dir, repoPath, owner } = await createScratchRepo(t, 'writer-cache', { chunker: SMALL_CHUNKER });
  await addKey(owner, { passphrase: 'writer', role: 'write-only', kdfLogN: 10 });
  const writer = () =>
    openRepository({ store: createFsStore(repoPath), passphrase: 'writer', clock: systemClock }).then((opened) =>
      testOperation(opened),
    );
  const source = join(dir, 'source');
  await fs.mkdir(join(source, 'sub'), { recursive: true });
  for (let n = 0; n < 5; n++)
    await fs.writeFile(join(source, 'sub', `file-${n}.bin`), seededBytes(300_000, `file ${n}`));

  const first = await backup({ repo: await writer(), paths: [source] });
  assert.equal(first.snapshot.summary.filesNew, 5);
  const second = await backup({ repo: await writer(), paths: [source] });
  assert.equal(second.snapshot.summary.filesUnchanged, 5);
  assert.equal(second.snapshot.summary.bytesRead, 0, 'unchanged files are not read');
  assert.equal(second.snapshot.parent, first.snapshotId);

  // A tampered cached tree does not hash to its id: it is ignored and the files are read again.
  const trees = join(cacheRoot(), owner.config.repositoryId);
  for (const keyDir of await fs.readdir(trees)) {
    for (const name of await fs.readdir(join(trees, keyDir, 'trees'))) {
      await fs.writeFile(join(trees, keyDir, 'trees', name), '{"nodes":[]}');
    }
  }
  await fs.appendFile(join(source, 'sub', 'file-0.bin'), 'grown');
  const third = await backup({ repo: await writer(), paths: [source] });
  assert.equal(third.snapshot.summary.filesUnchanged, 0);
  assert.equal(third.snapshot.summary.filesNew, 5, 'without an authentic parent tree every file is read');
  assert.ok(third.snapshot.summary.bytesAdded < 400_000, 'and still dedups against what the key stored');

  // Without any cache it reads everything again, and the owner restores every snapshot exactly.
  await fs.rm(cacheRoot(), { recursive: true });
  const fourth = await backup({ repo: await writer(), paths: [source] });
  assert.equal(fourth.snapshot.summary.filesNew, 5);
  const reader = await openTestRepo(repoPath);
  const target = join(dir, 'restored');
  assert.deepEqual(
    (await restore({ repo: reader, snapshot: await findSnapshot(reader, fourth.snapshotId), target })).errors,
    [],
  );
  assert.deepEqual(await compareTrees(source, join(target, source)), []);
});
