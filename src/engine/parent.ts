// The parent snapshot of a backup: the latest one this key wrote from the same host with the same paths. A file
// whose size, mtime, ctime and inode are unchanged reuses the parent's chunk list without being read,
// but only when every one of those chunks is one this key may dedup against.
import type { BlobIndex } from '../repo/blob-index.ts';
import { createBlobReader } from '../repo/blob-reader.ts';
import { decodeTree, type TreeNode } from '../repo/tree.ts';
import type { Repository } from '../repo/repository.ts';
import type { EntryMeta } from '../source/fs/entry-meta.ts';
import { listSnapshots } from './snapshots.ts';
import { openWriterCache, type CachedSnapshot } from './writer-cache.ts';
import { snapshotName } from '../repo/layout.ts';
import type { SnapshotId, TreeId } from '../core/ids.ts';

export interface ParentLookup {
  snapshotId: SnapshotId | undefined;
  /** The parent's node at an absolute path, if there is one. */
  lookup(path: string): Promise<TreeNode | undefined>;
  /** Whether `meta` shows the file unchanged since the parent (size, mtime, ctime, inode). */
  sameMetadata(node: TreeNode, meta: EntryMeta): boolean;
  /** The parent's chunk list when `meta` shows the file unchanged since then and this backup may
   *  dedup against every chunk of it (else the file is read and stored again). */
  unchangedContent(node: TreeNode, meta: EntryMeta): string[] | undefined;
  /** A file's chunk list when this backup may dedup against every chunk of it (a source's carried-over file). */
  reusableContent(node: TreeNode): string[] | undefined;
  /** A file's bytes, from the repository (a full key) or the writer cache (a write-only key, for
   *  files a source kept); undefined when larger than maxBytes or not readable here. */
  readContent(node: TreeNode, maxBytes: number): Promise<Buffer | undefined>;
}

function sameMetadata(node: TreeNode, meta: EntryMeta): boolean {
  return (
    node.type === 'file' &&
    !node.flags?.length &&
    node.sizeBytes === meta.sizeBytes &&
    node.mtimeNs === meta.mtimeNs.toString() &&
    node.ctimeNs === meta.ctimeNs.toString() &&
    node.inode === meta.inode.toString() &&
    node.content !== undefined
  );
}

/** The newest cached snapshot whose object is still in the repository. */
async function latestStillStored(
  repo: Repository,
  candidates: CachedSnapshot[],
): Promise<{ id: SnapshotId; tree: TreeId } | undefined> {
  for (const candidate of [...candidates].sort((a, b) => (a.time < b.time ? 1 : -1))) {
    try {
      await repo.store.stat(snapshotName(candidate.id));
      return { id: candidate.id, tree: candidate.tree };
    } catch {
      // forgotten, or never landed: try the one before
    }
  }
  return undefined;
}

/** No parent: every file is read (a first backup, or --force). */
export const NO_PARENT: ParentLookup = {
  snapshotId: undefined,
  lookup: async () => undefined,
  sameMetadata: () => false,
  unchangedContent: () => undefined,
  reusableContent: () => undefined,
  readContent: async () => undefined,
};
/** Directory listings kept from the parent; the walk is depth-first, so a small window suffices. */
const CACHED_DIRS = 256;

export async function createParentLookup(
  repo: Repository,
  index: BlobIndex,
  source: { host: string; paths: string[] },
): Promise<ParentLookup> {
  const key = [...source.paths].sort().join('\0');
  const sameSource = (snapshot: { host: string; paths: string[] }) =>
    snapshot.host === source.host && [...snapshot.paths].sort().join('\0') === key;
  let parent: { id: SnapshotId; tree: TreeId } | undefined;
  let readBlob: (id: string) => Promise<Buffer | undefined>;
  if (repo.key.role === 'full') {
    // Only this key's own snapshots: another key's (a write-only key on a host that is not trusted)
    // could name chunks under paths, or a source's cursor, that this backup would then carry over unread.
    const entry = (await listSnapshots(repo))
      .filter(({ snapshot, signerKeyId }) => signerKeyId === repo.key.signer.keyId && sameSource(snapshot))
      .at(-1);
    parent = entry && { id: entry.id, tree: entry.snapshot.tree };
    const reader = createBlobReader(repo, index);
    readBlob = (id) => reader.readBlob(Buffer.from(id, 'hex'));
  } else {
    // A write-only key reads its own earlier trees (and the files a source kept) from its local cache (writer-cache.ts).
    const cache = openWriterCache(repo);
    if (!cache) return NO_PARENT;
    parent = await latestStillStored(repo, cache.snapshots().filter(sameSource));
    readBlob = async (id) => cache.blob(id);
  }
  const readTreeBytes = (treeId: TreeId) => readBlob(treeId);
  if (!parent) return NO_PARENT;
  const root = parent.tree;
  const dirs = new Map<string, Promise<Map<string, TreeNode> | undefined>>();

  const readDir = async (treeId: TreeId): Promise<Map<string, TreeNode> | undefined> => {
    const bytes = await readTreeBytes(treeId);
    return bytes && new Map(decodeTree(bytes, treeId).nodes.map((node) => [node.name, node]));
  };

  const dirNodes = (dir: string): Promise<Map<string, TreeNode> | undefined> => {
    const cached = dirs.get(dir);
    if (cached) return cached;
    const loading = (async () => {
      if (dir === '/') return readDir(root);
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
    sameMetadata,
    unchangedContent(node, meta) {
      if (!sameMetadata(node, meta)) return undefined;
      return node.content!.every((id) => index.hasTrusted(Buffer.from(id, 'hex'))) ? node.content : undefined;
    },
    reusableContent(node) {
      if (node.type !== 'file' || node.flags?.length || node.content === undefined) return undefined;
      return node.content.every((id) => index.hasTrusted(Buffer.from(id, 'hex'))) ? node.content : undefined;
    },
    async readContent(node, maxBytes) {
      if (node.type !== 'file' || node.content === undefined || node.sizeBytes > maxBytes) return undefined;
      const parts: Buffer[] = [];
      try {
        for (const id of node.content) {
          const part = await readBlob(id);
          if (!part) return undefined;
          parts.push(part);
        }
      } catch {
        return undefined; // unreadable: the source reads the live data instead
      }
      const bytes = Buffer.concat(parts);
      return bytes.length === node.sizeBytes ? bytes : undefined;
    },
  };
}
