// The fidelity fixture and the snapshot comparison that judges restores against it: the fixture holds
// what it says (read back with plain lstat), a tree compared with itself or with a `cp -a` copy shows
// no difference, and one change of each kind in the copy is reported, and nothing else.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, lstatSync, mkdtempSync, openSync, closeSync, writeSync, renameSync } from 'node:fs';
import { copyFileSync, mkdirSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nameFromBytes } from '../../core/byte-names.ts';
import { ACL_ACCESS_XATTR, ACL_DEFAULT_XATTR, parseAclBlob } from './acl.ts';
import {
  ALL_BYTES,
  BIG_SPARSE_BYTES,
  buildFidelityTree,
  bytePath,
  CAPABILITY_BLOB,
  type FixtureInfo,
  LARGE_DIRECTORY_ENTRIES,
  removeFidelityTree,
} from './fixture.ts';
import { pythonSetXattr, pythonXattrReader, whyPythonXattrsUnavailable } from './python-xattrs.ts';
import {
  compareTrees,
  diffTrees,
  type EntryRecord,
  pathKey,
  showDevice,
  showKey,
  snapshotOfTree,
  type XattrReader,
} from './snapshot.ts';

const privileged = process.getuid?.() === 0;
const noPython = whyPythonXattrsUnavailable();
let dir: string;
let root: string;
let info: FixtureInfo;
/** A cp -a copy of the fixture: equal to it in one test, changed in the next. */
let copy: string;
/** The fixture before cp read it (reading moved the atimes the copy kept). */
let beforeCopy: Map<string, EntryRecord>;

const reader = (path: string): XattrReader | undefined => (noPython ? undefined : pythonXattrReader(path));
const snapshot = (path: string) => snapshotOfTree(path, { xattrs: reader(path) });
const key = (...parts: Parameters<typeof bytePath>) => pathKey(bytePath(...parts));
const CAFE = [0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'amber-fidelity-'));
  root = join(dir, 'tree');
  info = await buildFidelityTree(root, {
    privileged,
    bigSparse: false,
    setXattr: noPython ? undefined : pythonSetXattr,
  });
});

after(() => removeFidelityTree(dir));

test('the fixture holds what it says, and FixtureInfo lists every kind it made or skipped', () => {
  const tree = snapshot(root);
  const record = (k: string): EntryRecord => {
    const found = tree.get(k);
    assert.ok(found, `${showKey(k)} exists`);
    return found;
  };
  for (const [kind, keys] of Object.entries(info.paths)) {
    assert.equal(info.counts[kind as keyof typeof info.counts], keys.length);
    for (const k of keys) record(k);
  }
  const skippedKinds = new Set(info.skipped.map((skip) => skip.kind));
  for (const [kind, count] of Object.entries(info.counts))
    assert.ok(count > 0 || skippedKinds.has(kind as never), `${kind} has entries or says why not`);

  // Names are the bytes themselves: the kernel returned caf\xe9.txt, not a replacement character.
  assert.equal(record(key('names', CAFE)).contentSha256?.length, 64);
  assert.equal(
    showKey(key('names', [0xff, 0xfe], [0x80, 0x2d, 0x6c, 0x6f, 0x6e, 0x65])),
    'names/\\xff\\xfe/\\x80-lone',
  );
  assert.equal(showKey(key('names', 'line\nbreak.txt')), 'names/line\\nbreak.txt');
  assert.equal(record(key('symlinks', 'non-utf8-target')).linkTarget, bytePath('..', 'names', CAFE).toString('hex'));
  assert.equal(record(key('special', 'fifo')).type, 'fifo');
  assert.equal(record(key('modes', 'setuid')).mode, 0o4755);
  assert.equal(record(key('modes', 'setgid-dir')).mode, 0o2755);
  assert.equal(record(key('modes', 'sticky-dir')).mode, 0o1777);
  assert.deepEqual(record(key('hardlinks', 'b', 'second')).hardLinks, [
    key('hardlinks', 'a', 'original'),
    key('hardlinks', 'b', 'second'),
    key('hardlinks', 'c', 'third'),
  ]);
  // Times are what the kernel holds: Node's double gets within 240 ns of the asked-for value.
  const near = (actual: bigint, wanted: bigint) =>
    assert.ok(actual - wanted < 300n && wanted - actual < 300n, `${actual} ≈ ${wanted}`);
  near(record(key('times', '1930-ns')).mtimeNs, -1_234_567_891_987_654_321n);
  near(record(key('times', '2026-ns')).mtimeNs, 1_780_000_000_123_456_789n);
  near(record(key('times', '2100-ns')).mtimeNs, 4_102_444_800_123_456_789n);
  near(record(key('times', 'atime-older')).atimeNs, 1_600_000_000_250_000_000n);
  near(record(key('times', 'old-dir')).mtimeNs, -300_000_000_123_456_789n);
  assert.ok(record(key('sparse', 'small.bin')).allocatedBytes! <= 64 * 1024, 'the small sparse file keeps its holes');
  assert.equal(tree.get(key('many'))?.type, 'dir');
  assert.equal(info.paths.largeDirectory.length, LARGE_DIRECTORY_ENTRIES + 1);
  assert.equal(record(key('empty', 'file')).size, 0);

  if (privileged) {
    assert.equal(showDevice(record(key('special', 'null')).rdev!), '1:3');
    assert.equal(record(key('special', 'loop0')).type, 'blockdev');
    assert.equal(showDevice(record(key('special', 'loop0')).rdev!), '7:0');
    assert.deepEqual(
      [record(key('owners', 'foreign-file')).uid, record(key('owners', 'foreign-file')).gid],
      [12345, 23456],
    );
    assert.equal(record(key('owners', 'nobody-file')).uid, 65534);
    assert.equal(record(key('owners', 'foreign-setuid')).mode, 0o4750, 'set-uid survives the chown before it');
  }
  if (noPython) {
    assert.equal(info.xattrs, false);
    return;
  }
  assert.equal(info.xattrs, true);
  const xattrs = record(key('xattrs', 'binary-values')).xattrs!;
  assert.equal(xattrs['user.all-bytes'], ALL_BYTES.toString('hex'));
  assert.equal(xattrs['user.empty'], '');
  assert.equal(record(key('names', CAFE)).xattrs!['user.latin1'], 'e9');
  const acl = parseAclBlob(Buffer.from(record(key('acl', 'access-file')).xattrs![ACL_ACCESS_XATTR], 'hex'));
  assert.deepEqual(
    acl.filter((entry) => entry.id !== undefined).map((entry) => [entry.tag, entry.id]),
    [
      ['USER', 12345],
      ['USER', 65534],
      ['GROUP', 23456],
    ],
  );
  assert.ok(record(key('acl', 'default-dir')).xattrs![ACL_DEFAULT_XATTR]);
  assert.ok(record(key('acl', 'default-dir', 'inherits')).xattrs![ACL_ACCESS_XATTR], 'inherited from the default ACL');
  if (privileged) {
    assert.equal(record(key('xattrs', 'capability')).xattrs!['security.capability'], CAPABILITY_BLOB.toString('hex'));
    assert.ok(record(key('xattrs', 'trusted')).xattrs!['trusted.amber']);
  }
});

test('a tree compared with itself, and with a cp -a copy, shows no difference; reading it moved no file atime', () => {
  const first = snapshot(root);
  const second = snapshot(root);
  assert.deepEqual(compareTrees(first, second), []);
  beforeCopy = first;
  copy = join(dir, 'copy');
  execFileSync('cp', ['-a', '--preserve=all', root, copy]);
  assert.deepEqual(compareTrees(first, snapshot(copy)), []);
});

test('one change of each kind in the copy is reported field by field, and nothing else', () => {
  assert.ok(copy, 'the copy the test before made');
  const expected = beforeCopy;
  const at = (relative: Buffer) => Buffer.concat([Buffer.from(`${copy}/`), relative]);
  // touch(1) sets nanoseconds exactly; the path goes through printf so its bytes reach it unchanged.
  const touch = (relative: Buffer, which: '-m' | '-a', ns: bigint) => {
    const seconds = ns / 1_000_000_000n;
    let fraction = ns % 1_000_000_000n;
    const whole = fraction < 0n ? seconds - 1n : seconds;
    if (fraction < 0n) fraction += 1_000_000_000n;
    const octal = [...at(relative)].map((byte) => `\\${byte.toString(8).padStart(3, '0')}`).join('');
    const stamp = `@${whole}.${fraction.toString().padStart(9, '0')}`;
    execFileSync('sh', ['-c', `touch -h ${which} -d "$1" "$(printf "$2")"`, 'sh', stamp, octal]);
  };
  const touchNs = (relative: Buffer, ns: bigint) => touch(relative, '-m', ns);
  const putTimesBack = (relative: Buffer) => {
    const record = expected.get(pathKey(relative))!;
    touch(relative, '-m', record.mtimeNs);
    touch(relative, '-a', record.atimeNs);
  };
  const restoreDirTime = (relative: Buffer) => touchNs(relative, expected.get(pathKey(relative))!.mtimeNs);
  // Content: one byte of a file whose name is not UTF-8, its mtime put back.
  const cafe = bytePath('names', CAFE);
  const fd = openSync(at(cafe), 'r+');
  writeSync(fd, Buffer.from('L'), 0, 1, 0);
  closeSync(fd);
  touchNs(cafe, expected.get(pathKey(cafe))!.mtimeNs);
  // A mode, an mtime one nanosecond later, a symlink's target, a broken hard link.
  chmodSync(at(bytePath('modes', 'setuid')), 0o755);
  const nsFile = bytePath('times', '2026-ns');
  touchNs(nsFile, expected.get(pathKey(nsFile))!.mtimeNs + 1n);
  unlinkSync(at(bytePath('symlinks', 'normal')));
  symlinkSync('target.txt.', at(bytePath('symlinks', 'normal')));
  putTimesBack(bytePath('symlinks', 'normal'));
  restoreDirTime(bytePath('symlinks'));
  const second = bytePath('hardlinks', 'b', 'second');
  copyFileSync(at(second), at(bytePath('hardlinks', 'b', '.tmp')));
  renameSync(at(bytePath('hardlinks', 'b', '.tmp')), at(second));
  // Reading the copy's source moved the shared atime: both inodes get the recorded times back.
  putTimesBack(second);
  putTimesBack(bytePath('hardlinks', 'a', 'original'));
  restoreDirTime(bytePath('hardlinks', 'b'));
  // A file gone, one added, one replaced by a directory.
  unlinkSync(at(bytePath('names', [0xff, 0xfe], 'inside.txt')));
  restoreDirTime(bytePath('names', [0xff, 0xfe]));
  writeFileSync(at(bytePath('empty', 'dir', 'new')), 'new\n');
  restoreDirTime(bytePath('empty', 'dir'));
  rmSync(at(bytePath('empty', 'file')));
  mkdirSync(at(bytePath('empty', 'file')));
  restoreDirTime(bytePath('empty'));
  if (privileged) {
    chownSync(at(bytePath('owners', 'nobody-file')), 65534, 0);
    unlinkSync(at(bytePath('special', 'null')));
    execFileSync('/usr/bin/mknod', ['-m', '0666', at(bytePath('special', 'null')).toString(), 'c', '1', '5']);
    putTimesBack(bytePath('special', 'null'));
    restoreDirTime(bytePath('special'));
  }
  if (!noPython) {
    const value = Buffer.from(ALL_BYTES);
    value[255] = 0;
    pythonSetXattr(nameFromBytes(at(bytePath('xattrs', 'binary-values'))), 'user.all-bytes', value);
  }

  const differences = diffTrees(expected, snapshot(copy));
  const found = differences.map((d) => `${d.path} ${d.field}${d.xattr ? ` ${d.xattr}` : ''}`).sort();
  const wanted = [
    'names/caf\\xe9.txt contentSha256',
    'modes/setuid mode',
    'times/2026-ns mtimeNs',
    'symlinks/normal linkTarget',
    'symlinks/normal size',
    'hardlinks/a/original hardLinks',
    'hardlinks/b/second hardLinks',
    'hardlinks/c/third hardLinks',
    'names/\\xff\\xfe/inside.txt presence',
    'empty/dir/new presence',
    'empty/file type',
    ...(privileged ? ['owners/nobody-file gid', 'special/null rdev'] : []),
    ...(noPython ? [] : ['xattrs/binary-values xattrs user.all-bytes']),
  ].sort();
  assert.deepEqual(found, wanted, differences.map((d) => d.message).join('\n'));

  const messages = compareTrees(expected, snapshot(copy));
  const line = (start: string) => messages.find((message) => message.startsWith(start)) ?? messages.join('\n');
  assert.match(line('times/2026-ns: mtimeNs'), /off by 1 ns/);
  assert.match(line('modes/setuid: mode'), /expected 0o4755, actual 0o0755/);
  assert.match(line('symlinks/normal: linkTarget'), /expected "target.txt", actual "target.txt."/);
  assert.match(
    line('hardlinks/b/second: hardLinks'),
    /expected linked with hardlinks\/a\/original, .*actual no other name/,
  );
  assert.match(line('names/\\xff\\xfe/inside.txt'), /missing from actual \(file\)/);
  assert.match(line('empty/dir/new'), /only in actual \(file\)/);
  if (privileged) assert.match(line('special/null: rdev'), /expected 1:3, actual 1:5/);

  // Tolerance and ignored fields take out exactly their differences.
  const lenient = diffTrees(expected, snapshot(copy), { timeToleranceNs: 1n, ignore: ['hardLinks', 'gid'] });
  assert.ok(!lenient.some((d) => d.field === 'mtimeNs' || d.field === 'hardLinks' || d.field === 'gid'));
  assert.equal(lenient.length, differences.length - 4 - (privileged ? 1 : 0));
});

test('the big sparse file is 2 GiB long and allocates only a few KiB; without setXattr the xattr kinds say why', async () => {
  const bigRoot = join(dir, 'big');
  const started = performance.now();
  const big = await buildFidelityTree(bigRoot, { privileged, bigSparse: true });
  const elapsed = performance.now() - started;
  try {
    const stats = lstatSync(join(bigRoot, 'sparse', 'big.bin'), { bigint: true });
    assert.equal(stats.size, BigInt(BIG_SPARSE_BYTES));
    assert.ok(stats.blocks * 512n <= 64n * 1024n, `${stats.blocks * 512n} bytes allocated`);
    assert.equal(big.counts.bigSparse, 1);
    assert.equal(big.xattrs, false);
    assert.deepEqual(
      big.skipped.filter((skip) => skip.reason === 'no setXattr given').map((skip) => skip.kind),
      ['xattrs', 'privilegedXattrs', 'acls'],
    );
    assert.ok(elapsed < 60_000, `built in ${Math.round(elapsed)} ms`);
  } finally {
    removeFidelityTree(bigRoot);
  }
});
