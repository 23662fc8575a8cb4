// `amber stats`: how much the snapshots hold and what it costs to keep them. Per snapshot its
// restore size (what a restore writes) and its lock; per host and for the repository the restore
// size of all their snapshots, the raw data those need once deduplicated (each blob counted once)
// and what that takes stored (compressed and encrypted). Trees shared between snapshots are read
// once; the set of blobs seen is held in memory (about 100 bytes a blob).
import type { SnapshotId, TreeId } from '../core/ids.ts';
import type { BlobIndex } from '../repo/blob-index.ts';
import type { BlobReader } from '../repo/blob-reader.ts';
import type { SnapshotEntry } from './snapshots.ts';
import { readTree } from './tree-walk.ts';

export interface SnapshotStats {
  id: SnapshotId;
  time: string;
  host: string;
  files: number;
  restoreBytes: number;
  lockedUntil: string | null;
  lockMode: string | null;
}

export interface GroupStats {
  snapshots: number;
  restoreBytes: number;
  /** Each chunk of file data the snapshots need, counted once: what deduplication leaves. */
  rawBytes: number;
  /** Their directory trees (metadata), counted once. */
  treeBytes: number;
  /** Data and trees as stored: compressed and encrypted. */
  storedBytes: number;
  blobs: number;
}

export interface Stats {
  snapshots: SnapshotStats[];
  hosts: Record<string, GroupStats>;
  repository: GroupStats & { dedupRatio: number | null };
  /** Snapshots by the day their lock ends, latest last. */
  locks: { until: string; mode: string; snapshots: number }[];
}

interface TreeSum {
  files: number;
  bytes: number;
  blobs: string[];
  trees: string[];
}

export async function collectStats(reader: BlobReader, index: BlobIndex, entries: SnapshotEntry[]): Promise<Stats> {
  const sums = new Map<TreeId, Promise<TreeSum>>();
  const sumOf = (tree: TreeId): Promise<TreeSum> => {
    let sum = sums.get(tree);
    if (!sum) {
      sum = (async () => {
        const total: TreeSum = { files: 0, bytes: 0, blobs: [], trees: [tree] };
        for (const node of (await readTree(reader, tree)).nodes) {
          if (node.type === 'file') {
            total.files += 1;
            total.bytes += node.sizeBytes;
            total.blobs.push(...(node.content ?? []));
          } else if (node.type === 'dir' && node.subtree) {
            const below = await sumOf(node.subtree);
            total.files += below.files;
            total.bytes += below.bytes;
            total.blobs.push(...below.blobs);
            total.trees.push(...below.trees);
          }
        }
        return total;
      })();
      sums.set(tree, sum);
    }
    return sum;
  };
  const group = () => ({ snapshots: 0, restoreBytes: 0, seen: new Set<string>(), trees: new Set<string>() });
  const all = group();
  const hosts = new Map<string, ReturnType<typeof group>>();
  const perSnapshot: SnapshotStats[] = [];
  const locks = new Map<string, { until: string; mode: string; snapshots: number }>();
  for (const { id, snapshot } of entries) {
    const sum = await sumOf(snapshot.tree);
    perSnapshot.push({
      id,
      time: snapshot.time,
      host: snapshot.host,
      files: sum.files,
      restoreBytes: sum.bytes,
      lockedUntil: snapshot.retention?.until ?? null,
      lockMode: snapshot.retention?.mode ?? null,
    });
    const host = hosts.get(snapshot.host) ?? group();
    hosts.set(snapshot.host, host);
    for (const g of [all, host]) {
      g.snapshots += 1;
      g.restoreBytes += sum.bytes;
      for (const blob of sum.blobs) g.seen.add(blob);
      for (const tree of sum.trees) g.trees.add(tree);
    }
    if (snapshot.retention) {
      const day = snapshot.retention.until.slice(0, 10);
      const key = `${day} ${snapshot.retention.mode}`;
      const lock = locks.get(key) ?? { until: day, mode: snapshot.retention.mode, snapshots: 0 };
      lock.snapshots += 1;
      locks.set(key, lock);
    }
  }
  const sized = (g: ReturnType<typeof group>): GroupStats => {
    let rawBytes = 0;
    let treeBytes = 0;
    let storedBytes = 0;
    for (const [set, raw] of [
      [g.seen, (n: number) => (rawBytes += n)],
      [g.trees, (n: number) => (treeBytes += n)],
    ] as const)
      for (const blob of set) {
        const at = index.get(Buffer.from(blob, 'hex'));
        raw(at?.rawLength ?? 0);
        storedBytes += at?.sealedLength ?? 0;
      }
    return {
      snapshots: g.snapshots,
      restoreBytes: g.restoreBytes,
      rawBytes,
      treeBytes,
      storedBytes,
      blobs: g.seen.size,
    };
  };
  const repository = sized(all);
  return {
    snapshots: perSnapshot,
    hosts: Object.fromEntries([...hosts].map(([name, g]) => [name, sized(g)])),
    repository: {
      ...repository,
      dedupRatio: repository.rawBytes > 0 ? repository.restoreBytes / repository.rawBytes : null,
    },
    locks: [...locks.values()].sort((a, b) => (a.until < b.until ? -1 : a.until > b.until ? 1 : 0)),
  };
}
