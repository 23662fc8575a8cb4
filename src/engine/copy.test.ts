// The isolated copy at the engine: a copy pulled from a primary restores bit for bit once the
// primary is gone, carries its provenance and its own lock, moves only what it lacks, and refuses
// what the primary cannot vouch for (a forged snapshot, a damaged pack) without losing earlier copies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import {
  createScratchRepo,
  createTestRepo,
  flipByte,
  listNames,
  rejectsWithCode,
  removeTree,
  seededBytes,
  SMALL_CHUNKER,
} from '../testing/repo-fixture.ts';
import { compareTrees } from '../testing/tree-compare.ts';
import { backup } from './backup.ts';
import { restore } from './restore.ts';
import { listSnapshots } from './snapshots.ts';
import { copiedFromOf, copySnapshots } from './copy.ts';
import { verify } from './verify.ts';
import { lockStatus } from './lock-coverage.ts';
import { loadIndex } from '../repo/index-loader.ts';
import { encodeSnapshot } from '../repo/snapshot.ts';
import { snapshotName } from '../repo/layout.ts';
import { sha256Hex } from '../crypto/index.ts';
import { generateSigningKeyPair } from '../crypto/index.ts';
import { signerOf } from '../repo/keys.ts';
import { readAuditLog } from '../governance/audit-log.ts';

const MiB = 1024 * 1024;

async function writeTree(dir: string, label: string, files = 12): Promise<void> {
  await fs.mkdir(join(dir, 'sub', 'deeper'), { recursive: true });
  for (let n = 0; n < files; n++) {
    const where = n % 3 === 0 ? dir : n % 3 === 1 ? join(dir, 'sub') : join(dir, 'sub', 'deeper');
    await fs.writeFile(join(where, `file-${n}.bin`), seededBytes(20_000 + n * 7_919, `${label}-${n}`));
  }
  await fs.writeFile(join(dir, 'big.bin'), seededBytes(3 * MiB, `${label}-big`));
  await fs.writeFile(join(dir, 'text.txt'), 'the same words again and again '.repeat(4000));
}

async function objectBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && !entry.parentPath.includes(`${join(dir, 'tmp')}`))
      total += (await fs.stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

test('two snapshots copied restore bit for bit after the primary is destroyed; a second run adds under 1 %', async (t) => {
  const { dir, repoPath, owner: primary } = await createScratchRepo(t, 'copy-basic', { chunker: SMALL_CHUNKER });
  const source = join(dir, 'src');
  await writeTree(source, 'one');
  const first = await backup({ repo: primary, paths: [source], tags: ['daily'] });
  await fs.writeFile(join(source, 'sub', 'new.bin'), seededBytes(400_000, 'two-new'));
  const second = await backup({ repo: primary, paths: [source], tags: ['daily'] });

  const copyPath = join(dir, 'copy');
  const copy = await createTestRepo(copyPath, { copyOf: primary });
  const result = await copySnapshots({ copy, primary });
  assert.equal(result.copied.length, 2);
  assert.equal(result.failed.length, 0);
  assert.deepEqual(
    result.copied.map(({ source: id }) => id),
    [first.snapshotId, second.snapshotId],
  );
  // The second snapshot shares most blobs with the first: far fewer bytes travel for it.
  assert.ok(result.copied[1].bytesTransferred < result.copied[0].bytesTransferred / 4);

  const entries = await listSnapshots(copy);
  assert.equal(entries.length, 2);
  for (const [n, entry] of entries.entries()) {
    const from = copiedFromOf(entry.snapshot)!;
    assert.equal(from.repository, primary.config.repositoryId);
    assert.equal(from.snapshot, [first.snapshotId, second.snapshotId][n]);
    assert.deepEqual(from.tags, ['daily']);
    assert.equal(entry.snapshot.time, [first, second][n].snapshot.time);
    // The copy signs its own snapshot and locks it by its own policy.
    assert.equal(entry.signer, 'owner');
    assert.ok(entry.snapshot.retention && Date.parse(entry.snapshot.retention.until) > Date.now());
  }
  assert.equal(entries[1].snapshot.parent, entries[0].id, 'the parent is the copy of the source parent');
  const status = await lockStatus({ repo: copy });
  assert.ok(
    status.every((snapshot) => snapshot.gaps.length === 0),
    JSON.stringify(status, null, 1),
  );

  // Nothing new: only the run's anchor travels into the copy's audit log.
  const before = await objectBytes(copyPath);
  const again = await copySnapshots({ copy, primary });
  assert.equal(again.copied.length, 0);
  assert.equal(again.alreadyCopied, 2);
  const added = (await objectBytes(copyPath)) - before;
  assert.ok(added < before / 100, `a second copy added ${added} bytes to ${before}`);

  const anchors = (await readAuditLog(copy)).entries.filter(({ entry }) => entry.action === 'copy.anchor');
  assert.equal(anchors.length, 2);
  assert.equal(anchors[1].entry.target, primary.config.repositoryId);

  await removeTree(repoPath);
  const verified = await verify({ repo: copy, readDataFraction: 1 });
  assert.deepEqual(verified.problems, []);
  for (const entry of entries) {
    const target = join(dir, `restore-${entry.id.slice(0, 8)}`);
    await restore({ repo: copy, snapshot: entry, target });
    if (entry.id === entries[1].id)
      assert.deepEqual(await compareTrees(source, join(target, source), { ignoreRootMeta: true }), []);
  }
});

test('a copy made for another primary is refused; so is a repository copying itself', async (t) => {
  const { dir, owner: primary } = await createScratchRepo(t, 'copy-incompatible');
  const stranger = await createTestRepo(join(dir, 'stranger'));
  await rejectsWithCode(copySnapshots({ copy: stranger, primary }), 'COPY_INCOMPATIBLE');
  await rejectsWithCode(copySnapshots({ copy: primary, primary }), 'USAGE');
});

test('the copy needs nothing of the primary: with the primary gone, every copied object stays', async (t) => {
  const { dir, owner: primary } = await createScratchRepo(t, 'copy-forget');
  const source = join(dir, 'src');
  await writeTree(source, 'forget', 4);
  await backup({ repo: primary, paths: [source] });
  const copy = await createTestRepo(join(dir, 'copy'), { copyOf: primary });
  await copySnapshots({ copy, primary });
  const copyNames = [
    ...(await listNames(copy.store, 'data/')),
    ...(await listNames(copy.store, 'snapshots/')),
    ...(await listNames(copy.store, 'index/')),
  ];
  // Whatever the primary does to its own objects (here: they are simply gone), the copy is its own.
  await removeTree(join(dir, 'repo'));
  for (const name of copyNames) await copy.store.stat(name);
  assert.equal((await listSnapshots(copy)).length, 1);
});

test('a snapshot at the primary no authorised key signed is not copied and is reported', async (t) => {
  const { dir, owner: primary } = await createScratchRepo(t, 'copy-forged');
  const source = join(dir, 'src');
  await writeTree(source, 'forged', 3);
  const real = await backup({ repo: primary, paths: [source] });
  // Someone with write access to the primary's storage but not its owner key: a well-formed
  // snapshot object, named by its own hash, signed by a key the primary never certified.
  const forger = signerOf(generateSigningKeyPair());
  const bytes = encodeSnapshot({ ...real.snapshot, tags: ['forged'] }, primary.currentEpoch, forger);
  await primary.store.put(snapshotName(sha256Hex(bytes) as never), bytes);
  const copy = await createTestRepo(join(dir, 'copy'), { copyOf: primary });
  const result = await copySnapshots({ copy, primary });
  assert.equal(result.copied.length, 1);
  assert.equal(result.copied[0].source, real.snapshotId);
  assert.equal(result.ignored.length, 1);
  assert.equal(result.ignored[0].code, 'SIGNATURE_INVALID');
  assert.ok(!(await listSnapshots(copy)).some(({ snapshot }) => snapshot.tags.includes('forged')));
});

test('a damaged pack at the primary fails that snapshot by name and leaves earlier copies intact', async (t) => {
  const { dir, owner: primary } = await createScratchRepo(t, 'copy-damaged', { chunker: SMALL_CHUNKER });
  const source = join(dir, 'src');
  await writeTree(source, 'early', 3);
  await backup({ repo: primary, paths: [source] });
  const copy = await createTestRepo(join(dir, 'copy'), { copyOf: primary });
  assert.equal((await copySnapshots({ copy, primary })).copied.length, 1);

  // A second snapshot with data of its own, whose pack is then damaged at the primary.
  const before = new Set(await listNames(primary.store, 'data/'));
  await fs.writeFile(join(source, 'late.bin'), seededBytes(2 * MiB, 'late'));
  const late = await backup({ repo: primary, paths: [source] });
  const { index } = await loadIndex(primary);
  const fresh = (await listNames(primary.store, 'data/')).filter((name) => !before.has(name));
  const dataPack = fresh.find((name) => index.packIds.some((id) => name.endsWith(id)))!;
  await flipByte(join(dir, 'repo', dataPack), 100);

  const result = await copySnapshots({ copy, primary });
  assert.equal(result.copied.length, 0);
  assert.equal(result.failed.length, 1);
  assert.equal(result.failed[0].source, late.snapshotId);
  assert.equal(result.failed[0].code, 'OBJECT_CORRUPT');
  assert.match(result.failed[0].message, /blob [0-9a-f]{16}/);
  assert.ok(result.failed[0].object?.includes(dataPack.slice(-64)), JSON.stringify(result.failed[0]));
  const entries = await listSnapshots(copy);
  assert.equal(entries.length, 1);
  const verified = await verify({ repo: copy, readDataFraction: 1 });
  assert.deepEqual(verified.problems, []);
});
