import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { createTestRepo, makeTempDir, removeTree, seededBytes } from '../testing/repo-fixture.ts';
import { loadIndex } from '../repo/index-loader.ts';
import { createBlobReader, type BlobReader } from '../repo/blob-reader.ts';
import { backup } from './backup.ts';
import { restore } from './restore.ts';
import { findSnapshot } from './snapshots.ts';
import { resolvePath, rootNode, walkNodes } from './tree-walk.ts';
import type { Operation } from '../governance/operation.ts';
import type { TreeId } from '../core/ids.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const CHUNKER = { minSizeBytes: 64 * KiB, avgSizeBytes: 256 * KiB, maxSizeBytes: MiB };

let root = '';
let repos = 0;

before(async () => {
  root = await makeTempDir('dedup');
});
after(async () => {
  await removeTree(root);
});

const newRepo = () => createTestRepo(join(root, `repo-${++repos}`), { chunker: CHUNKER, packTargetBytes: 4 * MiB });

async function readerFor(repo: Operation): Promise<BlobReader> {
  return createBlobReader(repo, (await loadIndex(repo)).index);
}

/** Plaintext bytes of every distinct tree blob of a snapshot. */
async function treeBytes(reader: BlobReader, tree: TreeId): Promise<number> {
  const seen = new Set<string>();
  let total = 0;
  await walkNodes(reader, rootNode(tree), '/', async (_path, node) => {
    if (node.type !== 'dir' || !node.subtree || seen.has(node.subtree)) return;
    seen.add(node.subtree);
    total += (await reader.readBlob(Buffer.from(node.subtree, 'hex'))).length;
  });
  return total;
}

async function restoredBytes(repo: Operation, snapshotId: string, path: string): Promise<Buffer> {
  const target = join(root, `target-${snapshotId.slice(0, 12)}`);
  const result = await restore({ repo, snapshot: await findSnapshot(repo, snapshotId), target, include: [path] });
  assert.deepEqual(result.errors, []);
  return fs.readFile(join(target, path));
}

test('inserting 100 bytes at the start of a 32 MiB file stores only the chunks around the change', async () => {
  const repo = await newRepo();
  const dir = join(root, 'shifted');
  const file = join(dir, 'big.bin');
  await fs.mkdir(dir);
  const original = seededBytes(32 * MiB, 'shift');
  await fs.writeFile(file, original);
  const first = await backup({ repo, paths: [dir] });
  assert.ok(first.snapshot.summary.bytesAdded >= original.length, 'the first backup stores the whole file');

  const shifted = Buffer.concat([seededBytes(100, 'inserted'), original]);
  await fs.writeFile(file, shifted);
  const second = await backup({ repo, paths: [dir] });
  const { summary } = second.snapshot;
  assert.equal(summary.filesChanged, 1);
  assert.equal(summary.bytesRead, shifted.length);
  assert.ok(summary.bytesAdded < original.length * 0.1, `the shifted file added ${summary.bytesAdded} bytes`);
  // Chunks are 64 KiB to 1 MiB: the change touches at most the first chunk or two, plus the trees.
  assert.ok(summary.bytesAdded <= 2 * MiB + (await treeBytes(await readerFor(repo), second.snapshot.tree)));

  assert.ok((await restoredBytes(repo, first.snapshotId, file)).equals(original));
  assert.ok((await restoredBytes(repo, second.snapshotId, file)).equals(shifted));
});

test('identical files in different directories are stored once', async () => {
  const repo = await newRepo();
  const dir = join(root, 'twins');
  const content = seededBytes(5 * MiB + 7, 'twin');
  for (const sub of ['a', 'b/c']) {
    await fs.mkdir(join(dir, sub), { recursive: true });
    await fs.writeFile(join(dir, sub, `copy-in-${sub.replace('/', '-')}.bin`), content);
  }
  const result = await backup({ repo, paths: [dir] });
  const reader = await readerFor(repo);
  const a = await resolvePath(reader, result.snapshot.tree, join(dir, 'a', 'copy-in-a.bin'));
  const b = await resolvePath(reader, result.snapshot.tree, join(dir, 'b', 'c', 'copy-in-b-c.bin'));
  assert.deepEqual(a.content, b.content);
  assert.equal(result.snapshot.summary.bytesRead, 2 * content.length);
  // A fresh repository: what was added is one copy of the content plus every tree, exactly.
  assert.equal(result.snapshot.summary.bytesAdded, content.length + (await treeBytes(reader, result.snapshot.tree)));
  assert.equal(
    result.snapshot.summary.blobsAdded,
    new Set(a.content).size + (await countTrees(reader, result.snapshot.tree)),
  );
  assert.ok((await restoredBytes(repo, result.snapshotId, join(dir, 'b', 'c', 'copy-in-b-c.bin'))).equals(content));
});

async function countTrees(reader: BlobReader, tree: TreeId): Promise<number> {
  const seen = new Set<string>();
  await walkNodes(reader, rootNode(tree), '/', (_path, node) => {
    if (node.type === 'dir' && node.subtree) seen.add(node.subtree);
  });
  return seen.size;
}

test('backups from two hosts dedup against each other', async () => {
  const repo = await newRepo();
  const content = seededBytes(6 * MiB, 'hosts');
  const alphaDir = join(root, 'alpha');
  const betaDir = join(root, 'beta');
  for (const dir of [alphaDir, betaDir]) {
    await fs.mkdir(dir);
    await fs.writeFile(join(dir, 'shared.bin'), content);
  }
  const alpha = await backup({ repo, paths: [alphaDir], host: 'alpha' });
  const beta = await backup({ repo, paths: [betaDir], host: 'beta' });
  assert.equal(alpha.snapshot.host, 'alpha');
  assert.equal(beta.snapshot.host, 'beta');
  // Beta has no parent snapshot, so it reads the whole file, and finds every chunk already stored.
  assert.equal(beta.snapshot.parent, undefined);
  assert.equal(beta.snapshot.summary.filesNew, 1);
  assert.equal(beta.snapshot.summary.bytesRead, content.length);
  assert.ok(
    beta.snapshot.summary.bytesAdded <= (await treeBytes(await readerFor(repo), beta.snapshot.tree)),
    'beta stored no file data',
  );

  // The same path from another host does not take the other host's snapshot as its parent.
  const alphaAgain = await backup({ repo, paths: [betaDir], host: 'alpha' });
  assert.equal(alphaAgain.snapshot.parent, undefined);
  assert.equal(alphaAgain.snapshot.summary.bytesRead, content.length);
  const betaAgain = await backup({ repo, paths: [betaDir], host: 'beta' });
  assert.equal(betaAgain.snapshot.parent, beta.snapshotId);
  assert.equal(betaAgain.snapshot.summary.bytesRead, 0);

  assert.ok((await restoredBytes(repo, beta.snapshotId, join(betaDir, 'shared.bin'))).equals(content));
});
