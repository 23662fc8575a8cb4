// Red team: `amber request apply` (and the full-key approval that completes a quorum) grants again
// what the unlocked snapshot X shares with snapshots still locked. Which snapshots are "still locked"
// was judged by retentionBaseMs — the guarded clock's time that moving the clock FORWARD raises — so
// an owner running `faketime -f +400d amber request apply X` saw every other lock as over, granted
// nothing again, and the cap on X's grants left the packs that Y (locked, never unlocked) reused
// without a lock: through a vault a maintainer condemned and deleted them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyToStorage } from '../../src/protection/storage-effects.ts';
import { loadIndex } from '../../src/repo/index-loader.ts';
import { createBlobReader } from '../../src/repo/blob-reader.ts';
import { snapshotNeeds } from '../../src/engine/snapshot-objects.ts';
import { findSnapshot } from '../../src/engine/snapshots.ts';
import { testOperation } from '../../src/testing/operation.ts';
import { unlockScenario } from './unlock-scenario.ts';

const DAY = 86_400_000;

test('vault: request apply with the clock moved forward does not leave the packs a still-locked snapshot shares unlocked', async (t) => {
  const { owner, x, y, request, maintainerDeletesWhatItCan, yDamaged } = await unlockScenario(t, 'rt-regrant-forward');
  // The owner's host with its wall clock moved 400 days forward: the guarded clock no longer trusts it
  // for deletions (deletionNowMs stays at the last trusted time), but retentionBaseMs follows it.
  const forward = { retentionBaseMs: () => Date.now() + 400 * DAY, deletionNowMs: () => Date.now() };
  await applyToStorage(testOperation(owner, forward), request.id);

  const { index } = await loadIndex(owner);
  const yPacks = (
    await snapshotNeeds(createBlobReader(owner, index), index, (await findSnapshot(owner, y.snapshotId)).snapshot.tree)
  ).packs;
  const deleted = await maintainerDeletesWhatItCan();
  // X's own packs may go (the quorum unlocked X); none that Y needs.
  assert.deepEqual(
    { deleted: deleted.filter((name) => yPacks.has(name)), yDamaged: await yDamaged() },
    { deleted: [], yDamaged: false },
    `snapshot ${y.snapshotId.slice(0, 8)}, locked for 30 days and never unlocked, lost packs through a forward-clock apply of the unlock of ${x.snapshotId.slice(0, 8)}`,
  );
});
