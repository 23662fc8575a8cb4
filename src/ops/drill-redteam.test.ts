// Attacks on restore drills (red team): a restore that is not a faithful copy must not pass, a
// drill record must not be forgeable by a key that cannot run drills, a check must not outlive its
// drill, an interrupted drill must stop, and the scratch space given must be left as it was found.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  promises as fs,
  readdirSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { systemClock } from '../core/clock.ts';
import { backup } from '../engine/backup.ts';
import { appendAudit } from '../governance/audit-log.ts';
import { addKey } from '../protection/key-admin.ts';
import { openRepository, openRepositoryView } from '../repo/repository.ts';
import { createFsStore } from '../storage/fs/fs-store.ts';
import { BIN } from '../testing/agent-fixture.ts';
import { createScratchRepo, seededBytes, TEST_PASSPHRASE } from '../testing/repo-fixture.ts';
import { testOperation } from '../testing/operation.ts';
import { listDrills } from './drill-records.ts';
import { buildReport, renderCsv, renderHtml } from './drill-report.ts';
import { runDrill } from './drill.ts';

async function drilledRepo(t: { after(fn: () => unknown): void }, label: string) {
  const { dir, repoPath, owner } = await createScratchRepo(t, label);
  const source = join(dir, 'source');
  mkdirSync(join(source, 'sub'), { recursive: true });
  writeFileSync(join(source, 'a.txt'), 'alpha\n');
  writeFileSync(join(source, 'big.bin'), seededBytes(200_000, label));
  linkSync(join(source, 'a.txt'), join(source, 'sub', 'a-link.txt'));
  await backup({ repo: owner, paths: [source] });
  return { dir, repoPath, owner, source, scratch: join(dir, 'scratch') };
}

test('a file planted in the target during the restore fails the drill', async (t) => {
  const { owner, source, scratch } = await drilledRepo(t, 'drill-extra');
  let target = '';
  const result = await runDrill({
    repo: owner,
    recordIn: owner,
    select: 'latest',
    scratch,
    onStage: (stage) => {
      if (stage.name === 'select') return;
      if (stage.name === 'restore') {
        target = readdirSync(scratch).map((n) => join(scratch, n))[0];
        // Planted, and the directory's time put back (with nanoseconds), so only the extra entries tell.
        const dirOf = join(target, source);
        execFileSync('touch', ['-r', dirOf, `${scratch}-ref`]);
        writeFileSync(join(dirOf, 'planted.sh'), 'rm -rf /\n');
        execFileSync('touch', ['-r', `${scratch}-ref`, dirOf]);
        mkdirSync(join(target, 'evil'));
      }
    },
  });
  assert.ok(target);
  assert.equal(result.passed, false, 'a restore with extra entries is not a faithful copy');
  assert.match(result.reasons.join('\n'), /planted\.sh .*not in the snapshot/);
  assert.match(result.reasons.join('\n'), /\/evil .*not in the snapshot/);
});

test('a hard link restored as a separate copy fails the drill', async (t) => {
  const { owner, source, scratch } = await drilledRepo(t, 'drill-hardlink');
  const result = await runDrill({
    repo: owner,
    recordIn: owner,
    select: 'latest',
    scratch,
    onStage: (stage) => {
      if (stage.name !== 'restore') return;
      const target = readdirSync(scratch).map((n) => join(scratch, n))[0];
      const link = join(target, source, 'sub', 'a-link.txt');
      const sub = join(target, source, 'sub');
      // Nanosecond times kept with touch -r, so only the link itself differs.
      execFileSync('touch', ['-r', link, `${scratch}-link`]);
      execFileSync('touch', ['-r', sub, `${scratch}-sub`]);
      unlinkSync(link);
      copyFileSync(join(target, source, 'a.txt'), link);
      execFileSync('touch', ['-r', `${scratch}-link`, link]);
      execFileSync('touch', ['-r', `${scratch}-sub`, sub]);
    },
  });
  assert.equal(result.passed, false, 'two names of one inode restored as two files');
  assert.match(result.reasons.join('\n'), /hard link/);
});

test('a check that leaves a daemon behind does not outlive the drill', async (t) => {
  const { dir, owner, scratch } = await drilledRepo(t, 'drill-daemon');
  const marker = join(dir, 'daemon-was-here');
  const result = await runDrill({
    repo: owner,
    recordIn: owner,
    select: 'latest',
    scratch,
    checks: [`(sleep 1; touch '${marker}') >/dev/null 2>&1 </dev/null & exit 0`],
  });
  assert.equal(result.passed, true, result.reasons.join('; '));
  await sleep(1500);
  assert.equal(existsSync(marker), false, 'the background process of the check survived the drill');
});

test('an interrupted drill runs no further check', async (t) => {
  const { dir, owner, scratch } = await drilledRepo(t, 'drill-abort');
  const marker = join(dir, 'second-check-ran');
  const controller = new AbortController();
  const started = Date.now();
  const result = await runDrill({
    repo: owner,
    recordIn: owner,
    select: 'latest',
    scratch,
    signal: controller.signal,
    // Ctrl-C while the first check runs.
    onStage: (stage) => {
      if (stage.name === 'verify') setTimeout(() => controller.abort(), 300);
    },
    checks: ['sleep 5', `touch '${marker}'; sleep 5`],
  });
  assert.equal(result.passed, false);
  assert.equal(existsSync(marker), false, 'the second check ran after the drill was interrupted');
  assert.ok(Date.now() - started < 4000, 'the drill waited for its checks after the interrupt');
  assert.match(result.reasons.join('\n'), /interrupted/);
  assert.deepEqual(readdirSync(scratch), [], 'the scratch space is removed');
});

test('check output keeps no terminal escapes or other control characters', async (t) => {
  const { owner, scratch } = await drilledRepo(t, 'drill-escapes');
  const result = await runDrill({
    repo: owner,
    recordIn: owner,
    select: 'latest',
    scratch,
    checks: [String.raw`printf 'ok\033]0;pwned\007 \033[2J\r\nnext\n'; exit 3`],
  });
  const text = [...result.checks[0].output, ...result.reasons].join('\n');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the point of the test
  assert.doesNotMatch(text, /[\u0000-\u0008\u000b-\u001f\u007f]/);
  assert.match(text, /pwned/, 'the text is kept, made visible');
});

test('a relative --target works for checks, and an existing empty --target is emptied, not removed', async (t) => {
  const { dir, owner, source } = await drilledRepo(t, 'drill-target');
  const cwd = process.cwd();
  process.chdir(dir);
  t.after(() => process.chdir(cwd));
  const result = await runDrill({
    repo: owner,
    recordIn: owner,
    select: 'latest',
    target: 'rel-target',
    checks: [`test -f "$AMBER_DRILL_TARGET${source}/a.txt"`],
  });
  assert.equal(result.passed, true, result.reasons.join('; '));
  assert.equal(result.target, join(dir, 'rel-target'), 'the record names the absolute path');
  const existing = join(dir, 'mount-point');
  mkdirSync(existing, { mode: 0o755 });
  const again = await runDrill({ repo: owner, recordIn: owner, select: 'latest', target: existing });
  assert.equal(again.passed, true, again.reasons.join('; '));
  assert.ok(existsSync(existing), 'the empty directory the user gave was removed');
  assert.deepEqual(readdirSync(existing), []);
  assert.equal(relative(dir, again.target), 'mount-point');
});

test('a drill record signed by a write-only key is not shown as a drill, and malformed records crash nothing', async (t) => {
  const { repoPath, owner } = await drilledRepo(t, 'drill-writer');
  const genuine = await runDrill({ repo: owner, recordIn: owner, select: 'latest' });
  await addKey(owner, { passphrase: 'writer pass', role: 'write-only', kdfLogN: 10 });
  const writer = testOperation(
    await openRepository({ store: createFsStore(repoPath), passphrase: 'writer pass', clock: systemClock }),
  );
  const { id, entry, recordedIn, ...record } = genuine;
  // A compromised backup client claims a drill that never ran.
  const forged = await appendAudit(writer, {
    action: 'drill',
    target: genuine.snapshot,
    details: { ...record, source: 'forged', rtoSeconds: 1, passed: true },
  });
  // And records of the wrong shape, one by the owner key (a bug, an older version), one by the writer.
  const malformed = await appendAudit(owner, {
    action: 'drill',
    target: genuine.snapshot,
    details: { version: 1, passed: 'false', source: 7, restoredFiles: '<script>alert(1)</script>' },
  });
  const empty = await appendAudit(writer, { action: 'drill', target: 'x', details: {} });
  const view = await openRepositoryView(createFsStore(repoPath));
  const listing = await listDrills(view);
  assert.deepEqual(
    listing.drills.map((d) => d.id),
    [genuine.id],
    'only the owner-signed, well-formed drill is a drill',
  );
  const flagged = new Map(listing.tampered.map((d) => [d.name, d]));
  assert.match(flagged.get(forged.name)?.problem ?? '', /write-only|writer/);
  assert.match(flagged.get(malformed.name)?.problem ?? '', /malformed|not a drill record/);
  assert.ok(flagged.has(empty.name));
  const report = buildReport(listing, { repository: repoPath, nowMs: Date.now() });
  assert.doesNotMatch(renderHtml(report), /<script>/);
  renderCsv(report);
});

test('CSV cells starting with a tab or carriage return are defused too', async () => {
  const drill = {
    id: 'a'.repeat(64),
    time: '2026-12-02T00:00:00.000Z',
    source: '\t=HYPERLINK("http://x","y")',
    snapshot: 'b'.repeat(64),
    snapshotTime: '2026-12-01T00:00:00.000Z',
    passed: true,
    rtoSeconds: 1,
    rtoObjectiveSeconds: null,
    rpoSeconds: 1,
    restoredBytes: 1,
    restoredFiles: 1,
    checks: [],
    reasons: ['\r=1+1'],
    signer: 'owner',
  };
  const csv = renderCsv({ drills: [drill] } as never);
  assert.doesNotMatch(csv, /(^|,|")[\t\r]=/m);
  await fs.access('.');
});

test('a --target writable by others, or a symlink, is refused; a drill recorded by a write-only key is refused', async (t) => {
  const { dir, repoPath, owner } = await drilledRepo(t, 'drill-shared');
  const shared = join(dir, 'shared');
  mkdirSync(shared);
  await fs.chmod(shared, 0o777);
  await assert.rejects(
    runDrill({ repo: owner, recordIn: owner, select: 'latest', target: shared }),
    /writable by other users/,
  );
  const empty = join(dir, 'empty');
  mkdirSync(empty, { mode: 0o700 });
  await fs.symlink(empty, join(dir, 'link'));
  await assert.rejects(
    runDrill({ repo: owner, recordIn: owner, select: 'latest', target: join(dir, 'link') }),
    /not an empty directory/,
  );
  await addKey(owner, { passphrase: 'writer pass', role: 'write-only', kdfLogN: 10 });
  const writer = testOperation(
    await openRepository({ store: createFsStore(repoPath), passphrase: 'writer pass', clock: systemClock }),
  );
  await assert.rejects(runDrill({ repo: owner, recordIn: writer, select: 'latest' }), { code: 'WRITE_ONLY_KEY' });
});

test('Ctrl-C during a check: exit 1 naming the interrupt, the scratch space removed, the record written', async (t) => {
  const { dir, repoPath } = await drilledRepo(t, 'drill-sigint');
  writeFileSync(join(dir, 'pass'), `${TEST_PASSPHRASE}\n`);
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp);
  const started = join(dir, 'check-started');
  const child = spawn(
    process.execPath,
    [BIN, 'drill', 'run', 'latest', '--repo', repoPath, '--check', `touch '${started}'; sleep 30`],
    {
      env: {
        PATH: process.env.PATH,
        AMBER_PASSWORD_FILE: join(dir, 'pass'),
        AMBER_CACHE_DIR: join(dir, 'cache'),
        TMPDIR: tmp,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr.on('data', (c) => {
    stderr += c;
  });
  const exited = new Promise<number | null>((done) => child.on('close', done));
  while (!existsSync(started)) await sleep(50);
  const sent = Date.now();
  child.kill('SIGINT');
  const code = await exited;
  assert.ok(Date.now() - sent < 10_000, 'the drill did not stop at the interrupt');
  assert.equal(code, 1, stderr);
  assert.match(stderr, /was interrupted/);
  assert.deepEqual(
    readdirSync(tmp).filter((n) => n.startsWith('amber-drill-')),
    [],
    'scratch space left behind',
  );
  const listing = await listDrills(await openRepositoryView(createFsStore(repoPath)));
  assert.equal(listing.drills.length, 1);
  assert.equal(listing.drills[0].passed, false);
});

test('--seed takes digits only: an empty seed or 1e3 is refused, not recorded as 0 or 1000', async (t) => {
  const { dir, repoPath } = await drilledRepo(t, 'drill-seed');
  writeFileSync(join(dir, 'pass'), `${TEST_PASSPHRASE}\n`);
  for (const seed of ['', '1e3', '-1', '0x10']) {
    const run = spawnSync(process.execPath, [BIN, 'drill', 'run', 'random', '--repo', repoPath, '--seed', seed], {
      env: { PATH: process.env.PATH, AMBER_PASSWORD_FILE: join(dir, 'pass'), AMBER_CACHE_DIR: join(dir, 'cache') },
      encoding: 'utf8',
    });
    assert.equal(run.status, 2, `--seed ${seed}: ${run.stderr}`);
    assert.match(run.stderr, /expected a whole number/);
  }
});
