import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareNames, listDirectory } from './list-directory.ts';
import { isAmberError } from '../../core/errors.ts';
import { displayName, fsPath, nameBytes } from '../../core/byte-names.ts';
import { lstatSync } from 'node:fs';

let root = '';
before(async () => {
  root = await fs.mkdtemp(join(tmpdir(), 'amber-list-directory-'));
});
after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

test('names come back sorted by their UTF-8 bytes', async () => {
  const dir = join(root, 'sorted');
  await fs.mkdir(dir);
  // U+FF5E sorts after U+1F600 in UTF-16 code units but before it in UTF-8 bytes.
  const names = ['b', 'a', 'B', '\uff5e', '\u{1f600}', 'é', 'e\u0301', '.hidden', '10', '9'];
  for (const name of names) await fs.writeFile(join(dir, name), '');
  const listed = listDirectory(dir);
  assert.deepEqual(listed, ['.hidden', '10', '9', 'B', 'a', 'b', 'e\u0301', 'é', '\uff5e', '\u{1f600}']);
  assert.ok(compareNames('\uff5e', '\u{1f600}') < 0);
});

test('an empty directory lists nothing', async () => {
  const dir = join(root, 'empty');
  await fs.mkdir(dir);
  assert.deepEqual(listDirectory(dir), []);
});

test('a name that is not UTF-8 is listed as its bytes, a real U+FFFD as itself, in byte order', async () => {
  const dir = join(root, 'latin1');
  await fs.mkdir(dir);
  const raw = Buffer.from([0x63, 0x61, 0x66, 0xe9]); // "café" in Latin-1
  await fs.writeFile(Buffer.concat([Buffer.from(`${dir}/`), raw]), '');
  await fs.writeFile(join(dir, 'ok'), '');
  await fs.writeFile(join(dir, 'real\uFFFD'), '');
  const listed = listDirectory(dir);
  assert.deepEqual(
    listed.map((name) => nameBytes(name)),
    [raw, Buffer.from('ok'), Buffer.from('real\uFFFD')],
  );
  assert.equal(displayName(listed[0]), 'caf\\xe9');
  assert.equal(lstatSync(fsPath(join(dir, listed[0]))).isFile(), true);
});

test('a missing directory is SOURCE_NOT_FOUND and a file is SOURCE_UNREADABLE', async () => {
  assert.throws(
    () => listDirectory(join(root, 'nope')),
    (error) => isAmberError(error, 'SOURCE_NOT_FOUND'),
  );
  await fs.writeFile(join(root, 'plain'), '');
  assert.throws(
    () => listDirectory(join(root, 'plain')),
    (error) => isAmberError(error, 'SOURCE_UNREADABLE'),
  );
});
