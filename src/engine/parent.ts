// The parent snapshot of a backup: the latest one from the same host with the same paths. A file
// whose size, mtime, ctime and inode are unchanged reuses the parent's chunk list without being read,
// but only when every one of those chunks is one this key may dedup against.
import type { BlobIndex } from '../repo/blob-index.ts';
import { createBlobReader } from '../repo/blob-reader.ts';
import { decodeTree, type TreeNode } from '../repo/tree.ts';
import type { Repository } from '../repo/repository.ts';
import type { EntryMeta } from '../source/entry-meta.ts';
import { listSnapshots } from './snapshots.ts';

export interface ParentLookup {
  snapshotId: string | undefined;
  /** The parent's node at an absolute path, if there is one. */
  lookup(path: string): Promise<TreeNode | undefined>;
  /** The parent's chunk list when `meta` shows the file unchanged since then. */
  unchangedContent(node: TreeNode, meta: EntryMeta): string[] | undefined;
}

const NO_PARENT: ParentLookup = { snapshotId: undefined, lookup: async () => undefined, unchangedContent: () => undefined };
/** Directory listings kept from the parent; the walk is depth-first, so a small window suffices. */
const CACHED_DIRS = 256;

export async function createParentLookup(repo: Repository, index: BlobIndex, source: { host: string; paths: string[] }): Promise<ParentLookup> {
  // A write-only key cannot read earlier snapshots (a local metadata cache comes with incremental backups).
  if (repo.key.role !== 'full') return NO_PARENT;
  const key = [...source.paths].sort().join('\0');
  const parent = (await listSnapshots(repo))
    .filter(({ snapshot }) => snapshot.host === source.host && [...snapshot.paths].sort().join('\0') === key)
    .at(-1);
  if (!parent) return NO_PARENT;
  const reader = createBlobReader(repo, index);
  const dirs = new Map<string, Promise<Map<string, TreeNode> | undefined>>();

  const readDir = (treeId: string): Promise<Map<string, TreeNode>> =>
    reader.readBlob(Buffer.from(treeId, 'hex')).then((bytes) => new Map(decodeTree(bytes, treeId).nodes.map((node) => [node.name, node])));

  const dirNodes = (dir: string): Promise<Map<string, TreeNode> | undefined> => {
    const cached = dirs.get(dir);
    if (cached) return cached;
    const loading = (async () => {
      if (dir === '/') return readDir(parent.snapshot.tree);
      const up = await dirNodes(dir.slice(0, dir.lastIndexOf('/')) || '/');
      const node = up?.get(dir.slice(dir.lastIndexOf('/') + 1));
      return node?.type === 'dir' && node.subtree ? readDir(node.subtree) : undefined;
    })().catch(() => undefined);
    dirs.set(dir, loading);
    if (dirs.size > CACHED_DIRS) dirs.delete(dirs.keys().next().value!);
    return loading;
  };

  return {
    snapshotId: parent.id,
    async lookup(path) {
      const dir = path.slice(0, path.lastIndexOf('/')) || '/';
      return (await dirNodes(dir))?.get(path.slice(path.lastIndexOf('/') + 1));
    },
    unchangedContent(node, meta) {
      const same = node.type === 'file' && !node.flags?.length && node.sizeBytes === meta.sizeBytes &&
        node.mtimeNs === meta.mtimeNs.toString() && node.ctimeNs === meta.ctimeNs.toString() &&
        node.inode === meta.inode.toString() && node.content !== undefined;
      if (!same) return undefined;
      return node.content!.every((id) => index.hasTrusted(Buffer.from(id, 'hex'))) ? node.content : undefined;
    },
  };
}
