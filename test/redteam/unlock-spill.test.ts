// Red team: an approved unlock of snapshot X caps every entry of X's grants, including packs that a
// later snapshot Y reused without granting them (X's lock already covered them). Until someone runs
// `amber request apply` (documented as what brings *S3* in line; nothing runs it on a vault), the
// vault judges those packs expired: a maintainer with the full key condemns and deletes them, and Y —
// still locked, never unlocked by anyone — no longer restores.
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
import { verify } from '../../src/engine/verify.ts';
import { testOperation, testRetentionClock } from '../../src/testing/operation.ts';

const DAY = 86_400_000;

test('vault: approving the unlock of X lets a maintainer delete the packs that Y (still locked) needs', async (t) => {
  const dir = await makeTempDir('rt-unlock-spill');
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

  // The quorum approves unlocking X, and only X.
  const request = await createRequest({ repo: owner, kind: 'unlock', target: x.snapshotId, reason: 'X was a mistake' });
  const approverView = await openRepositoryView(storeFor(token('approver')));
  await submitDecision(
    await approverAuthor(approverView, systemClock, alice, testRetentionClock(systemClock)),
    signDecision(request.id, 'approve', alice),
  );

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
  assert.deepEqual(
    { deleted, yDamaged },
    { deleted: [], yDamaged: false },
    `snapshot ${y.snapshotId.slice(0, 8)}, locked for 30 days and never unlocked, lost packs through the unlock of ${x.snapshotId.slice(0, 8)}`,
  );
});
