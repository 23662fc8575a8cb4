// Red team, issue 18: what the copy takes from the primary, and what it records of where it came
// from. Both held:
// - a write-only key revoked at the primary (stolen from a backup host) still writes snapshots with
//   a session it kept open: they are not in its revocation's accepted objects, so the copy ignores
//   and reports them, and copies what the key wrote before;
// - a snapshot at the primary that claims to be a copy already (its own `copiedFrom` naming the
//   primary and another of its snapshots): the copy records its own provenance on top (the primary,
//   this snapshot, its signer), keeps the claim only nested inside, and still copies the snapshot
//   the claim names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { systemClock } from '../../src/core/clock.ts';
import { sha256Hex } from '../../src/crypto/index.ts';
import { backup } from '../../src/engine/backup.ts';
import { copiedFromOf, copySnapshots } from '../../src/engine/copy.ts';
import { listSnapshots } from '../../src/engine/snapshots.ts';
import { addKey, revokeKey } from '../../src/protection/key-admin.ts';
import { snapshotName } from '../../src/repo/layout.ts';
import { openRepository } from '../../src/repo/repository.ts';
import { encodeSnapshot } from '../../src/repo/snapshot.ts';
import { createFsStore } from '../../src/storage/fs/fs-store.ts';
import { testOperation } from '../../src/testing/operation.ts';
import { createScratchRepo, createTestRepo, seededBytes } from '../../src/testing/repo-fixture.ts';

test('held: snapshots a revoked writer key writes after its revocation are not copied', async (t) => {
  const { dir, repoPath, owner: primary } = await createScratchRepo(t, 'rt-copy-revoked');
  const source = join(dir, 'src');
  await fs.mkdir(source);
  await fs.writeFile(join(source, 'a.bin'), seededBytes(2_000, 'revoked-a'));
  const added = await addKey(primary, { passphrase: 'db1 writer', role: 'write-only', kdfLogN: 10 });
  const writer = testOperation(
    await openRepository({ store: createFsStore(repoPath), passphrase: 'db1 writer', clock: systemClock }),
  );
  const before = await backup({ repo: writer, paths: [source] });
  await revokeKey(primary, added.keyId, { reason: 'db1 stolen' });
  await fs.writeFile(join(source, 'b.bin'), seededBytes(2_000, 'revoked-b'));
  const afterRevocation = await backup({ repo: writer, paths: [source] });

  const copy = await createTestRepo(join(dir, 'copy'), { copyOf: primary });
  const result = await copySnapshots({ copy, primary: testOperation(await reopen(repoPath)) });
  assert.deepEqual(
    result.copied.map(({ source: id }) => id),
    [before.snapshotId],
  );
  assert.deepEqual(
    result.ignored.map(({ name }) => name),
    [snapshotName(afterRevocation.snapshotId)],
  );
});

const reopen = (path: string) =>
  openRepository({ store: createFsStore(path), passphrase: 'correct horse battery staple', clock: systemClock });

test('held: a snapshot that claims to be a copy of another gets the copy’s own provenance on top', async (t) => {
  const { dir, owner: primary } = await createScratchRepo(t, 'rt-copy-claims');
  const source = join(dir, 'src');
  await fs.mkdir(source);
  await fs.writeFile(join(source, 'a.bin'), seededBytes(2_000, 'claims'));
  const real = await backup({ repo: primary, paths: [source] });
  const claim = {
    repository: primary.config.repositoryId,
    snapshot: real.snapshotId,
    signer: 'owner',
    location: '/somewhere/else',
    copiedAt: '2001-01-01T00:00:00.000Z',
  };
  const bytes = encodeSnapshot(
    { ...real.snapshot, time: '2001-01-01T00:00:00.000Z', copiedFrom: claim },
    primary.currentEpoch,
    primary.key.signer,
  );
  const claiming = sha256Hex(bytes);
  await primary.store.put(snapshotName(claiming as never), bytes);

  const copy = await createTestRepo(join(dir, 'copy'), { copyOf: primary });
  const result = await copySnapshots({ copy, primary });
  assert.deepEqual(result.copied.map(({ source: id }) => id).sort(), [claiming, real.snapshotId].sort());
  const entries = await listSnapshots(copy);
  const copyOfClaiming = entries.find((entry) => copiedFromOf(entry.snapshot)?.snapshot === claiming)!;
  const from = copiedFromOf(copyOfClaiming.snapshot)!;
  assert.equal(from.repository, primary.config.repositoryId);
  assert.equal(from.signer, 'owner');
  assert.equal(from.signerKeyId, primary.authority.ownerKeyId);
  assert.equal(from.location, primary.store.location);
  assert.deepEqual(from.copiedFrom, claim, 'the claim is kept, nested, as the source said it');
  // A second run finds both held: the claim made no other snapshot count as copied.
  const again = await copySnapshots({ copy, primary });
  assert.equal(again.copied.length, 0);
  assert.equal(again.alreadyCopied, 2);
});
