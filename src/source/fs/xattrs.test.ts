// Real attributes on real files in the tests' temporary directory (ext4 here). Tests that need root
// (trusted.*, security.*, capabilities) or attribute support skip with the reason otherwise.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, linkSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { errnoOf, readXattrs, writeXattrs, writeXattrsFd, xattrKind, type Xattr } from './xattrs.ts';
import { isAmberError } from '../../core/errors.ts';
import { nameFromBytes } from '../../core/byte-names.ts';

const binding = createRequire(import.meta.url)('@napi-rs/xattr') as {
  listAttributesSync(path: string): string[];
  getAttributeSync(path: string, name: string): Buffer | null;
  setAttributeSync(path: string, name: string, value: Uint8Array): void;
};
const isRoot = process.getuid?.() === 0;
const notRoot = !isRoot && 'needs root for trusted.* and security.*';

let root = '';
let noXattrs: string | false = false;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'amber-xattrs-'));
  chmodSync(root, 0o755);
  const probe = join(root, 'probe');
  writeFileSync(probe, '');
  try {
    binding.setAttributeSync(probe, 'user.amber-probe', Buffer.of(1));
  } catch (error) {
    noXattrs = `${tmpdir()} keeps no user attributes (${(error as Error).message})`;
  }
});
after(() => rmSync(root, { recursive: true, force: true }));

const skipUnlessXattrs = () => ({ skip: noXattrs });
const skipUnlessRoot = () => ({ skip: noXattrs || notRoot });

/** A path of `root` whose last components are these bytes (so not UTF-8 where they say so). */
const bytePath = (...parts: Buffer[]) =>
  Buffer.concat([Buffer.from(root), ...parts.map((p) => Buffer.concat([Buffer.from('/'), p]))]);
const BAD_DIR = Buffer.from([0x64, 0xff, 0x64]); // "d\xffd"
const BAD_FILE = Buffer.from([0x66, 0xfe]); // "f\xfe"

const attr = (name: string, value: string | Buffer): Xattr => ({ name, value: Buffer.from(value) });

test(
  'user attributes keep binary values: every byte value, an empty value; sorted by name bytes',
  skipUnlessXattrs(),
  () => {
    const path = join(root, 'binary');
    writeFileSync(path, 'content');
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const written = [attr('user.zz', all), attr('user.a', ''), attr('user.M', 'm'), attr('user.\u00e9', 'x')];
    assert.deepEqual(writeXattrs(path, 'file', written), []);
    const read = readXattrs(path, 'file');
    assert.deepEqual(
      read.map((x) => x.name),
      ['user.M', 'user.a', 'user.zz', 'user.\u00e9'],
    );
    assert.deepEqual(read, [written[2], written[1], written[0], written[3]]);
  },
);

test(
  'large values: 4000 bytes are kept; 4 KiB is kept or refused as ENOSPC (ext4 keeps one block of attributes)',
  skipUnlessXattrs(),
  () => {
    const path = join(root, 'large');
    writeFileSync(path, '');
    const large = Buffer.alloc(4000, 0xa5);
    assert.deepEqual(writeXattrs(path, 'file', [attr('user.large', large)]), []);
    assert.deepEqual(readXattrs(path, 'file'), [attr('user.large', large)]);
    const fourKib = join(root, 'four-kib');
    writeFileSync(fourKib, '');
    const value = Buffer.alloc(4096, 0x5a);
    const failures = writeXattrs(fourKib, 'file', [attr('user.big', value)]);
    if (failures.length === 0) assert.deepEqual(readXattrs(fourKib, 'file'), [attr('user.big', value)]);
    else assert.deepEqual(failures, [{ kind: 'user', errno: 'ENOSPC', names: ['user.big'] }]);
  },
);

test('trusted.* and security.* attributes are read and written as root', skipUnlessRoot(), () => {
  const path = join(root, 'privileged');
  writeFileSync(path, '');
  const written = [attr('security.amber', 'label'), attr('trusted.amber', Buffer.of(0, 1, 2)), attr('user.x', 'u')];
  assert.deepEqual(writeXattrs(path, 'file', written), []);
  assert.deepEqual(readXattrs(path, 'file'), written);
});

/** A VFS_CAP_REVISION_2 blob: magic (revision | effective flag), then permitted and inheritable, two u32 each. */
function capabilityV2(permitted: bigint): Buffer {
  const blob = Buffer.alloc(20);
  blob.writeUInt32LE(0x02000000 | 0x000001, 0);
  blob.writeUInt32LE(Number(permitted & 0xffffffffn), 4);
  blob.writeUInt32LE(Number(permitted >> 32n), 12);
  return blob;
}

test('a file capability (security.capability) is read back byte for byte', skipUnlessRoot(), () => {
  const path = join(root, 'ping');
  writeFileSync(path, '#!/bin/sh\n', { mode: 0o755 });
  const CAP_NET_RAW = 13n;
  const blob = capabilityV2(1n << CAP_NET_RAW);
  assert.deepEqual(writeXattrs(path, 'file', [attr('security.capability', blob)]), []);
  assert.deepEqual(readXattrs(path, 'file'), [attr('security.capability', blob)]);
  assert.equal(xattrKind('security.capability'), 'capability');
});

const ACL = { USER_OBJ: 1, USER: 2, GROUP_OBJ: 4, GROUP: 8, MASK: 0x10, OTHER: 0x20 } as const;
const UNDEFINED_ID = 0xffffffff;

/** The kernel's POSIX ACL attribute: u32 version 2, then {u16 tag, u16 perm, u32 id} sorted by tag and id. */
function aclBlob(entries: [tag: number, perm: number, id?: number][]): Buffer {
  const blob = Buffer.alloc(4 + 8 * entries.length);
  blob.writeUInt32LE(2, 0);
  entries.forEach(([tag, perm, id], i) => {
    blob.writeUInt16LE(tag, 4 + 8 * i);
    blob.writeUInt16LE(perm, 6 + 8 * i);
    blob.writeUInt32LE(id ?? UNDEFINED_ID, 8 + 8 * i);
  });
  return blob;
}

test('an access ACL on a file and a default ACL on a directory are kept as raw bytes', skipUnlessXattrs(), () => {
  const file = join(root, 'acl-file');
  const dir = join(root, 'acl-dir');
  writeFileSync(file, '');
  mkdirSync(dir);
  const access = aclBlob([
    [ACL.USER_OBJ, 6],
    [ACL.USER, 4, 1000],
    [ACL.GROUP_OBJ, 4],
    [ACL.GROUP, 6, 1001],
    [ACL.MASK, 6],
    [ACL.OTHER, 0],
  ]);
  const inherited = aclBlob([
    [ACL.USER_OBJ, 7],
    [ACL.USER, 5, 65534],
    [ACL.GROUP_OBJ, 5],
    [ACL.MASK, 5],
    [ACL.OTHER, 0],
  ]);
  assert.deepEqual(writeXattrs(file, 'file', [attr('system.posix_acl_access', access)]), []);
  assert.deepEqual(writeXattrs(dir, 'dir', [attr('system.posix_acl_default', inherited)]), []);
  assert.deepEqual(readXattrs(file, 'file'), [attr('system.posix_acl_access', access)]);
  assert.deepEqual(readXattrs(dir, 'dir'), [attr('system.posix_acl_default', inherited)]);
  assert.equal(xattrKind('system.posix_acl_default'), 'acl');
});

test(
  'an ACL value that is not version 2 is reported as refused (EINVAL), not as a filesystem without ACLs',
  skipUnlessXattrs(),
  () => {
    const file = join(root, 'acl-malformed');
    writeFileSync(file, '');
    for (const value of [Buffer.from('garbage!'), Buffer.from([1, 0, 0, 0])]) {
      assert.deepEqual(writeXattrs(file, 'file', [attr('system.posix_acl_access', value)]), [
        { kind: 'acl', errno: 'EINVAL', names: ['system.posix_acl_access'] },
      ]);
    }
  },
);

test("a symlink's own trusted.* attributes are read and written, never its target's", skipUnlessRoot(), () => {
  const target = join(root, 'link-target');
  const link = join(root, 'link');
  writeFileSync(target, '');
  binding.setAttributeSync(target, 'trusted.target', Buffer.from('t'));
  symlinkSync('link-target', link);
  assert.deepEqual(writeXattrs(link, 'symlink', [attr('trusted.link', 'l')]), []);
  assert.deepEqual(readXattrs(link, 'symlink'), [attr('trusted.link', 'l')]);
  assert.deepEqual(binding.listAttributesSync(target), ['trusted.target']);
});

test(
  'user.* on a symlink is one failure of kind user with EPERM; the other attributes are set',
  skipUnlessXattrs(),
  () => {
    const link = join(root, 'link-user');
    symlinkSync('nowhere', link);
    const xattrs = [attr('user.a', '1'), attr('user.b', '2'), ...(isRoot ? [attr('trusted.ok', '3')] : [])];
    assert.deepEqual(writeXattrs(link, 'symlink', xattrs), [
      { kind: 'user', errno: 'EPERM', names: ['user.a', 'user.b'] },
    ]);
    assert.deepEqual(
      readXattrs(link, 'symlink').map((x) => x.name),
      isRoot ? ['trusted.ok'] : [],
    );
  },
);

test('a filesystem without attributes refuses each kind as ENOTSUP and reads as none', () => {
  const xattrs = [attr('user.a', '1'), attr('system.posix_acl_access', aclBlob([[ACL.USER_OBJ, 6]]))];
  assert.deepEqual(writeXattrs('/proc/self/comm', 'file', xattrs), [
    { kind: 'user', errno: 'ENOTSUP', names: ['user.a'] },
    { kind: 'acl', errno: 'ENOTSUP', names: ['system.posix_acl_access'] },
  ]);
  assert.deepEqual(readXattrs('/proc/self/comm', 'file'), []);
});

test('a missing entry is SOURCE_NOT_FOUND on reading and TARGET_UNWRITABLE on writing', () => {
  const missing = join(root, 'missing');
  assert.throws(
    () => readXattrs(missing, 'file'),
    (error) => isAmberError(error, 'SOURCE_NOT_FOUND'),
  );
  const escaped = nameFromBytes(bytePath(BAD_DIR, Buffer.from('missing')));
  assert.throws(
    () => readXattrs(escaped, 'file'),
    (error) => isAmberError(error, 'SOURCE_NOT_FOUND'),
  );
  assert.throws(
    () => writeXattrs(missing, 'file', [attr('user.a', '')]),
    (error) => isAmberError(error, 'TARGET_UNWRITABLE') && error.details?.errno === 'ENOENT',
  );
});

test('names that are not UTF-8, in the leaf or in an ancestor, reach the entry itself', skipUnlessXattrs(), () => {
  mkdirSync(bytePath(BAD_DIR), { recursive: true });
  const cases: { bytes: Buffer; type: 'file' | 'dir' }[] = [
    { bytes: bytePath(BAD_DIR, Buffer.from('plain-file')), type: 'file' },
    { bytes: bytePath(BAD_DIR, Buffer.from('plain-dir')), type: 'dir' },
    { bytes: bytePath(BAD_FILE), type: 'file' },
    { bytes: bytePath(BAD_DIR, BAD_DIR), type: 'dir' },
    { bytes: bytePath(BAD_DIR, BAD_FILE), type: 'file' },
  ];
  for (const [i, { bytes, type }] of cases.entries()) {
    // Attributes set under a UTF-8 name, then the entry renamed to its name of bytes: readXattrs sees them.
    const plain = join(root, `plain-${i}`);
    if (type === 'dir') mkdirSync(plain);
    else writeFileSync(plain, 'x');
    binding.setAttributeSync(plain, 'user.set-before', Buffer.from(`${i}`));
    renameSync(plain, bytes);
    const path = nameFromBytes(bytes);
    assert.deepEqual(readXattrs(path, type), [attr('user.set-before', `${i}`)], `case ${i}`);
    // writeXattrs on the name of bytes, then renamed back: the binding sees what it set.
    assert.deepEqual(writeXattrs(path, type, [attr('user.set-after', 'y')]), [], `case ${i}`);
    renameSync(bytes, plain);
    assert.deepEqual(binding.listAttributesSync(plain).sort(), ['user.set-after', 'user.set-before'], `case ${i}`);
  }
});

test(
  'a symlink whose own name is not UTF-8 is XATTRS_UNREADABLE; below such a directory it is read',
  skipUnlessXattrs(),
  () => {
    mkdirSync(bytePath(BAD_DIR), { recursive: true });
    symlinkSync('anywhere', bytePath(Buffer.from([0x6c, 0xff])));
    const unreachable = nameFromBytes(bytePath(Buffer.from([0x6c, 0xff])));
    assert.throws(
      () => readXattrs(unreachable, 'symlink'),
      (error) => isAmberError(error, 'XATTRS_UNREADABLE') && /l\\xff/.test(error.message),
    );
    assert.throws(
      () => writeXattrs(unreachable, 'symlink', [attr('trusted.a', '')]),
      (error) => !isAmberError(error) && /temporary|UTF-8 name/.test((error as Error).message),
    );
    // A symlink with a UTF-8 name below a directory whose name is not: its own attributes, not its target's.
    const target = join(root, 'below-target');
    writeFileSync(target, '');
    binding.setAttributeSync(target, 'user.target', Buffer.from('t'));
    symlinkSync(target, bytePath(BAD_DIR, Buffer.from('link')));
    assert.deepEqual(readXattrs(nameFromBytes(bytePath(BAD_DIR, Buffer.from('link'))), 'symlink'), []);
  },
);

test('writeXattrsFd sets attributes through an open file', skipUnlessXattrs(), async () => {
  const { openSync, closeSync } = await import('node:fs');
  const path = join(root, 'through-fd');
  const fd = openSync(path, 'wx', 0o600);
  try {
    assert.deepEqual(writeXattrsFd(fd, [attr('user.fd', 'f')], path), []);
  } finally {
    closeSync(fd);
  }
  assert.deepEqual(readXattrs(path, 'file'), [attr('user.fd', 'f')]);
});

test('without privileges trusted.* is not listed and reading is no error', skipUnlessRoot(), () => {
  const path = join(root, 'for-nobody');
  writeFileSync(path, '');
  chmodSync(path, 0o644);
  binding.setAttributeSync(path, 'trusted.hidden', Buffer.from('h'));
  binding.setAttributeSync(path, 'user.seen', Buffer.from('s'));
  const script = `import { readXattrs } from ${JSON.stringify(new URL('./xattrs.ts', import.meta.url).href)};
process.stdout.write(JSON.stringify(readXattrs(${JSON.stringify(path)}, 'file').map((x) => x.name)));`;
  const out = execFileSync(
    'setpriv',
    ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--input-type=module', '-e', script],
    { encoding: 'utf8' },
  );
  assert.deepEqual(JSON.parse(out), ['user.seen']);
});

test('both native bindings load and work inside worker threads', skipUnlessXattrs(), async () => {
  const path = join(root, 'from-workers');
  writeFileSync(path, '');
  binding.setAttributeSync(path, 'user.w', Buffer.from('w'));
  readXattrs(path, 'file'); // loaded on the main thread first, as in a backup
  const escapedLeaf = bytePath(Buffer.from([0x77, 0xfa]));
  linkSync(path, escapedLeaf);
  const code = `const { parentPort, workerData } = require('node:worker_threads');
Promise.all(workerData.modules.map((url) => import(url))).then(([{ readXattrs }, { nameFromBytes }]) => {
  const plain = readXattrs(workerData.path, 'file');
  const viaFd = readXattrs(nameFromBytes(Buffer.from(workerData.escaped, 'hex')), 'file');
  parentPort.postMessage([plain, viaFd].map((list) => list.map((x) => x.name + '=' + x.value.toString())));
});`;
  const modules = [
    new URL('./xattrs.ts', import.meta.url).href,
    new URL('../../core/byte-names.ts', import.meta.url).href,
  ];
  const run = () =>
    new Promise((resolve, reject) => {
      const worker = new Worker(code, {
        eval: true,
        workerData: { modules, path, escaped: escapedLeaf.toString('hex') },
      });
      worker.once('message', resolve);
      worker.once('error', reject);
    });
  const results = await Promise.all([run(), run()]);
  for (const result of results) assert.deepEqual(result, [['user.w=w'], ['user.w=w']]);
});

test('errno names come from Node, the fd binding and the path binding alike', () => {
  assert.equal(errnoOf(Object.assign(new Error('x'), { code: 'EACCES' })), 'EACCES');
  assert.equal(errnoOf(Object.assign(new Error('x'), { code: 'EOPNOTSUPP' })), 'ENOTSUP');
  assert.equal(errnoOf(new Error('Operation not supported (os error 95)')), 'ENOTSUP');
  assert.equal(errnoOf(new Error('Permission denied (os error 13)')), 'EACCES');
  assert.equal(errnoOf(Object.assign(new Error('Invalid attribute'), { code: 'InvalidArg' })), undefined);
});
