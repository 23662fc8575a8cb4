// The agent as an operator runs it: a policy file, `amber agent` on a 2-second schedule with a
// webhook receiver and a metrics scrape on 127.0.0.1, a kill in the middle of a run and the
// catch-up at the next start, `amber run` and `amber status` as a check that exits 1 once an RPO
// is missed, GFS tier locks, a failing repository, and a copy-to. Real processes, real repositories.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fs, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { liftAttributes, removeTree, seededBytes } from '../../src/testing/repo-fixture.ts';
import {
  logLines,
  type Receiver,
  startAmber,
  startReceiver,
  startSmtp,
  waitFor,
} from '../../src/testing/agent-fixture.ts';
import { processIdentity } from '../../src/ops/agent-state.ts';

const PASS = 'the agent test passphrase';
const DAY = 86_400_000;
const YEAR = 365 * DAY;

let dir: string;
let receiver: Receiver;
const env = () => ({
  AMBER_CACHE_DIR: join(dir, 'cache'),
  AMBER_PASSWORD: '',
  AMBER_APPROVER_PASSWORD: 'approver pass',
});
const amber = (args: string[]) => startAmber(args, env()).done;

async function ok(args: string[]) {
  const run = await amber(args);
  assert.equal(run.status, 0, `amber ${args.join(' ')}: ${run.stdout}${run.stderr}`);
  return run;
}

async function newRepo(name: string, extra: string[] = []): Promise<string> {
  const repo = join(dir, name);
  await ok(['init', '--repo', repo, '--password-file', join(dir, 'pass'), ...extra]);
  return repo;
}

/** A policy file in its own folder with its own state; returns its path. */
async function policy(name: string, body: string): Promise<string> {
  const folder = join(dir, name);
  await fs.mkdir(folder, { recursive: true });
  const file = join(folder, 'policy.yaml');
  writeFileSync(file, body);
  return file;
}

before(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'amber-agent-'));
  writeFileSync(join(dir, 'pass'), `${PASS}\n`);
  receiver = await startReceiver();
});
after(async () => {
  await receiver.close();
  await removeTree(dir);
});

const snapshots = async (repo: string) =>
  JSON.parse((await ok(['snapshots', '--repo', repo, '--password-file', join(dir, 'pass'), '--json'])).stdout) as {
    id: string;
    retention: { until: string; mode: string } | null;
    summary: { bytesRead: number };
  }[];

describe('amber agent', () => {
  test('runs a 2-second schedule, exports metrics, posts events; a kill mid-run leaves a valid repository and the next start catches up', async () => {
    const repo = await newRepo('agent-repo');
    const data = join(dir, 'agent-data');
    await fs.mkdir(data);
    writeFileSync(join(data, 'ledger.txt'), 'debits and credits\n');
    const file = await policy(
      'agent',
      `repositories:
  main: { repo: ${repo}, password-file: ${join(dir, 'pass')} }
sources:
  - name: docs
    paths: [${data}]
    repository: main
    schedule: every 2s
    rpo: 1m
notify:
  - webhook: ${receiver.url}
metrics: { listen: "127.0.0.1:0" }
state-dir: state
`,
    );
    const first = startAmber(['agent', '--config', file], env());
    const url = await waitFor('the metrics address', () => {
      const line = logLines(first.run.stderr).find((entry) => entry.msg === 'metrics served');
      return line?.url as string | undefined;
    });
    await waitFor(
      'two backups',
      () => logLines(first.run.stderr).filter((e) => e.msg === 'backup succeeded').length >= 2,
    );
    const metrics = await (await fetch(url)).text();
    assert.match(metrics, /^amber_backup_last_success_timestamp_seconds\{source="docs"\} \d+(\.\d+)?$/m);
    assert.match(metrics, /^amber_rpo_objective_seconds\{source="docs"\} 60$/m);
    assert.match(metrics, /^amber_rpo_missed\{source="docs"\} 0$/m);
    const runs = Number(/^amber_backup_runs_total\{source="docs"\} (\d+)$/m.exec(metrics)?.[1]);
    assert.ok(runs >= 2, `runs_total ${runs}`);
    assert.match(metrics, /^amber_backup_bytes_added_total\{source="docs"\} [1-9]\d*$/m);
    first.child.kill('SIGTERM');
    const stopped = await first.done;
    assert.equal(stopped.status, 0, stopped.stderr);
    assert.ok(logLines(stopped.stderr).some((e) => e.msg === 'agent stopped'));
    const made = await snapshots(repo);
    assert.ok(made.length >= 2, `${made.length} snapshots`);
    const events = receiver.events.filter((e) => e.json.source === 'docs');
    assert.ok(events.some((e) => e.json.type === 'backup.started'));
    const succeeded = events.filter((e) => e.json.type === 'backup.succeeded');
    assert.ok(succeeded.length >= 2, `${succeeded.length} backup.succeeded events`);
    assert.equal(succeeded[0].json.repository, 'main');

    // A large file makes the next run long enough to be killed in the middle.
    writeFileSync(join(data, 'large.bin'), seededBytes(256 * 1024 * 1024, 'agent-large'));
    const second = startAmber(['agent', '--config', file], env());
    await waitFor('the next backup to start', () =>
      logLines(second.run.stderr).some((e) => e.msg === 'backup started'),
    );
    await sleep(400);
    second.child.kill('SIGKILL');
    const killed = await second.done;
    assert.ok(
      !logLines(killed.stderr).some((e) => e.msg === 'backup succeeded'),
      'the run was killed before it finished',
    );
    assert.equal((await snapshots(repo)).length, made.length, 'the killed run left no snapshot');
    await ok(['verify', '--repo', repo, '--password-file', join(dir, 'pass')]);

    const third = startAmber(['agent', '--config', file], env());
    const caughtUp = await waitFor(
      'the caught-up backup',
      () => logLines(third.run.stderr).find((e) => e.msg === 'backup succeeded'),
      120_000,
    );
    assert.ok(
      logLines(third.run.stderr).some((e) => /interrupted; this run catches it up/.test(String(e.msg))),
      third.run.stderr,
    );
    third.child.kill('SIGTERM');
    assert.equal((await third.done).status, 0);
    const after = await snapshots(repo);
    const newest = after.find((s) => s.id === caughtUp.snapshot);
    assert.ok(newest && newest.summary.bytesRead >= 256 * 1024 * 1024, 'the caught-up snapshot holds the large file');
    await ok(['verify', '--repo', repo, '--password-file', join(dir, 'pass')]);
  });
});

describe('amber run and amber status', () => {
  test('status exits 0 while the RPO holds and 1 (RPO_MISSED) once it is missed; GFS tiers lock the first snapshot of the year for 7 years', async () => {
    const repo = await newRepo('status-repo');
    const data = join(dir, 'status-data');
    await fs.mkdir(data);
    writeFileSync(join(data, 'a.txt'), 'a\n');
    const file = await policy(
      'status',
      `repositories:
  main: { repo: ${repo}, password-file: ${join(dir, 'pass')} }
sources:
  - name: finance
    paths: [${data}]
    repository: main
    schedule: every 1h
    retain: { daily: 35d, monthly: 1y, yearly: 7y, mode: governance }
    rpo: 4s
metrics: { textfile: prom/amber.prom }
state-dir: state
`,
    );
    // Nothing recorded (the agent never ran, or its state is gone): no recovery point, so not met.
    const never = await amber(['status', '--config', file, '--json']);
    assert.equal(never.status, 1, never.stderr);
    assert.equal(JSON.parse(never.stdout)[0].lastSuccess, null);
    assert.equal(JSON.parse(never.stdout)[0].rpoMissed, true);
    assert.match(
      (await amber(['status', '--config', file])).stdout,
      /age unknown: no run recorded \(is the agent running\?\) — missed/,
    );

    const run = JSON.parse((await ok(['run', 'finance', '--config', file, '--json'])).stdout);
    assert.equal(run.status, 'succeeded');
    assert.equal(run.tier, 'yearly');
    assert.equal(run.lockDays, 7 * 365);
    const second = JSON.parse((await ok(['run', 'finance', '--config', file, '--json'])).stdout);
    assert.equal(second.tier, null, 'the second snapshot of the day is no keeper');
    const [yearly, plain] = [run.snapshot, second.snapshot].map((id) => id as string);
    const listed = await snapshots(repo);
    const untilOf = (id: string) => Date.parse(listed.find((s) => s.id === id)!.retention!.until);
    assert.ok(untilOf(yearly) > Date.now() + 7 * YEAR - 2 * DAY, 'the yearly keeper is locked 7 years');
    assert.ok(untilOf(plain) < Date.now() + YEAR, "the other gets the policy's default");

    const met = await amber(['status', '--config', file]);
    assert.equal(met.status, 0, met.stdout + met.stderr);
    assert.match(met.stdout, /source finance\n {2}last success: .*snapshot [0-9a-f]{8}\n {2}rpo: 4\.0s, age .* — met/);
    const textfile = await fs.readFile(join(dir, 'status', 'prom', 'amber.prom'), 'utf8');
    assert.match(textfile, /^amber_backup_runs_total\{source="finance"\} 2$/m);

    await sleep(4500);
    const missed = await amber(['status', '--config', file, '--json']);
    assert.equal(missed.status, 1, missed.stderr);
    assert.equal(JSON.parse(missed.stderr).error.code, 'RPO_MISSED');
    const [row] = JSON.parse(missed.stdout);
    assert.equal(row.rpoMissed, true);
    assert.ok(row.ageSeconds >= 4);
    const text = await amber(['status', '--config', file]);
    assert.equal(text.status, 1);
    assert.match(text.stdout, /source finance {2}MISSED/);
    assert.match(text.stderr, /^error: 1 objective missed: finance \[RPO_MISSED\]$/m);
  });

  test('a failing run is reported with its code to the webhook, by e-mail, in the state and the metrics; a running job is not run twice', async () => {
    const smtp = await startSmtp();
    after(() => smtp.close());
    const repo = await newRepo('failing-repo');
    writeFileSync(join(dir, 'wrong-pass'), 'not the passphrase\n');
    const data = join(dir, 'failing-data');
    await fs.mkdir(data);
    const file = await policy(
      'failing',
      `repositories:
  main: { repo: ${repo}, password-file: ${join(dir, 'wrong-pass')} }
sources:
  - name: payroll
    paths: [${data}]
    repository: main
    schedule: every 1h
notify:
  - webhook: ${receiver.url}
  - email: { smtp: "smtp://127.0.0.1:${smtp.port}", from: amber@example.test, to: [ops@example.test] }
    events: [backup.failed]
metrics: { textfile: amber.prom }
state-dir: state
`,
    );
    const failed = await amber(['run', 'payroll', '--config', file]);
    const mail = await waitFor('the e-mail', () => smtp.mails[0]);
    assert.deepEqual(mail.to, ['ops@example.test']);
    assert.match(mail.raw, /^Subject: \[amber\] backup\.failed: payroll \(WRONG_PASSWORD\) on /m);
    assert.match(mail.raw, /^code: WRONG_PASSWORD\r$/m);
    assert.equal(failed.status, 12, failed.stderr);
    assert.match(failed.stderr, /^error: .*repository "main".* \[WRONG_PASSWORD\]$/m);
    const event = await waitFor('the backup.failed event', () =>
      receiver.events.find((e) => e.json.type === 'backup.failed' && e.json.source === 'payroll'),
    );
    assert.equal(event.json.code, 'WRONG_PASSWORD');
    const status = JSON.parse((await amber(['status', '--config', file, '--json'])).stdout)[0];
    assert.equal(status.lastFailure.code, 'WRONG_PASSWORD');
    assert.equal(status.failuresInARow, 1);
    assert.ok(Date.parse(status.nextRun) - Date.now() > 20_000, 'the retry waits its backoff (30 s)');
    const textfile = await fs.readFile(join(dir, 'failing', 'amber.prom'), 'utf8');
    assert.match(textfile, /^amber_backup_failures_total\{source="payroll",code="WRONG_PASSWORD"\} 1$/m);

    // A run lock held by a live process (this test's own, named as a lock names its holder) means
    // the job is running. A bare pid is not enough: it may be a reused one (agent-hostile.test.ts).
    writeFileSync(
      join(dir, 'failing', 'state', 'source-payroll.lock'),
      `${process.pid}\n${processIdentity(process.pid) ?? ''}\n`,
    );
    const busy = await amber(['run', 'payroll', '--config', file]);
    assert.equal(busy.status, 1, busy.stderr);
    assert.match(busy.stderr, /source payroll is running now/);
    await fs.rm(join(dir, 'failing', 'state', 'source-payroll.lock'));
  });

  test('a bad policy file is refused with its line and column; SIGHUP with a broken file keeps the running policy, a fixed one adds its source', async () => {
    const repo = await newRepo('reload-repo');
    const data = join(dir, 'reload-data');
    await fs.mkdir(data);
    writeFileSync(join(data, 'a.txt'), 'reload');
    const source = (name: string) => `  - name: ${name}
    paths: [${data}]
    repository: main
    schedule: every 1h
`;
    const head = `repositories:
  main: { repo: ${repo}, password-file: ${join(dir, 'pass')} }
state-dir: state
sources:
`;
    const file = await policy('reload', head + source('first').replace('schedule', 'shedule'));
    const refused = await amber(['agent', '--config', file]);
    assert.equal(refused.status, 2, refused.stderr);
    assert.match(refused.stderr, new RegExp(`^error: the policy file ${file} has 2 problems:$`, 'm'));
    assert.match(
      refused.stderr,
      new RegExp(`^${file}:8:5: unknown key "shedule" in sources\\[0\\] \\(first\\); did you mean "schedule"\\?`, 'm'),
    );
    assert.match(refused.stderr, /\[CONFIG_INVALID\]/);

    writeFileSync(file, head + source('first'));
    const agent = startAmber(['agent', '--config', file], env());
    try {
      await waitFor('the first run', () =>
        logLines(agent.run.stderr).find((l) => l.msg === 'backup succeeded' && l.job === 'source-first'),
      );
      writeFileSync(file, `${head + source('first')}  - name: second\n    paths: relative\n`);
      agent.child.kill('SIGHUP');
      const kept = await waitFor('the refused reload', () =>
        logLines(agent.run.stderr).find((l) => String(l.msg).startsWith('policy file not reloaded')),
      );
      assert.match(String(kept.error), /:9:5: sources\[1\] \(second\) needs "repository"/);
      writeFileSync(file, head + source('first') + source('second'));
      agent.child.kill('SIGHUP');
      await waitFor('the new source to run', () =>
        logLines(agent.run.stderr).find((l) => l.msg === 'backup succeeded' && l.job === 'source-second'),
      );
    } finally {
      agent.child.kill('SIGTERM');
      await agent.done;
    }
    assert.equal(agent.run.status, 0, agent.run.stderr);
  });

  test('drills on schedule: drill.passed with the record in the audit log; a failing check gives drill.failed, then drill.overdue', async () => {
    const repo = await newRepo('drill-repo');
    const data = join(dir, 'drill-data');
    await fs.mkdir(data);
    writeFileSync(join(data, 'ledger.txt'), 'the books\n');
    const body = (check: string, grace: string) => `repositories:
  main: { repo: ${repo}, password-file: ${join(dir, 'pass')} }
sources:
  - name: books
    paths: [${data}]
    repository: main
    schedule: every 1h
    rto: 1h
    drill: { every: 3s, select: latest, grace: ${grace}, checks: ['${check}'] }
notify:
  - webhook: ${receiver.url}
    sources: [books]
metrics: { textfile: amber.prom }
state-dir: state
`;
    const file = await policy('drill', body(`grep -q books "$AMBER_DRILL_TARGET${data}/ledger.txt"`, '1h'));
    const agent = startAmber(['agent', '--config', file], env());
    const drillEvents = (type: string) =>
      receiver.events.filter((e) => e.json.type === type && e.json.source === 'books');
    try {
      const passed = await waitFor('drill.passed', () => drillEvents('drill.passed')[0], 60_000);
      const details = passed.json.details as { drill: string; rtoSeconds: number; rtoObjectiveSeconds: number };
      assert.match(details.drill, /^[0-9a-f]{64}$/);
      assert.equal(details.rtoObjectiveSeconds, 3600);
      const listed = JSON.parse((await ok(['drill', 'list', '--repo', repo, '--json'])).stdout);
      assert.ok(
        listed.drills.some((d: { id: string; source: string }) => d.id === details.drill && d.source === 'books'),
      );
      const status = JSON.parse((await amber(['status', '--config', file, '--json'])).stdout);
      const row = status.find((r: { kind: string }) => r.kind === 'drill');
      assert.equal(row.name, 'drill:books');
      assert.equal(row.lastDrill.passed, true);
      assert.equal(row.overdue, false);
      const textfile = await waitFor('the drill metrics', () => {
        const path = join(dir, 'drill', 'amber.prom');
        const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
        return /^amber_drill_rto_seconds\{source="books"\} /m.test(text) && text;
      });
      assert.match(textfile, /^amber_rto_objective_seconds\{source="books"\} 3600$/m);

      // The restored data stops passing its check: drill.failed with the check's reason, then overdue.
      writeFileSync(file, body('echo "ledger unreadable" >&2; exit 2', '1s'));
      agent.child.kill('SIGHUP');
      const failed = await waitFor('drill.failed', () => drillEvents('drill.failed')[0], 60_000);
      assert.equal(failed.json.code, 'DRILL_FAILED');
      assert.match(String(failed.json.message), /exited 2: ledger unreadable/);
      const overdue = await waitFor('drill.overdue', () => drillEvents('drill.overdue')[0], 60_000);
      assert.match(String(overdue.json.message), /no drill of books has passed since/);
    } finally {
      agent.child.kill('SIGTERM');
      await agent.done;
    }
    const late = await amber(['status', '--config', file]);
    assert.equal(late.status, 1, late.stdout);
    assert.match(late.stdout, /drill drill:books {2}OVERDUE/);
    const once = await amber(['run', 'drill:books', '--config', file]);
    assert.equal(once.status, 1, once.stderr);
    assert.match(
      once.stderr,
      /^error: the drill of snapshot [0-9a-f]{8} failed: the check .* exited 2: ledger unreadable \[DRILL_FAILED\]$/m,
    );
  });

  test('copy-to: the copy job copies the source into a repository made with --from-repo and measures its lag', async () => {
    const primary = await newRepo('copy-primary');
    const copy = join(dir, 'copy-offsite');
    await ok([
      'init',
      '--repo',
      copy,
      '--password-file',
      join(dir, 'pass'),
      '--from-repo',
      primary,
      '--from-password-file',
      join(dir, 'pass'),
    ]);
    const data = join(dir, 'copy-data');
    await fs.mkdir(data);
    writeFileSync(join(data, 'contract.txt'), 'signed\n');
    const file = await policy(
      'copying',
      `repositories:
  main: { repo: ${primary}, password-file: ${join(dir, 'pass')} }
  offsite: { repo: ${copy}, password-file: ${join(dir, 'pass')} }
sources:
  - name: legal
    paths: [${data}]
    repository: main
    schedule: every 1h
    rpo: 2h
    copy-to: [offsite]
state-dir: state
`,
    );
    const backup = JSON.parse((await ok(['run', 'legal', '--config', file, '--json'])).stdout);
    const copied = JSON.parse((await ok(['run', 'legal-to-offsite', '--config', file, '--json'])).stdout);
    assert.equal(copied.status, 'succeeded');
    assert.equal(copied.copied, 1);
    const atCopy = await snapshots(copy);
    assert.equal(atCopy.length, 1);
    assert.notEqual(atCopy[0].id, backup.snapshot, "the copy's snapshot is its own");
    const rows = JSON.parse((await ok(['status', '--config', file, '--json'])).stdout);
    const copyRow = rows.find((row: { name: string }) => row.name === 'legal-to-offsite');
    assert.equal(copyRow.lagSeconds, 0);
    assert.equal(copyRow.maxLagSeconds, 4 * 3600);
    assert.equal(copyRow.from, 'main');

    // The copy site's own file: its copy, drilled there (amber run drill:NAME), recorded at the copy.
    const site = await policy(
      'copy-site',
      `repositories:
  primary: { repo: ${primary}, password-file: ${join(dir, 'pass')} }
  mine: { repo: ${copy}, password-file: ${join(dir, 'pass')} }
sources: []
copies:
  - { name: legal-copy, from: primary, to: mine, schedule: every 1h, rto: 1h, drill: { every: 7d, select: latest } }
state-dir: state
`,
    );
    const drilled = JSON.parse((await ok(['run', 'drill:legal-copy', '--config', site, '--json'])).stdout);
    assert.equal(drilled.kind, 'drill');
    assert.equal(drilled.status, 'succeeded', JSON.stringify(drilled.error));
    assert.equal(drilled.snapshot, atCopy[0].id, "the copy's own snapshot is drilled");
    const recorded = JSON.parse(
      (await ok(['drill', 'list', '--repo', copy, '--password-file', join(dir, 'pass'), '--json'])).stdout,
    );
    assert.deepEqual(
      recorded.drills.map((d: { source: string; rtoObjectiveSeconds: number }) => [d.source, d.rtoObjectiveSeconds]),
      [['legal-copy', 3600]],
    );
  });

  test('a repository check announces each new approval request once and reports a lock gap when a pack is removed', async () => {
    const repo = await newRepo('check-repo');
    const pass = ['--repo', repo, '--password-file', join(dir, 'pass')];
    for (const name of ['alice', 'bob']) {
      await ok(['approver', 'keygen', '--out', join(dir, `check-${name}.key`)]);
      await ok(['approver', 'add', name, '--public-key', join(dir, `check-${name}.key.pub`), ...pass]);
    }
    await ok(['policy', 'set', '--quorum', '2', ...pass]);
    const data = join(dir, 'check-data');
    await fs.mkdir(data);
    writeFileSync(join(data, 'minutes.txt'), 'the board met\n');
    const file = await policy(
      'checking',
      `repositories:
  main: { repo: ${repo}, password-file: ${join(dir, 'pass')}, check: every 1h }
sources:
  - name: board
    paths: [${data}]
    repository: main
    schedule: every 1h
notify:
  - webhook: ${receiver.url}
state-dir: state
`,
    );
    const { snapshot } = JSON.parse((await ok(['run', 'board', '--config', file, '--json'])).stdout);
    await ok(['policy', 'lock', '--cooling-off', '0s', ...pass]);
    const request = JSON.parse(
      (await ok(['request', 'unlock', snapshot, '--reason', 'locked by mistake', ...pass, '--json'])).stdout,
    ).id as string;
    const announced = () =>
      receiver.events.filter((e) => e.json.type === 'approval.requested' && e.json.repository === 'main');
    await ok(['run', 'check:main', '--config', file]);
    const event = await waitFor('approval.requested', () => announced()[0]);
    assert.equal((event.json.details as { request: string }).request, request);
    assert.match(String(event.json.message), /unlock/);
    await ok(['run', 'check:main', '--config', file]);
    await sleep(200);
    assert.equal(announced().length, 1, 'a request is announced once');

    // Someone with access to the storage removes a pack the snapshot needs.
    const packs = (await fs.readdir(join(repo, 'data'), { recursive: true })).filter((name) =>
      /[0-9a-f]{64}$/.test(name),
    );
    assert.ok(packs.length > 0);
    await liftAttributes(join(repo, 'data'));
    await fs.rm(join(repo, 'data', packs[0]));
    const checked = await amber(['run', 'check:main', '--config', file]);
    assert.equal(checked.status, 1, checked.stderr);
    assert.match(checked.stderr, /lock gap/);
    const gap = await waitFor('verify.lock-gap', () => receiver.events.find((e) => e.json.type === 'verify.lock-gap'));
    assert.equal(gap.json.code, 'LOCK_GAP');
    const status = JSON.parse((await amber(['status', '--config', file, '--json'])).stdout);
    assert.equal(status.find((row: { name: string }) => row.name === 'check:main').lastFailure.code, 'LOCK_GAP');
  });
});
