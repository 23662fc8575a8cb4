import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir } from '../testing/repo-fixture.ts';
import { readListing } from '../source/fs/listing.ts';
import { createDirectoryLister } from './directory-lister.ts';

async function tree(): Promise<string> {
  const root = await makeTempDir('lister');
  for (const dir of ['a/x', 'a/y', 'b', 'skip/deep', 'c']) await fs.mkdir(join(root, dir), { recursive: true });
  for (const file of ['a/1', 'a/x/2', 'b/3', 'skip/deep/4', 'c/5', 'top']) await fs.writeFile(join(root, file), file);
  return root;
}

test('the walker thread hands out listings in the order a backup descends, excluded directories left out', async (t) => {
  const root = await tree();
  t.after(() => fs.rm(root, { recursive: true, force: true }));
  const lister = createDirectoryLister({ excludes: ['skip'], ahead: true });
  try {
    for (const dir of [root, join(root, 'a'), join(root, 'a/x'), join(root, 'a/y'), join(root, 'b'), join(root, 'c')]) {
      assert.deepEqual(await lister.list(dir), readListing(dir), dir);
    }
    assert.equal(lister.readingAhead, true, 'every listing came from the walker');
  } finally {
    await lister.close();
  }
});

test('asked out of order, the lister stops walking ahead and still answers every directory correctly', async (t) => {
  const root = await tree();
  t.after(() => fs.rm(root, { recursive: true, force: true }));
  const lister = createDirectoryLister({ excludes: [], ahead: true });
  try {
    assert.deepEqual(await lister.list(root), readListing(root));
    // The walk goes to a/ next; asking for c/ first must not return a/'s listing.
    for (const dir of [join(root, 'c'), join(root, 'a'), join(root, 'skip/deep'), join(root, 'b')]) {
      assert.deepEqual(await lister.list(dir), readListing(dir), dir);
    }
    assert.equal(lister.readingAhead, false);
  } finally {
    await lister.close();
  }
});

test('a listing reports an unreadable directory and a vanished entry as problems, not as missing data', async (t) => {
  const root = await tree();
  t.after(() => fs.rm(root, { recursive: true, force: true }));
  const gone = readListing(join(root, 'no-such-dir'));
  assert.equal(gone.entries.length, 0);
  assert.equal(gone.problem?.code, 'SOURCE_NOT_FOUND');
});
