// The local cache of unchanged directories' trees: it must make a no-change backup skip the parent's
// trees, and must never make a snapshot differ from the source, whatever is done to the cache.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import type { Store } from '../storage/store.ts';
import { compareTrees } from '../testing/tree-compare.ts';
import { createScratchRepo, openTestRepo, seededBytes, SMALL_CHUNKER } from '../testing/repo-fixture.ts';
import { backup, type BackupResult } from './backup.ts';
import { restore } from './restore.ts';
import { findSnapshot } from './snapshots.ts';
import { lockGaps } from './lock-coverage.ts';
import { loadRetentionState } from '../governance/retention-state.ts';
import { cacheRoot } from '../core/local-paths.ts';
import { comparePostOrder, openSubtreeCache, subtreeKey } from './subtree-cache.ts';
import { readListing } from '../source/fs/listing.ts';
import { createBlobReader } from '../repo/blob-reader.ts';
import { loadIndex } from '../repo/index-loader.ts';
import { resolvePath } from './tree-walk.ts';
import type { Operation } from '../governance/operation.ts';
import { asTreeId, type TreeId } from '../core/ids.ts';

const DAY_MS = 86_400_000;

test('directories sort in the order a backup finishes them: children first, siblings by name', () => {
  const walk = ['/s/a/x', '/s/a/y/z', '/s/a/y', '/s/a', '/s/a-b', '/s/b', '/s'];
  assert.deepEqual([...walk].reverse().sort(comparePostOrder), walk);
  assert.equal(comparePostOrder('/s/a', '/s/a'), 0);
});

/** A source of nested directories, and a repository whose reads of data packs are counted. */
async function setUp(t: { after(fn: () => unknown): void }) {
  const { dir, repoPath } = await createScratchRepo(t, 'subtree-cache', { chunker: SMALL_CHUNKER });
  const source = join(dir, 'source');
  for (const sub of ['a/deep/er', 'a/other', 'b', 'c/empty']) await fs.mkdir(join(source, sub), { recursive: true });
  const files = ['a/deep/er/one.bin', 'a/deep/two.txt', 'a/other/three.bin', 'b/four.txt', 'top.txt'];
  for (const [n, file] of files.entries())
    await fs.writeFile(join(source, file), seededBytes(20_000 + n * 30_000, file));
  await fs.symlink('a/deep', join(source, 'b', 'link'));
  const reads = { data: 0 };
  const counting = (store: Store): Store =>
    Object.assign(Object.create(store) as Store, {
      get: (name: string, ...rest: Parameters<Store['get']>[1][]) => {
        if (name.startsWith('data/')) reads.data += 1;
        return store.get(name, ...(rest as [])) as ReturnType<Store['get']>;
      },
    });
  const open = () => openTestRepo(repoPath, counting);
  return { dir, source, files, reads, open };
}

/** The tree of the source directory itself (the root tree also holds its ancestors, which the test's files change). */
async function sourceTree(repo: Operation, result: BackupResult, source: string): Promise<string> {
  const { index } = await loadIndex(repo);
  return (await resolvePath(createBlobReader(repo, index), result.snapshot.tree, source)).subtree!;
}

async function restoresExactly(
  repo: Operation,
  dir: string,
  source: string,
  result: BackupResult,
  label: string,
): Promise<void> {
  const target = join(dir, `restored-${label}`);
  const restored = await restore({ repo, snapshot: await findSnapshot(repo, result.snapshotId), target });
  assert.deepEqual(restored.errors, [], label);
  assert.deepEqual(await compareTrees(source, join(target, source)), [], label);
}

test('a no-change backup reuses every directory tree without reading the parent, and locks what it reuses', async (t) => {
  const { dir, source, reads, open } = await setUp(t);
  const first = await backup({ repo: await open(), paths: [source], retainMs: 2 * DAY_MS });
  reads.data = 0;
  const repo = await open();
  const second = await backup({ repo, paths: [source], retainMs: 30 * DAY_MS });
  const readsDuringSecond = reads.data;
  // The source's tree, not the root: the root also holds /tmp, which other tests change meanwhile.
  assert.equal(await sourceTree(repo, second, source), await sourceTree(repo, first, source), 'the same tree');
  assert.equal(second.snapshot.summary.filesUnchanged, 5);
  assert.equal(second.snapshot.summary.bytesRead, 0);
  assert.equal(second.snapshot.summary.dirs, first.snapshot.summary.dirs);
  assert.equal(readsDuringSecond, 0, 'no tree of the parent was read');
  // The first snapshot's packs now hold the second one's data: its longer lock must cover them.
  assert.deepEqual(await lockGaps(repo, await loadRetentionState(repo)), []);
  await restoresExactly(repo, dir, source, second, 'second');
});

test('a change deep down is backed up, and only its directory and their parents are rebuilt', async (t) => {
  const { dir, source, open } = await setUp(t);
  const first = await backup({ repo: await open(), paths: [source] });
  // Same size, same mtime: only the ctime (and the bytes) tell.
  const file = join(source, 'a/deep/er/one.bin');
  const { mtime } = await fs.stat(file);
  await fs.writeFile(file, seededBytes(20_000, 'other bytes'));
  await fs.utimes(file, mtime, mtime);
  await fs.writeFile(join(source, 'c/empty/new.txt'), 'new');
  const repo = await open();
  const second = await backup({ repo, paths: [source] });
  assert.notEqual(await sourceTree(repo, second, source), await sourceTree(repo, first, source));
  assert.equal(second.snapshot.summary.filesChanged, 1);
  assert.equal(second.snapshot.summary.filesNew, 1);
  assert.equal(second.snapshot.summary.filesUnchanged, 4);
  await restoresExactly(repo, dir, source, second, 'changed');
  // And the next backup reuses the new trees.
  const third = await backup({ repo, paths: [source] });
  assert.equal(await sourceTree(repo, third, source), await sourceTree(repo, second, source));
  assert.equal(third.snapshot.summary.bytesRead, 0);
});

test('other exclude patterns make other trees, never a reused one', async (t) => {
  const { dir, source, open } = await setUp(t);
  await backup({ repo: await open(), paths: [source] });
  const repo = await open();
  const excluded = await backup({ repo, paths: [source], exclude: ['*.txt'] });
  const target = join(dir, 'restored-excluded');
  await restore({ repo, snapshot: await findSnapshot(repo, excluded.snapshotId), target });
  await assert.rejects(fs.stat(join(target, source, 'a/deep/two.txt')), { code: 'ENOENT' });
  await fs.stat(join(target, source, 'a/deep/er/one.bin'));
});

async function cacheFiles(): Promise<string[]> {
  const found: string[] = [];
  const walk = async (at: string): Promise<void> => {
    for (const entry of await fs.readdir(at, { withFileTypes: true })) {
      if (entry.isDirectory()) await walk(join(at, entry.name));
      else if (at.endsWith('/subtrees')) found.push(join(at, entry.name));
    }
  };
  await walk(cacheRoot());
  return found;
}

test('a tampered cache is ignored, and the snapshot still matches the source', async (t) => {
  const { dir, source, open } = await setUp(t);
  const first = await backup({ repo: await open(), paths: [source] });
  const [file] = await cacheFiles();
  const bytes = await fs.readFile(file);
  // One byte changed in every hundred or so: the first row's MAC fails, and no row after it is read.
  const flipped = Buffer.from(bytes);
  for (let at = 30; at < flipped.length; at += 97) flipped[at] ^= 0x40;
  await fs.writeFile(file, flipped);
  await fs.writeFile(join(source, 'b/four.txt'), 'changed after the cache was damaged');
  const repo = await open();
  const second = await backup({ repo, paths: [source] });
  assert.notEqual(await sourceTree(repo, second, source), await sourceTree(repo, first, source));
  assert.equal(second.snapshot.summary.filesChanged, 1);
  await restoresExactly(repo, dir, source, second, 'tampered');

  // A cut file ends the rows where it was cut: the directories before the cut are still reused.
  const whole = await fs.readFile(file);
  await fs.writeFile(file, whole.subarray(0, whole.length - 50));
  const third = await backup({ repo, paths: [source] });
  assert.equal(await sourceTree(repo, third, source), await sourceTree(repo, second, source));
  await restoresExactly(repo, dir, source, third, 'cut');
});

test('a row naming blobs the repository lacks is not used, even with a valid MAC', async (t) => {
  const { dir, source, open } = await setUp(t);
  const repo = await open();
  // Rows written with the real key but naming a tree and content that were never stored, for every
  // directory, keyed exactly as a backup would key them.
  const fake = (n: number) => asTreeId(Buffer.alloc(32, n).toString('hex'));
  const cache = openSubtreeCache(repo, { host: hostname(), paths: [source], excludes: [] })!;
  const rows: string[] = [];
  const finish = (path: string): TreeId => {
    const listing = readListing(path);
    const children = listing.entries
      .filter((entry) => 'meta' in entry && entry.meta.type === 'dir')
      .map((entry) => finish(join(path, entry.name)));
    const tree = fake(rows.length + 1);
    cache.remember(path, subtreeKey(listing.fingerprint, children), tree, [fake(200)]);
    rows.push(path);
    return tree;
  };
  finish(source);
  cache.commit();
  cache.close();
  assert.equal(rows.length, 8);
  const result = await backup({ repo, paths: [source] });
  assert.equal(result.snapshot.summary.filesNew, 5, 'every file was read');
  await restoresExactly(repo, dir, source, result, 'fake-rows');
});

test('without the cache, or with cache: false, backups are the same', async (t) => {
  const { source, open } = await setUp(t);
  const first = await backup({ repo: await open(), paths: [source], cache: false });
  assert.deepEqual(await cacheFiles().catch(() => []), [], 'cache: false writes no record');
  const repo = await open();
  const second = await backup({ repo, paths: [source] });
  assert.equal(await sourceTree(repo, second, source), await sourceTree(repo, first, source));
  assert.equal(second.snapshot.summary.filesUnchanged, 5, 'the parent snapshot still spares reading');
  assert.equal((await cacheFiles()).length, 1);
});

test('an unfinished record left by a killed backup is removed once a day old; a recent one is left alone', async (t) => {
  const { source, open } = await setUp(t);
  await backup({ repo: await open(), paths: [source] });
  const [record] = await cacheFiles();
  const folder = join(record, '..');
  const stale = join(folder, '.left-by-a-killed-backup');
  const recent = join(folder, '.another-backup-running-now');
  for (const path of [stale, recent]) await fs.writeFile(path, 'unfinished');
  const twoDaysAgo = new Date(Date.now() - 2 * DAY_MS);
  await fs.utimes(stale, twoDaysAgo, twoDaysAgo);
  await backup({ repo: await open(), paths: [source] });
  await assert.rejects(fs.stat(stale), { code: 'ENOENT' });
  await fs.stat(recent);
  assert.deepEqual((await cacheFiles()).sort(), [recent, record].sort(), 'the record itself stays');
});
