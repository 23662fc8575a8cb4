import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createExcludeMatcher, readExcludeFile } from './excludes.ts';
import { isAmberError } from '../../core/errors.ts';

function excluded(patterns: string[], path: string, isDir = false): boolean {
  const name = path === '/' ? '' : path.slice(path.lastIndexOf('/') + 1);
  return createExcludeMatcher(patterns)(path, name, isDir);
}

test('a pattern without a slash matches a component at any depth', () => {
  assert.equal(excluded(['*.tmp'], '/home/a/x.tmp'), true);
  assert.equal(excluded(['*.tmp'], '/x.tmp'), true);
  assert.equal(excluded(['*.tmp'], '/home/a/x.tmp.keep'), false);
  assert.equal(excluded(['node_modules'], '/src/app/node_modules', true), true);
  assert.equal(excluded(['node_modules'], '/src/app/node_modules_old', true), false);
  assert.equal(excluded(['*'], '/'), false);
});

test('a pattern that matches a directory also matches everything below it', () => {
  assert.equal(excluded(['node_modules'], '/src/app/node_modules/lodash/index.js'), true);
  assert.equal(excluded(['/var/cache'], '/var/cache/apt/archives', true), true);
});

test('star and question mark stay within one component and match dotfiles', () => {
  assert.equal(excluded(['*'], '/.bashrc'), true);
  assert.equal(excluded(['/home/*/c'], '/home/a/b/c'), false);
  assert.equal(excluded(['/home/*/c'], '/home/.a/c'), true);
  assert.equal(excluded(['file?.txt'], '/d/file1.txt'), true);
  assert.equal(excluded(['file?.txt'], '/d/file12.txt'), false);
  assert.equal(excluded(['?.txt'], '/d/\u{1f600}.txt'), true);
});

test('a leading slash anchors the pattern at the root', () => {
  assert.equal(excluded(['/tmp'], '/tmp', true), true);
  assert.equal(excluded(['/tmp'], '/home/tmp', true), false);
  assert.equal(excluded(['/home/*/.cache'], '/home/ann/.cache', true), true);
  assert.equal(excluded(['/home/*/.cache'], '/srv/home/ann/.cache', true), false);
});

test('a relative pattern with slashes matches consecutive components anywhere', () => {
  assert.equal(excluded(['cache/tmp'], '/a/b/cache/tmp'), true);
  assert.equal(excluded(['cache/tmp'], '/a/cache/x/tmp'), false);
});

test('double star matches any number of directories, zero included', () => {
  assert.equal(excluded(['/home/**/*.log'], '/home/a.log'), true);
  assert.equal(excluded(['/home/**/*.log'], '/home/ann/x/y/a.log'), true);
  assert.equal(excluded(['/home/**/*.log'], '/srv/home/a.log'), false);
  assert.equal(excluded(['a/**/b'], '/x/a/b'), true);
  assert.equal(excluded(['a/**/b'], '/x/a/1/2/b'), true);
  assert.equal(excluded(['a/**/b'], '/x/a/1/2/bb'), false);
  assert.equal(excluded(['**'], '/anything/at/all'), true);
});

test('a trailing slash limits the pattern to directories', () => {
  assert.equal(excluded(['build/'], '/p/build', true), true);
  assert.equal(excluded(['build/'], '/p/build', false), false);
  assert.equal(excluded(['build/'], '/p/build/out.o', false), true);
  assert.equal(excluded(['/p/build/'], '/p/build', true), true);
});

test('classes, ranges, negation and escapes follow Go filepath.Match', () => {
  assert.equal(excluded(['[ab].txt'], '/a.txt'), true);
  assert.equal(excluded(['[ab].txt'], '/c.txt'), false);
  assert.equal(excluded(['[a-c]x'], '/bx'), true);
  assert.equal(excluded(['[^a-c]x'], '/dx'), true);
  assert.equal(excluded(['[!a-c]x'], '/bx'), false);
  assert.equal(excluded(['\\*literal'], '/*literal'), true);
  assert.equal(excluded(['\\*literal'], '/xliteral'), false);
  assert.equal(excluded(['a.b'], '/axb'), false);
  assert.equal(excluded(['(x)+'], '/(x)+'), true);
});

test('a malformed pattern is refused as a usage error', () => {
  for (const bad of ['[abc', 'x\\', '[]', '[z-a]']) {
    assert.throws(
      () => createExcludeMatcher([bad]),
      (error) => isAmberError(error, 'USAGE') && error.message.includes(bad),
    );
  }
});

test('no patterns exclude nothing and empty patterns are ignored', () => {
  assert.equal(excluded([], '/a'), false);
  assert.equal(excluded([''], '/a'), false);
});

let root = '';
before(async () => {
  root = await fs.mkdtemp(join(tmpdir(), 'amber-excludes-'));
});
after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

test('an exclude file gives one pattern a line without comments, blanks or trailing spaces', async () => {
  const path = join(root, 'excludes.txt');
  await fs.writeFile(path, '# caches\n*.tmp  \n\n   \nnode_modules\r\n  # indented comment\n/var/cache/\n');
  assert.deepEqual(await readExcludeFile(path), ['*.tmp', 'node_modules', '/var/cache/']);
});

test('a missing exclude file is SOURCE_NOT_FOUND naming the file', async () => {
  const path = join(root, 'absent.txt');
  await assert.rejects(
    readExcludeFile(path),
    (error) => isAmberError(error, 'SOURCE_NOT_FOUND') && error.message.includes(path) && error.hint !== undefined,
  );
});
