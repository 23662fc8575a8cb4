// Attacks on the audit log, on a real repository on disk: each kind of tampering is caught and the
// first bad entry named; a clean log verifies; racing writers fork the log for one step, never corrupt it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { systemClock } from '../core/clock.ts';
import { openRepository, openRepositoryView } from '../repo/repository.ts';
import { createFsStore } from '../storage/fs/fs-store.ts';
import { addKey, revokeKey } from '../protection/key-admin.ts';
import { putAuditEntry, type AuditEntry } from '../repo/audit-records.ts';
import { generateSigningKeyPair } from '../crypto/index.ts';
import { keyIdOf } from '../repo/signed-record.ts';
import {
  alterObjectFile,
  createScratchRepo,
  liftAttributes,
  listNames,
  openTestRepo,
  seededBytes,
} from '../testing/repo-fixture.ts';
import { verify } from '../engine/verify.ts';
import { appendAudit, readAuditLog, verifyAudit, writeCheckpoint } from './audit-log.ts';
import { backup } from '../engine/backup.ts';
import { addHold } from '../protection/holds.ts';
import { extendLock } from '../protection/locks.ts';
import { setPolicy } from '../protection/policy-admin.ts';
import { testOperation } from '../testing/operation.ts';
import type { Operation } from './operation.ts';

const DAY = 86_400_000;

/** A repository whose log has: init-less backup, hold, lock extend, policy set, then a checkpoint and one more entry. */
async function loggedRepo(t: { after(fn: () => unknown): void }, label: string) {
  const { dir, repoPath, owner } = await createScratchRepo(t, label);
  owner.actor = 'alice@test';
  const source = join(dir, 'source');
  await fs.mkdir(source);
  await fs.writeFile(join(source, 'a.bin'), seededBytes(100_000, label));
  const first = await backup({ repo: owner, paths: [source], retainMs: 60_000 });
  await addHold(owner, { snapshot: first.snapshotId, reason: 'case 7' });
  await extendLock({ repo: owner, snapshot: first.snapshotId, untilMs: Date.now() + 2 * DAY });
  await setPolicy(owner, { minRetentionMs: 1000 });
  const checkpoint = await writeCheckpoint(owner);
  await appendAudit(owner, { action: 'test.after-checkpoint', target: 'x', details: {} });
  return { dir, repoPath, owner, checkpoint, names: await listNames(owner.store, 'audit/') };
}

const entryPath = (repoPath: string, name: string) => join(repoPath, name);

async function removeObject(repoPath: string, name: string): Promise<void> {
  await liftAttributes(join(repoPath, 'audit'));
  await fs.rm(join(repoPath, name));
}

async function writer(repoPath: string, owner: Operation): Promise<{ repo: Operation; keyId: string }> {
  const added = await addKey(owner, { passphrase: 'writer pass', role: 'write-only', kdfLogN: 10 });
  return {
    repo: testOperation(
      await openRepository({ store: createFsStore(repoPath), passphrase: 'writer pass', clock: systemClock }),
    ),
    keyId: added.keyId,
  };
}

test('a clean log verifies without a passphrase and lists every operation in order, signed by its actor', async (t) => {
  const { repoPath, checkpoint } = await loggedRepo(t, 'audit-clean');
  const view = await openRepositoryView(createFsStore(repoPath));
  const log = await readAuditLog(view);
  assert.deepEqual(
    log.entries.map(({ entry }) => entry.action),
    ['backup', 'hold.add', 'lock.extend', 'policy.set', 'test.after-checkpoint'],
  );
  assert.deepEqual(
    log.entries.map(({ entry }) => entry.seq),
    [1, 2, 3, 4, 5],
  );
  assert.ok(log.entries.every(({ entry }) => entry.actor === 'alice@test'));
  const backupEntry = log.entries[0].entry;
  assert.equal(backupEntry.details.objects, 5);
  assert.match(String(backupEntry.details.merkleRoot), /^[0-9a-f]{64}$/);
  const result = await verifyAudit(view);
  assert.deepEqual(result.problems, []);
  assert.equal(result.heads.length, 1);
  assert.equal(checkpoint.seq, 4);
  // Every operation of the full key seals the log, the last entry included.
  assert.equal(result.checkpoint?.seq, 5);
  assert.equal(result.checkpoint?.entries, 5);
});

test('an edited entry is caught and named as the first bad entry', async (t) => {
  const { repoPath, names } = await loggedRepo(t, 'audit-edit');
  // Change "case 7" into "case 8" in the hold entry's plaintext payload.
  await alterObjectFile(entryPath(repoPath, names[1]), (bytes) =>
    Buffer.from(bytes.toString('latin1').replace('case 7', 'case 8'), 'latin1'),
  );
  const result = await verifyAudit(await openRepositoryView(createFsStore(repoPath)));
  assert.equal(result.firstBad?.name, names[1]);
  assert.match(result.firstBad!.problem, /does not hash to its name/);
  assert.ok(
    result.problems.some(({ name, problem }) => name === names[2] && /missing/.test(problem)),
    'its successor now follows nothing',
  );
  const { problems } = await verify({ repo: await openTestRepo(repoPath), readDataFraction: 0 });
  assert.ok(
    problems.some(({ object, code }) => object === names[1] && code === 'AUDIT_TAMPERED'),
    'amber verify reports it too',
  );
});

test('a removed entry behind the checkpoint is caught, also when it was the newest before the checkpoint', async (t) => {
  const { repoPath, names } = await loggedRepo(t, 'audit-remove');
  await removeObject(repoPath, names[2]);
  const result = await verifyAudit(await openRepositoryView(createFsStore(repoPath)));
  assert.equal(result.firstBad?.seq, 4);
  assert.ok(
    result.problems.some(({ problem }) => /counts 5 entries behind it, 2 found/.test(problem)),
    JSON.stringify(result.problems),
  );

  const again = await loggedRepo(t, 'audit-truncate');
  // Truncation: the checkpointed head and everything after it removed.
  await removeObject(again.repoPath, again.names[4]);
  await removeObject(again.repoPath, again.names[3]);
  const truncated = await verifyAudit(await openRepositoryView(createFsStore(again.repoPath)));
  assert.ok(
    truncated.problems.some(({ problem }) => /names head .* which is missing \(log truncated\)/.test(problem)),
    JSON.stringify(truncated.problems),
  );
});

test('entries inserted or reordered by a holder of a writer key are caught', async (t) => {
  const { repoPath, owner, names } = await loggedRepo(t, 'audit-insert');
  const { repo: hostile } = await writer(repoPath, owner);
  const log = await readAuditLog(owner);
  const base = (seq: number, previous: string[]): AuditEntry => ({
    repository: owner.config.repositoryId,
    seq,
    time: new Date().toISOString(),
    actor: 'mallory',
    action: 'backup',
    target: 'fake',
    details: {},
    previous,
  });
  // Inserted behind the checkpoint: a sibling of entry 3, hung off entry 2.
  const inserted = await putAuditEntry(hostile.store, base(3, [log.entries[1].hash]), hostile.key.signer);
  // Reordered: claims to be entry 2 while following entry 5.
  const reordered = await putAuditEntry(hostile.store, base(2, [log.entries[4].hash]), hostile.key.signer);
  const result = await verifyAudit(await openRepositoryView(createFsStore(repoPath)));
  const about = (name: string) =>
    result.problems
      .filter((problem) => problem.name === name)
      .map(({ problem }) => problem)
      .join('; ');
  // Adding the writer's key was entry 6, sealed by checkpoint 6.
  assert.match(about(inserted.name), /not part of the log signed at checkpoint 6/);
  assert.match(about(reordered.name), /has sequence number 2 but follows entry 5/);
  assert.equal(result.firstBad?.name, reordered.name);
  assert.ok(
    names.every((name) => about(name) === ''),
    'the honest entries are not blamed',
  );
});

test('forged entries (unknown key) are ignored and reported apart; entries by a key after its revocation are caught', async (t) => {
  const { repoPath, owner } = await loggedRepo(t, 'audit-forge');
  const stranger = generateSigningKeyPair();
  const strangerSigner = { ...stranger, keyId: keyIdOf(stranger.publicKey) };
  const log = await readAuditLog(owner);
  const head = log.entries.at(-1)!;
  const forged = await putAuditEntry(
    owner.store,
    {
      repository: owner.config.repositoryId,
      seq: 6,
      time: new Date().toISOString(),
      actor: 'alice@test',
      action: 'prune',
      target: 'x',
      details: {},
      previous: [head.hash],
    },
    strangerSigner,
  );
  let result = await verifyAudit(await openRepositoryView(createFsStore(repoPath)));
  // No key with the authority wrote it: not part of the log, so the log is not tampered with.
  assert.deepEqual(result.problems, []);
  assert.deepEqual(
    result.ignored.map(({ name }) => name),
    [forged.name],
  );
  assert.match(result.ignored[0].problem, /not signed by a key with the authority/);
  await removeObject(repoPath, forged.name);

  const { repo: laptop, keyId } = await writer(repoPath, owner);
  await appendAudit(laptop, { action: 'backup', target: 'before revocation', details: {} });
  await revokeKey(owner, keyId, { reason: 'stolen' });
  await appendAudit(owner, { action: 'key.revoke', target: keyId, details: {} });
  const late = await appendAudit(laptop, { action: 'backup', target: 'after revocation', details: {} });
  const other = await appendAudit(owner, { action: 'test', target: 'y', details: { repository: 'elsewhere' } });
  result = await verifyAudit(await openRepositoryView(createFsStore(repoPath)));
  assert.deepEqual(
    result.problems.map(({ name, problem }) => [name, /after its revocation/.test(problem)]),
    [[late.name, true]],
  );
  assert.equal(other.entry.repository, owner.config.repositoryId);
});

test('two writers appending at once fork the log for one step; the next append merges it and it verifies', async (t) => {
  const { repoPath, owner } = await createScratchRepo(t, 'audit-race');
  const { repo: laptop } = await writer(repoPath, owner); // entry 1: key.add
  await appendAudit(owner, { action: 'init', target: 'r', details: {} });
  const [a, b] = await Promise.all([
    appendAudit(owner, { action: 'backup', target: 'from owner', details: {} }),
    appendAudit(laptop, { action: 'backup', target: 'from laptop', details: {} }),
  ]);
  assert.equal(a.entry.seq, 3);
  assert.equal(b.entry.seq, 3);
  let result = await verifyAudit(owner);
  assert.deepEqual(
    result.problems,
    [],
    "the owner's checkpoint at level 2 may have missed the laptop's entry: a race, not tampering",
  );
  assert.equal(result.heads.length, 2, 'a fork, not a lost entry');
  const merged = await appendAudit(laptop, { action: 'backup', target: 'next', details: {} });
  assert.deepEqual(merged.entry.previous, [a.hash, b.hash].sort());
  assert.equal(merged.entry.seq, 4);
  await writeCheckpoint(owner);
  result = await verifyAudit(owner);
  assert.deepEqual(result.problems, []);
  assert.equal(result.heads.length, 1);
  assert.equal(result.checkpoint?.entries, 5);
});

test("an entry at the checkpoint's own level that the checkpoint missed is a race, merged by the next append", async (t) => {
  const { repoPath, owner } = await createScratchRepo(t, 'audit-top-race');
  const { repo: laptop } = await writer(repoPath, owner); // entry 1: key.add
  const root = await appendAudit(owner, { action: 'init', target: 'r', details: {} });
  await appendAudit(owner, { action: 'backup', target: 'a', details: {} }); // its checkpoint (level 3) sees only this
  const raced = await putAuditEntry(
    laptop.store,
    {
      repository: owner.config.repositoryId,
      seq: 3,
      time: new Date().toISOString(),
      actor: 'laptop',
      action: 'backup',
      target: 'b',
      details: {},
      previous: [root.hash],
    },
    laptop.key.signer,
  );
  assert.equal(
    (await readAuditLog(owner)).checkpoints.at(-1)?.checkpoint.entries,
    3,
    "the checkpoint missed the laptop's entry",
  );
  assert.deepEqual((await verifyAudit(owner)).problems, []);
  const merged = await appendAudit(owner, { action: 'backup', target: 'c', details: {} });
  assert.ok(merged.entry.previous.includes(raced.hash));
  const result = await verifyAudit(owner);
  assert.deepEqual(result.problems, []);
  assert.equal(result.checkpoint?.entries, 5);
});

test('a full key seals each operation from the checkpoint before it, reading no entry, and the count stays exact', async (t) => {
  const { owner } = await createScratchRepo(t, 'audit-incremental-checkpoint');
  const LENGTH = 40; // more than the window of newest entries an append reads to find the heads
  for (let i = 0; i < LENGTH - 1; i++) await appendAudit(owner, { action: 'test', target: String(i), details: {} });
  const reads: string[] = [];
  const store = {
    ...owner.store,
    get: (...args: Parameters<typeof owner.store.get>) => {
      reads.push(args[0]);
      return owner.store.get(...args);
    },
  };
  await appendAudit({ ...owner, store }, { action: 'test', target: 'last', details: {} });
  const entryReads = reads.filter((name) => name.startsWith('audit/'));
  assert.ok(entryReads.length <= 20, `an append and its seal read ${entryReads.length} of ${LENGTH} entries`);
  const { checkpoints } = await readAuditLog(owner);
  assert.deepEqual(
    checkpoints.map(({ checkpoint }) => checkpoint.entries),
    Array.from({ length: LENGTH }, (_, i) => i + 1),
  );
  const result = await verifyAudit(owner);
  assert.deepEqual(result.problems, []);
  assert.equal(result.checkpoint?.entries, LENGTH);
});

test('an unmerged fork behind the last checkpoint is reported', async (t) => {
  const { repoPath, owner } = await createScratchRepo(t, 'audit-fork');
  const { repo: laptop } = await writer(repoPath, owner); // entry 1: key.add
  const root = await appendAudit(owner, { action: 'init', target: 'r', details: {} });
  await appendAudit(owner, { action: 'backup', target: 'a', details: {} });
  await appendAudit(owner, { action: 'backup', target: 'c', details: {} }); // and checkpoints at level 4
  // A writer's entry that says it saw only the root, stored after the checkpoint at level 4: it claims
  // a place in history the checkpoint sealed without it. (At the checkpoint's own level such an entry
  // would be a fork at the top, which concurrent clients make and the next append merges.)
  const late = await putAuditEntry(
    laptop.store,
    {
      repository: owner.config.repositoryId,
      seq: 3,
      time: new Date().toISOString(),
      actor: 'laptop',
      action: 'backup',
      target: 'b',
      details: {},
      previous: [root.hash],
    },
    laptop.key.signer,
  );
  const result = await verifyAudit(owner);
  assert.deepEqual(
    result.problems.map(({ name }) => name),
    [late.name],
  );
  assert.match(result.problems[0].problem, /fork never merged/);
});

test('a full key checkpoints the log after each of its operations; a writer never signs one', async (t) => {
  const { repoPath, owner } = await createScratchRepo(t, 'audit-auto-checkpoint');
  const { repo: laptop } = await writer(repoPath, owner); // the owner's key.add: entry 1, sealed
  for (let i = 0; i < 5; i++) await appendAudit(laptop, { action: 'backup', target: String(i), details: {} });
  assert.equal((await readAuditLog(owner)).checkpoints.length, 1);
  await appendAudit(owner, { action: 'test', target: 'owner', details: {} });
  const { checkpoints } = await readAuditLog(owner);
  assert.deepEqual(
    checkpoints.map(({ checkpoint }) => [checkpoint.seq, checkpoint.entries]),
    [
      [1, 1],
      [7, 7],
    ],
  );
  assert.deepEqual((await verifyAudit(owner)).problems, []);
});

test('a forged entry named with a huge sequence number does not push honest entries out of the chain', async (t) => {
  const { owner } = await createScratchRepo(t, 'audit-huge-seq');
  const first = await appendAudit(owner, { action: 'init', target: 'r', details: {} });
  const stranger = generateSigningKeyPair();
  const forged = await putAuditEntry(
    owner.store,
    {
      repository: owner.config.repositoryId,
      seq: 999_999_999,
      time: new Date().toISOString(),
      actor: 'mallory',
      action: 'x',
      target: 'x',
      details: {},
      previous: [first.hash],
    },
    { ...stranger, keyId: keyIdOf(stranger.publicKey) },
  );
  const next = await appendAudit(owner, { action: 'backup', target: 'a', details: {} });
  assert.equal(next.entry.seq, 2);
  assert.deepEqual(next.entry.previous, [first.hash]);
  const result = await verifyAudit(owner);
  assert.deepEqual(result.problems, []);
  assert.deepEqual(
    result.ignored.map(({ name }) => name),
    [forged.name],
  );
});
