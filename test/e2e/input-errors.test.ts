// Bad input and damaged repositories as a user meets them: the real bin, real files, real exit
// statuses. Each failure must name the thing, say what to do, and change nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, writeFile } from 'node:fs/promises';
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
      PATH: process.env.PATH, AMBER_PASSWORD: 'test passphrase', AMBER_KDF_LOG_N: '10', AMBER_REPO: options.repo ?? join(dir, 'repo'),
      AMBER_CACHE_DIR: join(dir, 'cache'), ...(options.env ?? {}),
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

const noStack = (stderr: string) => assert.doesNotMatch(stderr, /unexpected error|at .*\.ts:\d+/, 'no stack trace for an expected failure');

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
  assert.match(result.stderr, new RegExp(`epochs/${epoch} does not hash to its name`), 'names the object and the cause');
  assert.match(result.stderr, /\[CONFIG_CORRUPT\]/);
  assert.match(result.stderr, new RegExp(`hint: restore epochs/${epoch} from a copy of the repository`), 'says what to do');
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
  assert.match(result.stderr, new RegExp(`epochs/${theirs} is not signed by a key with the authority to write it \\(a bad signature, or a record from another repository\\)`));
  assert.match(result.stderr, new RegExp(`hint: restore epochs/${theirs} from a copy`));
});

test('a backup with a retention beyond 1000 years is refused as usage before anything is written', async () => {
  const repo = join(dir, 'repo');
  const before = await objectsOf(repo);
  const result = amber(['backup', source, '--retain', '99999999999y']);
  assert.equal(result.status, 2, result.stderr);
  noStack(result.stderr);
  assert.match(result.stderr, /--retain: "99999999999y" is longer than 1000y \(1000 years\), the longest duration Amber accepts \[INVALID_DURATION\]/);
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
    [['request', 'unlock', 'latest', '--reason', 'x', '--expires', '99999999999y'], /--expires: "99999999999y" is longer/],
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
