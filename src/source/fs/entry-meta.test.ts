import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { metaFromStats, readEntryMeta, utimeSecondsFromNs } from './entry-meta.ts';
import { isAmberError } from '../../core/errors.ts';

let root = '';
before(async () => {
  root = await fs.mkdtemp(join(tmpdir(), 'amber-entry-meta-'));
});
after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

test('a regular file reports its size, permission bits, times, owner and inode', async () => {
  const path = join(root, 'file.txt');
  await fs.writeFile(path, 'hello');
  await fs.chmod(path, 0o4751);
  const meta = readEntryMeta(path, 'file.txt');
  const stats = await fs.lstat(path, { bigint: true });
  assert.equal(meta.name, 'file.txt');
  assert.equal(meta.type, 'file');
  assert.equal(meta.mode, 0o4751);
  assert.equal(meta.sizeBytes, 5);
  assert.equal(meta.uid, Number(stats.uid));
  assert.equal(meta.gid, Number(stats.gid));
  assert.equal(meta.mtimeNs, stats.mtimeNs);
  assert.equal(meta.ctimeNs, stats.ctimeNs);
  assert.equal(meta.inode, stats.ino);
  assert.equal(meta.deviceId, stats.dev);
  assert.equal(meta.nlink, 1);
  assert.equal(meta.linkTarget, undefined);
  assert.equal(meta.rdev, undefined);
  assert.equal(meta.atimeNs, stats.atimeNs);
});

test('a symlink is described itself, never its target', async () => {
  await fs.mkdir(join(root, 'target-dir'));
  await fs.symlink('target-dir', join(root, 'to-dir'));
  await fs.symlink('nowhere', join(root, 'dangling'));
  const toDir = readEntryMeta(join(root, 'to-dir'), 'to-dir');
  assert.equal(toDir.type, 'symlink');
  assert.equal(toDir.linkTarget, 'target-dir');
  const dangling = readEntryMeta(join(root, 'dangling'), 'dangling');
  assert.equal(dangling.type, 'symlink');
  assert.equal(dangling.linkTarget, 'nowhere');
});

test('directories, fifos, sockets and character devices get their own types', async () => {
  await fs.mkdir(join(root, 'dir'), { mode: 0o700 });
  await fs.chmod(join(root, 'dir'), 0o2770);
  assert.deepEqual(
    [readEntryMeta(join(root, 'dir'), 'dir').type, readEntryMeta(join(root, 'dir'), 'dir').mode],
    ['dir', 0o2770],
  );
  execFileSync('mkfifo', [join(root, 'fifo')]);
  assert.equal(readEntryMeta(join(root, 'fifo'), 'fifo').type, 'fifo');
  const null_ = readEntryMeta('/dev/null', 'null');
  assert.equal(null_.type, 'chardev');
  assert.equal(typeof null_.rdev, 'bigint');
  const { createServer } = await import('node:net');
  const server = createServer();
  const socketPath = join(root, 'sock');
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  try {
    assert.equal(readEntryMeta(socketPath, 'sock').type, 'socket');
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test('hard links share inode and device and count their names', async () => {
  await fs.writeFile(join(root, 'link-a'), 'x');
  await fs.link(join(root, 'link-a'), join(root, 'link-b'));
  const a = readEntryMeta(join(root, 'link-a'), 'link-a');
  const b = readEntryMeta(join(root, 'link-b'), 'link-b');
  assert.equal(a.inode, b.inode);
  assert.equal(a.deviceId, b.deviceId);
  assert.equal(a.nlink, 2);
});

test('metaFromStats reuses stats a caller already holds', async () => {
  await fs.symlink('abc', join(root, 'reuse'));
  const stats = await fs.lstat(join(root, 'reuse'), { bigint: true });
  assert.equal(metaFromStats('reuse', stats, 'abc').linkTarget, 'abc');
  assert.throws(() => metaFromStats('reuse', stats), /link target/);
});

test('a missing path is SOURCE_NOT_FOUND naming the path', async () => {
  const path = join(root, 'missing');
  assert.throws(
    () => readEntryMeta(path, 'missing'),
    (error) => isAmberError(error, 'SOURCE_NOT_FOUND') && error.message.includes(path),
  );
});

test('times converted for utimes land within a microsecond of the nanosecond value, before 1970 too', async () => {
  const path = join(root, 'timed');
  await fs.writeFile(path, '');
  for (const ns of [
    1_700_000_000_123_456_789n,
    946_684_799_999_999_999n,
    4_102_444_800_000_000_001n,
    1n,
    -1n,
    -86_400_123_456_789n,
  ]) {
    const seconds = utimeSecondsFromNs(ns);
    await fs.utimes(path, seconds, seconds);
    const { mtimeNs } = await fs.lstat(path, { bigint: true });
    const diff = mtimeNs > ns ? mtimeNs - ns : ns - mtimeNs;
    assert.ok(diff < 1_000n, `${ns} came back as ${mtimeNs}`);
  }
});
