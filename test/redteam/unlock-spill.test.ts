// Red team: an approved unlock of snapshot X caps every entry of X's grants, including packs that a
// later snapshot Y reused without granting them (X's lock already covered them). Until someone runs
// `amber request apply` (documented as what brings *S3* in line; nothing runs it on a vault), the
// vault judges those packs expired: a maintainer with the full key condemns and deletes them, and Y —
// still locked, never unlocked by anyone — no longer restores.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unlockScenario } from './unlock-scenario.ts';

test('vault: approving the unlock of X lets a maintainer delete the packs that Y (still locked) needs', async (t) => {
  const { x, y, maintainerDeletesWhatItCan, yDamaged } = await unlockScenario(t, 'rt-unlock-spill');
  const deleted = await maintainerDeletesWhatItCan();
  assert.deepEqual(
    { deleted, yDamaged: await yDamaged() },
    { deleted: [], yDamaged: false },
    `snapshot ${y.snapshotId.slice(0, 8)}, locked for 30 days and never unlocked, lost packs through the unlock of ${x.snapshotId.slice(0, 8)}`,
  );
});
