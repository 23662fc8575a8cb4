import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAmberError } from '../core/errors.ts';
import { openGuardedClock, systemTimeSources, type GuardedClockOptions, type TimeSources } from './guarded-clock.ts';

const DAY = 86_400_000;
const YEAR = 365 * DAY;
const START = Date.UTC(2025, 0, 1);
const KEY = Buffer.alloc(32, 7);

/** Wall and since-boot clocks that tests move: `advance` is real time passing, `setWall` a clock change. */
function fakeSources() {
  const time = { wall: START, sinceBoot: 3_600_000, boot: 'aaaaaaaa-0000-4000-8000-000000000001' };
  const sources: TimeSources = { wallMs: () => time.wall, sinceBootMs: () => time.sinceBoot, bootId: () => time.boot };
  return {
    sources,
    advance(ms: number) {
      time.wall += ms;
      time.sinceBoot += ms;
    },
    setWall(ms: number) {
      time.wall = ms;
    },
    jump(ms: number) {
      time.wall += ms;
    },
    reboot(ms: number, boot = 'bbbbbbbb-0000-4000-8000-000000000002') {
      time.wall += ms;
      time.sinceBoot = 30_000;
      time.boot = boot;
    },
    get wall() {
      return time.wall;
    },
  };
}

async function scratch(t: { after(fn: () => Promise<void>): void }) {
  const dir = await mkdtemp(join(tmpdir(), 'amber-clock-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return join(dir, 'cache', 'repo-1', 'clock.json');
}

/** Opens the clock as a repository's creator does (first use anchors), unless `extra` says otherwise. */
function opener(statePath: string, sources: TimeSources) {
  return (extra: Partial<GuardedClockOptions> = {}) =>
    openGuardedClock({ statePath, macKey: KEY, sources, firstUse: 'anchor', ...extra });
}

test('first use anchored on purpose (a new repository) is trusted and saves the anchor in a private file', async (t) => {
  const statePath = await scratch(t);
  const fake = fakeSources();
  const clock = await opener(statePath, fake.sources)();
  const status = clock.status();
  assert.equal(status.trusted, true);
  assert.match(status.reason, /first use/);
  assert.equal(status.deletionNowMs, START);
  assert.equal(status.lastTrustedMs, START);
  assert.equal((await stat(statePath)).mode & 0o777, 0o600);
  const saved = JSON.parse(await readFile(statePath, 'utf8'));
  assert.equal(saved.state.anchor.wallMs, START);
  assert.match(saved.mac, /^[0-9a-f]{64}$/);
});

test('a later run of the same boot with a small drift is trusted and raises lastTrusted', async (t) => {
  const statePath = await scratch(t);
  const fake = fakeSources();
  const open = opener(statePath, fake.sources);
  await open();
  fake.advance(3 * DAY);
  fake.jump(30_000); // an NTP step well within the tolerance
  const clock = await open();
  assert.equal(clock.status().trusted, true);
  assert.equal(clock.deletionNowMs(), fake.wall);
  assert.equal((await open()).status().lastTrustedMs, fake.wall, 'the raised lastTrusted was saved');
});

test('a wall clock moved forward a year expires nothing: deletions keep the last trusted time', async (t) => {
  const statePath = await scratch(t);
  const fake = fakeSources();
  const open = opener(statePath, fake.sources);
  await open();
  fake.advance(DAY);
  await open();
  const lastTrusted = fake.wall;
  const lockEnds = lastTrusted + 182 * DAY;
  fake.jump(YEAR);
  const clock = await open();
  const status = clock.status();
  assert.equal(status.trusted, false);
  assert.match(status.reason, /jumped forward 1y/);
  assert.equal(clock.deletionNowMs(), lastTrusted);
  assert.ok(clock.deletionNowMs() < lockEnds, 'a lock ending in 6 months has not expired');
  assert.equal(clock.retentionBaseMs(), fake.wall, 'new locks count from the later time: longer, never shorter');
});

test('a wall clock moved back is untrusted: deletions use the earlier wall time, new locks the last trusted time', async (t) => {
  const statePath = await scratch(t);
  const fake = fakeSources();
  const open = opener(statePath, fake.sources);
  await open();
  fake.advance(10 * DAY);
  await open();
  const lastTrusted = fake.wall;
  fake.jump(-30 * DAY);
  const clock = await open();
  assert.equal(clock.status().trusted, false);
  assert.match(clock.status().reason, /jumped back 30d/);
  assert.equal(clock.deletionNowMs(), fake.wall);
  assert.equal(clock.retentionBaseMs(), lastTrusted);
});

test('after a reboot deletions wait until confirm, which re-anchors and records the actor', async (t) => {
  const statePath = await scratch(t);
  const fake = fakeSources();
  const open = opener(statePath, fake.sources);
  await open();
  fake.advance(DAY);
  await open();
  const lastTrusted = fake.wall;
  fake.reboot(10 * 60_000);
  const clock = await open();
  assert.equal(clock.status().trusted, false);
  assert.match(clock.status().reason, /rebooted/);
  assert.equal(clock.deletionNowMs(), lastTrusted);
  assert.equal((await open()).status().trusted, false, 'not re-anchored automatically');

  const confirmed = await clock.confirm('alice');
  assert.equal(confirmed.trusted, true);
  assert.equal(confirmed.deletionNowMs, fake.wall);
  assert.equal(confirmed.anchor?.confirmedBy, 'alice');
  fake.advance(60_000);
  const later = await open();
  assert.equal(later.status().trusted, true);
  assert.match(later.status().reason, /by alice/);
  const saved = JSON.parse(await readFile(statePath, 'utf8'));
  assert.equal(saved.state.history.length, 1);
  assert.equal(saved.state.history[0].actor, 'alice');
  assert.match(saved.state.history[0].before, /rebooted/);
});

test('a second process on the same state reaches the same verdict', async (t) => {
  const statePath = await scratch(t);
  const fake = fakeSources();
  const open = opener(statePath, fake.sources);
  await open();
  fake.advance(DAY);
  fake.jump(YEAR);
  const [first, second] = [await open(), await open()];
  assert.deepEqual(second.status(), first.status());
  assert.equal(second.status().trusted, false);
});

test('an untrusted run keeps one deletion time however the clocks move', async (t) => {
  const statePath = await scratch(t);
  const fake = fakeSources();
  const open = opener(statePath, fake.sources);
  await open();
  fake.jump(YEAR);
  const clock = await open();
  const decided = clock.deletionNowMs();
  fake.advance(DAY);
  fake.setWall(START); // even back to agreeing with the anchor: the verdict of this run stands
  assert.equal(clock.deletionNowMs(), decided);
  assert.equal(clock.status().trusted, false);
});

test('a jump during a run is caught at the next reading', async (t) => {
  const statePath = await scratch(t);
  const fake = fakeSources();
  const clock = await opener(statePath, fake.sources)();
  fake.advance(60_000);
  assert.equal(clock.deletionNowMs(), START + 60_000);
  fake.jump(YEAR);
  assert.equal(clock.deletionNowMs(), START + 60_000);
  assert.equal(clock.status().trusted, false);
});

test('stepping the clock by just under the tolerance before every run does not add up', async (t) => {
  const statePath = await scratch(t);
  const fake = fakeSources();
  const open = opener(statePath, fake.sources);
  await open();
  const verdicts: boolean[] = [];
  for (let run = 0; run < 4; run += 1) {
    fake.advance(60_000);
    fake.jump(110_000);
    verdicts.push((await open()).status().trusted);
  }
  assert.deepEqual(verdicts, [true, false, false, false]);
});

test('a long uptime may drift a little more than the tolerance', async (t) => {
  const statePath = await scratch(t);
  const fake = fakeSources();
  const open = opener(statePath, fake.sources);
  await open();
  fake.advance(60 * DAY);
  fake.jump(3 * 60_000); // 3 minutes after 60 days: under 2 minutes + 100 ppm (8.6 minutes)
  assert.equal((await open()).status().trusted, true);
});

test('an edited state file is detected and nothing may expire until confirmed', async (t) => {
  const statePath = await scratch(t);
  const fake = fakeSources();
  const open = opener(statePath, fake.sources);
  await open();
  const saved = JSON.parse(await readFile(statePath, 'utf8'));
  saved.state.lastTrustedMs += YEAR;
  await writeFile(statePath, JSON.stringify(saved));
  fake.advance(DAY);
  fake.jump(YEAR);
  const clock = await open();
  const status = clock.status();
  assert.equal(status.trusted, false);
  assert.match(status.reason, /bad MAC/);
  assert.equal(status.deletionNowMs, 0);
  assert.equal(status.lastTrustedMs, 0);
  assert.equal((await clock.confirm('bob')).trusted, true);
  assert.equal((await open()).status().trusted, true);
});

test('a state file that is not JSON stops expiry too', async (t) => {
  const statePath = await scratch(t);
  const fake = fakeSources();
  const open = opener(statePath, fake.sources);
  await open();
  await writeFile(statePath, '{"state":');
  assert.equal((await open()).deletionNowMs(), 0);
});

test('a state saved with another key is not believed', async (t) => {
  const statePath = await scratch(t);
  const fake = fakeSources();
  await opener(statePath, fake.sources)();
  const other = await opener(statePath, fake.sources)({ macKey: Buffer.alloc(32, 9) });
  assert.equal(other.status().trusted, false);
  assert.equal(other.deletionNowMs(), 0);
});

test('times read from storage raise new locks but never the deletion time', async (t) => {
  const statePath = await scratch(t);
  const fake = fakeSources();
  const clock = await opener(statePath, fake.sources)();
  clock.observe(START + 5 * YEAR);
  clock.observe(Number.NaN);
  clock.observe(Number.POSITIVE_INFINITY);
  assert.equal(clock.retentionBaseMs(), START + 5 * YEAR);
  assert.equal(clock.deletionNowMs(), START);
  assert.equal(clock.status().lastTrustedMs, START);
  clock.observe(START + 100 * YEAR);
  assert.equal(clock.retentionBaseMs(), START + 10 * 365.25 * DAY, 'capped at wall + 10 years');
});

test('without a boot id only first use and the confirming run are trusted', async (t) => {
  const statePath = await scratch(t);
  const fake = fakeSources();
  const sources = { ...fake.sources, bootId: () => '' };
  const open = opener(statePath, sources);
  assert.equal((await open()).status().trusted, true);
  const next = await open();
  assert.match(next.status().reason, /boot id cannot be read/);
  assert.equal((await next.confirm('carol')).trusted, true);
  assert.equal((await open()).status().trusted, false);
});

test('an empty cache and a clock a year ahead expire nothing: no state trusts no time, and nothing is saved', async (t) => {
  const statePath = await scratch(t);
  const fake = fakeSources();
  const open = opener(statePath, fake.sources);
  await open();
  await rm(statePath); // the attacker points AMBER_CACHE_DIR at an empty directory, or removes the state
  fake.jump(YEAR);
  for (let run = 0; run < 2; run++) {
    const clock = await open({ firstUse: 'wait' });
    const status = clock.status();
    assert.equal(status.trusted, false);
    assert.match(
      status.reason,
      /no clock state for this repository on this host .*first use, or it was removed.*amber clock confirm/,
    );
    assert.equal(status.deletionNowMs, 0, 'nothing may expire');
    assert.equal(clock.retentionBaseMs(), fake.wall, 'new locks still start from the highest time seen');
    await assert.rejects(stat(statePath), { code: 'ENOENT' }, 'a second run must not find a forged anchor to trust');
  }
  const confirmed = await (await open({ firstUse: 'wait' })).confirm('erin');
  assert.equal(confirmed.trusted, true);
  assert.equal((await open({ firstUse: 'wait' })).status().trusted, true, 'a confirmed time is trusted from then on');
});

test('without state, a reference clock the host cannot set decides: agreeing wall time is anchored, a forged one is not', async (t) => {
  const statePath = await scratch(t);
  const fake = fakeSources();
  const open = opener(statePath, fake.sources);
  const server = { source: "the vault's clock (https://vault.test)", wallMs: fake.wall };
  fake.jump(400 * DAY);
  const forged = await open({ firstUse: 'wait', reference: async () => server });
  assert.equal(forged.status().trusted, false);
  assert.match(forged.status().reason, /the wall clock is 400d ahead of the vault's clock/);
  assert.equal(forged.deletionNowMs(), 0);
  await assert.rejects(stat(statePath), { code: 'ENOENT' });
  const creating = await open({ firstUse: 'anchor', reference: async () => server });
  assert.equal(
    creating.status().trusted,
    false,
    'even a new repository is not anchored to a time its storage server contradicts',
  );
  const unreadable = await open({
    firstUse: 'wait',
    reference: async () => {
      throw new Error('connection refused');
    },
  });
  assert.equal(unreadable.status().trusted, false, 'a reference that cannot be read vouches for nothing');
  fake.jump(-400 * DAY + 20_000);
  const honest = await open({ firstUse: 'wait', reference: async () => server });
  assert.equal(honest.status().trusted, true, honest.status().reason);
  assert.equal(honest.deletionNowMs(), fake.wall);
  assert.match(honest.status().reason, /anchor set by the vault's clock/);
  assert.equal((await open({ firstUse: 'wait' })).status().trusted, true, 'the anchor was saved');
});

test('after a reboot, a reference clock that agrees re-anchors the clock; one that disagrees leaves it untrusted', async (t) => {
  const statePath = await scratch(t);
  const fake = fakeSources();
  const open = opener(statePath, fake.sources);
  await open();
  fake.advance(DAY);
  fake.reboot(60_000);
  const disagrees = await open({
    reference: async () => ({ source: "the S3 server's clock", wallMs: fake.wall - 30 * DAY }),
  });
  assert.equal(disagrees.status().trusted, false);
  assert.match(disagrees.status().reason, /rebooted/);
  const agrees = await open({ reference: async () => ({ source: "the S3 server's clock", wallMs: fake.wall }) });
  assert.equal(agrees.status().trusted, true, agrees.status().reason);
  assert.equal(agrees.deletionNowMs(), fake.wall);
  assert.equal((await open()).status().trusted, true, 'the new anchor was saved for this boot');
});

test('first use whose state cannot be saved trusts nothing, and confirm reports the failure', async (t) => {
  const statePath = await scratch(t);
  const fake = fakeSources();
  const blocked = join(statePath, '..', '..');
  await rm(blocked, { recursive: true, force: true });
  await writeFile(blocked, 'a file where the cache directory should be');
  const clock = await opener(statePath, fake.sources)();
  assert.equal(clock.status().trusted, false);
  assert.match(clock.status().reason, /could not be saved/);
  assert.equal(clock.deletionNowMs(), 0);
  assert.equal(clock.retentionBaseMs(), START);
  await assert.rejects(clock.confirm('dave'), (error) => isAmberError(error, 'STORAGE_ACCESS_DENIED'));
});

test('the system time sources agree with themselves across two runs of this boot', {
  skip: !existsSync('/proc/sys/kernel/random/boot_id') && 'no Linux boot id',
}, async (t) => {
  const statePath = await scratch(t);
  await openGuardedClock({ statePath, macKey: KEY, sources: systemTimeSources, firstUse: 'anchor' });
  const clock = await openGuardedClock({ statePath, macKey: KEY, sources: systemTimeSources });
  assert.equal(clock.status().trusted, true, clock.status().reason);
  assert.match(systemTimeSources.bootId(), /^[0-9a-f-]{36}$/);
});
