// Trees: one blob per directory listing its entries, sorted by name bytes (format.md §10).
// Version 2 trees are MessagePack after a 4-byte marker: names and link targets that are not UTF-8
// travel as bytes, times and inode numbers as 64-bit integers, blob ids and attribute values as
// bytes. Version 1 trees (JSON, times as decimal strings) are read forever and never written.
// In memory a node keeps the shape it always had: names are strings in which a byte that is not
// UTF-8 is one escaped code unit (core/byte-names.ts), times and inode numbers decimal strings.
import { Decoder, Encoder } from '@msgpack/msgpack';
import { AmberError } from '../core/errors.ts';
import { hasEscapedBytes, nameBytes, nameFromBytes } from '../core/byte-names.ts';
import { isHexId, type TreeId } from '../core/ids.ts';

export type NodeType = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'chardev' | 'blockdev';

/** One extended attribute as the filesystem holds it; POSIX ACLs are the system.posix_acl_* ones. */
export interface NodeXattr {
  name: string;
  value: Buffer;
}

export interface TreeNode {
  name: string;
  type: NodeType;
  mode: number;
  uid: number;
  gid: number;
  sizeBytes: number;
  mtimeNs: string;
  /** Absent for directories and in version 1 trees: a restore then sets the modification time. */
  atimeNs?: string;
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
  /** Sorted by name; absent when the entry has none. */
  xattrs?: NodeXattr[];
  [unknownField: string]: unknown;
}

export interface Tree {
  nodes: TreeNode[];
  [unknownField: string]: unknown;
}

/** The first bytes of a version 2 tree: a NUL (no JSON text starts with one), "AT", the version. */
export const TREE_V2_MARKER = Buffer.from([0x00, 0x41, 0x54, 0x02]);

const encoder = new Encoder({ useBigInt64: true, ignoreUndefined: true });
const decoder = new Decoder({ useBigInt64: true });

/** Fields held as decimal strings in memory and as 64-bit integers in a version 2 tree. */
const INTEGER_FIELDS = ['mtimeNs', 'atimeNs', 'ctimeNs', 'inode', 'deviceId', 'rdev'] as const;

export function encodeTree(tree: Tree): Buffer {
  const body = encoder.encode({ ...tree, nodes: tree.nodes.map(encodeNode) });
  return Buffer.concat([TREE_V2_MARKER, body]);
}

function encodeNode(node: TreeNode): Record<string, unknown> {
  const out: Record<string, unknown> = { ...node };
  out.name = asWireName(node.name);
  if (node.linkTarget !== undefined) out.linkTarget = asWireName(node.linkTarget);
  for (const field of INTEGER_FIELDS) if (node[field] !== undefined) out[field] = BigInt(node[field]!);
  if (node.content !== undefined) out.content = node.content.map((hex) => Buffer.from(hex, 'hex'));
  if (node.subtree !== undefined) out.subtree = Buffer.from(node.subtree, 'hex');
  if (node.xattrs !== undefined) out.xattrs = node.xattrs.map((x) => [x.name, x.value]);
  return out;
}

/** A name as a MessagePack string when it is UTF-8, as its bytes when it is not. */
function asWireName(name: string): string | Buffer {
  return hasEscapedBytes(name) ? nameBytes(name) : name;
}

/** Parses a tree and refuses names that could escape a restore target. */
export function decodeTree(bytes: Uint8Array, where: string): Tree {
  const tree = isVersion2(bytes) ? decodeVersion2(bytes, where) : decodeVersion1(bytes, where);
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
    // symlink(2) takes a C string: a NUL would cut the target short, an empty one is refused.
    const target = node?.linkTarget;
    if (target !== undefined && (typeof target !== 'string' || target === '' || target.includes('\0')))
      throw new AmberError(
        'OBJECT_CORRUPT',
        `tree ${where}: the link target of ${JSON.stringify(node.name)} is empty, not text, or holds a NUL`,
      );
    if (!safeName(node?.name)) {
      throw new AmberError('UNSAFE_PATH', `tree ${where} contains the unsafe name ${JSON.stringify(node?.name)}`, {
        hint: 'the snapshot was crafted or damaged; nothing was written for this entry',
      });
    }
    // A name that stands for no bytes (a lone surrogate other than an escaped byte) reaches the
    // kernel as U+FFFD: two such names would be one entry on disk, the second silently replacing
    // the first. Likewise a link target.
    if (!isByteString(node.name)) {
      throw new AmberError(
        'UNSAFE_PATH',
        `tree ${where} contains the name ${JSON.stringify(node.name)}, which stands for no bytes`,
        {
          hint: 'the snapshot was crafted or damaged; nothing was written for this entry',
        },
      );
    }
    if (target !== undefined && !isByteString(target))
      throw new AmberError(
        'OBJECT_CORRUPT',
        `tree ${where}: the link target of ${JSON.stringify(node.name)} stands for no bytes (a lone surrogate)`,
      );
    checkFields(node, where);
  }
  return tree;
}

/** True when `text` is the string of one byte sequence (core/byte-names.ts): it survives the round trip. */
function isByteString(text: string): boolean {
  return !/[\uD800-\uDFFF]/.test(text) || nameFromBytes(nameBytes(text)) === text;
}

const NODE_TYPES = new Set(['file', 'dir', 'symlink', 'fifo', 'socket', 'chardev', 'blockdev']);
const DECIMAL = /^-?[0-9]{1,20}$/;
/** Integer fields and their bounds: what restore hands the kernel must be a number it can take. */
const SMALL_FIELDS = {
  mode: 0o7777,
  uid: 0xffffffff,
  gid: 0xffffffff,
  sizeBytes: Number.MAX_SAFE_INTEGER,
  links: Number.MAX_SAFE_INTEGER,
} as const;

/**
 * Refuses nodes whose fields restore could not use as they are (a crafted or damaged tree): it would
 * otherwise fail on them with an error that names no cause, or crash. Integers in either version
 * become numbers (mode, uid, …) or decimal strings (times, inode, rdev), whatever form carried them.
 */
function checkFields(node: TreeNode, where: string): void {
  const bad = (what: string) =>
    new AmberError('OBJECT_CORRUPT', `tree ${where}: the entry ${JSON.stringify(node.name)} ${what}`, {
      hint: 'the snapshot was crafted or damaged; nothing was written for this entry',
    });
  const record = node as Record<string, unknown>;
  if (typeof node.type !== 'string' || !NODE_TYPES.has(node.type))
    throw bad(`has the unknown type ${JSON.stringify(node.type)}`);
  for (const [field, max] of Object.entries(SMALL_FIELDS)) {
    let value = record[field];
    if (typeof value === 'bigint' && value >= 0n && value <= BigInt(max)) value = Number(value);
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max)
      throw bad(`has a ${field} that is not an integer from 0 to ${max}`);
    record[field] = value;
  }
  for (const field of INTEGER_FIELDS) {
    let value = record[field];
    if (value === undefined) continue;
    if (typeof value === 'number' && Number.isSafeInteger(value)) value = String(value);
    if (typeof value !== 'string' || !DECIMAL.test(value)) throw bad(`has a ${field} that is not an integer`);
    record[field] = value;
  }
  if (node.type === 'dir' && node.subtree === undefined) throw bad('is a directory without a tree');
  if (node.content !== undefined && (!Array.isArray(node.content) || !node.content.every((id) => isHexId(id))))
    throw bad('has content that is not a list of blob ids');
  if (
    node.xattrs !== undefined &&
    (!Array.isArray(node.xattrs) ||
      !node.xattrs.every((x) => typeof x?.name === 'string' && Buffer.isBuffer(x.value) && x.name.isWellFormed()))
  )
    throw bad('has attributes that are not [name, bytes] pairs with names as text');
}

function safeName(name: unknown): name is string {
  return (
    typeof name === 'string' &&
    name.length > 0 &&
    name !== '.' &&
    name !== '..' &&
    !name.includes('/') &&
    !name.includes('\0')
  );
}

function isVersion2(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && TREE_V2_MARKER.equals(Buffer.from(bytes.buffer, bytes.byteOffset, 4));
}

function decodeVersion1(bytes: Uint8Array, where: string): Tree {
  let tree: Tree;
  try {
    tree = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (cause) {
    throw new AmberError('OBJECT_CORRUPT', `tree ${where} is neither a version 2 tree nor valid JSON`, { cause });
  }
  if (!tree || !Array.isArray(tree.nodes)) throw new AmberError('OBJECT_CORRUPT', `tree ${where} has no node list`);
  return tree;
}

function decodeVersion2(bytes: Uint8Array, where: string): Tree {
  let raw: unknown;
  try {
    raw = decoder.decode(bytes.subarray(TREE_V2_MARKER.length));
  } catch (cause) {
    throw new AmberError('OBJECT_CORRUPT', `tree ${where} is not valid MessagePack`, { cause });
  }
  const tree = raw as { nodes?: unknown };
  if (!tree || typeof tree !== 'object' || !Array.isArray(tree.nodes))
    throw new AmberError('OBJECT_CORRUPT', `tree ${where} has no node list`);
  return { ...tree, nodes: tree.nodes.map((node, n) => decodeNode(node, where, n)) } as Tree;
}

function decodeNode(raw: unknown, where: string, n: number): TreeNode {
  const bad = (what: string) => new AmberError('OBJECT_CORRUPT', `tree ${where}: node ${n} ${what}`);
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw bad('is not a map');
  const node = raw as Record<string, unknown>;
  node.name = fromWireName(node.name, () => bad('has no name'));
  if (node.linkTarget !== undefined) {
    node.linkTarget = fromWireName(node.linkTarget, () => bad('has a bad link target'));
  }
  for (const field of INTEGER_FIELDS) {
    const value = node[field];
    if (value === undefined) continue;
    if (typeof value !== 'bigint' && (typeof value !== 'number' || !Number.isInteger(value)))
      throw bad(`has a ${field} that is not an integer`);
    node[field] = value.toString();
  }
  if (node.content !== undefined) {
    if (!Array.isArray(node.content)) throw bad('has content that is not a list');
    node.content = node.content.map((id) => hexOfId(id, () => bad('has a content id that is not 32 bytes')));
  }
  if (node.subtree !== undefined) node.subtree = hexOfId(node.subtree, () => bad('has a subtree that is not 32 bytes'));
  if (node.xattrs !== undefined) {
    if (!Array.isArray(node.xattrs)) throw bad('has attributes that are not a list');
    node.xattrs = node.xattrs.map((pair) => {
      if (!Array.isArray(pair) || typeof pair[0] !== 'string' || !(pair[1] instanceof Uint8Array))
        throw bad('has an attribute that is not a [name, bytes] pair');
      // Linux: a name of 1 to 255 bytes with a namespace prefix, and no NUL (a C string again).
      if (!XATTR_NAME.test(pair[0]) || Buffer.byteLength(pair[0]) > 255)
        throw bad(`has an attribute name the kernel cannot take (${JSON.stringify(pair[0])})`);
      return { name: pair[0], value: Buffer.from(pair[1]) };
    });
  }
  return node as TreeNode;
}

const XATTR_NAME = /^[a-z]+\.[^\0]+$/;

function fromWireName(value: unknown, bad: () => Error): string {
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return nameFromBytes(value);
  throw bad();
}

function hexOfId(value: unknown, bad: () => Error): string {
  if (!(value instanceof Uint8Array) || value.length !== 32) throw bad();
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex');
}
