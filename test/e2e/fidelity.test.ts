// Every file comes back as it was: the fidelity fixture (names that are not UTF-8, attributes, ACLs,
// devices, FIFOs, set-id bits, foreign owners, hard links, times in 1969 and 2100, a 2 GiB sparse
// file, 20,000 entries in one directory) is backed up and restored with the real CLI, and the
// restore is compared with the source entry by entry, by the tests' own byte-reading snapshot.
// Attributes are set and read back through Python's os module, independently of Amber's own code.
// As root everything must come back; as an unprivileged user what it may not set is reported once
// per kind and everything else comes back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nameBytes, nameFromBytes } from '../../src/core/byte-names.ts';
import {
  buildFidelityTree,
  bytePath,
  type FixtureInfo,
  removeFidelityTree,
} from '../../src/testing/fidelity/fixture.ts';
import {
  pythonSetXattr,
  pythonXattrReader,
  whyPythonXattrsUnavailable,
} from '../../src/testing/fidelity/python-xattrs.ts';
import { removeTree } from '../../src/testing/repo-fixture.ts';
import { compareTrees, type EntryRecord, pathKey, snapshotOfTree } from '../../src/testing/fidelity/snapshot.ts';

const BIN = fileURLToPath(new URL('../../bin/amber.js', import.meta.url));
const root = process.getuid?.() === 0;
const noPython = whyPythonXattrsUnavailable();
const NOBODY = 65534;
/**
 * With python3 a restore sets times to the nanosecond; without it, through Node's double number of
 * seconds, to within about 240 ns (docs/decisions/0006-exact-times.md).
 */
const TIME_TOLERANCE_NS = noPython ? 1_000n : 0n;

let dir: string;
let repo: string;
let source: string;
let info: FixtureInfo;
let expected: Map<string, EntryRecord>;

const env = (extra: Record<string, string> = {}) => ({
  PATH: process.env.PATH,
  AMBER_PASSWORD: 'fidelity passphrase',
  AMBER_KDF_LOG_N: '10',
  AMBER_REPO: repo,
  AMBER_CACHE_DIR: join(dir, 'cache'),
  ...extra,
});

function amber(args: string[], options: { asNobody?: boolean; env?: Record<string, string> } = {}) {
  const command = options.asNobody
    ? ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, BIN, ...args]
    : [process.execPath, BIN, ...args];
  const result = spawnSync(command[0], command.slice(1), {
    env: env({ ...(options.asNobody && { AMBER_CACHE_DIR: join(dir, 'cache-nobody') }), ...options.env }),
    maxBuffer: 256 * 1024 * 1024,
  });
  return { status: result.status, stdout: result.stdout, stderr: String(result.stderr) };
}

const snapshot = (path: string) => snapshotOfTree(path, { xattrs: noPython ? undefined : pythonXattrReader(path) });
const CAFE = [0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74];

before(async () => {
  if (!root) return;
  dir = mkdtempSync(join(tmpdir(), 'amber-fidelity-e2e-'));
  chmodSync(dir, 0o755);
  repo = join(dir, 'repo');
  source = join(dir, 'source');
  info = await buildFidelityTree(source, {
    privileged: true,
    bigSparse: true,
    setXattr: noPython ? undefined : pythonSetXattr,
  });
  // Before anything reads the source: reading moves access times.
  expected = snapshot(source);
  assert.equal(amber(['init']).status, 0);
  mkdirSync(join(dir, 'cache-nobody'));
  chownSync(join(dir, 'cache-nobody'), NOBODY, NOBODY);
});

after(async () => {
  if (!dir) return;
  await removeTree(repo); // the fs store made its objects immutable
  await removeTree(join(dir, 'repo-nobody'));
  removeFidelityTree(dir);
});

test('the backup of the fidelity tree keeps everything and exits 0', { skip: !root && 'needs root' }, () => {
  const result = amber(['backup', source, '--json']);
  assert.equal(result.status, 0, result.stderr);
  const summary = JSON.parse(String(result.stdout));
  assert.equal(summary.partial, false);
  assert.equal(summary.summary.filesSkipped, 0);
  // A symlink, FIFO or device whose own name is not UTF-8 cannot have its attributes read (§16.5);
  // the fixture has none, so there is no warning at all.
  assert.deepEqual(summary.warnings, []);
  assert.ok(info.counts.nonUtf8Names >= 3 && info.counts.devices === 2 && info.counts.largeDirectory > 0);
});

test('a root restore is identical on every field, the sparse file included', { skip: !root && 'needs root' }, () => {
  const target = join(dir, 'restore-root');
  const result = amber(['restore', 'latest', '--target', target, '--json']);
  assert.equal(result.status, 0, result.stderr);
  const report = JSON.parse(String(result.stdout));
  assert.deepEqual(report.errors, []);
  // Without python3, times to the nanosecond are the one thing a root restore reports as not set.
  assert.deepEqual(
    report.notSet.map((n: { kind: string }) => n.kind),
    noPython ? ['time'] : [],
  );
  assert.deepEqual(report.skipped, []);
  const actual = snapshot(join(target, source));
  assert.deepEqual(compareTrees(expected, actual, { timeToleranceNs: TIME_TOLERANCE_NS }), []);
  if (!noPython) assert.ok(info.xattrs, 'the fixture has extended attributes and ACLs to compare');
  const big = actual.get(pathKey(bytePath('sparse', 'big.bin')));
  assert.ok(big?.allocatedBytes !== undefined && big.allocatedBytes < 1024 * 1024, `allocates ${big?.allocatedBytes}`);
});

test('an unprivileged restore sets what it may, reports the rest once per kind, and keeps everything else', {
  skip: !root && 'needs root',
}, () => {
  const target = join(dir, 'restore-nobody');
  mkdirSync(target);
  chownSync(target, NOBODY, NOBODY);
  // The user's own copy of the repository (root's is root's alone).
  const own = join(dir, 'repo-nobody');
  execFileSync('cp', ['-a', repo, own]);
  execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, own]);
  const asNobody = { asNobody: true, env: { AMBER_REPO: own } };
  const result = amber(['restore', 'latest', '--target', target, '--json'], asNobody);
  assert.ok(String(result.stdout).length > 0, result.stderr);
  const report = JSON.parse(String(result.stdout));
  // The 0000 file and the read-only directory's contents are the user's own: they are restored too.
  assert.deepEqual(report.errors, [], result.stderr);
  assert.equal(result.status, 0, result.stderr);
  const kinds = report.notSet.map((n: { kind: string }) => n.kind).sort();
  assert.ok(kinds.includes('device') && kinds.includes('owner'), JSON.stringify(report.notSet));
  if (!noPython) assert.ok(kinds.includes('xattr:trusted') && kinds.includes('xattr:capability'), kinds.join());
  for (const entry of report.notSet) assert.ok(entry.count >= 1 && entry.example.path.length > 0);
  assert.deepEqual(report.skipped.map((s: { type: string }) => s.type).sort(), ['blockdev', 'chardev']);
  // One warning line per kind on stderr, not one per entry.
  const textTarget = join(dir, 'restore-nobody-text');
  mkdirSync(textTarget);
  chownSync(textTarget, NOBODY, NOBODY);
  const warningLines = amber(['restore', 'latest', '--target', textTarget], asNobody);
  const lines = warningLines.stderr.split('\n').filter((line) => line.startsWith('warning:'));
  assert.equal(lines.length, report.notSet.length, warningLines.stderr);

  const actual = snapshot(join(target, source));
  const devices = new Set(info.paths.devices);
  const withoutDevices = new Map([...expected].filter(([key]) => !devices.has(key)));
  // A user cannot give files away, so owners differ; trusted.* and security.* need root to set.
  const differences = compareTrees(withoutDevices, actual, {
    timeToleranceNs: TIME_TOLERANCE_NS,
    ignore: ['uid', 'gid', 'xattrs'],
  });
  assert.deepEqual(differences, []);
  if (!noPython) {
    for (const [key, record] of withoutDevices) {
      const userXattrs = Object.entries(record.xattrs ?? {}).filter(
        ([name]) => name.startsWith('user.') || name.startsWith('system.posix_acl'),
      );
      assert.deepEqual(
        userXattrs,
        Object.entries(actual.get(key)?.xattrs ?? {}).filter(
          ([name]) => name.startsWith('user.') || name.startsWith('system.posix_acl'),
        ),
        `user attributes and ACLs of ${key}`,
      );
    }
  }
});

test('ls and --json show a name that is not UTF-8 escaped, with its bytes beside it', {
  skip: !root && 'needs root',
}, () => {
  const cafe = `${source}/names/${nameFromBytes(Buffer.from(CAFE))}`;
  const text = String(amber(['ls', 'latest', `${source}/names`]).stdout);
  assert.match(text, /names\/caf\\xe9\.txt$/m);
  const lines = String(amber(['ls', 'latest', `${source}/names`, '--json']).stdout)
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
  const node = lines.find((line) => line.nameBase64 === Buffer.from(CAFE).toString('base64'));
  assert.ok(node, 'the entry is listed with its bytes in base64');
  assert.equal(node.name, 'caf\\xe9.txt');
  assert.deepEqual(Buffer.from(node.pathBase64, 'base64'), nameBytes(cafe));
  // ls | head: the reader goes away; ls ends quietly and successfully.
  const piped = spawnSync('sh', ['-c', `"${process.execPath}" "${BIN}" ls latest | head -1`], { env: env() });
  assert.equal(piped.status, 0);
  assert.equal(String(piped.stderr), '');
});

test('dump and restore --include name such a file in the escaped form ls shows', {
  skip: !root && 'needs root',
}, () => {
  const shown = `${source}/names/caf\\xe9.txt`;
  const dumped = amber(['dump', 'latest', shown]);
  assert.equal(dumped.status, 0, dumped.stderr);
  assert.deepEqual(dumped.stdout, readFileSync(bytePath(source, 'names', CAFE)));
  const target = join(dir, 'restore-include');
  assert.equal(amber(['restore', 'latest', '--target', target, '--include', shown]).status, 0);
  const restored = snapshot(join(target, source));
  assert.deepEqual(
    [...restored.keys()].filter((key) => restored.get(key)?.type === 'file'),
    [pathKey(bytePath('names', CAFE))],
  );
});

test('--exclude matches a name that is not UTF-8 by a glob, and --exclude-file by its exact bytes', {
  skip: !root && 'needs root',
}, () => {
  const listFiles = (id: string) =>
    String(amber(['ls', id, `${source}/names`, '--json']).stdout)
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line))
      .filter((node) => node.type === 'file');
  const byGlob = JSON.parse(
    String(amber(['backup', source, '--json', '--exclude', `${source}/names/caf?.txt`]).stdout),
  );
  assert.ok(!listFiles(byGlob.id).some((node) => node.name === 'caf\\xe9.txt'), 'excluded by caf?.txt');
  const excludeFile = join(dir, 'excludes');
  writeFileSync(excludeFile, Buffer.concat([Buffer.from(`${source}/names/`), Buffer.from(CAFE), Buffer.from('\n')]));
  const byFile = JSON.parse(String(amber(['backup', source, '--json', '--exclude-file', excludeFile]).stdout));
  const left = listFiles(byFile.id);
  assert.ok(!left.some((node) => node.name === 'caf\\xe9.txt'), 'excluded by its bytes');
  assert.ok(left.length > 0, 'the other names are still there');
});
