// Two administrators rotating at the same moment write two different keys for one epoch number.
// Write-once storage cannot undo that, so the repository must stay fully usable with both.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { rotateKey } from '../protection/key-admin.ts';
import { compareTrees } from '../testing/tree-compare.ts';
import { createTestRepo, makeTempDir, openTestRepo, removeTree, seededBytes } from '../testing/repo-fixture.ts';
import { backup } from './backup.ts';
import { restore } from './restore.ts';
import { findSnapshot } from './snapshots.ts';
import { verify } from './verify.ts';

test('concurrent key rotations leave a repository that opens, backs up, restores and verifies', async (t) => {
  const dir = await makeTempDir('rotation-race');
  t.after(() => removeTree(dir));
  const repoPath = join(dir, 'repo');
  await createTestRepo(repoPath);
  const adminA = await openTestRepo(repoPath);
  const adminB = await openTestRepo(repoPath);
  const [a, b] = await Promise.all([rotateKey(adminA), rotateKey(adminB)]);
  assert.equal(a.epoch, b.epoch, 'both rotations chose the same epoch number');
  assert.notEqual(a.name, b.name);

  const source = join(dir, 'source');
  await fs.mkdir(source);
  await fs.writeFile(join(source, 'a.bin'), seededBytes(200_000, 'a'));
  // Each administrator's session still seals to the key its own rotation made.
  const snapshotA = await backup({ repo: adminA, paths: [source] });
  await fs.writeFile(join(source, 'b.bin'), seededBytes(200_000, 'b'));
  const snapshotB = await backup({ repo: adminB, paths: [source] });

  const reopened = await openTestRepo(repoPath);
  assert.equal(reopened.currentEpoch.epoch, a.epoch);
  for (const id of [snapshotA.snapshotId, snapshotB.snapshotId]) {
    const target = join(dir, `restore-${id.slice(0, 8)}`);
    const result = await restore({ repo: reopened, snapshot: await findSnapshot(reopened, id), target });
    assert.deepEqual(result.errors, []);
  }
  assert.deepEqual(await compareTrees(source, join(dir, `restore-${snapshotB.snapshotId.slice(0, 8)}`, source)), []);
  assert.deepEqual((await verify({ repo: reopened, readDataFraction: 1 })).problems, []);
});
