// `amber find PATTERN`: the entries of every snapshot whose path a pattern matches, with restic's
// pattern rules (source/fs/excludes.ts: a name pattern at any depth, `/…` anchored, `**`). A
// subtree found to hold no match at a path is not read again for the next snapshot that has it.
import type { TreeId } from '../core/ids.ts';
import type { BlobReader } from '../repo/blob-reader.ts';
import type { TreeNode } from '../repo/tree.ts';
import { createExcludeMatcher } from '../source/fs/excludes.ts';
import { readTree } from './tree-walk.ts';

export interface Found {
  path: string;
  node: TreeNode;
}

export function createFinder(reader: BlobReader, patterns: string[]) {
  const matches = createExcludeMatcher(patterns, { entryOnly: true });
  /** "path\0tree" of subtrees with no match anywhere below. */
  const barren = new Set<string>();
  const visit = async (tree: TreeId, path: string, found: (hit: Found) => void): Promise<boolean> => {
    const key = `${path}\0${tree}`;
    if (barren.has(key)) return false;
    let any = false;
    for (const node of (await readTree(reader, tree)).nodes) {
      const at = path === '/' ? `/${node.name}` : `${path}/${node.name}`;
      if (matches(at, node.name, node.type === 'dir')) {
        found({ path: at, node });
        any = true;
      }
      if (node.type === 'dir' && node.subtree && (await visit(node.subtree, at, found))) any = true;
    }
    if (!any) barren.add(key);
    return any;
  };
  return {
    /** Every match in the snapshot whose root tree is `root`, in tree order. */
    async find(root: TreeId, found: (hit: Found) => void): Promise<void> {
      await visit(root, '/', found);
    },
  };
}
