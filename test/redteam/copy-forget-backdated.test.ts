// Red team, issue 18: forget at the copy. Since 5584a57 a copied snapshot's time counts for the
// copy's keep rules when it fits when it was copied and when the primary's store received it
// (copiedFrom.receivedAt). Both are the word of whoever owns the primary: its owner key signs a
// snapshot dated two days back, and as root they set its file's time to match. Copied by the next
// run, it became the newest snapshot of that day at the copy, and `forget --keep-daily` there then
// forgot the real backup of that day once its lock at the copy ended: the clean recovery points from
// before a compromise are exactly the ones an attacker wants gone. Fixed: a copy made in a later run
// than the copy of a newer snapshot of its source is "time untrusted" (kept, and outside the keep
// rules), as the primary showed it only after something newer (protection/forget.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { sha256Hex } from '../../src/crypto/index.ts';
import { backup } from '../../src/engine/backup.ts';
import { copySnapshots } from '../../src/engine/copy.ts';
import { operationOn } from '../../src/governance/operation.ts';
import { forget } from '../../src/protection/forget.ts';
import { snapshotName } from '../../src/repo/layout.ts';
import { encodeSnapshot } from '../../src/repo/snapshot.ts';
import { createScratchRepo, createTestRepo, liftAttributes, seededBytes } from '../../src/testing/repo-fixture.ts';

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

test('a snapshot the primary dates into the past after the copy saw newer ones does not push a real one out of the keep rules', async (t) => {
  const { dir, repoPath, owner: primary } = await createScratchRepo(t, 'rt-copy-backdate');
  const source = join(dir, 'src');
  await fs.mkdir(source);
  await fs.writeFile(join(source, 'a.bin'), seededBytes(2_000, 'backdate'));
  const today = await backup({ repo: primary, paths: [source] });
  const twoDaysAgo = Math.floor(Date.now() / DAY_MS) * DAY_MS - 2 * DAY_MS;
  /** A snapshot as if taken at `ms`, its file dated so at the primary's store (root there can). */
  const takenAt = async (ms: number, program: string) => {
    const bytes = encodeSnapshot(
      { ...today.snapshot, time: new Date(ms).toISOString(), program },
      primary.currentEpoch,
      primary.key.signer,
    );
    const id = sha256Hex(bytes);
    await primary.store.put(snapshotName(id as never), bytes);
    await liftAttributes(repoPath);
    await fs.utimes(join(repoPath, 'snapshots', id), ms / 1000, ms / 1000);
    return id;
  };
  await takenAt(twoDaysAgo + HOUR_MS, 'the backup of two days ago');
  const copy = await createTestRepo(join(dir, 'copy'), { copyOf: primary });
  await copySnapshots({ copy, primary, retainMs: 1000 });

  // The primary is compromised: a snapshot of junk, dated late on that same day.
  const junk = await takenAt(twoDaysAgo + 22 * HOUR_MS, 'junk');
  assert.deepEqual(
    (await copySnapshots({ copy, primary, retainMs: 1000 })).copied.map(({ source: id }) => id),
    [junk],
  );

  // Three days on, every lock at the copy has ended; the copy keeps one snapshot a day.
  const later = Date.now() + 3 * DAY_MS;
  const judged = operationOn(copy, { retentionBaseMs: () => later, deletionNowMs: () => later });
  const result = await forget({ repo: judged, keep: { daily: 7 }, dryRun: true });
  const byTime = (ms: number) =>
    [...result.kept, ...result.forgotten].find(({ time }) => time === new Date(ms).toISOString())!;
  assert.deepEqual(
    byTime(twoDaysAgo + HOUR_MS).keptBecause,
    [`policy: daily ${new Date(twoDaysAgo).toISOString().slice(0, 10)}`],
    'the real backup of that day is the one the keep rule keeps',
  );
  assert.match(byTime(twoDaysAgo + 22 * HOUR_MS).keptBecause.join(' '), /time untrusted: .*showed it only later/);
  assert.deepEqual(result.forgotten, []);
});
