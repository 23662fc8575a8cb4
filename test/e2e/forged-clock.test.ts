// The forged-clock attack, as the red team ran it: only the CLI, `faketime` and an empty cache
// directory. A key holder moves the process's clock 400 days ahead, points AMBER_CACHE_DIR at an
// empty directory so the guarded clock has no state to compare with, and runs forget and prune
// twice. Nothing locked may go: not the data, not the snapshot object, not its listing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { removeTree, seededBytes } from '../../src/testing/repo-fixture.ts';
import { freshBucketName, s3CliEnv, s3RepoUrl, whenS3 } from '../../src/testing/s3-fixture.ts';

const BIN = fileURLToPath(new URL('../../bin/amber.js', import.meta.url));
const FAKETIME = ['/usr/bin/faketime', '/usr/local/bin/faketime'].find(
  (path) => spawnSync(path, ['-f', '+0d', 'true']).status === 0,
);
// CI installs faketime (.ci/run); a developer machine without it says so instead of passing quietly.
const noFaketime = FAKETIME ? false : process.env.CI ? false : 'faketime is not installed (apt-get install faketime)';

let dir: string;

function amber(repo: string, args: string[], env: Record<string, string> = {}, forged = false) {
  const command = forged
    ? [FAKETIME!, '-f', '+400d', process.execPath, BIN, ...args]
    : [process.execPath, BIN, ...args];
  const result = spawnSync(command[0], command.slice(1), {
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH,
      AMBER_PASSWORD: 'owner pass',
      AMBER_APPROVER_PASSWORD: 'approver pass',
      AMBER_KDF_LOG_N: '10',
      AMBER_REPO: repo,
      AMBER_CACHE_DIR: join(dir, 'cache'),
      ...env,
    },
  });
  return { status: result.status, stdout: String(result.stdout), stderr: String(result.stderr) };
}

function ok(repo: string, args: string[], env?: Record<string, string>, forged = false) {
  const result = amber(repo, args, env, forged);
  assert.equal(result.status, 0, `amber ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'amber-forged-clock-'));
  await mkdir(join(dir, 'source'));
  await writeFile(join(dir, 'source', 'ledger.bin'), seededBytes(300_000, 'ledger'));
});

after(() => removeTree(dir));

/** Everything an attacker could have removed: the listing, the objects, and a full restore. */
async function assertIntact(repo: string, snapshots: string[], objectsBefore: string[], label: string) {
  const listed = JSON.parse(ok(repo, ['snapshots', '--json']))
    .map((entry: { id: string }) => entry.id)
    .sort();
  assert.deepEqual(listed, [...snapshots].sort(), `${label}: every locked snapshot is still listed`);
  assert.deepEqual(await objectsOf(repo), objectsBefore, `${label}: no data object was deleted`);
  for (const id of snapshots) {
    const target = join(dir, `restored-${label}-${id.slice(0, 8)}`);
    ok(repo, ['restore', id, '--target', target]);
    assert.deepEqual(
      await readFile(join(target, dir, 'source', 'ledger.bin')),
      seededBytes(300_000, 'ledger'),
      `${label}: ${id.slice(0, 8)} restores`,
    );
  }
}

/** Data, snapshot, index and tree objects (the audit log only grows). */
async function objectsOf(repo: string): Promise<string[]> {
  const names: string[] = [];
  for (const prefix of ['data', 'snapshots', 'index']) {
    for (const entry of await readdir(join(repo, prefix), { recursive: true, withFileTypes: true })) {
      if (entry.isFile()) names.push(join(entry.parentPath, entry.name).slice(repo.length + 1));
    }
  }
  return names.sort();
}

test('with a quorum and a locked policy, a clock 400 days ahead and an empty cache delete nothing locked', {
  skip: noFaketime,
}, async () => {
  assert.ok(FAKETIME, 'CI must have faketime: .ci/run installs it');
  const repo = join(dir, 'quorum-repo');
  ok(repo, ['init']);
  ok(repo, ['approver', 'keygen', '--out', join(dir, 'alice.key')]);
  ok(repo, ['approver', 'add', 'alice', '--public-key', join(dir, 'alice.key.pub')]);
  ok(repo, ['policy', 'set', '--quorum', '1']);
  const compliance = JSON.parse(
    ok(repo, ['backup', join(dir, 'source'), '--retain', '30d', '--lock-mode', 'compliance', '--json']),
  ).id as string;
  const governance = JSON.parse(ok(repo, ['backup', join(dir, 'source'), '--retain', '30d', '--json'])).id as string;
  ok(repo, ['policy', 'lock', '--cooling-off', '0s']);
  const before = await objectsOf(repo);

  const empty = { AMBER_CACHE_DIR: join(dir, 'empty-cache-1') };
  const confirm = amber(repo, ['clock', 'confirm'], empty, true);
  assert.equal(confirm.status, 1);
  assert.match(confirm.stderr, /APPROVAL_REQUIRED/, 'confirming the clock needs the quorum');
  const status = JSON.parse(ok(repo, ['clock', 'status', '--json'], empty, true));
  assert.equal(status.trusted, false);
  assert.equal(status.deletionNowMs, 0, 'with no state, nothing may expire');
  assert.match(status.reason, /no clock state for this repository on this host/);

  const forgot = amber(repo, ['forget', '--keep-last', '0', '--json'], empty, true);
  assert.equal(forgot.status, 0, forgot.stderr);
  assert.deepEqual(JSON.parse(forgot.stdout).forgotten, [], 'nothing locked is forgotten');
  assert.match(forgot.stderr, /warning: the clock is not trusted for deletions/);
  for (let run = 0; run < 2; run++) ok(repo, ['prune', '--grace', '0s'], empty, true);
  await assertIntact(repo, [compliance, governance], before, 'quorum');
  const verified = amber(repo, ['verify', '--read-data']);
  assert.equal(verified.status, 0, verified.stderr);
});

test('without a quorum too, an empty cache trusts no forged time until the operator confirms it', {
  skip: noFaketime,
}, async () => {
  const repo = join(dir, 'plain-repo');
  ok(repo, ['init']);
  const id = JSON.parse(
    ok(repo, ['backup', join(dir, 'source'), '--retain', '30d', '--lock-mode', 'compliance', '--json']),
  ).id as string;
  const before = await objectsOf(repo);
  const empty = { AMBER_CACHE_DIR: join(dir, 'empty-cache-2') };
  assert.deepEqual(JSON.parse(ok(repo, ['forget', '--keep-last', '0', '--json'], empty, true)).forgotten, []);
  for (let run = 0; run < 2; run++) ok(repo, ['prune', '--grace', '0s'], empty, true);
  await assertIntact(repo, [id], before, 'plain');
  // What a local repository's key holder can still do (README): confirm a forged time on purpose.
  // That is written down as theirs in the audit log, and even then the 30-day compliance snapshot's
  // forget mark is judged by the time the store (here the kernel) received it, so the snapshot stays.
  ok(repo, ['clock', 'confirm'], empty, true);
  const forgot = JSON.parse(ok(repo, ['forget', '--keep-last', '0', '--json'], empty, true));
  assert.deepEqual(
    forgot.forgotten,
    [],
    'the mark cannot forget a snapshot whose lock had not ended when the store received it',
  );
  assert.match(JSON.stringify(forgot.kept), /by the store's clock/);
  for (let run = 0; run < 2; run++) ok(repo, ['prune', '--grace', '0s'], empty, true);
  await assertIntact(repo, [id], before, 'confirmed');
  const log = JSON.parse(ok(repo, ['audit', 'log', '--json'], { AMBER_PASSWORD: '' }));
  assert.ok(
    log.some((entry: { action: string }) => entry.action === 'clock.confirm'),
    'the confirmation is on the record',
  );
  const verified = amber(repo, ['verify']);
  assert.equal(verified.status, 1, 'the premature forget mark is reported');
  assert.match(verified.stdout + verified.stderr, /forgets snapshot .* lock runs until .* the snapshot stays/);
});

whenS3(() => {
  test("on S3 the bucket's clock exposes the forged one: nothing is forgotten or deleted, and a mark forgets nothing", {
    skip: noFaketime,
  }, async () => {
    const repo = s3RepoUrl(freshBucketName('amber-forged'));
    const s3 = s3CliEnv();
    ok(repo, ['init', '--create-bucket'], s3);
    const id = JSON.parse(
      ok(repo, ['backup', join(dir, 'source'), '--retain', '30d', '--lock-mode', 'compliance', '--json'], s3),
    ).id as string;
    const listedIds = () => JSON.parse(ok(repo, ['snapshots', '--json'], s3)).map((entry: { id: string }) => entry.id);
    const empty = { ...s3, AMBER_CACHE_DIR: join(dir, 'empty-cache-s3') };
    const status = JSON.parse(ok(repo, ['clock', 'status', '--json'], empty, true));
    assert.equal(status.trusted, false);
    assert.match(status.reason, /the wall clock is 400d ahead of the clock of s3:/);
    assert.deepEqual(JSON.parse(ok(repo, ['forget', '--keep-last', '0', '--json'], empty, true)).forgotten, []);
    for (let run = 0; run < 2; run++) ok(repo, ['prune', '--grace', '0s'], empty, true);
    assert.deepEqual(listedIds(), [id]);
    // The key holder confirms the forged time on purpose: the mark is stamped by the bucket's clock.
    ok(repo, ['clock', 'confirm'], empty, true);
    assert.deepEqual(JSON.parse(ok(repo, ['forget', '--keep-last', '0', '--json'], empty, true)).forgotten, []);
    for (let run = 0; run < 2; run++) ok(repo, ['prune', '--grace', '0s'], empty, true);
    assert.deepEqual(listedIds(), [id], 'the snapshot is still listed');
    const target = join(dir, 'restored-s3');
    ok(repo, ['restore', id, '--target', target], s3);
    assert.deepEqual(await readFile(join(target, dir, 'source', 'ledger.bin')), seededBytes(300_000, 'ledger'));
    const honest = { ...s3, AMBER_CACHE_DIR: join(dir, 'honest-cache-s3') };
    assert.equal(
      JSON.parse(ok(repo, ['clock', 'status', '--json'], honest)).trusted,
      true,
      "an honest host is vouched for by the bucket's clock",
    );
  });
});

/** `amber vault serve` in its own process, under a forged clock if asked; resolves with its URL. */
async function startVaultProcess(
  dataDir: string,
  forged: boolean,
  servers: ChildProcess[],
): Promise<{ url: string; log: () => string }> {
  const command = [process.execPath, BIN, 'vault', 'serve', '--data', dataDir, '--listen', '127.0.0.1:0'];
  const argv = forged ? [FAKETIME!, '-f', '+400d', ...command] : command;
  // A process group of its own: faketime runs the server as its child, and both must stop.
  const server = spawn(argv[0], argv.slice(1), {
    env: { PATH: process.env.PATH },
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  servers.push(server);
  let text = '';
  const url = await new Promise<string>((resolve, reject) => {
    server.stderr!.on('data', (chunk) => {
      text += chunk;
      // The clock's warning, if any, follows the address line at once: wait for the line after it too.
      const match = /at (http:\/\/127\.0\.0\.1:\d+)\n/.exec(text);
      if (match) setTimeout(() => resolve(match[1]), 200);
    });
    server.on('exit', () => reject(new Error(`the vault exited: ${text}`)));
  });
  return { url, log: () => text };
}

const stopGroup = (server: ChildProcess) => {
  try {
    process.kill(-server.pid!, 'SIGKILL');
  } catch {
    /* already gone */
  }
};

test('through the vault, a forged client clock with an empty cache forgets and deletes nothing; a vault that lost its clock state trusts no time', {
  skip: noFaketime,
}, async (t) => {
  const servers: ChildProcess[] = [];
  t.after(() => {
    for (const server of servers) stopGroup(server);
  });
  const dataDir = join(dir, 'vault-data');
  const token = (role: string) =>
    JSON.parse(ok('', ['vault', 'token', 'create', '--data', dataDir, '--role', role, '--repo', 'team', '--json']))
      .token as string;
  const [admin, writer, maintainer, reader] = ['admin', 'writer', 'maintainer', 'reader'].map(token);
  let vault = await startVaultProcess(dataDir, false, servers);
  const repo = `${vault.url}/team`;
  const as = (secret: string, cache = 'cache') => ({
    AMBER_VAULT_TOKEN: secret,
    AMBER_CACHE_DIR: join(dir, `vault-${cache}`),
  });
  ok(repo, ['init'], as(admin));
  const compliance = JSON.parse(
    ok(repo, ['backup', join(dir, 'source'), '--retain', '30d', '--lock-mode', 'compliance', '--json'], as(writer)),
  ).id as string;
  const governance = JSON.parse(ok(repo, ['backup', join(dir, 'source'), '--retain', '30d', '--json'], as(writer)))
    .id as string;
  const listed = () =>
    JSON.parse(ok(repo, ['snapshots', '--json'], as(reader)))
      .map((entry: { id: string }) => entry.id)
      .sort();
  const both = [compliance, governance].sort();

  // The red team's maintainer: the full key, a clock 400 days ahead and an empty cache.
  const attacker = as(maintainer, 'empty');
  const status = JSON.parse(ok(repo, ['clock', 'status', '--json'], attacker, true));
  assert.equal(status.trusted, false);
  assert.match(status.reason, /the wall clock is 400d ahead of the clock of http:\/\/127\.0\.0\.1/);
  assert.deepEqual(JSON.parse(ok(repo, ['forget', '--keep-last', '0', '--json'], attacker, true)).forgotten, []);
  for (let run = 0; run < 2; run++) ok(repo, ['prune', '--grace', '0s'], attacker, true);
  assert.deepEqual(listed(), both);
  // Even a forged time confirmed on purpose: the vault refuses the mark by its own clock.
  ok(repo, ['clock', 'confirm'], attacker, true);
  const refused = amber(repo, ['forget', '--keep-last', '0'], attacker, true);
  assert.equal(refused.status, 1, refused.stderr);
  assert.match(refused.stderr, /RETENTION_ACTIVE/);
  assert.deepEqual(listed(), both, 'both locked snapshots are still listed');
  for (const id of both) {
    const target = join(dir, `restored-vault-${id.slice(0, 8)}`);
    ok(repo, ['restore', id, '--target', target], as(reader));
    assert.deepEqual(await readFile(join(target, dir, 'source', 'ledger.bin')), seededBytes(300_000, 'ledger'));
  }

  // The vault's own clock state removed, and the vault restarted under the forged clock.
  for (const server of servers) stopGroup(server);
  await rm(join(dataDir, 'vault', 'clock.json'));
  vault = await startVaultProcess(dataDir, true, servers);
  const forgedRepo = `${vault.url}/team`;
  assert.match(
    vault.log(),
    /warning: the vault's clock is not trusted for deletions: there is no clock state .*amber vault clock confirm/,
  );
  const vaultStatus = JSON.parse(ok('', ['vault', 'clock', 'status', '--data', dataDir, '--json']));
  assert.equal(vaultStatus.trusted, false, 'a vault that holds repositories does not anchor itself on an empty state');
  const forgedAttacker = as(maintainer, 'empty-2');
  ok(forgedRepo, ['clock', 'confirm'], forgedAttacker, true); // the client now agrees with the forged vault
  const refusedAgain = amber(forgedRepo, ['forget', '--keep-last', '0'], forgedAttacker, true);
  assert.equal(refusedAgain.status, 1, 'the vault, trusting no time, refuses the mark');
  assert.match(refusedAgain.stderr, /RETENTION_ACTIVE/);
  const objects = await objectsOf(join(dataDir, 'repos', 'team'));
  for (let run = 0; run < 2; run++) {
    // The client believes the forged time and condemns what it thinks expired; the vault refuses.
    const pruned = amber(forgedRepo, ['prune', '--grace', '0s'], forgedAttacker, true);
    assert.ok(pruned.status === 0 || /RETENTION_ACTIVE/.test(pruned.stderr), pruned.stderr);
  }
  assert.deepEqual(await objectsOf(join(dataDir, 'repos', 'team')), objects, 'nothing was deleted');
  assert.deepEqual(
    JSON.parse(ok(forgedRepo, ['snapshots', '--json'], as(reader)))
      .map((entry: { id: string }) => entry.id)
      .sort(),
    both,
  );
});
