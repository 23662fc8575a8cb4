import { after, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fsp from 'node:fs/promises';
import {
  chmod,
  chown,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  stat,
  truncate,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { isAmberError } from '../../core/errors.ts';
import type { ErrorCode } from '../../core/errors.ts';
import type { Store } from '../store.ts';
import { createFsStore } from './fs-store.ts';
import {
  assertAmberCode,
  assertBytesEqual,
  describeStoreConformance,
  listAll,
} from '../../testing/store-conformance.ts';
import { NOBODY, removeTree, whyNobodyCannotRun } from '../../testing/repo-fixture.ts';

const parents: string[] = [];
after(async () => {
  // Protected objects are immutable: removeTree lifts the attributes first.
  await Promise.all(parents.map((dir) => removeTree(dir)));
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
  assert.deepEqual(
    (await listAll(store, '')).map((info) => info.name),
    ['data/x1'],
  );
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
  assert.deepEqual(
    (await listAll(store, '')).map((info) => info.name),
    ['data/a', 'data/b/c'],
  );
  assert.deepEqual(await tmpEntries(root), []);
});

test('an unwritable store refuses puts with STORAGE_ACCESS_DENIED', {
  skip: process.getuid?.() === 0 && 'root ignores permission bits',
}, async () => {
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
  const enforcement = createFsStore('/nonexistent', { lockObjects: false }).enforcement();
  assert.equal(enforcement.enforcer, 'client');
  assert.deepEqual(enforcement.holdsAgainst, [
    'other users on this host (the root is private and files are read-only)',
  ]);
  assert.match(enforcement.notes, /turned off/);
  assert.match(enforcement.notes, /Root on the same host can lift the attributes \(chattr -i\)/);
  assert.match(enforcement.notes, /vault on another host or in S3 with Object Lock in compliance mode/);
  // Before any chattr, running as root is the guess; the client still does the enforcing.
  const guessed = createFsStore('/nonexistent').enforcement();
  assert.equal(guessed.enforcer, 'client');
  assert.equal(guessed.holdsAgainst.length, process.getuid?.() === 0 ? 3 : 1);
  assert.match(guessed.notes, /not yet tried/);
});

// --- Retention: file attributes --------------------------------------------------------------------

const SOON = { untilMs: Date.now() + 24 * 60 * 60 * 1000, mode: 'governance' } as const;

/** The lsattr flags column of one path ('' where lsattr cannot tell). */
function flagsOf(path: string): string {
  const result = spawnSync('lsattr', ['-d', '--', path], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
  return result.status === 0 ? result.stdout.split(' ')[0] : '';
}

/**
 * A store holding `names` (each with its name as bytes), all protected. Undefined, with the test
 * skipped, where the store cannot lock (not root, no CAP_LINUX_IMMUTABLE, a filesystem without
 * attributes): what these tests check cannot happen there.
 */
async function lockedStore(t: TestContext, names: string[]): Promise<{ root: string; store: Store } | undefined> {
  const root = await freshRoot();
  const store = createFsStore(root);
  for (const name of names) await store.put(name, new TextEncoder().encode(name));
  await store.protect(names, SOON);
  const held = await store.protection(names);
  if (held.every((entry) => entry.locked)) return { root, store };
  assert.ok(
    held.every((entry) => !entry.locked),
    'either every object is locked or none',
  );
  t.skip(`the store cannot set the immutable attribute here: ${store.enforcement().notes}`);
  return undefined;
}

/** Runs `rm` as a root user who means no harm but is careless. */
function rmAsRoot(args: string[]): { status: number | null; stderr: string } {
  const result = spawnSync('rm', args, { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
  return { status: result.status, stderr: result.stderr };
}

async function assertRefused(action: Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(
    action,
    (error: NodeJS.ErrnoException) => {
      assert.equal(error.code, 'EPERM', `${what}: ${String(error)}`);
      return true;
    },
    what,
  );
}

test('protect makes objects immutable and every directory up to the root append-only, but never tmp/', async (t) => {
  const names = ['data/ab/abcd', 'data/cd/cdef', 'keys/k1', 'config'];
  const locked = await lockedStore(t, names);
  if (!locked) return;
  const { root, store } = locked;
  for (const name of names) assert.match(flagsOf(join(root, name)), /i/, `${name} is immutable`);
  for (const dir of ['data/ab', 'data/cd', 'data', 'keys', ''])
    assert.match(flagsOf(join(root, dir)), /a/, `${dir || 'the root'} is append-only`);
  assert.doesNotMatch(flagsOf(join(root, 'tmp')), /[ia]/, 'tmp/ has no attribute');
  assert.deepEqual(await store.protection(['config', 'keys/k1']), [
    { name: 'config', locked: true },
    { name: 'keys/k1', locked: true },
  ]);
  // Learned from the first chattr: the directory's owner and a careless rm by root are held off.
  assert.equal(store.enforcement().holdsAgainst.length, 3);
  assert.match(store.enforcement().notes, /are immutable and their directories append-only/);
  // Protecting again (more objects, the same directories) is harmless.
  await store.put('data/ab/abce', new Uint8Array([1]));
  await store.protect(['data/ab/abcd', 'data/ab/abce'], SOON);
  assert.match(flagsOf(join(root, 'data/ab/abce')), /i/);
});

test('root cannot unlink, overwrite, rename, truncate, re-link or rm -rf a protected object by accident', async (t) => {
  const locked = await lockedStore(t, ['data/ab/abcd', 'snapshots/s1']);
  if (!locked) return;
  const { root, store } = locked;
  const path = join(root, 'data', 'ab', 'abcd');
  await assertRefused(unlink(path), 'unlink');
  await assertRefused(writeFile(path, 'forged'), 'overwrite');
  await assertRefused(chmod(path, 0o644), 'chmod');
  await assertRefused(rename(path, join(root, 'data', 'ab', 'abce')), 'rename within the directory');
  await assertRefused(rename(path, join(root, 'tmp', 'stolen')), 'rename into tmp/');
  await assertRefused(truncate(path, 0), 'truncate');
  await assertRefused(fsp.link(path, join(root, 'tmp', 'second-name')), 'a new hard link');
  // Even a file that is no object cannot take an object's name, nor can a directory move away.
  await writeFile(join(root, 'tmp', 'impostor'), 'forged');
  await assertRefused(rename(join(root, 'tmp', 'impostor'), path), 'rename over it');
  await assertRefused(rename(join(root, 'data', 'ab'), join(root, 'data', 'zz')), 'rename of its directory');
  const rm = rmAsRoot(['-rf', '--', root]);
  assert.notEqual(rm.status, 0, 'rm -rf fails');
  assert.match(rm.stderr, /Operation not permitted/);
  assertBytesEqual(await store.get('data/ab/abcd'), new TextEncoder().encode('data/ab/abcd'));
  assertBytesEqual(await readFile(path), new TextEncoder().encode('data/ab/abcd'));
  assert.deepEqual(
    (await listAll(store, '')).map((info) => info.name),
    ['data/ab/abcd', 'snapshots/s1'],
  );
});

test('puts still work after directories became append-only, and a taken name is still refused', async (t) => {
  const locked = await lockedStore(t, ['data/ab/abcd']);
  if (!locked) return;
  const { root, store } = locked;
  await store.put('data/ab/abce', new Uint8Array([2]));
  await store.put('data/cd/cdef', new Uint8Array([3]));
  await store.put('index/i1', new Uint8Array([4]));
  await assertAmberCode(store.put('data/ab/abcd', new Uint8Array([9])), 'OBJECT_EXISTS');
  assert.deepEqual(
    (await listAll(store, '')).map((info) => info.name),
    ['data/ab/abcd', 'data/ab/abce', 'data/cd/cdef', 'index/i1'],
  );
  assertBytesEqual(await store.get('data/ab/abce'), new Uint8Array([2]));
  assert.deepEqual(await tmpEntries(root), [], 'the temporary names were removed from tmp/');
  assert.doesNotMatch(flagsOf(join(root, 'data/ab/abce')), /i/, 'a put alone locks nothing');
  await store.protect(['data/cd/cdef'], SOON);
  assert.match(flagsOf(join(root, 'data/cd')), /a/);
  assert.doesNotMatch(flagsOf(join(root, 'tmp')), /[ia]/);
});

test("deleteExpired lifts one object's attributes, removes it, and leaves its directory append-only", async (t) => {
  const locked = await lockedStore(t, ['data/ab/old', 'data/ab/kept']);
  if (!locked) return;
  const { root, store } = locked;
  // A ranged read keeps a descriptor open; deleting must not leave it serving the old object.
  await store.get('data/ab/old', { offset: 0, length: 3 });
  await store.deleteExpired('data/ab/old');
  await assertAmberCode(store.get('data/ab/old', { offset: 0, length: 3 }), 'OBJECT_NOT_FOUND');
  await assertAmberCode(store.stat('data/ab/old'), 'OBJECT_NOT_FOUND');
  assert.match(flagsOf(join(root, 'data/ab')), /a/, 'the directory is append-only again');
  assert.match(flagsOf(join(root, 'data/ab/kept')), /i/, 'its neighbour is still immutable');
  await assertRefused(unlink(join(root, 'data/ab/kept')), 'unlink of the neighbour');
  // A later put into that directory, and removing an unprotected object from it, still work.
  await store.put('data/ab/new', new Uint8Array([5]));
  await store.deleteExpired('data/ab/new');
  await store.put('data/ab/newer', new Uint8Array([6]));
  assert.deepEqual(
    (await listAll(store, 'data/')).map((info) => info.name),
    ['data/ab/kept', 'data/ab/newer'],
  );
  // Another store (another process, later) removes what this one protected.
  await createFsStore(root).deleteExpired('data/ab/kept');
  assert.deepEqual(
    (await listAll(store, 'data/')).map((info) => info.name),
    ['data/ab/newer'],
  );
  assert.match(flagsOf(join(root, 'data/ab')), /a/);
});

test('concurrent deleteExpired calls in one directory each remove their object', async (t) => {
  const names = Array.from({ length: 12 }, (_, i) => `data/ab/o${i}`);
  const locked = await lockedStore(t, names);
  if (!locked) return;
  const { root, store } = locked;
  await Promise.all([...names.map((name) => store.deleteExpired(name)), store.protect([], SOON)]);
  assert.deepEqual(await listAll(store, ''), []);
  assert.match(flagsOf(join(root, 'data/ab')), /a/);
});

test('with lockObjects off, protect only checks the objects exist', async () => {
  const root = await freshRoot();
  const store = createFsStore(root, { lockObjects: false });
  await store.put('data/ab/abcd', new Uint8Array([1]));
  await store.protect(['data/ab/abcd'], SOON);
  await assertAmberCode(store.protect(['data/ab/missing'], SOON), 'OBJECT_NOT_FOUND');
  assert.doesNotMatch(flagsOf(join(root, 'data/ab/abcd')), /i/);
  assert.doesNotMatch(flagsOf(root), /a/);
  assert.deepEqual(await store.protection(['data/ab/abcd']), [{ name: 'data/ab/abcd', locked: false }]);
  assert.equal(store.enforcement().holdsAgainst.length, 1);
  await store.deleteExpired('data/ab/abcd');
});

test('without chattr and lsattr, protect is a no-op and protection says unlocked', async () => {
  const root = await freshRoot();
  const store = createFsStore(root);
  await store.put('data/ab/abcd', new Uint8Array([1]));
  const path = process.env.PATH;
  process.env.PATH = join(dirname(root), 'no-tools-here');
  try {
    await store.protect(['data/ab/abcd'], SOON);
    assert.deepEqual(await store.protection(['data/ab/abcd']), [{ name: 'data/ab/abcd', locked: false }]);
    assert.equal(store.enforcement().holdsAgainst.length, 1);
    assert.match(store.enforcement().notes, /chattr is not installed/);
  } finally {
    process.env.PATH = path;
  }
  assert.doesNotMatch(flagsOf(join(root, 'data/ab/abcd')), /i/);
  // It remembers: no further attempt once it knows it cannot.
  await store.protect(['data/ab/abcd'], SOON);
  assert.doesNotMatch(flagsOf(join(root, 'data/ab/abcd')), /i/);
  await store.deleteExpired('data/ab/abcd');
});

/** Runs an ES module script as the user nobody; its last line of output, parsed as JSON. */
function runAsNobody(script: string): unknown {
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    uid: NOBODY,
    gid: NOBODY,
    encoding: 'utf8',
    env: { ...process.env, LC_ALL: 'C' },
  });
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout.trim().split('\n').at(-1)!);
}

test('another user on the host cannot remove or change an object', { skip: whyNobodyCannotRun() }, async () => {
  const root = await freshRoot();
  // The temporary parent is private too; open it, so that the store's own 0700 root is what stops them.
  await chmod(dirname(root), 0o755);
  const store = createFsStore(root);
  await store.put('data/ab/abcd', new Uint8Array([1, 2, 3]));
  await store.protect(['data/ab/abcd'], SOON);
  const path = join(root, 'data', 'ab', 'abcd');
  const attempts = runAsNobody(`
    import fs from 'node:fs';
    const codes = {};
    for (const [what, attempt] of Object.entries({
      unlink: () => fs.unlinkSync(${JSON.stringify(path)}),
      overwrite: () => fs.writeFileSync(${JSON.stringify(path)}, 'forged'),
      rmTree: () => fs.rmSync(${JSON.stringify(root)}, { recursive: true }),
    })) {
      try { attempt(); codes[what] = 'done'; } catch (error) { codes[what] = error.code; }
    }
    console.log(JSON.stringify(codes));
  `);
  assert.deepEqual(attempts, { unlink: 'EACCES', overwrite: 'EACCES', rmTree: 'EACCES' });
  assertBytesEqual(await store.get('data/ab/abcd'), new Uint8Array([1, 2, 3]));
});

test('a store run without the right to set attributes learns it cannot lock, and says so', {
  skip: whyNobodyCannotRun(),
}, async () => {
  const root = await freshRoot();
  await chmod(dirname(root), 0o755);
  await mkdir(root, { mode: 0o700 });
  await chown(root, NOBODY, NOBODY);
  const storeModule = new URL('./fs-store.ts', import.meta.url).href;
  const seen = runAsNobody(`
    import { createFsStore } from ${JSON.stringify(storeModule)};
    const store = createFsStore(${JSON.stringify(root)});
    await store.put('data/ab/abcd', new Uint8Array([1]));
    await store.protect(['data/ab/abcd'], { untilMs: Date.now() + 86400000, mode: 'governance' });
    const protection = await store.protection(['data/ab/abcd']);
    await store.put('data/ab/abce', new Uint8Array([2]));
    await store.deleteExpired('data/ab/abce');
    console.log(JSON.stringify({ protection, enforcement: store.enforcement() }));
  `) as { protection: unknown; enforcement: { holdsAgainst: string[]; notes: string } };
  assert.deepEqual(seen.protection, [{ name: 'data/ab/abcd', locked: false }]);
  assert.equal(seen.enforcement.holdsAgainst.length, 1);
  assert.match(seen.enforcement.notes, /cannot be made immutable here \(chattr: Operation not permitted/);
  assert.doesNotMatch(flagsOf(join(root, 'data/ab/abcd')), /i/);
});
