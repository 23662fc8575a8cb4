// The command line as a user runs it: the real bin, real files, real exit statuses.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NOBODY, removeTree, whyNobodyCannotRun } from '../../src/testing/repo-fixture.ts';

const BIN = fileURLToPath(new URL('../../bin/amber.js', import.meta.url));
let dir: string;
let repo: string;
let source: string;

function amber(args: string[], options: SpawnSyncOptions & { password?: string } = {}) {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    ...options,
    env: {
      PATH: process.env.PATH,
      AMBER_PASSWORD: options.password ?? 'test passphrase',
      AMBER_KDF_LOG_N: '10',
      AMBER_REPO: repo,
      AMBER_CACHE_DIR: join(dir, 'cache'),
      ...(options.env ?? {}),
    },
  });
  return { status: result.status, stdout: String(result.stdout), stderr: String(result.stderr) };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'amber-cli-'));
  repo = join(dir, 'repo');
  source = join(dir, 'source');
  await mkdir(join(source, 'sub'), { recursive: true });
  await writeFile(join(source, 'hello.txt'), 'hello world\n');
  await writeFile(join(source, 'sub', 'data.bin'), Buffer.alloc(300_000, 7));
});

after(() => removeTree(dir));

test('the quick start works end to end', async () => {
  assert.equal(amber(['init']).status, 0);
  const backup = amber(['backup', source, '--tag', 'first']);
  assert.equal(backup.status, 0, backup.stderr);
  assert.match(backup.stdout, /Files: +2 new, 0 changed, 0 unchanged/);
  assert.equal(backup.stderr, '', 'no progress or noise in a pipe');

  const list = JSON.parse(amber(['snapshots', '--json']).stdout);
  assert.equal(list.length, 1);
  for (const field of ['id', 'time', 'host', 'paths', 'tags', 'retention'])
    assert.ok(field in list[0], `snapshots --json has ${field}`);
  assert.deepEqual(list[0].tags, ['first']);
  assert.deepEqual(list[0].paths, [source]);

  const ls = amber(['ls', 'latest']);
  assert.match(ls.stdout, new RegExp(`${source}/sub/data.bin`));
  assert.equal(amber(['dump', 'latest', join(source, 'hello.txt')]).stdout, 'hello world\n');

  const target = join(dir, 'restored');
  assert.equal(amber(['restore', list[0].shortId, '--target', target]).status, 0);
  assert.equal(await readFile(join(target, source, 'hello.txt'), 'utf8'), 'hello world\n');
  assert.deepEqual(await readFile(join(target, source, 'sub', 'data.bin')), Buffer.alloc(300_000, 7));

  // Files an earlier restore completed are kept; any other existing file is refused, not replaced.
  const same = amber(['restore', 'latest', '--target', target]);
  assert.equal(same.status, 0, same.stderr);
  assert.match(same.stdout, /2 files were already restored \(same size, mode and time\) and were kept/);
  await writeFile(join(target, source, 'hello.txt'), 'changed by hand\n');
  const again = amber(['restore', 'latest', '--target', target]);
  assert.equal(again.status, 1, 'refused before anything is written, once');
  assert.match(
    again.stderr,
    /^error: .* already holds 1 entry the snapshot would write, other than as this snapshot has it: .*hello\.txt; nothing was written \[TARGET_EXISTS\]\nhint: restore into an empty directory, or pass --overwrite/,
  );
  assert.equal(again.stderr.split('\n').filter(Boolean).length, 2, 'one error and its hint, not one per file');
  assert.equal(await readFile(join(target, source, 'hello.txt'), 'utf8'), 'changed by hand\n');

  const verify = amber(['verify', '--read-data']);
  assert.equal(verify.status, 0, verify.stderr);
  assert.match(verify.stdout, /no problems found/);

  const second = amber(['backup', source, '--json']);
  assert.equal(JSON.parse(second.stdout).summary.filesUnchanged, 2);

  // The local record of unchanged directories is kept per source, and --no-cache leaves it alone.
  const recordFiles = () =>
    spawnSync('find', [join(dir, 'cache'), '-path', '*/subtrees/*', '-type', 'f'], { encoding: 'utf8' })
      .stdout.trim()
      .split('\n')
      .filter(Boolean);
  assert.equal(recordFiles().length, 1);
  const before = await readFile(recordFiles()[0]);
  await writeFile(join(source, 'hello.txt'), 'hello again\n');
  const uncached = amber(['backup', source, '--no-cache', '--json']);
  assert.equal(uncached.status, 0, uncached.stderr);
  assert.equal(JSON.parse(uncached.stdout).summary.filesChanged, 1);
  assert.deepEqual(await readFile(recordFiles()[0]), before, '--no-cache did not rewrite the record');
});

test('backup --stdin stores a stream under the given name', () => {
  const result = amber(['backup', '--stdin', '--stdin-filename', 'dump.sql'], { input: 'CREATE TABLE t();\n' });
  assert.equal(result.status, 0, result.stderr);
  assert.equal(amber(['dump', 'latest', '/dump.sql']).stdout, 'CREATE TABLE t();\n');
});

test('errors name the problem, give a hint and a documented exit status', () => {
  const wrong = amber(['snapshots'], { password: 'not the passphrase' });
  assert.equal(wrong.status, 12);
  assert.match(wrong.stderr, /^error: no key in .* opens with the given passphrase \[WRONG_PASSWORD\]\nhint: /);
  assert.doesNotMatch(wrong.stderr, /at .*\.ts:\d+/, 'no stack trace for an expected failure');

  const missing = amber(['snapshots'], { env: { AMBER_REPO: join(dir, 'nowhere') } });
  assert.equal(missing.status, 10);
  assert.match(missing.stderr, /no repository at .*nowhere \[REPO_NOT_FOUND\]/);

  assert.equal(amber(['frobnicate']).status, 2);
  assert.equal(amber(['backup']).status, 2);
  assert.equal(amber(['backup', join(dir, 'no-such-dir')]).status, 1);
  assert.equal(amber(['init']).status, 1, 'init refuses an existing repository');
  const json = amber(['snapshots', '--json'], { password: 'nope' });
  assert.equal(JSON.parse(json.stderr).error.code, 'WRONG_PASSWORD');
});

test('every command has help with examples', () => {
  for (const command of ['init', 'backup', 'snapshots', 'ls', 'dump', 'restore', 'verify']) {
    const help = amber([command, '--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /Examples:/, `${command} --help shows examples`);
  }
});

test('an unreadable file is reported and skipped, the rest lands, and the exit status is 3', {
  skip: whyNobodyCannotRun(),
}, async () => {
  // Root reads everything, so the backup runs as the unprivileged user nobody.
  const nobody = NOBODY;
  const own = join(dir, 'nobody');
  await mkdir(join(own, 'src'), { recursive: true });
  await writeFile(join(own, 'src', 'readable.txt'), 'fine');
  await writeFile(join(own, 'src', 'secret.txt'), 'locked');
  await chmod(join(own, 'src', 'secret.txt'), 0o000);
  for (const path of [own, join(own, 'src'), join(own, 'src', 'readable.txt')]) await chown(path, nobody, nobody);
  await chmod(dir, 0o755);
  const asNobody = { uid: nobody, gid: nobody, env: { AMBER_REPO: join(own, 'repo') } };
  assert.equal(amber(['init'], asNobody).status, 0);
  const result = amber(['backup', join(own, 'src')], asNobody);
  assert.equal(result.status, 3, result.stderr);
  assert.match(result.stderr, /secret\.txt/);
  assert.match(result.stdout, /1 skipped/);
  assert.equal(amber(['dump', 'latest', join(own, 'src', 'readable.txt')], asNobody).stdout, 'fine');
  const snapshot = JSON.parse(amber(['snapshots', '--json'], asNobody).stdout)[0];
  assert.ok(snapshot.flags.includes('partial'));
});

test('verify reads a subset of packs on request and refuses a bad percentage', () => {
  const subset = amber(['verify', '--read-data-subset', '50%', '--json']);
  assert.equal(subset.status, 0, subset.stderr);
  assert.ok(JSON.parse(subset.stdout).packsRead >= 1);
  assert.equal(amber(['verify', '--read-data-subset', '150%']).status, 2);
});

test('a write-only key backs up but cannot read, and a revoked key opens nothing', () => {
  const added = amber(['key', 'add', '--write-only', '--label', 'laptop', '--json'], {
    env: { AMBER_NEW_PASSWORD: 'writer passphrase' },
  });
  assert.equal(added.status, 0, added.stderr);
  const { keyId } = JSON.parse(added.stdout);
  const asWriter = { password: 'writer passphrase' };
  assert.equal(amber(['backup', source, '--tag', 'from-writer'], asWriter).status, 0);
  for (const command of [
    ['snapshots'],
    ['ls', 'latest'],
    ['restore', 'latest', '--target', join(dir, 'nope')],
    ['verify'],
  ]) {
    const refused = amber(command, asWriter);
    assert.equal(refused.status, 1, command.join(' '));
    assert.match(refused.stderr, /\[WRITE_ONLY_KEY\]/);
  }
  const keys = JSON.parse(amber(['key', 'list', '--json']).stdout);
  assert.deepEqual(keys.map((key: { role: string }) => key.role).sort(), ['full', 'write-only']);
  assert.ok(
    JSON.parse(amber(['snapshots', '--json']).stdout).some((snapshot: { tags: string[] }) =>
      snapshot.tags.includes('from-writer'),
    ),
  );

  assert.equal(amber(['key', 'revoke', keyId.slice(0, 8), '--reason', 'laptop stolen']).status, 0);
  const revoked = amber(['snapshots'], asWriter);
  assert.equal(revoked.status, 12);
  assert.match(revoked.stderr, /\[KEY_REVOKED\]/);
  assert.ok(
    JSON.parse(amber(['snapshots', '--json']).stdout).some((snapshot: { tags: string[] }) =>
      snapshot.tags.includes('from-writer'),
    ),
    'backups made before the revocation stay',
  );
});

test('as root, files keep their owner in a setgid target whose group is another', {
  skip: process.getuid?.() !== 0 ? 'needs root to own files as others' : undefined,
}, async () => {
  // A file created in a setgid directory takes the directory's group: restore must not rely on
  // the creator's group then (it skips fchown only where new files get the creator's uid and gid).
  const own = join(dir, 'setgid');
  await mkdir(join(own, 'src', 'inner'), { recursive: true });
  await writeFile(join(own, 'src', 'inner', 'root-owned.txt'), 'root\n');
  await writeFile(join(own, 'src', 'other-owned.txt'), 'other\n');
  await chown(join(own, 'src', 'other-owned.txt'), 4242, 4343);
  const mine = { env: { AMBER_REPO: join(own, 'repo') } };
  assert.equal(amber(['init'], mine).status, 0);
  assert.equal(amber(['backup', join(own, 'src')], mine).status, 0);
  const target = join(own, 'target');
  await mkdir(target);
  await chown(target, 0, 4343);
  await chmod(target, 0o2775);
  const restored = amber(['restore', 'latest', '--target', target], mine);
  assert.equal(restored.status, 0, restored.stderr);
  const { stat } = await import('node:fs/promises');
  const rootOwned = await stat(join(target, own, 'src', 'inner', 'root-owned.txt'));
  assert.deepEqual([rootOwned.uid, rootOwned.gid], [0, 0]);
  const otherOwned = await stat(join(target, own, 'src', 'other-owned.txt'));
  assert.deepEqual([otherOwned.uid, otherOwned.gid], [4242, 4343]);
});

test('amber version says which amber and which Node.js; amber check is verify', async () => {
  const text = amber(['version']);
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /^amber \d+\.\d+\.\d+ \(Node\.js \d+\.\d+\.\d+, [a-z0-9]+\/[a-z0-9]+\)\n$/);
  const json = JSON.parse(amber(['version', '--json']).stdout);
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8'));
  assert.equal(json.version, pkg.version);
  assert.equal(json.node, process.versions.node);
  const own = { env: { AMBER_REPO: join(dir, 'check-repo') } };
  assert.equal(amber(['init'], own).status, 0);
  const check = amber(['check', '--json'], own);
  assert.equal(check.status, 0, check.stderr);
  const verify = amber(['verify', '--json'], own);
  assert.deepEqual(Object.keys(JSON.parse(check.stdout)).sort(), Object.keys(JSON.parse(verify.stdout)).sort());
});

test('a snapshot prefix under 4 digits says how many it needs', () => {
  const own = { env: { AMBER_REPO: join(dir, 'prefix-repo') } };
  assert.equal(amber(['init'], own).status, 0);
  const short = amber(['ls', 'abc'], own);
  assert.equal(short.status, 1);
  assert.match(short.stderr, /"abc" is too short for a snapshot id: give at least 4 of its hex digits/);
  const junk = amber(['ls', 'zzzz'], own);
  assert.match(junk.stderr, /"zzzz" is not a snapshot id/);
});

test('snapshot times show in local time with the offset, or in UTC with --utc', () => {
  const own = { env: { AMBER_REPO: join(dir, 'time-repo'), TZ: 'Asia/Kolkata' } };
  assert.equal(amber(['init'], own).status, 0);
  assert.equal(amber(['backup', source], own).status, 0);
  const [snapshot] = JSON.parse(amber(['snapshots', '--json'], own).stdout);
  const utc = new Date(snapshot.time);
  const local = new Date(utc.getTime() + 330 * 60_000).toISOString().slice(0, 19).replace('T', ' ');
  assert.match(amber(['snapshots'], own).stdout, new RegExp(`${local} \\+05:30`));
  const inUtc = amber(['snapshots', '--utc'], own).stdout;
  assert.match(inUtc, new RegExp(`${snapshot.time.slice(0, 19).replace('T', ' ')} \\+00:00`));
});

test('--retain 7y locks for seven calendar years, to the day', () => {
  const own = { env: { AMBER_REPO: join(dir, 'years-repo') } };
  assert.equal(amber(['init'], own).status, 0);
  assert.equal(amber(['backup', source, '--retain', '7y'], own).status, 0);
  const [snapshot] = JSON.parse(amber(['snapshots', '--json'], own).stdout);
  const time = new Date(snapshot.time);
  // Not 7 × 365 days (two days short across two leap years): the same day seven years on.
  const expected = `${time.getUTCFullYear() + 7}-${String(time.getUTCMonth() + 1).padStart(2, '0')}-${String(time.getUTCDate()).padStart(2, '0')}`;
  if (!(time.getUTCMonth() === 1 && time.getUTCDate() === 29))
    assert.equal(snapshot.retention.until.slice(0, 10), expected);
  assert.ok(Date.parse(snapshot.retention.until) - time.getTime() < 7 * 366 * 86_400_000);
});

test('a restore into a directory that holds other files is fine; conflicts are refused once, counted, before anything is written', async () => {
  const own = { env: { AMBER_REPO: join(dir, 'conflict-repo') } };
  const tree = join(dir, 'conflict-source');
  await mkdir(tree, { recursive: true });
  for (let n = 0; n < 8; n++) await writeFile(join(tree, `f${n}.txt`), `file ${n}\n`);
  assert.equal(amber(['init'], own).status, 0);
  assert.equal(amber(['backup', tree], own).status, 0);
  const target = join(dir, 'conflict-target');
  await mkdir(join(target, tree), { recursive: true });
  await writeFile(join(target, 'unrelated.txt'), 'mine\n');
  await writeFile(join(target, tree, 'not-in-snapshot.txt'), 'mine too\n');
  const fine = amber(['restore', 'latest', '--target', target], own);
  assert.equal(fine.status, 0, fine.stderr);
  const other = join(dir, 'conflict-target-2');
  await mkdir(join(other, tree), { recursive: true });
  for (let n = 0; n < 8; n++) await writeFile(join(other, tree, `f${n}.txt`), 'someone else\n');
  const refused = amber(['restore', 'latest', '--target', other], own);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /already holds 8 entries .* and 3 more; nothing was written \[TARGET_EXISTS\]/);
  assert.equal(await readFile(join(other, tree, 'f0.txt'), 'utf8'), 'someone else\n');
  // Only what --include names is looked at.
  const one = amber(['restore', 'latest', '--target', target, '--include', join(tree, 'f1.txt')], own);
  assert.equal(one.status, 0, one.stderr);
  assert.equal(amber(['restore', 'latest', '--target', other, '--overwrite'], own).status, 0);
  assert.equal(await readFile(join(other, tree, 'f0.txt'), 'utf8'), 'file 0\n');
});

test('verify --read-data writes nothing and says what amber repair index would re-index; the repair does it', () => {
  const own = { env: { AMBER_REPO: join(dir, 'repair-repo') } };
  assert.equal(amber(['init'], own).status, 0);
  const added = amber(['key', 'add', '--write-only', '--json'], {
    env: { ...own.env, AMBER_NEW_PASSWORD: 'writer pw' },
  });
  assert.equal(added.status, 0, added.stderr);
  assert.equal(amber(['backup', source], { ...own, password: 'writer pw' }).status, 0);
  const objects = () => spawnSync('find', [join(dir, 'repair-repo'), '-type', 'f'], { encoding: 'utf8' }).stdout;
  const before = objects();
  const check = amber(['verify', '--read-data'], own);
  assert.equal(check.status, 0, check.stderr);
  assert.match(check.stdout, /\d+ packs read clean that no owner index names .*`amber repair index` re-indexes them/);
  assert.equal(objects(), before, 'verify wrote no object');
  const repair = amber(['repair', 'index'], own);
  assert.equal(repair.status, 0, repair.stderr);
  assert.match(repair.stdout, /re-indexed \d+ packs under the owner key/);
  assert.doesNotMatch(amber(['verify', '--read-data'], own).stdout, /no owner index names/);
});

test('snapshots --host, --tag and --path narrow the list as restic does', async () => {
  const own = { env: { AMBER_REPO: join(dir, 'filter-repo') } };
  const other = join(dir, 'filter-other');
  await mkdir(other, { recursive: true });
  await writeFile(join(other, 'x'), 'x');
  assert.equal(amber(['init'], own).status, 0);
  assert.equal(amber(['backup', source, '--host', 'db1', '--tag', 'nightly', '--tag', 'verified'], own).status, 0);
  assert.equal(amber(['backup', source, '--host', 'db2', '--tag', 'nightly'], own).status, 0);
  assert.equal(amber(['backup', other, '--host', 'db1'], own).status, 0);
  const hosts = (args: string[]) =>
    JSON.parse(amber(['snapshots', '--json', ...args], own).stdout).map(
      (s: { host: string; tags: string[] }) => `${s.host}:${s.tags.join('+')}`,
    );
  assert.deepEqual(hosts(['--host', 'db1']), ['db1:nightly+verified', 'db1:']);
  assert.deepEqual(hosts(['--tag', 'nightly']), ['db1:nightly+verified', 'db2:nightly']);
  assert.deepEqual(hosts(['--tag', 'nightly,verified']), ['db1:nightly+verified'], 'a comma needs every tag');
  assert.deepEqual(hosts(['--tag', 'verified', '--tag', 'none-such']), ['db1:nightly+verified'], 'repeated: any');
  assert.deepEqual(hosts(['--path', other]), ['db1:']);
  assert.deepEqual(hosts(['--host', 'db1', '--path', source]), ['db1:nightly+verified'], 'kinds narrow together');
  assert.deepEqual(hosts(['--host', 'nobody']), []);
});

test('forget --host leaves every other host out of the decision', async () => {
  const own = { env: { AMBER_REPO: join(dir, 'forget-filter-repo') } };
  assert.equal(amber(['init', '--default-retain', '1s', '--min-retention', '1s'], own).status, 0);
  for (const host of ['db1', 'db1', 'db2', 'db2'])
    assert.equal(amber(['backup', source, '--host', host, '--retain', '1s'], own).status, 0);
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  const plan = JSON.parse(amber(['forget', '--keep-last', '1', '--host', 'db1', '--dry-run', '--json'], own).stdout);
  const decided = [
    ...plan.kept.map((d: { host: string }) => `${d.host}:kept`),
    ...plan.forgotten.map((d: { host: string }) => `${d.host}:forgotten`),
  ];
  assert.deepEqual(decided.sort(), ['db1:forgotten', 'db1:kept'], 'db2 is not even considered');
});

test('Ctrl-C during a backup says what happened, exits 130, and leaves a valid repository without a snapshot', async () => {
  const own = { AMBER_REPO: join(dir, 'sigint-repo') };
  assert.equal(amber(['init'], { env: own }).status, 0);
  const big = join(dir, 'sigint-source');
  await mkdir(big, { recursive: true });
  // Enough incompressible data that the backup is still running when the signal comes.
  for (let n = 0; n < 8; n++) await writeFile(join(big, `part${n}`), randomBytes(32 * 1024 * 1024));
  const child = spawn(process.execPath, [BIN, 'backup', big], {
    env: {
      PATH: process.env.PATH,
      AMBER_PASSWORD: 'test passphrase',
      AMBER_KDF_LOG_N: '10',
      AMBER_CACHE_DIR: join(dir, 'cache'),
      ...own,
    },
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    stderr += text;
  });
  const status = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  child.kill('SIGINT');
  assert.equal(await status, 130, stderr);
  assert.match(
    stderr,
    /the backup was interrupted \(SIGINT\) before its snapshot was written; .* \[INTERRUPTED\]\nhint: run the backup again/,
  );
  assert.deepEqual(JSON.parse(amber(['snapshots', '--json'], { env: own }).stdout), []);
  assert.equal(amber(['verify'], { env: own }).status, 0);
});

test('backup --exclude-larger-than, --exclude-if-present, --exclude-caches and --files-from leave out what they say and nothing else', async () => {
  const own = { env: { AMBER_REPO: join(dir, 'leave-out-repo') } };
  const tree = join(dir, 'leave-out');
  await mkdir(join(tree, 'build', 'deep'), { recursive: true });
  await mkdir(join(tree, 'cache'), { recursive: true });
  await mkdir(join(tree, 'fake-cache'), { recursive: true });
  await writeFile(join(tree, 'small.txt'), 'small');
  await writeFile(join(tree, 'large.bin'), Buffer.alloc(2 * 1024 * 1024, 1));
  await writeFile(join(tree, 'build', '.nobackup'), '');
  await writeFile(join(tree, 'build', 'out.o'), 'object');
  await writeFile(join(tree, 'build', 'deep', 'more.o'), 'object');
  await writeFile(join(tree, 'cache', 'CACHEDIR.TAG'), 'Signature: 8a477f597d28d172789f06886806bc55\n# a cache\n');
  await writeFile(join(tree, 'cache', 'blob'), 'cached');
  await writeFile(join(tree, 'fake-cache', 'CACHEDIR.TAG'), 'not the signature\n');
  await writeFile(join(tree, 'fake-cache', 'kept'), 'kept');
  const extra = join(dir, 'leave-out-extra.txt');
  await writeFile(extra, 'from the list');
  const list = join(dir, 'leave-out-paths.txt');
  await writeFile(list, `# paths\n${tree}\n\n${extra}\n`);
  assert.equal(amber(['init'], own).status, 0);
  const run = amber(
    [
      'backup',
      '--files-from',
      list,
      '--exclude-larger-than',
      '1M',
      '--exclude-if-present',
      '.nobackup',
      '--exclude-caches',
    ],
    own,
  );
  assert.equal(run.status, 0, run.stderr);
  const listed = JSON.parse(`[${amber(['ls', 'latest', '/', '--json'], own).stdout.trim().split('\n').join(',')}]`).map(
    (entry: { path: string }) => entry.path,
  );
  const has = (path: string) => listed.includes(path);
  assert.ok(has(join(tree, 'small.txt')) && has(extra), 'the rest and the listed file are there');
  assert.ok(!has(join(tree, 'large.bin')), 'larger than 1M: left out');
  assert.ok(
    has(join(tree, 'build', '.nobackup')) && !has(join(tree, 'build', 'out.o')) && !has(join(tree, 'build', 'deep')),
  );
  assert.ok(has(join(tree, 'cache', 'CACHEDIR.TAG')) && !has(join(tree, 'cache', 'blob')));
  assert.ok(has(join(tree, 'fake-cache', 'kept')), 'a CACHEDIR.TAG without the signature is no tag');
  // Without the options the same paths give the whole tree: the cached trees of the first run are not reused.
  assert.equal(amber(['backup', '--files-from', list], own).status, 0);
  const whole = amber(['ls', 'latest', '/'], own).stdout;
  for (const name of ['large.bin', 'out.o', 'more.o', 'blob'])
    assert.match(whole, new RegExp(name.replace('.', '\\.')));
});

test('backup -x keeps a mount point, empty, and does not cross into it', async (t) => {
  // /dev/shm is a tmpfs mounted on /dev on Linux: a mount point the test can write into.
  const { statSync } = await import('node:fs');
  let separate = false;
  try {
    separate = statSync('/dev/shm').dev !== statSync('/dev').dev;
  } catch {}
  if (!separate) return t.skip('no /dev/shm mounted apart from /dev here');
  const mark = join('/dev/shm', `amber-x-${randomBytes(4).toString('hex')}`);
  await writeFile(mark, 'on another filesystem');
  try {
    const own = { env: { AMBER_REPO: join(dir, 'x-repo') } };
    assert.equal(amber(['init'], own).status, 0);
    const across = amber(['backup', '/dev', '-x', '--exclude', '/dev/pts'], own);
    assert.ok(across.status === 0 || across.status === 3, across.stderr);
    const listed = amber(['ls', 'latest', '/dev'], own).stdout;
    assert.match(listed, / \/dev\/shm\n/, 'the mount point itself is kept');
    assert.doesNotMatch(listed, /amber-x-/, 'its contents are not');
    const whole = amber(['backup', '/dev', '--exclude', '/dev/pts'], own);
    assert.ok(whole.status === 0 || whole.status === 3, whole.stderr);
    assert.match(amber(['ls', 'latest', '/dev'], own).stdout, /amber-x-/);
  } finally {
    await import('node:fs/promises').then((fs) => fs.rm(mark, { force: true }));
  }
});

test('backup --dry-run says what a backup would add and writes nothing, not even its cache', async () => {
  const own = { env: { AMBER_REPO: join(dir, 'dry-repo'), AMBER_CACHE_DIR: join(dir, 'dry-cache') } };
  assert.equal(amber(['init'], own).status, 0);
  const files = (root: string) => spawnSync('find', [root, '-type', 'f'], { encoding: 'utf8' }).stdout;
  const before = files(join(dir, 'dry-repo'));
  const dry = amber(['backup', source, '--dry-run', '--json'], own);
  assert.equal(dry.status, 0, dry.stderr);
  const planned = JSON.parse(dry.stdout);
  assert.equal(planned.dryRun, true);
  assert.equal(files(join(dir, 'dry-repo')), before, 'no object written');
  assert.equal(spawnSync('find', [join(dir, 'dry-cache'), '-path', '*/subtrees/*', '-type', 'f']).stdout.length, 0);
  assert.deepEqual(JSON.parse(amber(['snapshots', '--json'], own).stdout), []);
  const real = JSON.parse(amber(['backup', source, '--json'], own).stdout);
  assert.equal(real.summary.bytesAdded, planned.summary.bytesAdded, 'the dry run counted what the backup added');
  assert.equal(real.summary.filesNew, planned.summary.filesNew);
  assert.equal(real.dryRun, undefined, 'a real backup is no dry run');
});

test('amber diff lists what was added, removed and changed between two snapshots, with sizes', async () => {
  const own = { env: { AMBER_REPO: join(dir, 'diff-repo') } };
  const tree = join(dir, 'diff-source');
  await mkdir(join(tree, 'keep', 'deep'), { recursive: true });
  await writeFile(join(tree, 'keep', 'deep', 'same.txt'), 'unchanged');
  await writeFile(join(tree, 'gone.txt'), 'will go');
  await writeFile(join(tree, 'grows.txt'), 'a');
  assert.equal(amber(['init'], own).status, 0);
  const first = JSON.parse(amber(['backup', tree, '--json'], own).stdout).id;
  await (await import('node:fs/promises')).rm(join(tree, 'gone.txt'));
  await writeFile(join(tree, 'grows.txt'), 'a longer content');
  await mkdir(join(tree, 'new'));
  await writeFile(join(tree, 'new', 'file.txt'), 'new!');
  const second = JSON.parse(amber(['backup', tree, '--json'], own).stdout).id;
  const text = amber(['diff', first, second], own);
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`^-  ${join(tree, 'gone.txt')}$`, 'm'));
  assert.match(text.stdout, new RegExp(`^M  ${join(tree, 'grows.txt')}  \\(content, mtime\\)$`, 'm'));
  assert.match(text.stdout, new RegExp(`^\\+  ${join(tree, 'new')}/$`, 'm'));
  assert.match(text.stdout, new RegExp(`^\\+  ${join(tree, 'new', 'file.txt')}$`, 'm'));
  assert.doesNotMatch(text.stdout, /same\.txt/, 'an unchanged subtree is not listed');
  const lines = amber(['diff', first, second, '--json'], own)
    .stdout.trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const totals = lines.at(-1).totals;
  assert.deepEqual([totals.added, totals.removed, totals.changed], [2, 1, 1]);
  assert.equal(totals.bytesAdded, 'new!'.length + ('a longer content'.length - 1));
  assert.equal(totals.bytesRemoved, 'will go'.length);
  const same = amber(['diff', second, second], own);
  assert.match(same.stdout, /0 added, 0 removed, 0 changed/);
});

test('amber find lists the entries a pattern names in every snapshot, newest first', async () => {
  const own = { env: { AMBER_REPO: join(dir, 'find-repo') } };
  const tree = join(dir, 'find-source');
  await mkdir(join(tree, 'docs', 'old'), { recursive: true });
  await writeFile(join(tree, 'docs', 'report.pdf'), 'pdf 1');
  await writeFile(join(tree, 'docs', 'old', 'draft.pdf'), 'pdf 0');
  await writeFile(join(tree, 'notes.txt'), 'text');
  assert.equal(amber(['init'], own).status, 0);
  const first = JSON.parse(amber(['backup', tree, '--json'], own).stdout).id;
  await writeFile(join(tree, 'docs', 'report.pdf'), 'pdf 2, longer');
  const second = JSON.parse(amber(['backup', tree, '--json'], own).stdout).id;
  const hits = amber(['find', '*.pdf', '--json'], own)
    .stdout.trim()
    .split('\n')
    .map((line) => JSON.parse(line));
  assert.deepEqual(
    hits.map(
      (h) => `${h.snapshot === second ? 2 : h.snapshot === first ? 1 : '?'} ${h.path.slice(tree.length)} ${h.size}`,
    ),
    ['2 /docs/old/draft.pdf 5', '2 /docs/report.pdf 13', '1 /docs/old/draft.pdf 5', '1 /docs/report.pdf 5'],
  );
  // A directory pattern names the directory, not everything below it; an anchored one only its path.
  const dirs = amber(['find', 'docs', '--snapshot', second, '--json'], own).stdout.trim().split('\n');
  assert.equal(dirs.length, 1);
  assert.equal(JSON.parse(dirs[0]).type, 'dir');
  assert.equal(
    amber(['find', `${tree}/notes.txt`, '--json'], own)
      .stdout.trim()
      .split('\n').length,
    2,
  );
  assert.equal(amber(['find', '/notes.txt', '--json'], own).stdout.trim(), '', 'anchored at the root: no such path');
});

test('amber stats gives restore size per snapshot, dedup across them, per host, and the locks', async () => {
  const own = { env: { AMBER_REPO: join(dir, 'stats-repo') } };
  const tree = join(dir, 'stats-source');
  await mkdir(tree, { recursive: true });
  await writeFile(join(tree, 'a.bin'), randomBytes(100_000));
  await writeFile(join(tree, 'b.bin'), randomBytes(50_000));
  assert.equal(amber(['init'], own).status, 0);
  assert.equal(amber(['backup', tree, '--host', 'h1', '--retain', '40d'], own).status, 0);
  assert.equal(amber(['backup', tree, '--host', 'h2', '--retain', '400d'], own).status, 0);
  const stats = JSON.parse(amber(['stats', '--json'], own).stdout);
  assert.deepEqual(
    stats.snapshots.map((s: { host: string; files: number; restoreBytes: number }) => [
      s.host,
      s.files,
      s.restoreBytes,
    ]),
    [
      ['h1', 2, 150_000],
      ['h2', 2, 150_000],
    ],
  );
  assert.equal(stats.repository.restoreBytes, 300_000);
  assert.equal(stats.repository.rawBytes, 150_000, 'the same data twice is stored once');
  assert.equal(stats.repository.dedupRatio, 2);
  assert.ok(stats.repository.storedBytes > 150_000, 'random data does not compress; encryption adds a little');
  assert.equal(stats.hosts.h1.rawBytes, 150_000);
  assert.deepEqual(
    stats.locks.map((l: { snapshots: number }) => l.snapshots),
    [1, 1],
  );
  assert.ok(stats.locks[0].until < stats.locks[1].until);
  const h2 = JSON.parse(amber(['stats', '--host', 'h2', '--json'], own).stdout);
  assert.equal(h2.snapshots.length, 1);
  assert.match(
    amber(['stats'], own).stdout,
    /repository: 2 snapshot\(s\), restore size 293\.0 KiB, raw data 146\.5 KiB in 2 chunks .*dedup 2\.0×/,
  );
});

test('restore --exclude leaves out what its patterns match, and the conflict check ignores it too', async () => {
  const own = { env: { AMBER_REPO: join(dir, 'rx-repo') } };
  const tree = join(dir, 'rx-source');
  await mkdir(join(tree, 'cache'), { recursive: true });
  await writeFile(join(tree, 'keep.txt'), 'keep');
  await writeFile(join(tree, 'big.iso'), 'iso');
  await writeFile(join(tree, 'cache', 'c'), 'cached');
  assert.equal(amber(['init'], own).status, 0);
  assert.equal(amber(['backup', tree], own).status, 0);
  const target = join(dir, 'rx-target');
  // Something in the way of an excluded path only: not a conflict, since it is not restored.
  await mkdir(join(target, tree), { recursive: true });
  await writeFile(join(target, tree, 'big.iso'), 'mine');
  const run = amber(['restore', 'latest', '--target', target, '--exclude', '*.iso', '--exclude', `${tree}/cache`], own);
  assert.equal(run.status, 0, run.stderr);
  assert.equal(await readFile(join(target, tree, 'keep.txt'), 'utf8'), 'keep');
  assert.equal(await readFile(join(target, tree, 'big.iso'), 'utf8'), 'mine', 'left alone');
  await assert.rejects(readFile(join(target, tree, 'cache', 'c')));
});
