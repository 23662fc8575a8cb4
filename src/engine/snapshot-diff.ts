// What changed between two snapshots, as `amber diff` shows it: every path added, removed or
// changed (its content, its type, or its metadata), with sizes. Directories whose trees are the
// same blob are the same all the way down and are not read: a diff of two nightly backups reads
// only the trees along the changes.
import type { TreeId } from '../core/ids.ts';
import type { BlobReader } from '../repo/blob-reader.ts';
import type { TreeNode } from '../repo/tree.ts';
import { readTree, walkNodes } from './tree-walk.ts';

export type DiffKind = 'added' | 'removed' | 'changed';

export interface DiffEntry {
  kind: DiffKind;
  path: string;
  type: TreeNode['type'];
  /** Bytes of a file before and after (absent for what is not a file on that side). */
  sizeBefore?: number;
  sizeAfter?: number;
  /** For a change: what changed (content, type, mode, owner, mtime, target, xattrs). */
  what?: string[];
}

export interface DiffTotals {
  added: number;
  removed: number;
  changed: number;
  bytesAdded: number;
  bytesRemoved: number;
}

const sameList = (a: readonly string[] | undefined, b: readonly string[] | undefined) =>
  (a ?? []).length === (b ?? []).length && (a ?? []).every((x, n) => x === (b ?? [])[n]);

function changes(a: TreeNode, b: TreeNode): string[] {
  const what: string[] = [];
  if (a.type !== b.type) return ['type'];
  if (a.type === 'file' && !sameList(a.content, b.content)) what.push('content');
  if (a.linkTarget !== b.linkTarget) what.push('target');
  if (a.mode !== b.mode) what.push('mode');
  if (a.uid !== b.uid || a.gid !== b.gid) what.push('owner');
  if (a.type !== 'dir' && a.mtimeNs !== b.mtimeNs) what.push('mtime');
  if (JSON.stringify(a.xattrs ?? []) !== JSON.stringify(b.xattrs ?? [])) what.push('xattrs');
  return what;
}

const sizeOf = (node: TreeNode) => (node.type === 'file' ? node.sizeBytes : undefined);

export async function diffSnapshots(
  reader: BlobReader,
  before: TreeId,
  after: TreeId,
  emit: (entry: DiffEntry) => void,
): Promise<DiffTotals> {
  const totals: DiffTotals = { added: 0, removed: 0, changed: 0, bytesAdded: 0, bytesRemoved: 0 };
  const whole = async (kind: 'added' | 'removed', node: TreeNode, path: string) =>
    walkNodes(reader, node, path, (p, n) => {
      const size = sizeOf(n);
      if (kind === 'added') totals.bytesAdded += size ?? 0;
      else totals.bytesRemoved += size ?? 0;
      totals[kind] += 1;
      emit({ kind, path: p, type: n.type, ...(kind === 'added' ? { sizeAfter: size } : { sizeBefore: size }) });
    });
  const compare = async (a: TreeId, b: TreeId, path: string): Promise<void> => {
    if (a === b) return;
    const [left, right] = await Promise.all([readTree(reader, a), readTree(reader, b)]);
    const rightByName = new Map(right.nodes.map((n) => [n.name, n]));
    const leftNames = new Set(left.nodes.map((n) => n.name));
    const at = (name: string) => (path === '/' ? `/${name}` : `${path}/${name}`);
    for (const node of left.nodes) {
      const other = rightByName.get(node.name);
      if (!other) {
        await whole('removed', node, at(node.name));
        continue;
      }
      const what = changes(node, other);
      if (what.includes('type')) {
        await whole('removed', node, at(node.name));
        await whole('added', other, at(node.name));
        continue;
      }
      if (what.length > 0) {
        const grew = what.includes('content') ? (sizeOf(other) ?? 0) - (sizeOf(node) ?? 0) : 0;
        if (grew > 0) totals.bytesAdded += grew;
        else totals.bytesRemoved -= grew;
        totals.changed += 1;
        emit({
          kind: 'changed',
          path: at(node.name),
          type: other.type,
          sizeBefore: sizeOf(node),
          sizeAfter: sizeOf(other),
          what,
        });
      }
      if (node.type === 'dir' && node.subtree && other.subtree)
        await compare(node.subtree, other.subtree, at(node.name));
    }
    for (const node of right.nodes) if (!leftNames.has(node.name)) await whole('added', node, at(node.name));
  };
  await compare(before, after, '/');
  return totals;
}
