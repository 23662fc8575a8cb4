// Retention on the command line as an operator uses it: locks, legal holds, the policy, forget and
// prune, and the guarded clock, through the real bin against a real repository. Retentions are
// seconds long so that expiry happens within the test; the waits only let that time pass.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { removeTree, seededBytes } from '../../src/testing/repo-fixture.ts';

const BIN = fileURLToPath(new URL('../../bin/amber.js', import.meta.url));
let dir: string;
let repo: string;
let source: string;
let firstId: string;

function amber(args: string[], options: SpawnSyncOptions = {}) {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    ...options,
    env: {
      PATH: process.env.PATH,
      AMBER_PASSWORD: 'test passphrase',
      AMBER_KDF_LOG_N: '10',
      AMBER_REPO: repo,
      AMBER_CACHE_DIR: join(dir, 'cache'),
      ...(options.env ?? {}),
    },
  });
  return { status: result.status, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/** Runs a command that must succeed and returns its --json output. */
function json(args: string[]) {
  const result = amber([...args, '--json']);
  assert.equal(result.status, 0, `amber ${args.join(' ')}: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

function refused(args: string[], code: string, status = 1) {
  const result = amber(args);
  assert.equal(result.status, status, `amber ${args.join(' ')} exits ${status}: ${result.stderr}`);
  assert.match(
    result.stderr,
    new RegExp(`^error: .* \\[${code}\\]\\n`),
    `amber ${args.join(' ')} is refused with ${code}`,
  );
  return result;
}

/** Deletions trust the wall clock across processes only when they can show they share a boot. */
function whyClockCannotBeTrusted(): string | false {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() ? false : 'no boot id';
  } catch {
    return 'no boot id on this platform: the guarded clock keeps everything until confirmed';
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'amber-retention-cli-'));
  repo = join(dir, 'repo');
  source = join(dir, 'source');
  await mkdir(source, { recursive: true });
  await writeFile(join(source, 'hello.txt'), 'hello world\n');
});

// Stored objects are immutable when the tests run as root: removeTree lifts the attributes first.
after(() => removeTree(dir));

test('init sets the policy, and a backup is locked with the coverage proven by lock status', () => {
  const init = json(['init', '--min-retention', '1s', '--default-retain', '2s']);
  assert.equal(init.policy.minRetentionMs, 1000);
  assert.equal(init.policy.defaultRetentionMs, 2000);
  assert.equal(init.policy.defaultMode, 'governance');

  const text = amber(['backup', source, '--retain', '1h']);
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /snapshot [0-9a-f]{8} saved, locked until \d{4}-\d\d-\d\dT\S+Z \(governance\)/);
  const backup = json(['backup', source, '--retain', '2s']);
  assert.equal(backup.retention.mode, 'governance');
  assert.ok(Number.isFinite(Date.parse(backup.retention.until)));
  firstId = backup.id;

  const [status] = json(['lock', 'status', firstId]);
  assert.equal(status.snapshotId, firstId);
  assert.equal(status.covered, true, JSON.stringify(status.gaps));
  assert.deepEqual(status.gaps, []);
  assert.equal(status.lock.until, backup.retention.until);
  assert.ok(status.objects > 0);
  assert.ok(['storage', 'server', 'client'].includes(status.enforcement.enforcer));

  const all = amber(['lock', 'status']);
  assert.equal(all.status, 0, all.stderr);
  assert.match(all.stdout, new RegExp(`^${firstId.slice(0, 8)}  .*governance until \\S+  COVERED$`, 'm'));
  assert.match(all.stdout, /locked by store \d+\/\d+/);
  assert.match(all.stdout, /all 2 snapshot locks are covered/);
  assert.equal(amber(['backup', source, '--lock-mode', 'forever']).status, 2, 'an unknown lock mode is a usage error');
  refused(['backup', source, '--retain', '3 months'], 'INVALID_DURATION', 2);
});

test('a lock is extended but never lifted or shortened', () => {
  const extended = json(['lock', 'extend', firstId.slice(0, 8), '--until', '+1h']);
  assert.equal(extended.snapshotId, firstId);
  assert.equal(extended.mode, 'governance');
  assert.ok(Date.parse(extended.until) > Date.parse(extended.previous.until) + 3_500_000);
  assert.equal(json(['lock', 'status', firstId])[0].lock.until, extended.until);

  refused(['lock', 'lift', firstId], 'APPROVAL_REQUIRED');
  refused(['lock', 'extend', firstId, '--until', '+1m'], 'APPROVAL_REQUIRED');

  const compliance = json(['backup', source, '--retain', '1h', '--lock-mode', 'compliance']);
  assert.equal(compliance.retention.mode, 'compliance');
  refused(['lock', 'lift', compliance.id], 'RETENTION_LOCKED');
  refused(['lock', 'extend', compliance.id, '--until', '+2h', '--lock-mode', 'governance'], 'RETENTION_LOCKED');
});

test('lock status reports a gap, with exit status 1, when an object loses its protection', async (t) => {
  const [before] = json(['lock', 'status', firstId]);
  if (before.lockedByStore === 0)
    return t.skip('the store cannot make objects immutable here (not root, or no attributes)');
  const packs: string[] = [];
  for (const sub of await readdir(join(repo, 'data')))
    for (const name of await readdir(join(repo, 'data', sub))) packs.push(join(repo, 'data', sub, name));
  assert.equal(spawnSync('chattr', ['-i', '--', ...packs]).status, 0);

  const gap = amber(['lock', 'status', firstId]);
  assert.equal(gap.status, 1);
  assert.match(gap.stdout, / {2}GAP$/m);
  assert.match(
    gap.stdout,
    /gap: data\/\S+ is not immutable although the store makes objects so .*: run `amber verify` as root to finish its protection/,
  );
  assert.match(gap.stderr, /\[LOCK_GAP\]\nhint: /);

  // Extending to the lock's own date (what the LOCK_GAP hint says) re-applies the protection.
  const gapped = JSON.parse(amber(['lock', 'status', '--json']).stdout).filter(
    (status: { covered: boolean }) => !status.covered,
  );
  assert.ok(gapped.some((status: { snapshotId: string }) => status.snapshotId === firstId));
  for (const status of gapped) json(['lock', 'extend', status.snapshotId, '--until', status.lock.until]);
  const repaired = amber(['lock', 'status']);
  assert.equal(repaired.status, 0, repaired.stdout);
  assert.match(repaired.stdout, /all 3 snapshot locks are covered/);
});

test('a legal hold is added and listed, and its release is refused', () => {
  const hold = json(['hold', 'add', firstId, '--reason', 'case 2026-17']);
  assert.equal(hold.snapshot, firstId);
  assert.match(hold.actor, /.+@.+/);
  const holds = json(['hold', 'list']);
  assert.deepEqual(
    holds.map((entry: { reason: string }) => entry.reason),
    ['case 2026-17'],
  );
  assert.match(amber(['hold', 'list']).stdout, new RegExp(`^${firstId.slice(0, 8)}  .*case 2026-17$`, 'm'));
  assert.match(amber(['lock', 'status', firstId]).stdout, /hold since \S+: case 2026-17/);
  refused(['hold', 'release', firstId.slice(0, 8)], 'APPROVAL_REQUIRED');
  assert.equal(amber(['hold', 'add', firstId]).status, 2, '--reason is required');
});

test('forget keeps locked and held snapshots; prune condemns, then deletes after the grace', {
  skip: whyClockCannotBeTrusted(),
}, async () => {
  const locked = json(['forget', '--keep-last', '1', '--dry-run']);
  assert.deepEqual(locked.forgotten, [], 'every snapshot is still locked');
  const first = locked.kept.find((entry: { snapshotId: string }) => entry.snapshotId === firstId);
  assert.ok(first.keptBecause.some((reason: string) => /^locked until \S+ \(governance\)$/.test(reason)));
  assert.ok(first.keptBecause.includes('held: case 2026-17'));

  const other = join(dir, 'other');
  await mkdir(other);
  await writeFile(join(other, 'data.bin'), seededBytes(100_000, 'first'));
  const old = json(['backup', other, '--retain', '1s']);
  await writeFile(join(other, 'data.bin'), seededBytes(100_000, 'second'));
  const newer = json(['backup', other, '--retain', '1s']);
  await sleep(1500); // both locks end

  const dryRun = amber(['forget', '--keep-last', '1', '--dry-run']);
  assert.equal(dryRun.status, 0, dryRun.stderr);
  assert.match(dryRun.stdout, new RegExp(`^would forget  ${old.id.slice(0, 8)}  `, 'm'));
  assert.match(dryRun.stdout, /^keep {10}.*\n +policy: last$/m);
  const forgotten = json(['forget', '--keep-last', '1']);
  assert.deepEqual(
    forgotten.forgotten.map((entry: { snapshotId: string }) => entry.snapshotId),
    [old.id],
  );
  assert.ok(forgotten.kept.some((entry: { snapshotId: string }) => entry.snapshotId === newer.id));
  assert.match(forgotten.mark, /^forgets\//);

  const preview = amber(['prune', '--dry-run']);
  assert.equal(preview.status, 0, preview.stderr);
  assert.match(preview.stdout, new RegExp(`^would condemn snapshots/${old.id} \\d`, 'm'));
  assert.match(preview.stdout, /^would condemn data\/\S+ \d/m, 'the pack only the forgotten snapshot used');
  assert.match(preview.stdout, /would delete 0 objects .* would condemn \d+ objects/);
  assert.equal(amber(['prune', '--dry-run']).stdout, preview.stdout, 'a dry run changes nothing');

  const condemn = amber(['prune', '--grace', '1s']);
  assert.equal(condemn.status, 0, condemn.stderr);
  assert.match(condemn.stdout, new RegExp(`^condemned snapshots/${old.id} `, 'm'));
  assert.match(condemn.stdout, /condemned \d+ objects \(.*\), deletable by a prune after 1\.0s \(notice condemns\//);
  await sleep(1200); // the grace passes

  const wouldDelete = amber(['prune', '--dry-run']);
  assert.match(wouldDelete.stdout, new RegExp(`^would delete snapshots/${old.id} \\d`, 'm'));
  const deleted = amber(['prune']);
  assert.equal(deleted.status, 0, deleted.stderr);
  assert.match(deleted.stdout, new RegExp(`^deleted snapshots/${old.id} \\d+(\\.\\d+)? (B|KiB)$`, 'm'));
  assert.match(deleted.stdout, /^deleted data\/[0-9a-f]{2}\/[0-9a-f]{64} \d/m);
  const totals = JSON.parse(amber(['prune', '--dry-run', '--json']).stdout);
  assert.deepEqual(totals.deleted, [], 'nothing is left to delete');

  const listed = json(['snapshots']).map((entry: { id: string }) => entry.id);
  assert.ok(!listed.includes(old.id) && listed.includes(newer.id) && listed.includes(firstId));
  const verify = amber(['verify', '--read-data']);
  assert.equal(verify.status, 0, verify.stdout + verify.stderr);
  assert.equal(amber(['forget']).status, 2, 'forget without a keep rule is a usage error');
});

test('the policy is set, enforced on backups, locked with a cooling-off and unlocked', () => {
  refused(['policy', 'set', '--min-retention', '1h'], 'POLICY_VIOLATION'); // the default (2s) would be under it
  const set = json(['policy', 'set', '--min-retention', '1h', '--default-retain', '1d']);
  assert.equal(set.settings.minRetentionMs, 3_600_000);
  assert.equal(set.settings.defaultRetentionMs, 86_400_000);
  assert.equal(set.locked, false);
  refused(['backup', source, '--retain', '1s'], 'POLICY_VIOLATION');
  refused(['policy', 'set'], 'USAGE', 2);

  const locking = amber(['policy', 'lock', '--cooling-off', '72h']);
  assert.equal(locking.status, 0, locking.stderr);
  assert.match(locking.stdout, /lock: +lock pending: may still be changed or cancelled until \S+/);
  const shown = json(['policy', 'show']);
  assert.ok(shown.lock && Date.parse(shown.lock.coolingOffUntil) > Date.parse(shown.lock.at));
  assert.equal(shown.locked, false);
  assert.match(amber(['policy', 'show']).stdout, /minimum retention: +1h\n/);
  refused(['policy', 'lock', '--cooling-off', '1h'], 'USAGE', 2);

  assert.equal(json(['policy', 'unlock']).lock, null);
  refused(['policy', 'unlock'], 'USAGE', 2);
  const strict = json(['policy', 'set', '--default-mode', 'compliance', '--require-compliance']);
  assert.equal(strict.settings.requireCompliance, true);
  refused(['backup', source, '--lock-mode', 'governance'], 'POLICY_VIOLATION');
  assert.equal(json(['policy', 'set', '--no-require-compliance']).settings.requireCompliance, false);
});

test('clock status shows the guarded clock, and confirm records who confirmed it', {
  skip: whyClockCannotBeTrusted(),
}, () => {
  const status = json(['clock', 'status']);
  assert.equal(status.trusted, true, status.reason);
  assert.ok(status.deletionNowMs > 0 && status.anchor);
  assert.match(amber(['clock', 'status']).stdout, /^clock: +trusted: wall time agrees with the anchor/m);
  const confirmed = json(['clock', 'confirm']);
  assert.match(confirmed.anchor.confirmedBy, /.+@.+/);
  assert.match(amber(['clock', 'status']).stdout, /confirmed by .+@.+/);
});

test('every retention command has help with examples', () => {
  const commands = [
    ['lock'],
    ['lock', 'extend'],
    ['lock', 'lift'],
    ['lock', 'status'],
    ['hold'],
    ['hold', 'add'],
    ['hold', 'list'],
    ['hold', 'release'],
    ['policy'],
    ['policy', 'show'],
    ['policy', 'set'],
    ['policy', 'lock'],
    ['policy', 'unlock'],
    ['forget'],
    ['prune'],
    ['clock'],
    ['clock', 'status'],
    ['clock', 'confirm'],
  ];
  for (const command of commands) {
    const help = amber([...command, '--help']);
    assert.equal(help.status, 0, command.join(' '));
    assert.match(help.stdout, /Examples:\n {2}.*amber /, `${command.join(' ')} --help shows examples`);
  }
  assert.match(amber(['backup', '--help']).stdout, /--retain <duration>[\s\S]*--lock-mode <mode>/);
  assert.match(amber(['init', '--help']).stdout, /--min-retention <duration>/);
});
