// Red team, issue 18: the copy's anchors of the primary's audit log (`audit verify --anchors-from`).
// The attacker owns the primary: its owner key, so they can sign entries and checkpoints, and its
// storage, so they can remove objects. The copy's log is out of their reach.
// - held: removing the newest entries and the checkpoints that sealed them, then writing a
//   consistent replacement, passes the primary's own `audit verify` and fails against the anchors;
// - broke: a branch forked from an early entry, backdated, merged into the current head and sealed by
//   a new checkpoint inserts entries into the history the copy saw; nothing was removed, so both
//   checks passed. Fixed: an entry below the anchored heads' level that is not behind them is
//   reported (governance/audit-anchors.ts);
// - held, no false alarm: a writer that listed the log just before the copy looked and lands at the
//   heads' level (a fork at the top, merged by the next append); an anchor-shaped entry planted in the
//   copy's storage under the primary's key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { backup } from '../../src/engine/backup.ts';
import { copySnapshots } from '../../src/engine/copy.ts';
import { checkAnchors } from '../../src/governance/audit-anchors.ts';
import { appendAudit, headsOf, readAuditLog, verifyAudit, writeCheckpoint } from '../../src/governance/audit-log.ts';
import type { Operation } from '../../src/governance/operation.ts';
import { putAuditEntry, type AuditEntry } from '../../src/repo/audit-records.ts';
import { createScratchRepo, createTestRepo, liftAttributes, seededBytes } from '../../src/testing/repo-fixture.ts';

/** A primary whose log holds a backup and four more entries, and a copy that anchored it. */
async function anchoredPair(t: { after(fn: () => unknown): void }, label: string) {
  const { dir, repoPath, owner: primary } = await createScratchRepo(t, label);
  const source = join(dir, 'src');
  await fs.mkdir(source);
  await fs.writeFile(join(source, 'a.bin'), seededBytes(4_000, label));
  await backup({ repo: primary, paths: [source] });
  for (let n = 0; n < 4; n++) await appendAudit(primary, { action: 'hold.add', target: `hold-${n}`, details: {} });
  const copy = await createTestRepo(join(dir, 'copy'), { copyOf: primary });
  await copySnapshots({ copy, primary });
  return { dir, repoPath, primary, copy };
}

/** An entry signed with the primary's owner key, as its attacker can write one. */
function forge(primary: Operation, fields: Pick<AuditEntry, 'seq' | 'previous' | 'time' | 'action'>) {
  return putAuditEntry(
    primary.store,
    { repository: primary.config.repositoryId, actor: 'root@primary', target: 'forged', details: {}, ...fields },
    primary.key.signer,
  );
}

test('held: the newest entries and their checkpoints removed and rewritten pass audit verify, not the anchors', async (t) => {
  const { repoPath, primary, copy } = await anchoredPair(t, 'rt-anchor-rewrite');
  const log = await readAuditLog(primary);
  const newest = log.entries.at(-1)!;
  await liftAttributes(repoPath);
  await fs.rm(join(repoPath, newest.name));
  for (const { name, checkpoint } of log.checkpoints)
    if (checkpoint.seq >= newest.entry.seq) await fs.rm(join(repoPath, name));
  await appendAudit(primary, { action: 'hold.add', target: 'the rewritten one', details: {} });
  assert.deepEqual((await verifyAudit(primary)).problems, [], 'consistent in itself');
  const anchors = await checkAnchors(primary, copy);
  assert.match(anchors.problems.map(({ problem }) => problem).join('\n'), /is gone/);
});

test('broke: a backdated branch merged into the head and sealed inserts entries into the history the copy saw', async (t) => {
  const { primary, copy } = await anchoredPair(t, 'rt-anchor-insert');
  const log = await readAuditLog(primary);
  const [first] = log.entries;
  // "Key revoked" at seq 2, dated with the first entry: a record of something that never happened then.
  const inserted = await forge(primary, {
    seq: 2,
    time: first.entry.time,
    action: 'key.revoke',
    previous: [first.hash],
  });
  const heads = headsOf((await readAuditLog(primary)).entries);
  await forge(primary, {
    seq: Math.max(...heads.map(({ entry }) => entry.seq)) + 1,
    time: new Date().toISOString(),
    action: 'clock.confirm',
    previous: heads.map(({ hash }) => hash).sort(),
  });
  await writeCheckpoint(primary);
  assert.deepEqual((await verifyAudit(primary)).problems, [], 'nothing removed: consistent in itself');
  const anchors = await checkAnchors(primary, copy);
  assert.equal(anchors.problems.length, 1, JSON.stringify(anchors.problems));
  assert.ok(anchors.problems[0].problem.includes(inserted.name), anchors.problems[0].problem);
});

test('held: a fork at the heads’ level after the copy looked, and an anchor planted at the copy, are no alarm', async (t) => {
  const { primary, copy } = await anchoredPair(t, 'rt-anchor-legit');
  const log = await readAuditLog(primary);
  const newest = log.entries.at(-1)!;
  // A writer that listed the log just before the newest entry was written lands beside it…
  await forge(primary, {
    seq: newest.entry.seq,
    time: new Date().toISOString(),
    action: 'backup',
    previous: newest.entry.previous,
  });
  // …and the next append merges the fork.
  await appendAudit(primary, { action: 'hold.add', target: 'after the fork', details: {} });
  assert.deepEqual((await verifyAudit(primary)).problems, []);

  // Someone with write access to the copy's storage (not its keys) plants an anchor that names an
  // entry the primary never had, signed with the primary's owner key.
  const copyLog = await readAuditLog(copy);
  const copyHead = copyLog.entries.at(-1)!;
  await putAuditEntry(
    copy.store,
    {
      repository: copy.config.repositoryId,
      seq: copyHead.entry.seq + 1,
      time: new Date().toISOString(),
      actor: 'mallory',
      action: 'copy.anchor',
      target: primary.config.repositoryId,
      details: {
        repository: primary.config.repositoryId,
        entries: 1_000_000,
        heads: [`audit/000000000099-${'0'.repeat(64)}`],
      },
      previous: [copyHead.hash],
    },
    primary.key.signer,
  );
  const anchors = await checkAnchors(primary, copy);
  assert.equal(anchors.anchors, 1, 'only the anchor the copy signed counts');
  assert.deepEqual(anchors.problems, []);
});
