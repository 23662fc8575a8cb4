// Snapshots of hand-made trees, for tests that attack restore with what no backup would write: the
// trees are stored through a blob sink (no check a backup makes), the snapshot signed with the
// repository's own key, as a writer holding a key could.
import { nowIso } from '../core/clock.ts';
import { asSnapshotId, type TreeId } from '../core/ids.ts';
import { sha256Hex } from '../crypto/index.ts';
import { createBlobSink, type BlobSink } from '../engine/blob-sink.ts';
import { findSnapshot, type SnapshotEntry } from '../engine/snapshots.ts';
import type { Operation } from '../governance/operation.ts';
import { loadIndex } from '../repo/index-loader.ts';
import { snapshotName } from '../repo/layout.ts';
import { emptySummary, encodeSnapshot, type Snapshot } from '../repo/snapshot.ts';

/** Runs `build` with a blob sink, then signs and stores a snapshot of the root tree it returns. */
export async function craftSnapshot(
  repo: Operation,
  build: (sink: BlobSink) => Promise<TreeId>,
): Promise<SnapshotEntry> {
  const sink = createBlobSink(repo, (await loadIndex(repo)).index);
  const tree = await build(sink);
  await sink.flush();
  await sink.close();
  const snapshot: Snapshot = {
    time: nowIso(repo.clock),
    host: 'mallory',
    username: 'mallory',
    paths: ['/hostile'],
    tags: [],
    tree,
    summary: emptySummary(),
    retention: null,
    flags: [],
    program: 'crafted by a test',
  };
  const bytes = encodeSnapshot(snapshot, repo.currentEpoch, repo.key.signer);
  const id = asSnapshotId(sha256Hex(bytes));
  await repo.store.put(snapshotName(id), bytes);
  return findSnapshot(repo, id);
}
