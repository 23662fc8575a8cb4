// Red-team tests of the agent against a hostile environment: its state directory tampered with (a
// directory where a lock goes, a symlink where a temporary file goes, a lock naming a live process
// that is not Amber) and a clock moved back after a run.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Clock } from '../core/clock.ts';
import { startAgent } from './agent.ts';
import { emptyJobState, lockJob, readJobState, writeJobState } from './agent-state.ts';
import type { AmberEvent } from './notify/event.ts';
import { parsePolicyText } from './policy-file.ts';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'amber-agent-hostile-'));
  mkdirSync(join(dir, 'data'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const HOUR = 3_600_000;
const YEAR = 365 * 24 * HOUR;

function policyIn(name: string, schedule = 'every 1h', rpo = '2h') {
  const folder = join(dir, name);
  mkdirSync(folder, { recursive: true });
  const text = `repositories:\n  main: { repo: ${join(folder, 'no-such-repo')} }\nsources:
  - { name: a, paths: [${join(dir, 'data')}], repository: main, schedule: "${schedule}", rpo: ${rpo} }
  - { name: b, paths: [${join(dir, 'data')}], repository: main, schedule: "${schedule}", rpo: ${rpo} }
state-dir: state\n`;
  return parsePolicyText(text, join(folder, 'policy.yaml'));
}

async function agentFor(name: string, clock: Clock, prepare?: (stateDir: string) => void) {
  const config = policyIn(name);
  const stateDir = config.stateDir!;
  mkdirSync(stateDir, { recursive: true });
  prepare?.(stateDir);
  const logs: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
  const events: AmberEvent[] = [];
  const agent = await startAgent({
    config,
    reload: async () => config,
    stateDir: () => stateDir,
    clock,
    log: (level, msg, fields) => logs.push({ level, msg, fields }),
    notify: (event) => events.push(event),
    tickMs: 10,
    random: () => 0,
  });
  return { agent, logs, events, stateDir };
}

test('a directory where a job lock goes fails that job, never the agent (no unhandled rejection), and the other jobs run', async () => {
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown) => rejections.push(reason);
  process.on('unhandledRejection', onRejection);
  try {
    let now = Date.parse('2026-06-01T00:00:00Z');
    const clock = { nowMs: () => now, monotonicMs: () => now };
    const { agent, logs } = await agentFor('lockdir', clock, (stateDir) => mkdirSync(join(stateDir, 'source-a.lock')));
    await sleep(300);
    now += 2 * HOUR;
    await sleep(200);
    await agent.stop(1000);
    assert.deepEqual(rejections.map(String), []);
    assert.ok(
      logs.some((line) => line.fields?.job === 'source-b' && /started/.test(line.msg)),
      `source b never started:\n${logs.map((line) => JSON.stringify(line)).join('\n')}`,
    );
    assert.ok(logs.some((line) => line.level === 'error' && line.fields?.job === 'source-a'));
    assert.equal(agent.running, undefined);
  } finally {
    process.removeListener('unhandledRejection', onRejection);
  }
});

test('a clock moved back after a run neither stops the backups until it catches up nor hides a missed RPO', async () => {
  let now = Date.parse('2026-06-01T00:00:00Z');
  const clock = { nowMs: () => now, monotonicMs: () => now };
  // The last run happened while the clock was a year ahead (a bad RTC, a wrong NTP server).
  const { agent, events, stateDir, logs } = await agentFor('clockback', clock, (stateDir) => {
    for (const job of ['source-a', 'source-b'])
      writeJobState(stateDir, job, {
        ...emptyJobState(),
        sinceMs: now + YEAR - 10 * HOUR,
        lastStartMs: now + YEAR,
        lastSuccess: { startMs: now + YEAR, endMs: now + YEAR + 1000, snapshot: 'f'.repeat(64) },
      });
  });
  try {
    await sleep(200);
    // Within one interval the backup is tried again (it fails: the repository does not exist)…
    now += HOUR + 1000;
    await sleep(300);
    assert.ok(
      logs.some((line) => line.fields?.job === 'source-a' && /backup started/.test(line.msg)),
      'no backup tried within an interval of the clock moving back',
    );
    // …and once the RPO has passed by the clock as it is now, the miss is announced.
    now += 2 * HOUR;
    await sleep(300);
    assert.ok(
      events.some((event) => event.type === 'rpo.missed' && event.source === 'a'),
      `no rpo.missed: ${JSON.stringify(readJobState(stateDir, 'source-a'))}`,
    );
  } finally {
    await agent.stop(1000);
  }
});

test('the atomic write does not follow a symlink planted at its temporary file', () => {
  const stateDir = join(dir, 'symlink-state');
  mkdirSync(stateDir, { recursive: true });
  const victim = join(dir, 'victim.txt');
  writeFileSync(victim, 'precious\n');
  symlinkSync(victim, join(stateDir, `source-a.json.${process.pid}.tmp`));
  writeJobState(stateDir, 'source-a', { ...emptyJobState(), lastStartMs: 1 });
  assert.equal(readFileSync(victim, 'utf8'), 'precious\n');
  assert.equal(readJobState(stateDir, 'source-a').lastStartMs, 1);
});

test('a lock naming a live process that is not the lock holder (a reused pid) does not block the job forever', async () => {
  const stateDir = join(dir, 'pid-state');
  mkdirSync(stateDir, { recursive: true });
  // An unrelated live process, as after a reboot a pid of the killed agent is someone else's now.
  const other = spawn('sleep', ['30'], { stdio: 'ignore' });
  try {
    await new Promise((resolve) => other.once('spawn', resolve));
    writeFileSync(join(stateDir, 'source-a.lock'), String(other.pid));
    const lock = lockJob(stateDir, 'source-a');
    assert.ok(!('heldBy' in lock), `the job stays blocked by pid ${other.pid}`);
    assert.equal(lock.interrupted, true);
    lock.release();
  } finally {
    other.kill();
  }
  // A lock a live Amber took is still respected: another process holds it, this one is refused.
  const holder = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { lockJob } from ${JSON.stringify(new URL('./agent-state.ts', import.meta.url).href)};
       lockJob(${JSON.stringify(stateDir)}, 'source-a'); console.log('locked'); setTimeout(() => {}, 30000);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    await new Promise((resolve) => holder.stdout.once('data', resolve));
    const refused = lockJob(stateDir, 'source-a');
    assert.ok('heldBy' in refused && refused.heldBy === holder.pid, 'a live holder lost its lock');
  } finally {
    holder.kill();
  }
});

test('a state file with wrong types is read as damaged fields, not as times that crash `amber status` or a met RPO', async () => {
  const { standings } = await import('./objectives.ts');
  const { isoDate } = await import('../core/units.ts');
  const config = policyIn('wrongtypes');
  const stateDir = config.stateDir!;
  mkdirSync(stateDir, { recursive: true });
  const now = Date.parse('2026-06-01T00:00:00Z');
  writeFileSync(
    join(stateDir, 'source-a.json'),
    JSON.stringify({
      sinceMs: now - 10 * HOUR,
      lastSuccess: { startMs: 'yesterday', endMs: null },
      lastFailure: { endMs: 1e300, code: 7 },
      consecutiveFailures: 'many',
      kept: null,
      totals: 5,
    }),
  );
  writeFileSync(join(stateDir, 'source-b.json'), 'null');
  const rows = standings(config, stateDir, now);
  const a = rows.find((row) => row.job.id === 'source-a')!;
  assert.equal(a.state.lastSuccess, undefined);
  assert.equal(a.state.lastFailure, undefined);
  assert.deepEqual(a.state.kept, {});
  assert.equal(a.state.consecutiveFailures, 0);
  assert.equal(a.rpoMissed, true, 'aged from sinceMs: 10 h against an RPO of 2 h');
  for (const row of rows) isoDate(row.nextRunMs);
});
