// Which objects a snapshot needs: itself, the packs of every tree and chunk it reaches, and the
// metadata every reader needs (config, keys, epochs, revocations, index objects, the policy chain).
import type { BlobIndex } from '../repo/blob-index.ts';
import type { BlobReader } from '../repo/blob-reader.ts';
import { CONFIG_NAME, PREFIX, packName, snapshotName, type PrefixKind } from '../repo/layout.ts';
import type { Repository } from '../repo/repository.ts';
import type { SnapshotId, TreeId } from '../core/ids.ts';
import { readTree } from './tree-walk.ts';

export interface SnapshotNeeds {
  /** Packs holding the snapshot's trees and chunks. */
  packs: Set<string>;
  /** With `blobsByPack`, which blobs led to each pack (the index keeps one copy of a blob that
   *  several writers stored; lock status then checks the others). */
  blobsByPack?: Map<string, string[]>;
  /** Blobs no index entry locates (the snapshot is damaged). */
  unlocated: string[];
}

/**
 * Adds to `needs` the packs below `treeId`. Trees in `seen` are skipped, so one set shared across
 * snapshots reads each tree once (prune); a fresh one per snapshot gives that snapshot's own packs.
 */
export async function collectPacks(
  reader: BlobReader,
  index: BlobIndex,
  treeId: TreeId,
  seen: Set<TreeId>,
  needs: SnapshotNeeds,
): Promise<void> {
  if (seen.has(treeId)) return;
  seen.add(treeId);
  const locate = (id: string) => {
    const packId = index.packOf(Buffer.from(id, 'hex'));
    if (packId === undefined) needs.unlocated.push(id);
    else {
      const name = packName(packId);
      needs.packs.add(name);
      if (needs.blobsByPack) needs.blobsByPack.set(name, [...(needs.blobsByPack.get(name) ?? []), id]);
    }
  };
  locate(treeId);
  if (seen.size % 64 === 0) await new Promise((wake) => setImmediate(wake));
  for (const node of (await readTree(reader, treeId)).nodes) {
    for (const id of node.content ?? []) locate(id);
    if (node.subtree) await collectPacks(reader, index, node.subtree, seen, needs);
  }
}

export async function snapshotNeeds(
  reader: BlobReader,
  index: BlobIndex,
  rootTree: TreeId,
  withBlobs = false,
): Promise<SnapshotNeeds> {
  const needs: SnapshotNeeds = { packs: new Set(), unlocated: [], ...(withBlobs ? { blobsByPack: new Map() } : {}) };
  await collectPacks(reader, index, rootTree, new Set(), needs);
  return needs;
}

/** Records every snapshot depends on; records that only add retention are not among them. */
const NEEDED_METADATA: readonly PrefixKind[] = ['keys', 'epochs', 'revocations', 'index', 'policies'];

/**
 * `config` and the objects under `prefixes`, with when the store received each (a snapshot needs only
 * the metadata that existed when it was committed).
 */
export async function sharedMetadata(
  repo: Repository,
  prefixes: readonly PrefixKind[] = NEEDED_METADATA,
): Promise<{ name: string; writtenMs?: number }[]> {
  const found: { name: string; writtenMs?: number }[] = [{ name: CONFIG_NAME }];
  for (const prefix of prefixes) {
    for await (const { name, writtenMs } of repo.store.list(PREFIX[prefix])) found.push({ name, writtenMs });
  }
  return found.sort((a, b) => (a.name < b.name ? -1 : 1));
}

export const snapshotObject = (id: SnapshotId): string => snapshotName(id);
