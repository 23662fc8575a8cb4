// Attacks on the first promise: nothing locked or held disappears before its retention ends —
// not through forget/prune with aggressive rules, not with forged records, not with a moved clock,
// not with forged snapshot times — and it does go once the lock has ended.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../core/clock.ts';
import { isAmberError, type ErrorCode } from '../core/errors.ts';
import { openRepository } from '../repo/repository.ts';
import { addKey } from './key-admin.ts';
import { createFsStore } from '../storage/fs/fs-store.ts';
import type { ObjectInfo, Store } from '../storage/store.ts';
import { CONDEMNS, FORGETS, GRANTS, HOLDS, POLICIES, putRecord } from '../repo/retention-records.ts';
import { PREFIX, snapshotName } from '../repo/layout.ts';
import type { SnapshotId } from '../core/ids.ts';
import { createScratchRepo, listNames, seededBytes, TEST_PASSPHRASE } from '../testing/repo-fixture.ts';
import { backup } from '../engine/backup.ts';
import { restore } from '../engine/restore.ts';
import { verify } from '../engine/verify.ts';
import { forget } from './forget.ts';
import { prune } from './prune.ts';
import { extendLock, liftLock } from './locks.ts';
import { lockStatus } from '../engine/lock-coverage.ts';
import { addHold, releaseHold } from './holds.ts';
import { lockPolicy, setPolicy, showPolicy, unlockPolicy } from './policy-admin.ts';
import { loadRetentionState } from '../governance/retention-state.ts';
import { openGuardedClock } from '../governance/guarded-clock.ts';
import { findSnapshot, listSnapshots } from '../engine/snapshots.ts';
import { testOperation } from '../testing/operation.ts';
import type { Operation } from '../governance/operation.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const fails = (code: ErrorCode) => (error: unknown) => isAmberError(error, code);

/** Wall time that a test can move; starts at the real time so store times agree with it. */
function movableClock(): Clock & { offsetMs: number } {
  const clock = { offsetMs: 0, nowMs: () => Date.now() + clock.offsetMs, monotonicMs: () => performance.now() };
  return clock;
}

/**
 * The fs store as if its clock moved with the test's, as real time passing moves both: what it
 * receives is stamped with the moved time. (An attacker moves only the host's clock: see the
 * guarded-clock test below, where the store keeps the real time.)
 */
function storeOnClock(store: Store, clock: { offsetMs: number }): Store {
  const shift = new Map<string, number>();
  const stamp = (info: ObjectInfo): ObjectInfo =>
    info.writtenMs === undefined ? info : { ...info, writtenMs: info.writtenMs + (shift.get(info.name) ?? 0) };
  return {
    ...store,
    put: async (name, bytes, options) => {
      await store.put(name, bytes, options);
      shift.set(name, clock.offsetMs);
    },
    stat: async (name) => stamp(await store.stat(name)),
    list: async function* (prefix) {
      for await (const info of store.list(prefix)) yield stamp(info);
    },
  };
}

async function scratch(
  t: { after(fn: () => unknown): void },
  label: string,
  options: { storeMovesWithClock?: boolean } = {},
) {
  const { dir, repoPath } = await createScratchRepo(t, label);
  const clock = movableClock();
  const fsStore = createFsStore(repoPath);
  const store = options.storeMovesWithClock === false ? fsStore : storeOnClock(fsStore, clock);
  const repo = testOperation(await openRepository({ store, passphrase: TEST_PASSPHRASE, clock }));
  const source = join(dir, 'source');
  await fs.mkdir(source);
  await fs.writeFile(join(source, 'a.bin'), seededBytes(300_000, `${label}-a`));
  await fs.writeFile(join(source, 'b.txt'), 'hello\n'.repeat(1000));
  return { dir, repoPath, repo, clock, source };
}

const packsOf = (repo: Operation) => listNames(repo.store, PREFIX.data);

test('a locked snapshot survives aggressive forget and prune, and goes once its lock ends', async (t) => {
  const { repo, clock, source, dir } = await scratch(t, 'retention-expiry');
  const first = await backup({ repo, paths: [source], retainMs: 10_000 });
  await fs.writeFile(join(source, 'c.bin'), seededBytes(200_000, 'c'));
  const second = await backup({ repo, paths: [source], retainMs: 10_000 });
  assert.equal(first.snapshot.retention?.mode, 'governance');
  const packsBefore = await packsOf(repo);

  const early = await forget({ repo, keep: { last: 1 } });
  assert.deepEqual(early.forgotten, [], 'nothing locked is forgotten');
  assert.match(early.kept.find((k) => k.snapshotId === first.snapshotId)!.keptBecause.join(), /locked until/);
  const pruned = await prune({ repo, graceMs: 0 });
  assert.deepEqual([pruned.deleted, pruned.condemned], [[], []]);
  assert.deepEqual(await packsOf(repo), packsBefore);

  clock.offsetMs = 60_000; // both locks have ended
  const late = await forget({ repo, keep: { last: 1 } });
  assert.deepEqual(
    late.forgotten.map((f) => f.snapshotId),
    [first.snapshotId],
  );
  assert.deepEqual(
    (await listSnapshots(repo)).map(({ id }) => id),
    [second.snapshotId],
  );
  const condemning = await prune({ repo, graceMs: 0 });
  assert.ok(
    condemning.condemned.some(({ name }) => name === snapshotName(first.snapshotId)),
    'the forgotten snapshot object is condemned',
  );
  assert.deepEqual(condemning.deleted, [], 'condemning deletes nothing');
  const deleting = await prune({ repo, graceMs: 0 });
  assert.ok(deleting.deleted.some(({ name }) => name === snapshotName(first.snapshotId)));
  assert.rejects(fs.access(join(repo.store.location, 'snapshots', first.snapshotId)));
  // What the kept snapshot needs is intact.
  const target = join(dir, 'restored');
  await restore({ repo, snapshot: await findSnapshot(repo, second.snapshotId), target });
  assert.deepEqual(await fs.readFile(join(target, source, 'c.bin')), seededBytes(200_000, 'c'));
  assert.deepEqual((await verify({ repo, readDataFraction: 1 })).problems, []);
});

test('prune waits out the grace period and never deletes what a newer backup uses', async (t) => {
  const { repo, clock, source } = await scratch(t, 'retention-grace');
  const first = await backup({ repo, paths: [source], retainMs: 1_000 });
  clock.offsetMs = 10_000;
  await forget({ repo, keep: { hourly: 0 } }); // keeps nothing: the expired snapshot is forgotten
  assert.deepEqual(await listSnapshots(repo), []);
  const condemned = await prune({ repo, graceMs: HOUR });
  assert.ok(condemned.condemned.length > 0);
  // A new backup of the same data must not dedup against condemned packs.
  const again = await backup({ repo, paths: [source], retainMs: DAY });
  assert.ok(again.snapshot.summary.bytesAdded > 0, 'the data is stored again, not taken from condemned packs');
  const early = await prune({ repo, graceMs: 0 });
  assert.deepEqual(early.deleted, [], 'the grace period has not passed');
  clock.offsetMs = 10_000 + 2 * HOUR;
  const after = await prune({ repo, graceMs: 0 });
  assert.ok(after.deleted.length > 0);
  assert.ok(after.deleted.every(({ name }) => condemned.condemned.some((c) => c.name === name)));
  assert.deepEqual((await verify({ repo, readDataFraction: 1 })).problems, []);
  assert.notEqual(first.snapshotId, again.snapshotId);
});

test('a new snapshot that reuses old packs extends their retention, and lock status proves coverage', async (t) => {
  const { repo } = await scratch(t, 'retention-extend').then(async (s) => {
    const first = await backup({ repo: s.repo, paths: [s.source], retainMs: HOUR });
    const [status] = await lockStatus({ repo: s.repo, snapshot: first.snapshotId });
    assert.equal(status.covered, true, JSON.stringify(status.gaps));
    assert.ok(Date.parse(status.earliestDeletable!) >= Date.parse(first.snapshot.retention!.until));
    const second = await backup({ repo: s.repo, paths: [s.source], retainMs: 90 * DAY });
    // (Trees of the source's ancestors may change: other tests create directories in the same /tmp.)
    assert.deepEqual(
      [second.snapshot.summary.filesNew, second.snapshot.summary.filesUnchanged],
      [0, 2],
      'the files reuse their chunks',
    );
    const state = await loadRetentionState(s.repo);
    for (const pack of await packsOf(s.repo)) {
      assert.ok(
        state.ledger.lockOf(pack)!.untilMs >= Date.parse(second.snapshot.retention!.until),
        `${pack} was extended`,
      );
    }
    const [after] = await lockStatus({ repo: s.repo, snapshot: second.snapshotId });
    assert.equal(after.covered, true, JSON.stringify(after.gaps));
    return s;
  });
  assert.ok(repo);
});

test('locks extend but never shorten; governance shortening needs approval, compliance never', async (t) => {
  const { repo, source } = await scratch(t, 'retention-shorten');
  const gov = await backup({ repo, paths: [source], retainMs: DAY });
  const until = Date.parse(gov.snapshot.retention!.until);
  await assert.rejects(
    extendLock({ repo, snapshot: gov.snapshotId, untilMs: until - HOUR }),
    fails('APPROVAL_REQUIRED'),
  );
  await assert.rejects(liftLock({ repo, snapshot: gov.snapshotId }), fails('APPROVAL_REQUIRED'));
  const extended = await extendLock({ repo, snapshot: gov.snapshotId, untilMs: until + 30 * DAY });
  assert.equal(extended.until, new Date(until + 30 * DAY).toISOString());
  const [status] = await lockStatus({ repo, snapshot: gov.snapshotId });
  assert.equal(status.lock?.until, extended.until);
  assert.equal(status.covered, true, JSON.stringify(status.gaps));

  const comp = await backup({ repo, paths: [source], retainMs: DAY, lockMode: 'compliance' });
  assert.equal(
    comp.snapshot.summary.bytesRead,
    0,
    'on fs the grant raises the reused governance packs to compliance: nothing is read or stored again',
  );
  assert.deepEqual((await lockStatus({ repo, snapshot: comp.snapshotId }))[0].gaps, []);
  const compUntil = Date.parse(comp.snapshot.retention!.until);
  await assert.rejects(
    extendLock({ repo, snapshot: comp.snapshotId, untilMs: compUntil - 1 }),
    fails('RETENTION_LOCKED'),
  );
  await assert.rejects(
    extendLock({ repo, snapshot: comp.snapshotId, untilMs: compUntil + DAY, mode: 'governance' }),
    fails('RETENTION_LOCKED'),
  );
  await assert.rejects(liftLock({ repo, snapshot: comp.snapshotId }), fails('RETENTION_LOCKED'));
});

test('a held snapshot outlives its lock; release needs approval', async (t) => {
  const { repo, clock, source } = await scratch(t, 'retention-hold');
  const held = await backup({ repo, paths: [source], retainMs: 1_000 });
  await addHold(repo, { snapshot: held.snapshotId, reason: 'case 17' });
  await assert.rejects(releaseHold(repo, { snapshot: held.snapshotId }), fails('APPROVAL_REQUIRED'));
  clock.offsetMs = DAY;
  const result = await forget({ repo, keep: { hourly: 0 } });
  assert.deepEqual(result.forgotten, []);
  assert.match(result.kept[0].keptBecause.join(), /held: case 17/);
  await prune({ repo, graceMs: 0 });
  const second = await prune({ repo, graceMs: 0 });
  assert.deepEqual(second.deleted, []);
  assert.deepEqual((await verify({ repo, readDataFraction: 1 })).problems, []);
});

test('records forged without the owner key are ignored and reported by verify', async (t) => {
  const { repo, repoPath, clock, source } = await scratch(t, 'retention-forged');
  const victim = await backup({ repo, paths: [source], retainMs: DAY });
  // A write-only key (a stolen backup credential) signs owner-only records.
  await addKey(repo, { role: 'write-only', passphrase: 'writer', label: 'stolen', kdfLogN: 10 });
  const writer = testOperation(await openRepository({ store: createFsStore(repoPath), passphrase: 'writer', clock }));
  const forgeAsWriter = async <T>(type: { prefix: string; kind: string; ownerOnly: boolean }, value: T) =>
    putRecord(
      { ...writer, key: { ...writer.key, role: 'full' } },
      { ...type, ownerOnly: false, isValid: () => true } as never,
      value,
    );
  const forgedForget = await forgeAsWriter(FORGETS, {
    time: new Date().toISOString(),
    snapshots: [victim.snapshotId],
    rule: 'forged',
  });
  const forgedPolicy = await forgeAsWriter(POLICIES, {
    time: new Date().toISOString(),
    previous: null,
    lock: null,
    settings: {
      minRetentionMs: null,
      maxRetentionMs: 1,
      defaultMode: 'governance',
      defaultRetentionMs: 0,
      requireCompliance: false,
      extendStepMs: 1,
    },
  });
  const forgedHold = await forgeAsWriter(HOLDS, {
    time: new Date().toISOString(),
    snapshot: victim.snapshotId,
    reason: 'forged',
    actor: 'x',
  });
  const forgedCondemn = await forgeAsWriter(CONDEMNS, {
    time: new Date(0).toISOString(),
    graceMs: 0,
    objects: (await packsOf(repo)).map((name) => ({ name, sizeBytes: 1 })),
  });
  // A grant whose bytes were edited after signing (a raised date) no longer verifies.
  const [grant] = await listNames(repo.store, PREFIX.grants);
  const grantPath = join(repoPath, grant);
  const bytes = await fs.readFile(grantPath);
  const tampered = Buffer.from(bytes.toString('latin1').replace(/"until":"\d{4}/, '"until":"2999'), 'latin1');
  const forgedGrant = `grants/${(await import('../crypto/index.ts')).sha256Hex(tampered)}`;
  await repo.store.put(forgedGrant, tampered);

  assert.deepEqual(
    (await listSnapshots(repo)).map(({ id }) => id),
    [victim.snapshotId],
    'the forged forget is ignored',
  );
  assert.equal((await showPolicy(repo)).settings.maxRetentionMs, null, 'the forged policy is ignored');
  clock.offsetMs = 2 * DAY;
  await prune({ repo, graceMs: 0 });
  assert.ok((await packsOf(repo)).length > 0, 'a forged condemn notice deletes nothing');
  // Reported apart, as unauthorised objects ignored: none of them is damage to the backups.
  const reported = (await verify({ repo, readDataFraction: 0 })).ignored.map(({ object }) => object);
  for (const name of [forgedForget, forgedPolicy, forgedHold, forgedCondemn, forgedGrant])
    assert.ok(reported.includes(name), `${name} is reported`);
  const state = await loadRetentionState(repo);
  assert.equal(state.holds.length, 0);
  assert.ok(
    !state.ledger.lockOf(snapshotName(victim.snapshotId as SnapshotId)) ||
      state.ledger.lockOf(snapshotName(victim.snapshotId as SnapshotId))!.untilMs < Date.parse('2999-01-01'),
  );
  void GRANTS;
});

test('snapshots with forged times take no part in keep rules and are never forgotten', async (t) => {
  const { repo, clock, source } = await scratch(t, 'retention-forged-time');
  const real = await backup({ repo, paths: [source], retainMs: 1_000 });
  // A stolen credential writes snapshots claiming to be from the next days: with keep-daily they
  // would fill the buckets and push the real snapshot out.
  for (const days of [1, 2, 3]) {
    clock.offsetMs = days * DAY;
    await backup({ repo, paths: [source], retainMs: 1_000 });
  }
  clock.offsetMs = 0;
  await new Promise((wake) => setTimeout(wake, 1_100));
  const result = await forget({ repo, keep: { daily: 1 } });
  assert.deepEqual(result.forgotten, [], 'nothing is forgotten on forged evidence');
  assert.match(result.kept.find((k) => k.snapshotId === real.snapshotId)!.keptBecause.join(), /policy: daily/);
  assert.equal(result.kept.filter((k) => k.keptBecause.some((why) => why.startsWith('time untrusted'))).length, 3);
});

test('the policy bounds backups and extensions, and once locked can only be tightened', async (t) => {
  const { repo, clock, source } = await scratch(t, 'retention-policy');
  await setPolicy(repo, { minRetentionMs: HOUR, maxRetentionMs: 365 * DAY });
  await assert.rejects(backup({ repo, paths: [source], retainMs: 1_000 }), fails('POLICY_VIOLATION'));
  await assert.rejects(backup({ repo, paths: [source], retainMs: 2 * 365 * DAY }), fails('POLICY_VIOLATION'));
  const ok = await backup({ repo, paths: [source], retainMs: 2 * HOUR });
  await assert.rejects(
    extendLock({ repo, snapshot: ok.snapshotId, untilMs: Date.now() + 3 * 365 * DAY }),
    fails('POLICY_VIOLATION'),
  );

  await lockPolicy(repo, 72 * HOUR);
  await setPolicy(repo, { minRetentionMs: 30 * 60_000 }); // cooling-off: still changeable
  await unlockPolicy(repo);
  await lockPolicy(repo, 72 * HOUR);
  clock.offsetMs = 73 * HOUR;
  assert.equal((await showPolicy(repo)).locked, true);
  await assert.rejects(setPolicy(repo, { minRetentionMs: 60_000 }), fails('POLICY_LOCKED'));
  await assert.rejects(unlockPolicy(repo), fails('POLICY_LOCKED'));
  await setPolicy(repo, { minRetentionMs: 2 * HOUR, requireCompliance: true, defaultMode: 'compliance' });
  await assert.rejects(
    setPolicy(repo, { requireCompliance: false, defaultMode: 'governance' }),
    fails('POLICY_LOCKED'),
  );
  await assert.rejects(
    backup({ repo, paths: [source], retainMs: 3 * HOUR, lockMode: 'governance' }),
    fails('POLICY_VIOLATION'),
  );
  // Moving the clock back does not unlock the policy for a command judged by the retention base.
  clock.offsetMs = 0;
  const base = { retentionBaseMs: () => Date.now() + 73 * HOUR, deletionNowMs: () => Date.now() };
  await assert.rejects(setPolicy(testOperation(repo, base), { minRetentionMs: 60_000 }), fails('POLICY_LOCKED'));
});

test('moving the system clock a year forward or back expires nothing early (guarded clock)', async (t) => {
  const { repo, clock, source, dir } = await scratch(t, 'retention-clock', { storeMovesWithClock: false });
  const time = { wall: Date.now(), sinceBoot: 1_000_000, boot: 'boot-a' };
  const sources = { wallMs: () => time.wall, sinceBootMs: () => time.sinceBoot, bootId: () => time.boot };
  const open = () =>
    openGuardedClock({ statePath: join(dir, 'clock.json'), macKey: Buffer.alloc(32, 7), sources, firstUse: 'anchor' });
  const guarded = await open(); // anchored at the real time, as `amber init` does
  const locked = await backup({ repo: testOperation(repo, guarded), paths: [source], retainMs: 180 * DAY });
  const packs = await packsOf(repo);

  // The attacker moves the wall clock a year ahead (the repository clock with it).
  time.wall += 365 * DAY;
  clock.offsetMs = 365 * DAY;
  const jumped = await open();
  assert.equal(jumped.status().trusted, false);
  assert.deepEqual((await forget({ repo: testOperation(repo, jumped), keep: { hourly: 0 } })).forgotten, []);
  await prune({ repo: testOperation(repo, jumped), graceMs: 0 });
  await prune({ repo: testOperation(repo, jumped), graceMs: 0 });
  assert.deepEqual(await packsOf(repo), packs, 'nothing was deleted');
  assert.deepEqual(
    (await listSnapshots(repo)).map(({ id }) => id),
    [locked.snapshotId],
  );

  // Back a year: new locks are not shortened either (they start from the last trusted time).
  time.wall -= 2 * 365 * DAY;
  clock.offsetMs = -365 * DAY;
  const back = await open();
  assert.equal(back.status().trusted, false);
  const late = await backup({ repo: testOperation(repo, back), paths: [source], retainMs: DAY });
  assert.ok(
    Date.parse(late.snapshot.retention!.until) >= Date.now() + DAY - 60_000,
    'the lock counts from the last trusted time, not the wall clock',
  );
});
