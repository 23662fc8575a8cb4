import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { DEEP_LEVELS, OTHER_OWNER, SPARSE_FILE_BYTES, createHardTree } from './tree-fixture.ts';
import { compareTrees } from './tree-compare.ts';
import { utimeSecondsFromNs } from '../source/fs/entry-meta.ts';

const execFileAsync = promisify(execFile);
const isRoot = process.getuid?.() === 0;

let root = '';
let tree = '';
let copies = 0;

before(async () => {
  root = await fs.mkdtemp(join(tmpdir(), 'amber-tree-fixture-'));
  tree = join(root, 'tree');
  await createHardTree(tree);
});
after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

async function copyTree(...cpOptions: string[]): Promise<string> {
  const copy = join(root, `copy-${++copies}`);
  await execFileAsync('cp', ['-a', ...cpOptions, tree, copy]);
  return copy;
}

/** Puts back a directory's mtime after a test changed its entries, so only the intended change shows. */
async function keepDirTime(copy: string, relativeDir: string): Promise<void> {
  const { mtimeNs } = await fs.lstat(join(tree, relativeDir), { bigint: true });
  const seconds = utimeSecondsFromNs(mtimeNs);
  await fs.utimes(join(copy, relativeDir), seconds, seconds);
}

test('the tree holds the hard cases', async () => {
  const unicode = await fs.readdir(join(tree, 'unicode'));
  assert.ok(unicode.includes('caf\u00e9.txt') && unicode.includes('cafe\u0301.txt'));
  const names = await fs.readdir(join(tree, 'names'));
  assert.ok(names.some((name) => Buffer.byteLength(name) === 255 && name.startsWith('\u5b57')));
  assert.ok(names.some((name) => Buffer.byteLength(name) === 255 && name.startsWith('n')));
  const leaf = join(
    tree,
    'deep',
    ...Array.from({ length: DEEP_LEVELS }, (_, i) => `d${String(i + 1).padStart(2, '0')}`),
    'leaf.txt',
  );
  assert.equal(await fs.readFile(leaf, 'utf8'), 'bottom\n');
  assert.equal((await fs.stat(join(tree, 'files', 'large.bin'))).size, 12 * 1024 * 1024);
  assert.equal((await fs.stat(join(tree, 'files', 'one-mib.bin'))).size, 1024 * 1024);
  const sparse = await fs.stat(join(tree, 'files', 'sparse.bin'));
  assert.equal(sparse.size, SPARSE_FILE_BYTES);
  assert.ok(sparse.blocks * 512 < SPARSE_FILE_BYTES / 4, `sparse file allocates ${sparse.blocks * 512} bytes`);
  assert.equal((await fs.stat(join(tree, 'hardlinks', 'c', 'triple-3'))).nlink, 3);
  assert.equal(await fs.readlink(join(tree, 'links', 'loop-a')), 'loop-b');
  assert.equal((await fs.stat(join(tree, 'modes', 'setgid-dir'))).mode & 0o7777, 0o2775);
  assert.equal((await fs.lstat(join(tree, 'special', 'fifo'))).isFIFO(), true);
  const { mtimeNs } = await fs.lstat(join(tree, 'files', 'text.txt'), { bigint: true });
  assert.notEqual(mtimeNs % 1_000_000_000n, 0n, 'mtimes carry a sub-second part');
  if (isRoot) assert.equal((await fs.lstat(join(tree, 'owners', 'other-link'))).uid, OTHER_OWNER.uid);
});

test('a tree compared with itself has no differences', async () => {
  assert.deepEqual(await compareTrees(tree, tree), []);
});

test('a copy made with cp -a has no differences', async () => {
  const notes: string[] = [];
  assert.deepEqual(await compareTrees(tree, await copyTree(), { notes }), []);
  assert.equal(notes.length, 1);
  assert.match(notes[0], /"files\/sparse\.bin": sparse file of 67108864 bytes/);
});

test('the same seed builds the same tree and another seed does not', async () => {
  const same = join(root, 'seed-1');
  const other = join(root, 'seed-2');
  await createHardTree(same, { seed: 1 });
  await createHardTree(other, { seed: 2, largeFileBytes: 3 * 1024 * 1024 + 7 });
  assert.deepEqual(await compareTrees(tree, same), []);
  const differences = await compareTrees(tree, other);
  assert.ok(differences.includes('"files/large.bin": size 12582912 bytes in expected but 3145735 in actual'));
  assert.ok(differences.includes('"files/one-mib.bin": content differs from byte 0'));
  assert.ok(differences.some((difference) => difference.startsWith('"files/text.txt": mtime ')));
});

test('a flipped byte is reported with its offset', async () => {
  const copy = await copyTree();
  const path = join(copy, 'files', 'large.bin');
  const { mtimeNs } = await fs.lstat(path, { bigint: true });
  const handle = await fs.open(path, 'r+');
  const byte = Buffer.alloc(1);
  await handle.read(byte, 0, 1, 5_000_001);
  byte[0] ^= 0x01;
  await handle.write(byte, 0, 1, 5_000_001);
  await handle.close();
  await fs.utimes(path, utimeSecondsFromNs(mtimeNs), utimeSecondsFromNs(mtimeNs));
  assert.deepEqual(await compareTrees(tree, copy), ['"files/large.bin": content differs from byte 5000001']);
});

test('a changed mode is reported', async () => {
  const copy = await copyTree();
  await fs.chmod(join(copy, 'modes', 'run.sh'), 0o644);
  await fs.chmod(join(copy, 'modes', 'setgid-dir'), 0o775);
  assert.deepEqual(await compareTrees(tree, copy), [
    '"modes/run.sh": mode 0755 in expected but 0644 in actual',
    '"modes/setgid-dir": mode 2775 in expected but 0775 in actual',
  ]);
});

test('a missing file is reported by its exact bytes, an extra one too', async () => {
  const copy = await copyTree();
  await fs.rm(join(copy, 'unicode', 'cafe\u0301.txt'));
  await fs.writeFile(join(copy, 'unicode', 'extra'), '');
  await keepDirTime(copy, 'unicode');
  assert.deepEqual(await compareTrees(tree, copy, { ignoreRootMeta: true }), [
    '"unicode/cafe\u0301.txt": missing in actual (a file in expected)',
    '"unicode/extra": extra in actual (a file)',
  ]);
});

test('a changed symlink target is reported', async () => {
  const copy = await copyTree();
  const link = join(copy, 'links', 'relative');
  const { mtimeNs } = await fs.lstat(link, { bigint: true });
  await fs.rm(link);
  await fs.symlink('../files/zero-bytes', link);
  await fs.lutimes(link, utimeSecondsFromNs(mtimeNs), utimeSecondsFromNs(mtimeNs));
  await keepDirTime(copy, 'links');
  assert.deepEqual(await compareTrees(tree, copy), [
    '"links/relative": symlink points to "../files/one-byte" in expected but "../files/zero-bytes" in actual',
  ]);
});

test('a broken hard link is reported even when the contents match', async () => {
  const copy = await copyTree();
  const path = join(copy, 'hardlinks', 'b', 'triple-2');
  await fs.rm(path);
  await execFileAsync('cp', ['-p', join(copy, 'hardlinks', 'a', 'triple-1'), path]);
  await keepDirTime(copy, dirname('hardlinks/b/triple-2'));
  assert.deepEqual(await compareTrees(tree, copy), [
    'hard links: "hardlinks/a/triple-1", "hardlinks/b/triple-2", "hardlinks/c/triple-3" share one inode in expected but not in actual',
  ]);
});

test('names joined by a hard link that were separate files are reported', async () => {
  const copy = await copyTree();
  const single = join(copy, 'hardlinks', 'c', 'single');
  await fs.rm(single);
  await fs.link(join(copy, 'hardlinks', 'a', 'pair-1'), single);
  await keepDirTime(copy, 'hardlinks/c');
  const differences = await compareTrees(tree, copy);
  assert.ok(
    differences.includes(
      'hard links: "hardlinks/a/pair-1", "hardlinks/b/pair-2", "hardlinks/c/single" share one inode in actual but not in expected',
    ),
    differences.join('\n'),
  );
  assert.ok(!differences.some((difference) => difference.includes('share one inode in expected')));
});

test('mtimes are compared to the microsecond, directories included', async () => {
  const copy = await copyTree();
  const file = join(copy, 'files', 'text.txt');
  const { mtimeNs } = await fs.lstat(file, { bigint: true });
  await fs.utimes(file, utimeSecondsFromNs(mtimeNs + 2_000n), utimeSecondsFromNs(mtimeNs + 2_000n));
  const dir = join(copy, 'empty-dir');
  const dirTime = (await fs.lstat(dir, { bigint: true })).mtimeNs;
  await fs.utimes(dir, utimeSecondsFromNs(dirTime - 1_000_000_000n), utimeSecondsFromNs(dirTime - 1_000_000_000n));
  // Setting the same time again through a double stays within the tolerance.
  const nested = join(copy, 'nested');
  const nestedTime = (await fs.lstat(nested, { bigint: true })).mtimeNs;
  await fs.utimes(nested, utimeSecondsFromNs(nestedTime), utimeSecondsFromNs(nestedTime));
  const differences = await compareTrees(tree, copy);
  assert.equal(differences.length, 2, differences.join('\n'));
  assert.match(
    differences[0],
    /^"empty-dir": mtime \d+ ns in expected but \d+ ns in actual \(off by -1000000000 ns\)$/,
  );
  assert.match(
    differences[1],
    /^"files\/text\.txt": mtime \d+ ns in expected but \d+ ns in actual \(off by (1[89]|2[01])\d\d ns\)$/,
  );
});

test('a changed type and, as root, a changed owner are reported', async () => {
  const copy = await copyTree();
  await fs.rm(join(copy, 'special', 'fifo'));
  await fs.writeFile(join(copy, 'special', 'fifo'), '');
  await keepDirTime(copy, 'special');
  const expected = ['"special/fifo": is a fifo in expected but a file in actual'];
  if (isRoot) {
    await fs.lchown(join(copy, 'owners', 'other-link'), 0, 0);
    expected.push('"owners/other-link": owner 4242:4343 in expected but 0:0 in actual');
    assert.deepEqual(await compareTrees(tree, copy, { ignoreOwner: true }), expected.slice(0, 1));
  }
  assert.deepEqual((await compareTrees(tree, copy)).sort(), expected.sort());
});

test('a copy that filled the holes of a sparse file differs only in a note', async () => {
  const notes: string[] = [];
  assert.deepEqual(await compareTrees(tree, await copyTree('--sparse=never'), { notes }), []);
  assert.match(notes[0], /allocates \d+ bytes in expected and 67108864 in actual$/);
});
