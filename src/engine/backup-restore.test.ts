import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { createHardTree, SPARSE_FILE_BYTES } from '../testing/tree-fixture.ts';
import { compareTrees } from '../testing/tree-compare.ts';
import { createTestRepo, makeTempDir, rejectsWithCode, removeTree, seededBytes } from '../testing/repo-fixture.ts';
import { loadIndex } from '../repo/index-loader.ts';
import { createBlobReader } from '../repo/blob-reader.ts';
import { backup, type BackupResult } from './backup.ts';
import { restore } from './restore.ts';
import { findSnapshot } from './snapshots.ts';
import { resolvePath, splitPath } from './tree-walk.ts';
import type { Operation } from '../governance/operation.ts';
import type { TreeId } from '../core/ids.ts';

const MiB = 1024 * 1024;

let root = '';
let source = '';
let repo: Operation;
let first: BackupResult;
let targets = 0;

/** A fresh restore target; the snapshot's absolute source paths are recreated below it. */
const newTarget = () => join(root, `target-${++targets}`);
const under = (target: string, path: string) => join(target, path);

before(async () => {
  root = await makeTempDir('backup-restore');
  source = join(root, 'src');
  await createHardTree(source, { largeFileBytes: 40 * MiB });
  repo = await createTestRepo(join(root, 'repo'));
  first = await backup({ repo, paths: [source] });
});

after(async () => {
  await removeTree(root);
});

test('a backup of the hard tree restores identical: contents, modes, owners, times, links, names', async () => {
  assert.equal(first.partial, false);
  assert.deepEqual(first.warnings, []);
  assert.deepEqual(first.snapshot.paths, [source]);
  const target = newTarget();
  const result = await restore({ repo, snapshot: await findSnapshot(repo, first.snapshotId), target });
  assert.deepEqual(result.errors, []);
  assert.deepEqual(await compareTrees(source, under(target, source)), []);
  assert.equal(result.bytesWritten, first.snapshot.summary.bytesRead);
});

test('a sparse file is restored sparse', async () => {
  const target = newTarget();
  const sparse = join(source, 'files', 'sparse.bin');
  await restore({ repo, snapshot: await findSnapshot(repo, 'latest'), target, include: [sparse] });
  const restored = await fs.stat(under(target, sparse));
  assert.equal(restored.size, SPARSE_FILE_BYTES);
  // Four 4 KiB regions hold data; everything else must stay a hole, even inside the chunks that hold them.
  assert.ok(
    restored.blocks * 512 <= 256 * 1024,
    `the restored sparse file allocates ${restored.blocks * 512} of ${restored.size} bytes`,
  );
  assert.deepEqual(await compareTrees(sparse, under(target, sparse)), []);
});

test('restore with include restores only that subdirectory (and its ancestors)', async () => {
  const target = newTarget();
  const nested = join(source, 'nested');
  const result = await restore({ repo, snapshot: await findSnapshot(repo, 'latest'), target, include: [nested] });
  assert.deepEqual(result.errors, []);
  assert.deepEqual(await fs.readdir(under(target, source)), ['nested']);
  assert.deepEqual(await compareTrees(nested, under(target, nested)), []);
  await rejectsWithCode(
    restore({
      repo,
      snapshot: await findSnapshot(repo, 'latest'),
      target: newTarget(),
      include: [join(source, 'no-such-entry')],
    }),
    'PATH_NOT_FOUND',
  );
});

test('restore refuses to replace an existing file unless overwrite is set, and never replaces a directory by a file', async () => {
  const snapshot = await findSnapshot(repo, 'latest');
  const target = newTarget();
  const file = join(source, 'files', 'one-byte');
  await fs.mkdir(under(target, join(source, 'files')), { recursive: true });
  await fs.writeFile(under(target, file), 'precious');

  const refused = await restore({ repo, snapshot, target, include: [file] });
  assert.deepEqual(
    refused.errors.map(({ path, code }) => ({ path, code })),
    [{ path: file, code: 'TARGET_EXISTS' }],
  );
  assert.match(refused.errors[0].message, /one-byte/);
  assert.equal(await fs.readFile(under(target, file), 'utf8'), 'precious');

  const replaced = await restore({ repo, snapshot, target, include: [file], overwrite: true });
  assert.deepEqual(replaced.errors, []);
  assert.deepEqual(await compareTrees(file, under(target, file)), []);

  const empty = join(source, 'files', 'zero-bytes');
  await fs.mkdir(under(target, empty));
  await fs.writeFile(join(under(target, empty), 'keep'), 'kept');
  const notReplaced = await restore({ repo, snapshot, target, include: [empty], overwrite: true });
  assert.deepEqual(
    notReplaced.errors.map(({ code }) => code),
    ['TARGET_EXISTS'],
  );
  assert.equal(await fs.readFile(join(under(target, empty), 'keep'), 'utf8'), 'kept');
});

test('a second backup of the unchanged tree reads nothing and adds only ancestor trees whose metadata changed', async () => {
  const second = await backup({ repo, paths: [source] });
  const summary = second.snapshot.summary;
  assert.equal(second.snapshot.parent, first.snapshotId);
  assert.equal(summary.filesNew, 0);
  assert.equal(summary.filesChanged, 0);
  assert.equal(summary.filesUnchanged, first.snapshot.summary.filesNew);
  assert.equal(summary.bytesRead, 0);
  assert.equal(second.partial, false);

  // The source's own tree is the same blob; only trees of the ancestors (/, /tmp, …) can differ, when
  // something else touched those directories between the backups (this test's other restores do).
  const reader = createBlobReader(repo, (await loadIndex(repo)).index);
  const treeAt = async (tree: TreeId, path: string) =>
    path === '/' ? tree : (await resolvePath(reader, tree, path)).subtree!;
  assert.equal(await treeAt(second.snapshot.tree, source), await treeAt(first.snapshot.tree, source));
  const ancestors = [
    '/',
    ...splitPath(source)
      .slice(0, -1)
      .map((_, i, parts) => `/${parts.slice(0, i + 1).join('/')}`),
  ];
  let changedTrees = 0;
  let changedBytes = 0;
  for (const path of ancestors) {
    const before = await treeAt(first.snapshot.tree, path);
    const now = await treeAt(second.snapshot.tree, path);
    if (before === now) continue;
    changedTrees += 1;
    changedBytes += (await reader.readBlob(Buffer.from(now, 'hex'))).length;
  }
  assert.ok(changedTrees > 0, 'the restores above changed the mtime of the test directory, an ancestor of the source');
  assert.equal(summary.blobsAdded, changedTrees);
  assert.equal(summary.bytesAdded, changedBytes);

  const target = newTarget();
  const result = await restore({ repo, snapshot: await findSnapshot(repo, second.snapshotId), target });
  assert.deepEqual(result.errors, []);
  assert.deepEqual(await compareTrees(source, under(target, source)), []);
});

test('a backup of two paths restores both and nothing else', async () => {
  const nested = join(source, 'nested');
  const text = join(source, 'files', 'text.txt');
  const result = await backup({ repo, paths: [text, nested] });
  assert.deepEqual([...result.snapshot.paths].sort(), [text, nested].sort());
  assert.equal(result.snapshot.summary.filesNew + result.snapshot.summary.filesUnchanged, 2);
  const target = newTarget();
  const restored = await restore({ repo, snapshot: await findSnapshot(repo, result.snapshotId), target });
  assert.deepEqual(restored.errors, []);
  assert.deepEqual(await fs.readdir(under(target, source)), ['files', 'nested']);
  assert.deepEqual(await fs.readdir(under(target, join(source, 'files'))), ['text.txt']);
  assert.deepEqual(await compareTrees(nested, under(target, nested)), []);
  assert.deepEqual(await compareTrees(text, under(target, text)), []);
});

test('a backup from a stream (--stdin) restores the same bytes under the given file name', async () => {
  const data = seededBytes(3 * MiB + 123, 'stdin');
  const pieces = Array.from({ length: Math.ceil(data.length / 65536) }, (_, i) =>
    data.subarray(i * 65536, (i + 1) * 65536),
  );
  const result = await backup({ repo, stdin: { stream: Readable.from(pieces), filename: 'db.sql' } });
  assert.deepEqual(result.snapshot.paths, ['/db.sql']);
  assert.equal(result.snapshot.summary.bytesRead, data.length);
  const target = newTarget();
  const restored = await restore({ repo, snapshot: await findSnapshot(repo, result.snapshotId), target });
  assert.deepEqual(restored.errors, []);
  assert.deepEqual(await fs.readdir(target), ['db.sql']);
  assert.ok((await fs.readFile(join(target, 'db.sql'))).equals(data));

  await rejectsWithCode(backup({ repo, stdin: { stream: Readable.from([data]), filename: '../escape' } }), 'USAGE');
});

test('restoring twice into the same target reports every existing entry, named pipes included, and changes nothing', async () => {
  const source = join(root, 'pipes');
  await fs.mkdir(source);
  await fs.writeFile(join(source, 'file.txt'), 'original\n');
  const { execFileSync } = await import('node:child_process');
  execFileSync('mkfifo', [join(source, 'pipe')]);
  const result = await backup({ repo, paths: [source] });
  const snapshot = await findSnapshot(repo, result.snapshotId);
  const target = newTarget();
  assert.deepEqual((await restore({ repo, snapshot, target })).errors, []);
  await fs.writeFile(under(target, join(source, 'file.txt')), 'changed by the user\n');

  const again = await restore({ repo, snapshot, target });
  // The FIFO the first restore made is this snapshot's own: kept, as a complete file is.
  assert.deepEqual(again.errors.map(({ path, code }) => `${code} ${path}`).sort(), [
    `TARGET_EXISTS ${join(source, 'file.txt')}`,
  ]);
  assert.equal(await fs.readFile(under(target, join(source, 'file.txt')), 'utf8'), 'changed by the user\n');
  assert.ok((await fs.lstat(under(target, join(source, 'pipe')))).isFIFO());
});

test('a file of several hundred MiB, half compressible, restores bit-identical', async () => {
  const dir = join(root, 'large');
  await fs.mkdir(dir);
  const path = join(dir, 'disk.img');
  const { createCipheriv, createHash } = await import('node:crypto');
  // Written and hashed in 4 MiB pieces: neither the test nor Amber holds the file whole.
  const keystream = createCipheriv('aes-256-ctr', Buffer.alloc(32, 9), Buffer.alloc(16));
  const expected = createHash('sha256');
  const handle = await fs.open(path, 'w');
  const piece = 4 * MiB;
  for (let n = 0; n < 80; n++) {
    const bytes = n % 2 === 0 ? keystream.update(Buffer.alloc(piece)) : Buffer.alloc(piece, `block ${n} `);
    expected.update(bytes);
    await handle.write(bytes);
  }
  await handle.close();
  const result = await backup({ repo, paths: [dir] });
  assert.equal(result.snapshot.summary.bytesRead, 320 * MiB);
  assert.ok(result.snapshot.summary.bytesStored < 200 * MiB, 'the compressible half is compressed');
  const target = newTarget();
  assert.deepEqual((await restore({ repo, snapshot: await findSnapshot(repo, result.snapshotId), target })).errors, []);
  const restored = createHash('sha256');
  for await (const chunk of (await fs.open(under(target, path))).createReadStream({ highWaterMark: piece }))
    restored.update(chunk);
  assert.equal(restored.digest('hex'), expected.digest('hex'));
  await fs.rm(target, { recursive: true });
  await fs.rm(dir, { recursive: true });
});

test('files restored in flight together: many links to one inode, multi-chunk files side by side, directory times last', async () => {
  const tree = join(root, 'in-flight');
  const dir = join(tree, 'many');
  await fs.mkdir(dir, { recursive: true });
  // Several multi-chunk files (their blobs decode on workers) next to 40 links to one small inode.
  for (let n = 0; n < 4; n++)
    await fs.writeFile(join(dir, `big-${n}.bin`), seededBytes(3 * MiB + n * 12345, `in-flight-${n}`));
  await fs.writeFile(join(dir, 'link-00'), 'shared by forty names');
  for (let n = 1; n < 40; n++) await fs.link(join(dir, 'link-00'), join(dir, `link-${String(n).padStart(2, '0')}`));
  await fs.utimes(dir, new Date('2001-02-03T04:05:06Z'), new Date('2001-02-03T04:05:06Z'));
  const result = await backup({ repo, paths: [tree] });
  const target = newTarget();
  const restored = await restore({ repo, snapshot: await findSnapshot(repo, result.snapshotId), target });
  assert.deepEqual(restored.errors, []);
  assert.deepEqual(await compareTrees(tree, under(target, tree)), []);
  const inodes = new Set<number>();
  for (let n = 0; n < 40; n++)
    inodes.add((await fs.stat(join(under(target, dir), `link-${String(n).padStart(2, '0')}`))).ino);
  assert.equal(inodes.size, 1, 'all forty names are links to one restored file');
  assert.equal((await fs.stat(under(target, dir))).mtime.toISOString(), '2001-02-03T04:05:06.000Z');
});

test('excluded directories and files are left out of the snapshot, and everything around them is kept', async () => {
  const tree = join(root, 'with-excludes');
  for (const dir of ['keep/cache', 'keep/inner', 'node_modules/pkg'])
    await fs.mkdir(join(tree, dir), { recursive: true });
  for (const file of [
    'keep/a.txt',
    'keep/b.tmp',
    'keep/cache/c.txt',
    'keep/inner/d.txt',
    'node_modules/pkg/e.js',
    'z.txt',
  ])
    await fs.writeFile(join(tree, file), file);
  const result = await backup({ repo, paths: [tree], exclude: ['*.tmp', 'node_modules', 'keep/cache/'] });
  const target = newTarget();
  await restore({ repo, snapshot: await findSnapshot(repo, result.snapshotId), target });
  const restored: string[] = [];
  for await (const entry of fs.glob('**', { cwd: under(target, tree) })) if (entry !== '.') restored.push(entry);
  assert.deepEqual(restored.sort(), ['keep', 'keep/a.txt', 'keep/inner', 'keep/inner/d.txt', 'z.txt']);
});

test('a target the filesystem refuses: one entry is reported with TARGET_UNWRITABLE and its path, the rest restores; an uncreatable target stops the restore', async () => {
  const tree = join(root, 'long-names');
  await fs.mkdir(tree);
  const longName = 'l'.repeat(250);
  await fs.writeFile(join(tree, 'short'), 'fits');
  await fs.writeFile(join(tree, longName), 'does not fit');
  const result = await backup({ repo, paths: [tree] });
  const snapshot = await findSnapshot(repo, result.snapshotId);

  // A target deep enough that target + source path + the long name passes the 4096-byte path limit.
  let target = join(root, 'deep');
  const wanted = 4096 - 1 - tree.length - 1 - 100;
  while (target.length < wanted) target = join(target, 'd'.repeat(Math.min(200, wanted - target.length - 1)));
  const restored = await restore({ repo, snapshot, target });
  assert.deepEqual(
    restored.errors.map(({ path, code }) => ({ path, code })),
    [{ path: join(tree, longName), code: 'TARGET_UNWRITABLE' }],
  );
  assert.match(restored.errors[0].message, /ENAMETOOLONG/);
  assert.equal(await fs.readFile(join(target, tree, 'short'), 'utf8'), 'fits');

  const notADirectory = join(root, 'long-names', 'short', 'target');
  const error = await rejectsWithCode(restore({ repo, snapshot, target: notADirectory }), 'TARGET_UNWRITABLE');
  assert.ok(error.message.includes(notADirectory));
});

// Last: its snapshot becomes the repository's latest, which the tests above restore.
test('files that end in zeros, or are nothing but zeros, restore at their full length with holes where the zeros were', async () => {
  const tails = join(root, 'zero-tails');
  await fs.mkdir(tails);
  const data = seededBytes(10_000, 'zero tail');
  const files: Record<string, Buffer> = {
    'long-zero-tail.bin': Buffer.concat([data, Buffer.alloc(3 * MiB)]),
    'partial-zero-block.bin': Buffer.concat([data.subarray(0, 4096), Buffer.alloc(904)]),
    'all-zero.bin': Buffer.alloc(MiB),
    'empty.bin': Buffer.alloc(0),
  };
  for (const [name, bytes] of Object.entries(files)) await fs.writeFile(join(tails, name), bytes);
  const result = await backup({ repo, paths: [tails] });
  const target = newTarget();
  assert.deepEqual((await restore({ repo, snapshot: await findSnapshot(repo, result.snapshotId), target })).errors, []);
  assert.deepEqual(await compareTrees(tails, under(target, tails)), []);
  for (const [name, bytes] of Object.entries(files)) {
    const restored = await fs.stat(under(target, join(tails, name)));
    assert.equal(restored.size, bytes.length, name);
    if (bytes.length >= MiB)
      assert.ok(restored.blocks * 512 <= 64 * 1024, `${name} allocates ${restored.blocks * 512} bytes`);
  }
});
