// Red team: `amber request apply` (and the full-key approval that completes a quorum) grants again
// what the unlocked snapshot X shares with snapshots still locked. Which snapshots are "still locked"
// was judged by retentionBaseMs — the guarded clock's time that moving the clock FORWARD raises — so
// an owner running `faketime -f +400d amber request apply X` saw every other lock as over, granted
// nothing again, and the cap on X's grants left the packs that Y (locked, never unlocked) reused
// without a lock: through a vault a maintainer condemned and deleted them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { systemClock } from '../../src/core/clock.ts';
import { initRepository, openRepository, openRepositoryView } from '../../src/repo/repository.ts';
import { createHttpStore } from '../../src/storage/http/http-store.ts';
import {
  makeTempDir,
  removeTree,
  seededBytes,
  TEST_PASSPHRASE,
  useTemporaryWriterCache,
} from '../../src/testing/repo-fixture.ts';
import { backup } from '../../src/engine/backup.ts';
import { CONDEMNS, putRecord } from '../../src/repo/retention-records.ts';
import { startVault } from '../../src/vault/server.ts';
import { createToken } from '../../src/vault/tokens.ts';
import { setPolicy } from '../../src/protection/policy-admin.ts';
import { createApproverKey, unlockApproverKey } from '../../src/governance/approver-key.ts';
import { approverAuthor, createRequest, signDecision, submitDecision } from '../../src/protection/approvals.ts';
import { applyToStorage } from '../../src/protection/storage-effects.ts';
import { verify } from '../../src/engine/verify.ts';
import { testOperation, testRetentionClock } from '../../src/testing/operation.ts';
import { loadIndex } from '../../src/repo/index-loader.ts';
import { createBlobReader } from '../../src/repo/blob-reader.ts';
import { snapshotNeeds } from '../../src/engine/snapshot-objects.ts';
import { findSnapshot } from '../../src/engine/snapshots.ts';

const DAY = 86_400_000;

test('vault: request apply with the clock moved forward does not leave the packs a still-locked snapshot shares unlocked', async (t) => {
  const dir = await makeTempDir('rt-regrant-forward');
  useTemporaryWriterCache(dir);
  const dataDir = join(dir, 'data');
  const vault = await startVault({
    dataDir,
    port: 0,
    clock: systemClock,
    retentionClock: testRetentionClock(systemClock),
  });
  t.after(async () => {
    await vault.close();
    await removeTree(dir);
  });
  const token = (role: 'admin' | 'writer' | 'maintainer' | 'reader' | 'approver') =>
    createToken(dataDir, { role, repo: 'team', nowMs: Date.now() }).token;
  const storeFor = (secret: string) => createHttpStore(`${vault.url}/team`, { token: secret, attempts: 1 });
  const adminStore = storeFor(token('admin'));
  await adminStore.createRepository();
  const owner = testOperation(
    await initRepository({ store: adminStore, passphrase: TEST_PASSPHRASE, clock: systemClock, kdfLogN: 10 }),
  );
  const alice = await unlockApproverKey(JSON.stringify((await createApproverKey('pw', 10)).keyFile), 'pw', 'alice');
  await setPolicy(owner, { approvers: [{ name: 'alice', publicKey: alice.publicKey.toString('hex') }], quorum: 1 });

  const source = join(dir, 'src');
  await fs.mkdir(source);
  await fs.writeFile(join(source, 'big.bin'), seededBytes(400_000, 'shared'));
  const writer = testOperation(
    await openRepository({ store: storeFor(token('writer')), passphrase: TEST_PASSPHRASE, clock: systemClock }),
  );
  const x = await backup({ repo: writer, paths: [source], retainMs: 365 * DAY, lockMode: 'governance' });
  await fs.writeFile(join(source, 'small.txt'), 'more');
  const y = await backup({ repo: writer, paths: [source], retainMs: 30 * DAY, lockMode: 'governance' });

  const request = await createRequest({ repo: owner, kind: 'unlock', target: x.snapshotId, reason: 'X was a mistake' });
  const approverView = await openRepositoryView(storeFor(token('approver')));
  await submitDecision(
    await approverAuthor(approverView, systemClock, alice, testRetentionClock(systemClock)),
    signDecision(request.id, 'approve', alice),
  );

  // The owner's host with its wall clock moved 400 days forward: the guarded clock no longer trusts it
  // for deletions (deletionNowMs stays at the last trusted time), but retentionBaseMs follows it.
  const forward = { retentionBaseMs: () => Date.now() + 400 * DAY, deletionNowMs: () => Date.now() };
  await applyToStorage(testOperation(owner, forward), request.id);

  const { index } = await loadIndex(owner);
  const yPacks = (
    await snapshotNeeds(createBlobReader(owner, index), index, (await findSnapshot(owner, y.snapshotId)).snapshot.tree)
  ).packs;
  const maintainer = testOperation(
    await openRepository({ store: storeFor(token('maintainer')), passphrase: TEST_PASSPHRASE, clock: systemClock }),
  );
  const packs = (await fs.readdir(join(dataDir, 'repos/team/data'), { recursive: true }))
    .filter((p) => /\/[0-9a-f]{64}$/.test(p))
    .map((p) => `data/${p}`);
  const deleted: string[] = [];
  for (const name of packs) {
    const stored = await putRecord(maintainer, CONDEMNS, {
      time: new Date().toISOString(),
      graceMs: 0,
      objects: [{ name, sizeBytes: 1 }],
    }).then(
      () => true,
      () => false,
    );
    if (!stored) continue;
    await new Promise((resolve) => setTimeout(resolve, 20));
    await maintainer.store.deleteExpired(name).then(
      () => deleted.push(name),
      () => undefined,
    );
  }
  const checked = await verify({
    repo: testOperation(
      await openRepository({ store: storeFor(token('reader')), passphrase: TEST_PASSPHRASE, clock: systemClock }),
    ),
    readDataFraction: 0,
  });
  const yDamaged = checked.problems.some(({ message }) => message.includes(y.snapshotId.slice(0, 8)));
  // X's own packs may go (the quorum unlocked X); none that Y needs.
  assert.deepEqual(
    { deleted: deleted.filter((name) => yPacks.has(name)), yDamaged },
    { deleted: [], yDamaged: false },
    `snapshot ${y.snapshotId.slice(0, 8)}, locked for 30 days and never unlocked, lost packs through a forward-clock apply of the unlock of ${x.snapshotId.slice(0, 8)}`,
  );
});
