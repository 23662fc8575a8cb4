import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Encoder } from '@msgpack/msgpack';
import { isAmberError } from '../core/errors.ts';
import { nameFromBytes } from '../core/byte-names.ts';
import { decodeTree, encodeTree, TREE_V2_MARKER, type TreeNode } from './tree.ts';

const ID = 'ab'.repeat(32);
const node = (extra: Partial<TreeNode> = {}): TreeNode => ({
  name: 'file.txt',
  type: 'file',
  mode: 0o4755,
  uid: 12345,
  gid: 65534,
  sizeBytes: 5,
  mtimeNs: '-86400123456789',
  atimeNs: '4102444800123456789',
  ctimeNs: '1700000000000000001',
  inode: '18446744073709551615',
  deviceId: '2049',
  links: 1,
  content: [ID, 'cd'.repeat(32)],
  ...extra,
});
const raw = (value: unknown) => Buffer.concat([TREE_V2_MARKER, new Encoder({ useBigInt64: true }).encode(value)]);

test('a version 2 tree keeps every field exactly: bytes of names and targets, 64-bit times and numbers, attributes', () => {
  const latin1 = nameFromBytes(Buffer.from([0x63, 0x61, 0x66, 0xe9]));
  const nodes: TreeNode[] = [
    node({ xattrs: [{ name: 'user.bin', value: Buffer.from([0, 255, 10]) }], extraField: { kept: true } }),
    node({ name: latin1, content: [] }),
    node({ name: 'link', type: 'symlink', linkTarget: nameFromBytes(Buffer.from([0x74, 0xff])), content: undefined }),
    node({ name: 'dev', type: 'blockdev', rdev: '2049', content: undefined }),
    node({ name: 'sub', type: 'dir', subtree: ID as never, content: undefined, atimeNs: undefined }),
  ];
  for (const n of nodes) for (const key of Object.keys(n)) if (n[key] === undefined) delete n[key];
  const bytes = encodeTree({ nodes });
  assert.deepEqual(bytes.subarray(0, 4), TREE_V2_MARKER);
  assert.deepEqual(decodeTree(bytes, 'test').nodes, nodes);
  // A UTF-8 name is a MessagePack str (so one directory always encodes the same), others bin.
  assert.ok(bytes.includes(Buffer.from('file.txt')));
  assert.ok(bytes.includes(Buffer.from([0xc4, 4, 0x63, 0x61, 0x66, 0xe9])), 'bin 8 of the four bytes');
  assert.deepEqual(encodeTree({ nodes }), bytes);
});

test('a version 1 (JSON) tree is still read', () => {
  const v1 = { nodes: [{ ...node(), atimeNs: undefined }] };
  const decoded = decodeTree(Buffer.from(JSON.stringify(v1)), 'v1');
  assert.equal(decoded.nodes[0].mtimeNs, '-86400123456789');
  assert.deepEqual(decoded.nodes[0].content, [ID, 'cd'.repeat(32)]);
});

test('crafted trees are refused before anything is restored: escaping names, NULs, wrong types, junk', () => {
  const refuse = (bytes: Buffer, code: string, label: string) =>
    assert.throws(
      () => decodeTree(bytes, 'crafted'),
      (error) => isAmberError(error, code as never),
      label,
    );
  const base = {
    ...node(),
    content: [Buffer.alloc(32)],
    mtimeNs: 1n,
    atimeNs: 1n,
    ctimeNs: 1n,
    inode: 1n,
    deviceId: 1n,
  };
  refuse(raw({ nodes: [{ ...base, name: Buffer.from('a/b') }] }), 'UNSAFE_PATH', 'slash in bin name');
  refuse(raw({ nodes: [{ ...base, name: Buffer.from('..') }] }), 'UNSAFE_PATH', 'dot-dot as bytes');
  refuse(raw({ nodes: [{ ...base, name: Buffer.from('a\0b') }] }), 'UNSAFE_PATH', 'NUL in a name');
  refuse(raw({ nodes: [{ ...base, name: Buffer.alloc(0) }] }), 'UNSAFE_PATH', 'empty name');
  refuse(raw({ nodes: [base, { ...base, name: Buffer.from(base.name) }] }), 'UNSAFE_PATH', 'one name as str and bin');
  refuse(
    raw({ nodes: [{ ...base, type: 'symlink', linkTarget: Buffer.from('a\0b') }] }),
    'OBJECT_CORRUPT',
    'NUL in target',
  );
  refuse(
    raw({ nodes: [{ ...base, xattrs: [['user.a\0b', Buffer.from('v')]] }] }),
    'OBJECT_CORRUPT',
    'NUL in xattr name',
  );
  refuse(raw({ nodes: [{ ...base, xattrs: [['noprefix', Buffer.from('v')]] }] }), 'OBJECT_CORRUPT', 'xattr name');
  refuse(raw({ nodes: [{ ...base, xattrs: [['user.a', 'text']] }] }), 'OBJECT_CORRUPT', 'xattr value not bytes');
  refuse(raw({ nodes: [{ ...base, content: [Buffer.alloc(31)] }] }), 'OBJECT_CORRUPT', 'short content id');
  refuse(raw({ nodes: [{ ...base, subtree: 'ab'.repeat(32) }] }), 'OBJECT_CORRUPT', 'subtree as text');
  refuse(raw({ nodes: [{ ...base, mtimeNs: '5' }] }), 'OBJECT_CORRUPT', 'time as text in version 2');
  refuse(raw({ nodes: [{ ...base, name: 5 }] }), 'OBJECT_CORRUPT', 'name of the wrong type');
  refuse(raw({ nodes: 'none' }), 'OBJECT_CORRUPT', 'no node list');
  refuse(raw([1, 2]), 'OBJECT_CORRUPT', 'not a map');
  refuse(Buffer.concat([TREE_V2_MARKER, Buffer.from([0xc1])]), 'OBJECT_CORRUPT', 'invalid MessagePack');
  refuse(Buffer.from([0x00, 0x41, 0x54]), 'OBJECT_CORRUPT', 'a marker cut short');
  refuse(Buffer.from('not a tree'), 'OBJECT_CORRUPT', 'neither version');
  refuse(
    Buffer.from(JSON.stringify({ nodes: [{ ...node(), type: 'symlink', linkTarget: 'a\0b' }] })),
    'OBJECT_CORRUPT',
    'NUL in a version 1 target',
  );
});
