// Before a restore writes into a directory that exists: which of the snapshot's entries something
// already there would be in the way of. A file an earlier restore of the same snapshot completed
// (same size, mode and time; a symlink to the same target, a FIFO of the same mode) is not in the way; anything else is, and the restore is refused once,
// naming the first few, instead of restoring around thousands of per-file errors. Only directories
// that exist in the target are walked, so a restore into a new or empty directory costs nothing.
import { type BigIntStats, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { AmberError } from '../core/errors.ts';
import { displayName, findNamed, fsPath } from '../core/byte-names.ts';
import type { BlobReader } from '../repo/blob-reader.ts';
import type { TreeNode } from '../repo/tree.ts';
import type { ExcludeMatcher } from '../source/fs/excludes.ts';
import { readTree } from './tree-walk.ts';

export interface Conflicts {
  count: number;
  /** The first few, as target paths. */
  first: string[];
}

const SHOWN = 5;

export async function findConflicts(
  reader: BlobReader,
  root: TreeNode,
  target: string,
  includes: string[][] | undefined,
  excluded: ExcludeMatcher | undefined,
  alreadyThere: (existing: BigIntStats, node: TreeNode, path: string) => boolean,
): Promise<Conflicts> {
  const found: Conflicts = { count: 0, first: [] };
  const note = (path: string) => {
    found.count += 1;
    if (found.first.length < SHOWN) found.first.push(path);
  };
  const visit = async (
    dir: TreeNode,
    targetDir: string,
    snapshotPath: string,
    wanted: string[][] | undefined,
  ): Promise<void> => {
    const tree = await readTree(reader, dir.subtree!);
    const chosen = wanted?.map((parts) => findNamed(tree.nodes, parts[0]));
    for (const node of tree.nodes) {
      let below: string[][] | undefined;
      if (wanted) {
        const matching = wanted.filter((_, k) => chosen![k] === node);
        if (matching.length === 0) continue;
        below = matching.some((parts) => parts.length === 1) ? undefined : matching.map((parts) => parts.slice(1));
      }
      const path = join(targetDir, node.name);
      const inSnapshot = snapshotPath === '/' ? `/${node.name}` : `${snapshotPath}/${node.name}`;
      if (excluded?.(inSnapshot, node.name, node.type === 'dir')) continue;
      const existing = lstatSync(fsPath(path), { bigint: true, throwIfNoEntry: false });
      if (!existing) continue; // nothing there, so nothing below it either
      if (node.type === 'dir') {
        if (!existing.isDirectory()) note(path);
        else if (node.subtree) await visit(node, path, inSnapshot, below);
      } else if (node.type !== 'socket' && !alreadyThere(existing, node, path)) note(path); // sockets are not recreated
    }
  };
  if (root.subtree) await visit(root, target, '/', includes);
  return found;
}

/** The one refusal of a restore whose target holds something in the way. */
export function conflictError(target: string, conflicts: Conflicts): AmberError {
  const more = conflicts.count - conflicts.first.length;
  return new AmberError(
    'TARGET_EXISTS',
    `${displayName(target)} already holds ${conflicts.count} entr${conflicts.count === 1 ? 'y' : 'ies'} the snapshot would write, other than as this snapshot has ${conflicts.count === 1 ? 'it' : 'them'}: ${conflicts.first.map(displayName).join(', ')}${more > 0 ? ` and ${more} more` : ''}; nothing was written`,
    {
      hint: 'restore into an empty directory, or pass --overwrite to replace them (files an earlier restore of this snapshot completed are kept either way)',
    },
  );
}
