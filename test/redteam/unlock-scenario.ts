// The scene both unlock attacks play on: a vault on 127.0.0.1, an owner with one approver (quorum 1),
// a writer whose snapshot X (locked a year) and later snapshot Y (locked 30 days) share packs, and the
// approved request that unlocks X alone. Then a maintainer tries to condemn and delete every pack, and
// verify says whether Y still has what it needs.
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
type Role = 'admin' | 'writer' | 'maintainer' | 'reader' | 'approver';

export async function unlockScenario(t: { after(fn: () => unknown): void }, label: string) {
  const dir = await makeTempDir(label);
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
  const token = (role: Role) => createToken(dataDir, { role, repo: 'team', nowMs: Date.now() }).token;
  const storeFor = (secret: string) => createHttpStore(`${vault.url}/team`, { token: secret, attempts: 1 });
  const openAs = async (role: Role) =>
    testOperation(
      await openRepository({ store: storeFor(token(role)), passphrase: TEST_PASSPHRASE, clock: systemClock }),
    );
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
  const writer = await openAs('writer');
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

  /** A maintainer condemns each pack and deletes it where the vault lets it; the names it deleted. */
  const maintainerDeletesWhatItCan = async (): Promise<string[]> => {
    const maintainer = await openAs('maintainer');
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
    return deleted;
  };

  /** Whether verify, as a reader, finds snapshot Y damaged. */
  const yDamaged = async (): Promise<boolean> => {
    const checked = await verify({ repo: await openAs('reader'), readDataFraction: 0 });
    return checked.problems.some(({ message }) => message.includes(y.snapshotId.slice(0, 8)));
  };

  return { owner, x, y, request, maintainerDeletesWhatItCan, yDamaged };
}
