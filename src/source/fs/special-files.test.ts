// Device numbers against the system's own devices, and device nodes made in the tests' temporary
// directory (root only; as another user the refusal is checked through setpriv).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deviceNumbers, makeSpecialFile } from './special-files.ts';
import { isAmberError } from '../../core/errors.ts';
import { nameFromBytes } from '../../core/byte-names.ts';

const notRoot = process.getuid?.() !== 0 && 'creating device nodes needs root';

let root = '';
before(() => {
  root = mkdtempSync(join(tmpdir(), 'amber-device-node-'));
  chmodSync(root, 0o777);
});
after(() => rmSync(root, { recursive: true, force: true }));

/** glibc's gnu_dev_makedev, to build rdev values with large numbers. */
const makedev = (major: bigint, minor: bigint) =>
  ((major & 0xfffn) << 8n) | ((major & 0xfffff000n) << 32n) | (minor & 0xffn) | ((minor & 0xffffff00n) << 12n);

test('device numbers of /dev/null and of a block device match what stat reports', () => {
  assert.deepEqual(deviceNumbers(lstatSync('/dev/null', { bigint: true }).rdev), { major: 1, minor: 3 });
  const block = readdirSync('/dev')
    .map((name) => join('/dev', name))
    .find((path) => lstatSync(path, { throwIfNoEntry: false })?.isBlockDevice());
  if (!block) return;
  const [major, minor] = execFileSync('stat', ['-c', '%Hr %Lr', block], { encoding: 'utf8' }).trim().split(' ');
  assert.deepEqual(deviceNumbers(lstatSync(block, { bigint: true }).rdev), { major: +major, minor: +minor });
});

test('device numbers beyond 12 bits of major and 8 bits of minor are split as glibc does', () => {
  assert.deepEqual(deviceNumbers(makedev(0x12345n, 0x6789an)), { major: 0x12345, minor: 0x6789a });
  assert.deepEqual(deviceNumbers(makedev(0xfffff000n, 0xffffff00n)), { major: 0xfffff000, minor: 0xffffff00 });
  assert.deepEqual(deviceNumbers(0n), { major: 0, minor: 0 });
});

function assertDevice(bytes: Buffer | string, type: 'char' | 'block', rdev: bigint, mode: number) {
  const stats = lstatSync(bytes, { bigint: true });
  assert.equal(type === 'char' ? stats.isCharacterDevice() : stats.isBlockDevice(), true);
  assert.equal(stats.rdev, rdev);
  assert.equal(Number(stats.mode & 0o7777n), mode);
}

test('a character device 1:3 and a block device 7:0 are made with mode 0640', { skip: notRoot }, () => {
  const rdevNull = makedev(1n, 3n);
  const rdevLoop = makedev(7n, 0n);
  makeSpecialFile(join(root, 'null'), 'chardev', 0o640, rdevNull);
  makeSpecialFile(join(root, 'loop0'), 'blockdev', 0o640, rdevLoop);
  assertDevice(join(root, 'null'), 'char', rdevNull, 0o640);
  assertDevice(join(root, 'loop0'), 'block', rdevLoop, 0o640);
});

test('an existing entry is never replaced: TARGET_EXISTS', { skip: notRoot }, () => {
  makeSpecialFile(join(root, 'taken'), 'chardev', 0o600, makedev(1n, 5n));
  assert.throws(
    () => makeSpecialFile(join(root, 'taken'), 'chardev', 0o600, makedev(1n, 3n)),
    (error) => isAmberError(error, 'TARGET_EXISTS'),
  );
  assertDevice(join(root, 'taken'), 'char', makedev(1n, 5n), 0o600);
});

test('names that are not UTF-8, in an ancestor or in the leaf, get the device under its own bytes', {
  skip: notRoot,
}, () => {
  const dir = Buffer.concat([Buffer.from(`${root}/dir`), Buffer.of(0xff)]);
  mkdirSync(dir);
  const plainLeaf = Buffer.concat([dir, Buffer.from('/plain')]);
  const badLeaf = Buffer.concat([dir, Buffer.from('/dev'), Buffer.of(0xfe)]);
  makeSpecialFile(nameFromBytes(plainLeaf), 'chardev', 0o644, makedev(1n, 3n));
  makeSpecialFile(nameFromBytes(badLeaf), 'blockdev', 0o600, makedev(7n, 1n));
  assertDevice(plainLeaf, 'char', makedev(1n, 3n), 0o644);
  assertDevice(badLeaf, 'block', makedev(7n, 1n), 0o600);
  assert.deepEqual(readdirSync(dir).length, 2, 'no temporary name is left');
  assert.throws(
    () => makeSpecialFile(nameFromBytes(badLeaf), 'blockdev', 0o600, makedev(7n, 1n)),
    (error) => isAmberError(error, 'TARGET_EXISTS'),
  );
  assert.deepEqual(readdirSync(dir).length, 2, 'no temporary name is left after a refusal');
});

test('without CAP_MKNOD the refusal is TARGET_UNWRITABLE with errno EPERM', { skip: notRoot }, () => {
  const path = join(root, 'as-nobody');
  const script = `import { makeSpecialFile } from ${JSON.stringify(new URL('./special-files.ts', import.meta.url).href)};
try { makeSpecialFile(${JSON.stringify(path)}, 'chardev', 0o600, 259n); }
catch (error) { process.stdout.write(JSON.stringify([error.code, error.details.errno])); }`;
  const out = execFileSync(
    'setpriv',
    ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--input-type=module', '-e', script],
    { encoding: 'utf8' },
  );
  assert.deepEqual(JSON.parse(out), ['TARGET_UNWRITABLE', 'EPERM']);
  assert.equal(existsSync(path), false);
});
