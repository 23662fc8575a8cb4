// Bad input and damaged repositories as a user meets them: the real bin, real files, real exit
// statuses. Each failure must name the thing, say what to do, and change nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { alterObjectFile, liftAttributes, removeTree } from '../../src/testing/repo-fixture.ts';

const BIN = fileURLToPath(new URL('../../bin/amber.js', import.meta.url));
let dir: string;
let source: string;

function amber(args: string[], options: SpawnSyncOptions & { repo?: string } = {}) {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    ...options,
    env: {
      PATH: process.env.PATH,
      AMBER_PASSWORD: 'test passphrase',
      AMBER_KDF_LOG_N: '10',
      AMBER_REPO: options.repo ?? join(dir, 'repo'),
      AMBER_CACHE_DIR: join(dir, 'cache'),
      ...(options.env ?? {}),
    },
  });
  return { status: result.status, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/** Every file under a repository directory (relative names), to show that nothing was written. */
async function objectsOf(repo: string): Promise<string[]> {
  const names: string[] = [];
  const visit = async (path: string) => {
    for (const entry of await readdir(path, { withFileTypes: true })) {
      if (entry.isDirectory()) await visit(join(path, entry.name));
      else names.push(relative(repo, join(path, entry.name)));
    }
  };
  await visit(repo);
  return names.sort();
}

const noStack = (stderr: string) =>
  assert.doesNotMatch(stderr, /unexpected error|at .*\.ts:\d+/, 'no stack trace for an expected failure');

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'amber-input-'));
  source = join(dir, 'source');
  await mkdir(source);
  await writeFile(join(source, 'a.txt'), 'some data\n');
  const init = amber(['init']);
  assert.equal(init.status, 0, init.stderr);
});

after(() => removeTree(dir));

test('a damaged epoch record is named with its cause and what to do', async () => {
  const repo = join(dir, 'epoch-damaged');
  assert.equal(amber(['init'], { repo }).status, 0);
  const [epoch] = await readdir(join(repo, 'epochs'));
  await alterObjectFile(join(repo, 'epochs', epoch), (bytes) => {
    bytes[bytes.length - 10] ^= 0x01;
    return bytes;
  });
  const result = amber(['snapshots'], { repo });
  assert.equal(result.status, 1, result.stderr);
  noStack(result.stderr);
  assert.match(
    result.stderr,
    new RegExp(`epochs/${epoch} does not hash to its name`),
    'names the object and the cause',
  );
  assert.match(result.stderr, /\[CONFIG_CORRUPT\]/);
  assert.match(
    result.stderr,
    new RegExp(`hint: restore epochs/${epoch} from a copy of the repository`),
    'says what to do',
  );
});

test('an epoch record from another repository is named as such', async () => {
  const repo = join(dir, 'epoch-foreign');
  const other = join(dir, 'epoch-other');
  assert.equal(amber(['init'], { repo }).status, 0);
  assert.equal(amber(['init'], { repo: other }).status, 0);
  const [mine] = await readdir(join(repo, 'epochs'));
  const [theirs] = await readdir(join(other, 'epochs'));
  // Root by hand: lift the attributes, swap the object for the other repository's record.
  await liftAttributes(join(repo, 'epochs'));
  await removeTree(join(repo, 'epochs', mine));
  await copyFile(join(other, 'epochs', theirs), join(repo, 'epochs', theirs));
  const result = amber(['snapshots'], { repo });
  assert.equal(result.status, 1, result.stderr);
  noStack(result.stderr);
  assert.match(
    result.stderr,
    new RegExp(
      `epochs/${theirs} is not signed by a key with the authority to write it \\(a bad signature, or a record from another repository\\)`,
    ),
  );
  assert.match(result.stderr, new RegExp(`hint: restore epochs/${theirs} from a copy`));
});

test('a backup with a retention beyond 1000 years is refused as usage before anything is written', async () => {
  const repo = join(dir, 'repo');
  const before = await objectsOf(repo);
  const result = amber(['backup', source, '--retain', '99999999999y']);
  assert.equal(result.status, 2, result.stderr);
  noStack(result.stderr);
  assert.match(
    result.stderr,
    /--retain: "99999999999y" is longer than 1000y \(1000 years\), the longest duration Amber accepts \[INVALID_DURATION\]/,
  );
  assert.deepEqual(await objectsOf(repo), before, 'no object was written');
});

test('lock extend, policy, prune, forget and requests bound their durations and dates the same way', async () => {
  const backup = amber(['backup', source]);
  assert.equal(backup.status, 0, backup.stderr);
  const repo = join(dir, 'repo');
  const before = await objectsOf(repo);
  const cases: [string[], RegExp][] = [
    [['lock', 'extend', 'latest', '--until', '+99999999999y'], /--until: "99999999999y" is longer than 1000y/],
    [['lock', 'extend', 'latest', '--until', '+1000y1d'], /--until: "1000y1d" is longer than 1000y/],
    [['policy', 'set', '--max-retention', '5000y'], /--max-retention: "5000y" is longer than 1000y/],
    [['policy', 'set', '--default-retain', '99999999999y'], /--default-retain: "99999999999y" is longer/],
    [['policy', 'lock', '--cooling-off', '99999999999y'], /--cooling-off: "99999999999y" is longer/],
    [['prune', '--grace', '99999999999y'], /--grace: "99999999999y" is longer/],
    [['forget', '--keep-within', '99999999999y'], /--keep-within: "99999999999y" is longer/],
    [
      ['request', 'unlock', 'latest', '--reason', 'x', '--expires', '99999999999y'],
      /--expires: "99999999999y" is longer/,
    ],
    [['request', 'unlock', 'latest', '--reason', 'x', '--until', '+99999999999y'], /--until: "99999999999y" is longer/],
    [['audit', 'export', '--since', '99999999999y'], /--since: "99999999999y" is longer/],
  ];
  for (const [args, message] of cases) {
    const result = amber(args);
    assert.equal(result.status, 2, `${args.join(' ')}: ${result.stderr}`);
    noStack(result.stderr);
    assert.match(result.stderr, message, args.join(' '));
  }
  assert.deepEqual(await objectsOf(repo), before, 'no object was written');
});

test('init on a path that is a file says so and leaves the file alone', async () => {
  const file = join(dir, 'a-file');
  await writeFile(file, 'not a repository\n');
  for (const location of [file, join(file, 'repo')]) {
    const result = amber(['init'], { repo: location });
    assert.equal(result.status, 2, result.stderr);
    noStack(result.stderr);
    assert.doesNotMatch(result.stderr, /STORAGE_TRANSIENT|ENOTDIR|Retry/);
    assert.match(
      result.stderr,
      location === file
        ? new RegExp(`the repository location ${file} is a file, not a directory \\[USAGE\\]`)
        : new RegExp(
            `the repository location ${location} is below ${file}, which is a file, not a directory \\[USAGE\\]`,
          ),
    );
    assert.match(result.stderr, /hint: a local repository is a directory: choose one with --repo/);
  }
  assert.equal(await readFile(file, 'utf8'), 'not a repository\n');
});

test('AMBER_CACHE_DIR pointing at a file is an error naming the variable and the path', async () => {
  const file = join(dir, 'cache-file');
  await writeFile(file, 'x');
  const repo = join(dir, 'repo');
  const before = await objectsOf(repo);
  for (const args of [['snapshots'], ['backup', source]]) {
    const result = amber(args, { env: { AMBER_CACHE_DIR: file } });
    assert.equal(result.status, 2, `${args[0]}: ${result.stderr}`);
    noStack(result.stderr);
    assert.match(
      result.stderr,
      new RegExp(
        `the local cache directory ${file} \\(from AMBER_CACHE_DIR\\) is a file, not a directory \\[USAGE\\]\\nhint: point AMBER_CACHE_DIR at a directory`,
      ),
    );
  }
  assert.deepEqual(await objectsOf(repo), before, 'the refused backup wrote nothing');
});

/** Mounts a small tmpfs read-only at a new folder of the test's, with `existing/` in it; undefined and a reason where that cannot be done. */
function readOnlyMount(): { path: string; unmount: () => void } | string {
  if (process.getuid?.() !== 0) return 'mounting a read-only filesystem needs root';
  const path = join(dir, 'read-only');
  spawnSync('mkdir', ['-p', path]);
  const run = (args: string[]) => spawnSync(args[0], args.slice(1), { encoding: 'utf8' });
  const mounted = run(['mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', path]);
  if (mounted.status !== 0) return `cannot mount a tmpfs here: ${mounted.stderr.trim()}`;
  run(['mkdir', join(path, 'existing')]);
  const remounted = run(['mount', '-o', 'remount,ro', path]);
  if (remounted.status !== 0) {
    run(['umount', path]);
    return `cannot remount a tmpfs read-only here: ${remounted.stderr.trim()}`;
  }
  return { path, unmount: () => void run(['umount', path]) };
}

test('restoring onto a read-only filesystem names the target and says it is read-only', async (t) => {
  const mount = readOnlyMount();
  if (typeof mount === 'string') return t.skip(mount);
  t.after(mount.unmount);
  assert.equal(amber(['backup', source]).status, 0);
  for (const target of [join(mount.path, 'existing'), join(mount.path, 'new', 'deeper'), mount.path]) {
    const result = amber(['restore', 'latest', '--target', target]);
    assert.equal(result.status, 1, result.stderr);
    noStack(result.stderr);
    assert.doesNotMatch(result.stderr, /ENOENT/);
    assert.match(
      result.stderr,
      new RegExp(
        `error: the restore target ${target} is on a read-only filesystem \\(EROFS\\) \\[TARGET_UNWRITABLE\\]\\nhint: choose a --target on a writable filesystem`,
      ),
    );
  }
});

/** Makes `levels` directories of 200-byte names below `root` by relative steps (the full path may pass PATH_MAX), a file at the bottom. */
function makeDeepTree(root: string, levels: number, leaf: string): void {
  const script = `const fs = require('fs'); process.chdir(${JSON.stringify(root)});
    for (let i = 0; i < ${levels}; i++) { fs.mkdirSync('d'.repeat(200)); process.chdir('d'.repeat(200)); }
    fs.writeFileSync('leaf.txt', ${JSON.stringify(leaf)});`;
  const made = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
}

test('a path over PATH_MAX is never dropped silently: backup and restore name it and exit 3', async (t) => {
  // Node's fs.rm goes through full paths, GNU rm through directory descriptors.
  t.after(() =>
    spawnSync('rm', [
      '-rf',
      join(dir, 'too-deep'),
      join(dir, 'fits'),
      join(dir, 'deep-restore-1'),
      join(dir, 'deep-restore-2'),
    ]),
  );
  const repo = join(dir, 'deep-repo');
  assert.equal(amber(['init'], { repo }).status, 0);
  // Backup: the leaf of a tree deeper than 4,096 bytes cannot be read through its path.
  const tooDeep = join(dir, 'too-deep');
  await mkdir(tooDeep);
  await writeFile(join(tooDeep, 'shallow.txt'), 'shallow\n');
  makeDeepTree(tooDeep, 22, 'deep leaf\n');
  const backup = amber(['backup', tooDeep], { repo });
  assert.equal(backup.status, 3, backup.stderr);
  assert.match(backup.stderr, /could not be read \(ENAMETOOLONG\)/);
  const snapshot = JSON.parse(amber(['snapshots', '--json'], { repo }).stdout).at(-1);
  assert.ok(snapshot.flags.includes('partial'), 'the snapshot says it is incomplete');
  const restoredPartial = amber(['restore', 'latest', '--target', join(dir, 'deep-restore-1')], { repo });
  assert.equal(restoredPartial.status, 0, restoredPartial.stderr);
  assert.match(restoredPartial.stderr, /note: snapshot [0-9a-f]{8} is partial: its backup skipped entries/);

  // Restore: a tree that fits when backed up but not below a long --target.
  const fits = join(dir, 'fits');
  await mkdir(fits);
  await writeFile(join(fits, 'shallow.txt'), 'shallow\n');
  makeDeepTree(fits, 18, 'leaf that fits\n');
  const second = amber(['backup', fits], { repo });
  assert.equal(second.status, 0, second.stderr);
  const target = join(dir, 'deep-restore-2', 't'.repeat(250), 'u'.repeat(250), 'v'.repeat(250));
  const restored = amber(['restore', 'latest', '--target', target], { repo });
  assert.equal(restored.status, 3, restored.stderr);
  noStack(restored.stderr);
  assert.match(
    restored.stderr,
    /was not restored: its path is \d+ bytes, longer than this system accepts \(PATH_MAX 4096 bytes, ENAMETOOLONG\) \[TARGET_UNWRITABLE\]/,
  );
  assert.match(restored.stderr, /\[RESTORE_INCOMPLETE\]\nhint: the target refused the entries named above/);
  assert.equal(await readFile(join(target, fits, 'shallow.txt'), 'utf8'), 'shallow\n', 'the rest was restored');
});
