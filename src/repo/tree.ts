// Trees: one blob per directory listing its entries, sorted by name bytes. JSON, so readers keep
// fields they do not know. Times are nanoseconds as decimal strings (they exceed 2^53).
import { AmberError } from '../core/errors.ts';
import { isHexId, type TreeId } from '../core/ids.ts';

export type NodeType = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'chardev' | 'blockdev';

export interface TreeNode {
  name: string;
  type: NodeType;
  mode: number;
  uid: number;
  gid: number;
  sizeBytes: number;
  mtimeNs: string;
  ctimeNs: string;
  /** Inode and device id: for change detection and hard links; never restored as such. */
  inode: string;
  deviceId: string;
  links: number;
  linkTarget?: string;
  rdev?: string;
  /** Blob ids (hex) of the file's chunks, in order. */
  content?: string[];
  /** Blob id (hex) of the directory's tree. */
  subtree?: TreeId;
  /** e.g. "changed-while-read". */
  flags?: string[];
  [unknownField: string]: unknown;
}

export interface Tree {
  nodes: TreeNode[];
  [unknownField: string]: unknown;
}

export function encodeTree(tree: Tree): Buffer {
  return Buffer.from(JSON.stringify(tree), 'utf8');
}

const SAFE_NAME = (name: unknown): name is string =>
  typeof name === 'string' &&
  name.length > 0 &&
  name !== '.' &&
  name !== '..' &&
  !name.includes('/') &&
  !name.includes('\0');

/** Parses a tree and refuses names that could escape a restore target. */
export function decodeTree(bytes: Uint8Array, where: string): Tree {
  let tree: Tree;
  try {
    tree = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (cause) {
    throw new AmberError('OBJECT_CORRUPT', `tree ${where} is not valid JSON`, { cause });
  }
  if (!tree || !Array.isArray(tree.nodes)) throw new AmberError('OBJECT_CORRUPT', `tree ${where} has no node list`);
  const seen = new Set<string>();
  for (const node of tree.nodes) {
    if (seen.has(node?.name)) {
      throw new AmberError('UNSAFE_PATH', `tree ${where} names ${JSON.stringify(node.name)} twice`, {
        hint: 'the snapshot was crafted or damaged; nothing was written for this entry',
      });
    }
    seen.add(node?.name);
    if (node?.subtree !== undefined && !isHexId(node.subtree))
      throw new AmberError(
        'OBJECT_CORRUPT',
        `tree ${where}: the subtree of ${JSON.stringify(node.name)} is not a tree id`,
      );
    if (!SAFE_NAME(node?.name)) {
      throw new AmberError('UNSAFE_PATH', `tree ${where} contains the unsafe name ${JSON.stringify(node?.name)}`, {
        hint: 'the snapshot was crafted or damaged; nothing was written for this entry',
      });
    }
  }
  return tree;
}
