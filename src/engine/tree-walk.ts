// Navigating a snapshot's trees: resolve a path to its node, or visit every node below one.
import { AmberError } from '../core/errors.ts';
import { findNamed } from '../core/byte-names.ts';
import type { BlobReader } from '../repo/blob-reader.ts';
import type { TreeId } from '../core/ids.ts';
import { decodeTree, type Tree, type TreeNode } from '../repo/tree.ts';

export async function readTree(reader: BlobReader, treeId: TreeId): Promise<Tree> {
  return decodeTree(await reader.readBlob(Buffer.from(treeId, 'hex')), treeId.slice(0, 16));
}

/** A file's whole content (small files: a folder's metadata, one message), every blob checked as read. */
export async function readFileNode(reader: BlobReader, node: TreeNode): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const id of node.content ?? []) parts.push(await reader.readBlob(Buffer.from(id, 'hex')));
  return Buffer.concat(parts);
}

/** The root is a synthetic directory node named "/". */
export function rootNode(treeId: TreeId): TreeNode {
  return {
    name: '/',
    type: 'dir',
    mode: 0o755,
    uid: 0,
    gid: 0,
    sizeBytes: 0,
    mtimeNs: '0',
    ctimeNs: '0',
    inode: '0',
    deviceId: '0',
    links: 1,
    subtree: treeId,
  };
}

export function splitPath(path: string): string[] {
  return path.split('/').filter((part) => part !== '' && part !== '.');
}

/** The node at an absolute path inside the snapshot. */
export async function resolvePath(reader: BlobReader, rootTree: TreeId, path: string): Promise<TreeNode> {
  let node = rootNode(rootTree);
  for (const part of splitPath(path)) {
    if (part === '..') throw new AmberError('PATH_NOT_FOUND', `"${path}" may not contain ".."`);
    if (node.type !== 'dir' || !node.subtree)
      throw new AmberError('PATH_NOT_FOUND', `"${path}" is not in the snapshot`, {
        hint: 'list the snapshot with `amber ls`',
      });
    const tree = await readTree(reader, node.subtree);
    const next = findNamed(tree.nodes, part);
    if (!next)
      throw new AmberError('PATH_NOT_FOUND', `"${path}" is not in the snapshot`, {
        hint: 'list the snapshot with `amber ls`',
      });
    node = next;
  }
  return node;
}

export type NodeVisitor = (path: string, node: TreeNode) => Promise<void> | void;

/** Depth-first, pre-order; `path` of the root's children starts with "/". */
export async function walkNodes(reader: BlobReader, node: TreeNode, path: string, visit: NodeVisitor): Promise<void> {
  await visit(path, node);
  if (node.type !== 'dir' || !node.subtree) return;
  const tree = await readTree(reader, node.subtree);
  for (const child of tree.nodes) {
    await walkNodes(reader, child, path === '/' ? `/${child.name}` : `${path}/${child.name}`, visit);
  }
}
