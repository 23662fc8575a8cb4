// An approved request's effect on S3 itself: the bucket keeps its governance dates and legal holds
// until the unlock executor applies the request, and then lowers only what the quorum allowed —
// never below another snapshot's lock, never a compliance date, never before approval.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { isAmberError } from '../core/errors.ts';
import { systemClock } from '../core/clock.ts';
import { initRepository } from '../repo/repository.ts';
import {
  makeTempDir,
  removeTree,
  seededBytes,
  TEST_PASSPHRASE,
  useTemporaryWriterCache,
} from '../testing/repo-fixture.ts';
import { freshS3Store, whenS3 } from '../testing/s3-fixture.ts';
import { createApproverKey, unlockApproverKey } from '../governance/approver-key.ts';
import { backup } from '../engine/backup.ts';
import { addHold } from './holds.ts';
import { setPolicy } from './policy-admin.ts';
import { createRequest, signDecision, submitDecision } from './approvals.ts';
import { loadRetentionState } from '../governance/retention-state.ts';
import { applyToStorage } from './storage-effects.ts';
import { lockStatus } from '../engine/lock-coverage.ts';
import { loadIndex } from '../repo/index-loader.ts';
import { createBlobReader } from '../repo/blob-reader.ts';
import { snapshotNeeds } from '../engine/snapshot-objects.ts';
import { findSnapshot } from '../engine/snapshots.ts';
import { testOperation, testRetentionClock } from '../testing/operation.ts';

const DAY_MS = 86_400_000;

whenS3(() => {
  test('an approved unlock lowers S3 governance dates to what other locks still need; a released hold lifts only its own legal holds', async (t) => {
    const dir = await makeTempDir('storage-effects');
    t.after(() => removeTree(dir));
    useTemporaryWriterCache(dir);
    const store = await freshS3Store();
    const owner = testOperation(
      await initRepository({ store, passphrase: TEST_PASSPHRASE, clock: systemClock, kdfLogN: 10 }),
    );
    const keys = await Promise.all(
      [1, 2, 3].map(async () =>
        unlockApproverKey(JSON.stringify((await createApproverKey('pw', 10)).keyFile), 'pw', 'test'),
      ),
    );
    const [alice, bob] = keys;
    await setPolicy(owner, {
      approvers: keys.map((key, i) => ({ name: `approver${i}`, publicKey: key.publicKey.toString('hex') })),
      quorum: 2,
    });
    const source = join(dir, 'source');
    await fs.mkdir(source);
    await fs.writeFile(join(source, 'shared.bin'), seededBytes(100_000, 'shared'));
    const mistake = await backup({ repo: owner, paths: [source], retainMs: 30 * DAY_MS });
    await fs.writeFile(join(source, 'own.bin'), seededBytes(100_000, 'own'));
    const kept = await backup({ repo: owner, paths: [source], retainMs: 2 * DAY_MS });
    const snapshotName = `snapshots/${mistake.snapshotId}`;
    const before = (await store.protection([snapshotName]))[0].untilMs!;
    assert.ok(before > Date.now() + 29 * DAY_MS);

    const unlock = await createRequest({
      repo: owner,
      kind: 'unlock',
      target: mistake.snapshotId,
      reason: 'backed up the wrong disk',
    });
    const clock = testRetentionClock(systemClock);
    await assert.rejects(applyToStorage(testOperation(owner, clock), unlock.id), (error: unknown) =>
      isAmberError(error, 'APPROVAL_REQUIRED'),
    );
    assert.equal((await store.protection([snapshotName]))[0].untilMs, before, 'nothing changes before the quorum');
    await submitDecision(owner, signDecision(unlock.id, 'approve', alice));
    await submitDecision(owner, signDecision(unlock.id, 'approve', bob));

    const effect = await applyToStorage(testOperation(owner, clock), unlock.id);
    assert.ok(effect.lowered > 0);
    const [snapshot] = await store.protection([snapshotName]);
    assert.ok(
      snapshot.untilMs! < Date.now() + 60_000,
      `the unlocked snapshot's own object goes: ${new Date(snapshot.untilMs!).toISOString()}`,
    );
    // The pack both snapshots share stays retained for the one still locked.
    const keptLock = (await store.protection([`snapshots/${kept.snapshotId}`]))[0].untilMs!;
    const { index } = await loadIndex(owner);
    const keptPacks = [
      ...(
        await snapshotNeeds(
          createBlobReader(owner, index),
          index,
          (
            await findSnapshot(owner, kept.snapshotId)
          ).snapshot.tree,
        )
      ).packs,
    ];
    assert.ok(keptPacks.length >= 2, 'the kept snapshot needs its own pack and the shared one');
    const dates = (await store.protection(keptPacks)).map(({ untilMs }) => untilMs!);
    assert.ok(
      dates.every((untilMs) => untilMs >= keptLock - 1000),
      `no pack of the kept snapshot goes below its lock: ${dates.map((d) => new Date(d).toISOString())} < ${new Date(keptLock).toISOString()}`,
    );
    // The execution granted the shared pack again for the kept snapshot, so the records cover it too.
    const ledger = (await loadRetentionState(owner)).ledger;
    assert.ok(
      keptPacks.every((name) => (ledger.lockOf(name)?.untilMs ?? 0) >= keptLock - 1000),
      'the grants cover what the kept snapshot needs',
    );
    const [status] = await lockStatus({ repo: owner, snapshot: kept.snapshotId });
    assert.deepEqual(status.gaps, [], 'lock status still finds the kept snapshot covered');

    // Two holds share the kept snapshot's objects; releasing one leaves the other's legal holds on.
    await addHold(owner, { snapshot: kept.snapshotId, reason: 'case 1' });
    await addHold(owner, { snapshot: kept.snapshotId, reason: 'case 2' });
    const release = await createRequest({
      repo: owner,
      kind: 'release-hold',
      target: kept.snapshotId,
      reason: 'case 1 closed',
    });
    await submitDecision(owner, signDecision(release.id, 'approve', alice));
    await submitDecision(owner, signDecision(release.id, 'approve', bob));
    assert.equal(
      (await applyToStorage(testOperation(owner, clock), release.id)).released,
      0,
      'case 2 still holds every object',
    );
    assert.ok((await store.protection([`snapshots/${kept.snapshotId}`]))[0].legalHold);
  });
});
