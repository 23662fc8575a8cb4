import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import { chmod, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAmberError } from '../../core/errors.ts';
import type { ErrorCode } from '../../core/errors.ts';
import { createFsStore } from './fs-store.ts';
import { assertAmberCode, assertBytesEqual, describeStoreConformance, listAll } from '../../testing/store-conformance.ts';

const parents: string[] = [];
after(async () => {
  await Promise.all(parents.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A store root that does not exist yet, inside a fresh temporary directory. */
async function freshRoot(): Promise<string> {
  const parent = await mkdtemp(join(tmpdir(), 'amber-fs-store-'));
  parents.push(parent);
  return join(parent, 'repo');
}

async function tmpEntries(root: string): Promise<string[]> {
  return readdir(join(root, 'tmp')).catch(() => []);
}

/**
 * Makes fs link() fail as the kernel would, for the duration of fn. fs-store imports link from
 * node:fs/promises; syncBuiltinESMExports pushes the replaced function to that named import.
 */
async function withFailingLink(errno: string, fn: () => Promise<void>): Promise<void> {
  const original = fsp.link;
  fsp.link = async () => {
    throw Object.assign(new Error(`${errno}: injected link failure`), { code: errno, syscall: 'link' });
  };
  syncBuiltinESMExports();
  try {
    await fn();
  } finally {
    fsp.link = original;
    syncBuiltinESMExports();
  }
}

describeStoreConformance('fs', async () => createFsStore(await freshRoot()));

test('a missing root does not exist, has no objects, and the first put creates it private', async () => {
  const root = await freshRoot();
  const store = createFsStore(root);
  assert.equal(await store.exists(), false);
  await assertAmberCode(store.get('config'), 'OBJECT_NOT_FOUND');
  await assertAmberCode(store.stat('config'), 'OBJECT_NOT_FOUND');
  assert.deepEqual(await listAll(store, ''), []);
  await store.put('config', new Uint8Array([1]));
  assert.equal((await stat(root)).mode & 0o777, 0o700);
  assert.equal(await store.exists(), true);
});

test('objects live at root/<name> and are read-only files', async () => {
  const root = await freshRoot();
  const store = createFsStore(root);
  await store.put('data/ab/abcd', new Uint8Array([1, 2, 3]));
  const info = await stat(join(root, 'data', 'ab', 'abcd'));
  assert.ok(info.isFile());
  assert.equal(info.mode & 0o777, 0o444);
  assert.equal(info.nlink, 1, 'the temporary link is gone');
});

test('a successful put leaves nothing in tmp/, and neither does a refused one', async () => {
  const root = await freshRoot();
  const store = createFsStore(root);
  await store.put('keys/k1', new Uint8Array([1]));
  await assertAmberCode(store.put('keys/k1', new Uint8Array([2])), 'OBJECT_EXISTS');
  assert.deepEqual(await tmpEntries(root), []);
});

test('list, get and exists ignore tmp/ and files that are not objects', async () => {
  const root = await freshRoot();
  const store = createFsStore(root);
  await mkdir(join(root, 'tmp'), { recursive: true });
  // What a crash after writing the temporary file leaves behind.
  await writeFile(join(root, 'tmp', 'deadbeef'), 'half a pack');
  assert.equal(await store.exists(), false, 'an empty tmp/ is not a store');
  await store.put('data/x1', new Uint8Array([1]));
  await writeFile(join(root, 'README.TXT'), 'not an object');
  await writeFile(join(root, 'data', '.partial'), 'not an object');
  assert.deepEqual((await listAll(store, '')).map((info) => info.name), ['data/x1']);
  assert.deepEqual(await listAll(store, 'tmp/'), []);
  assert.deepEqual(await listAll(store, 't'), []);
  await assertAmberCode(store.get('tmp/deadbeef'), 'INVALID_OBJECT_NAME');
  await assertAmberCode(store.put('tmp/x', new Uint8Array([1])), 'INVALID_OBJECT_NAME');
});

test('a put whose link fails leaves no object and no temporary file, with a translated error', async () => {
  const cases: Array<[string, ErrorCode]> = [
    ['ENOSPC', 'STORAGE_FULL'],
    ['EDQUOT', 'STORAGE_FULL'],
    ['EACCES', 'STORAGE_ACCESS_DENIED'],
    ['EPERM', 'STORAGE_ACCESS_DENIED'],
    ['EROFS', 'STORAGE_ACCESS_DENIED'],
    ['EIO', 'STORAGE_TRANSIENT'],
  ];
  const root = await freshRoot();
  const store = createFsStore(root);
  await store.put('config', new Uint8Array([0]));
  for (const [errno, code] of cases) {
    await withFailingLink(errno, async () => {
      await assert.rejects(store.put('data/ab/abcd', new Uint8Array(1024)), (error: unknown) => {
        assert.ok(isAmberError(error, code), `${errno} became ${String(error)}`);
        assert.match(error.message, /data\/ab\/abcd/);
        assert.ok(error.message.includes(root), 'message names the store');
        assert.ok(error.hint !== undefined);
        return true;
      });
    });
    await assertAmberCode(store.stat('data/ab/abcd'), 'OBJECT_NOT_FOUND');
    assert.deepEqual(await tmpEntries(root), [], `${errno} left a temporary file`);
  }
  await store.put('data/ab/abcd', new Uint8Array([9]));
  assertBytesEqual(await store.get('data/ab/abcd'), new Uint8Array([9]));
});

test('a name that nests under or over another object is refused after the temp file was written', async () => {
  const root = await freshRoot();
  const store = createFsStore(root);
  await store.put('data/a', new Uint8Array([1]));
  await store.put('data/b/c', new Uint8Array([2]));
  await assertAmberCode(store.put('data/a/x', new Uint8Array([3])), 'INVALID_OBJECT_NAME');
  await assertAmberCode(store.put('data/b', new Uint8Array([3])), 'INVALID_OBJECT_NAME');
  assert.deepEqual((await listAll(store, '')).map((info) => info.name), ['data/a', 'data/b/c']);
  assert.deepEqual(await tmpEntries(root), []);
});

test('an unwritable store refuses puts with STORAGE_ACCESS_DENIED', { skip: process.getuid?.() === 0 && 'root ignores permission bits' }, async () => {
  const root = await freshRoot();
  const store = createFsStore(root);
  await store.put('config', new Uint8Array([1]));
  await chmod(join(root, 'tmp'), 0o500);
  try {
    await assertAmberCode(store.put('keys/k1', new Uint8Array([1])), 'STORAGE_ACCESS_DENIED');
    await assertAmberCode(store.stat('keys/k1'), 'OBJECT_NOT_FOUND');
  } finally {
    await chmod(join(root, 'tmp'), 0o700);
  }
});

test('the fs store says it holds against other users but not root on this host', () => {
  const enforcement = createFsStore('/nonexistent').enforcement();
  assert.equal(enforcement.enforcer, 'client');
  assert.equal(enforcement.holdsAgainst.length, 1);
  assert.match(enforcement.notes, /root/);
});
