// Backups whose lock mode or retention differs from their parent's: the unchanged file is not read
// again, nothing the repository holds is stored again where the store can lock the reused packs as
// strongly as the snapshot, every stored pack is named by an index object, every lock is covered and
// every snapshot restores bit for bit. On S3 (which cannot raise a governance pack to compliance
// without the bypass permission) a compliance backup stores its own copy once, then dedups against it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { systemClock } from '../core/clock.ts';
import type { SnapshotId } from '../core/ids.ts';
import type { RetentionMode } from '../storage/store.ts';
import { addKey } from '../protection/key-admin.ts';
import { initRepository, openRepository } from '../repo/repository.ts';
import { createFsStore } from '../storage/fs/fs-store.ts';
import { compareTrees } from '../testing/tree-compare.ts';
import { createFaultyStore } from '../testing/faulty-store.ts';
import {
  createScratchRepo,
  makeTempDir,
  openTestRepo,
  removeTree,
  seededBytes,
  TEST_PASSPHRASE,
  useTemporaryWriterCache,
} from '../testing/repo-fixture.ts';
import { freshS3Store, whenS3 } from '../testing/s3-fixture.ts';
import { backup, type BackupResult } from './backup.ts';
import { lockStatus } from './lock-coverage.ts';
import { restore } from './restore.ts';
import { loadRetentionState } from '../governance/retention-state.ts';
import { findSnapshot } from './snapshots.ts';
import { verify } from './verify.ts';
import { loadIndex } from '../repo/index-loader.ts';
import { createBlobReader } from '../repo/blob-reader.ts';
import { snapshotNeeds } from './snapshot-objects.ts';
import { testOperation } from '../testing/operation.ts';
import type { Operation } from '../governance/operation.ts';

const DAY = 86_400_000;
const CHUNKER = { minSizeBytes: 16 * 1024, avgSizeBytes: 64 * 1024, maxSizeBytes: 256 * 1024 };

async function sourceIn(dir: string): Promise<string> {
  const source = join(dir, 'source');
  await fs.mkdir(join(source, 'sub'), { recursive: true });
  await fs.writeFile(join(source, 'ledger.bin'), seededBytes(300_000, 'ledger'));
  await fs.writeFile(join(source, 'sub', 'notes.txt'), 'quarterly figures\n'.repeat(200));
  return source;
}

const backupIn = (repo: Operation, source: string, mode: RetentionMode, retainMs: number) =>
  backup({ repo, paths: [source], lockMode: mode, retainMs });

/** What a backup of an unchanged source must show: its parent used, nothing read, nothing stored. */
function assertDeduplicated(result: BackupResult, parent: SnapshotId, label: string): void {
  const { summary } = result.snapshot;
  assert.equal(result.snapshot.parent, parent, `${label}: the previous snapshot is the parent`);
  assert.deepEqual(
    {
      filesUnchanged: summary.filesUnchanged,
      filesChanged: summary.filesChanged,
      filesNew: summary.filesNew,
      bytesRead: summary.bytesRead,
    },
    { filesUnchanged: 2, filesChanged: 0, filesNew: 0, bytesRead: 0 },
    `${label}: the unchanged files are not read again`,
  );
  // At most the trees of the source's ancestors (/tmp changes all the time, by a few KiB on a busy
  // machine); no file's chunk, since no file was read.
  assert.ok(
    summary.bytesAdded < 16 * 1024,
    `${label}: nothing the repository holds is stored again (${summary.bytesAdded} bytes added)`,
  );
}

/** verify finds nothing wrong and every stored pack named by an index object; lock status has no gap. */
async function assertIndexedAndCovered(repo: Operation, snapshots: number): Promise<void> {
  const checked = await verify({ repo, readDataFraction: 1 });
  assert.deepEqual(checked.problems, []);
  assert.equal(checked.unreferencedPacks, 0, 'no uninterrupted backup leaves a pack that no index object names');
  const statuses = await lockStatus({ repo });
  assert.equal(statuses.length, snapshots);
  for (const status of statuses)
    assert.deepEqual(status.gaps, [], `snapshot ${status.snapshotId.slice(0, 8)} (${status.lock?.mode}) is covered`);
}

async function assertRestores(repo: Operation, dir: string, snapshotId: SnapshotId, source: string): Promise<void> {
  const target = join(dir, `restored-${snapshotId.slice(0, 12)}`);
  const result = await restore({ repo, snapshot: await findSnapshot(repo, snapshotId), target });
  assert.deepEqual(result.errors, []);
  assert.deepEqual(await compareTrees(source, join(target, source)), [], 'restored bit for bit');
}

/** The lock the grants give every pack a snapshot needs. */
async function packLocks(repo: Operation, snapshotId: SnapshotId) {
  const { index } = await loadIndex(repo);
  const { packs } = await snapshotNeeds(
    createBlobReader(repo, index),
    index,
    (await findSnapshot(repo, snapshotId)).snapshot.tree,
  );
  const { ledger } = await loadRetentionState(repo);
  return [...packs].map((name) => ledger.lockOf(name));
}

test('a governance backup after a compliance one reuses the unchanged files and the compliance packs', async (t) => {
  const { dir, owner } = await createScratchRepo(t, 'mode-dedup-g', { chunker: CHUNKER });
  const source = await sourceIn(dir);
  const compliance = await backupIn(owner, source, 'compliance', 30 * DAY);
  assert.ok(compliance.snapshot.summary.bytesAdded > 300_000);
  const governance = await backupIn(owner, source, 'governance', 30 * DAY);
  assertDeduplicated(governance, compliance.snapshotId, 'governance after compliance');
  const longer = await backupIn(owner, source, 'governance', 60 * DAY);
  assertDeduplicated(longer, governance.snapshotId, 'governance with a longer retention');
  // The compliance packs it reuses are extended for the longer lock, and stay compliance.
  const locks = await packLocks(owner, longer.snapshotId);
  assert.ok(
    locks.some((lock) => lock?.mode === 'compliance'),
    "the file's chunks are in a compliance pack",
  );
  for (const lock of locks)
    assert.ok(
      lock && lock.untilMs >= Date.parse(longer.snapshot.retention!.until),
      'every pack it needs is kept at least as long',
    );
  await assertIndexedAndCovered(owner, 3);
  for (const { snapshotId } of [compliance, governance, longer]) await assertRestores(owner, dir, snapshotId, source);
});

test('a compliance backup after governance ones raises the governance packs on the fs store instead of storing them again', async (t) => {
  const { dir, owner } = await createScratchRepo(t, 'mode-dedup-c', { chunker: CHUNKER });
  const source = await sourceIn(dir);
  const governance = await backupIn(owner, source, 'governance', 2 * DAY);
  const shorter = await backupIn(owner, source, 'governance', DAY);
  assertDeduplicated(shorter, governance.snapshotId, 'governance with a shorter retention');
  const compliance = await backupIn(owner, source, 'compliance', 10 * DAY);
  assertDeduplicated(compliance, shorter.snapshotId, 'compliance after governance');
  for (const lock of await packLocks(owner, compliance.snapshotId)) {
    assert.equal(lock?.mode, 'compliance', 'the grant raised the reused pack to compliance');
    assert.ok(lock.untilMs >= Date.parse(compliance.snapshot.retention!.until));
  }
  const again = await backupIn(owner, source, 'governance', 30 * DAY);
  assertDeduplicated(again, compliance.snapshotId, 'governance after compliance');
  await assertIndexedAndCovered(owner, 4);
  for (const { snapshotId } of [governance, compliance, again]) await assertRestores(owner, dir, snapshotId, source);
});

test("a pack whose blobs are all stored elsewhere too is still an indexed pack, not an interrupted backup's leftover", async (t) => {
  // A write-only key dedups only against its own packs and the owner's: a second writer's first
  // backup stores a second copy of everything the first stored, in packs whose every blob the blob
  // index (one location per blob) locates in the first writer's.
  const { dir, repoPath, owner } = await createScratchRepo(t, 'mode-dedup-copies', { chunker: CHUNKER });
  const source = await sourceIn(dir);
  for (const name of ['alpha', 'beta']) {
    await addKey(owner, { role: 'write-only', passphrase: name, label: name, kdfLogN: 10 });
    const writer = testOperation(
      await openRepository({ store: createFsStore(repoPath), passphrase: name, clock: systemClock }),
    );
    const copy = await backupIn(writer, source, 'governance', DAY);
    assert.ok(copy.snapshot.summary.bytesAdded > 300_000, `${name} stored its own copy`);
  }
  const checked = await verify({ repo: owner, readDataFraction: 0 });
  assert.deepEqual(checked.problems, []);
  assert.equal(checked.unreferencedPacks, 0);
});

test('a backup that fails on a pack still indexes the packs it did store', async (t) => {
  let packs = 0;
  const { dir, repoPath } = await createScratchRepo(t, 'mode-dedup-failed', {
    chunker: CHUNKER,
    packTargetBytes: 64 * 1024,
  });
  const source = await sourceIn(dir);
  const repo = await openTestRepo(repoPath);
  await assert.rejects(
    backup({
      repo: await openTestRepo(repoPath, (inner) =>
        createFaultyStore(inner, { failPutNames: (name) => name.startsWith('data/') && ++packs === 3 }),
      ),
      paths: [source],
    }),
  );
  const checked = await verify({ repo, readDataFraction: 1 });
  assert.deepEqual(checked.problems, []);
  assert.ok(checked.packs >= 2, `${checked.packs} packs stored before the failure`);
  assert.equal(checked.unreferencedPacks, 0, 'every pack stored is named by an index object');
  const next = await backup({ repo, paths: [source] });
  assert.ok(next.snapshot.summary.bytesAdded < 300_000, 'the next backup dedups against what the failed one stored');
});

whenS3(() => {
  test('on S3 a compliance backup stores its own compliance copy of what only governance packs hold, once, indexed and covered', async (t) => {
    const dir = await makeTempDir('mode-dedup-s3');
    t.after(() => removeTree(dir));
    useTemporaryWriterCache(dir);
    const store = await freshS3Store();
    const owner = testOperation(
      await initRepository({
        store,
        passphrase: TEST_PASSPHRASE,
        clock: systemClock,
        kdfLogN: 10,
        chunker: CHUNKER,
        retention: { retainUntilMs: Date.now() + DAY, mode: 'compliance' },
      }),
    );
    const source = await sourceIn(dir);
    const first = await backupIn(owner, source, 'compliance', DAY);
    const governance = await backupIn(owner, source, 'governance', DAY);
    assertDeduplicated(governance, first.snapshotId, 'governance after compliance');
    await fs.writeFile(join(source, 'new.bin'), seededBytes(200_000, 'new'));
    const added = await backupIn(owner, source, 'governance', DAY);
    assert.equal(added.snapshot.summary.filesNew, 1);
    const compliance = await backupIn(owner, source, 'compliance', DAY);
    const { summary } = compliance.snapshot;
    assert.equal(compliance.snapshot.parent, added.snapshotId);
    // S3 cannot raise the governance pack holding new.bin: it is read and stored again, in compliance;
    // the other files' chunks are in compliance packs already.
    assert.equal(summary.bytesRead, 200_000);
    // Beyond new.bin's bytes only trees are new: those of the source's parent directories (/tmp and
    // its other entries) change between runs, by a few KiB on a busy machine. Nothing else was read,
    // so no other file's data can have been stored again.
    assert.ok(
      summary.bytesAdded >= 200_000 && summary.bytesAdded < 200_000 + 16 * 1024,
      `${summary.bytesAdded} bytes added`,
    );
    assert.deepEqual(
      { unchanged: summary.filesUnchanged, changed: summary.filesChanged, new: summary.filesNew },
      { unchanged: 3, changed: 0, new: 0 },
      'read again, but not changed',
    );
    const again = await backupIn(owner, source, 'compliance', 2 * DAY);
    assert.equal(again.snapshot.summary.bytesRead, 0, 'the next compliance backup dedups against the compliance copy');
    assert.ok(
      again.snapshot.summary.bytesAdded < 16 * 1024,
      `${again.snapshot.summary.bytesAdded} bytes added (trees only)`,
    );
    await assertIndexedAndCovered(owner, 5);
    // The earlier snapshots predate new.bin; these two are the source as it is now.
    for (const { snapshotId } of [compliance, again]) await assertRestores(owner, dir, snapshotId, source);
  });
});
