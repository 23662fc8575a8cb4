import { test } from 'node:test';
import assert from 'node:assert/strict';
import { aclBlob, parseAclBlob, type AclEntry } from './acl.ts';

const ENTRIES: AclEntry[] = [
  { tag: 'OTHER', perm: 0 },
  { tag: 'GROUP', id: 23456, perm: 6 },
  { tag: 'USER_OBJ', perm: 6 },
  { tag: 'MASK', perm: 6 },
  { tag: 'GROUP_OBJ', perm: 4 },
  { tag: 'USER', id: 12345, perm: 4 },
];

test('aclBlob writes version 2 and the entries little-endian, sorted by tag then id', () => {
  // The bytes the kernel accepted as system.posix_acl_access and gave back unchanged (ext4, Linux 6.18).
  const kernel =
    '02000000' +
    '01000600ffffffff' +
    '0200040039300000' +
    '04000400ffffffff' +
    '08000600a05b0000' +
    '10000600ffffffff' +
    '20000000ffffffff';
  assert.equal(aclBlob(ENTRIES).toString('hex'), kernel);
  const twoUsers = aclBlob([
    { tag: 'USER', id: 65534, perm: 1 },
    { tag: 'USER', id: 7, perm: 2 },
  ]);
  assert.deepEqual(
    parseAclBlob(twoUsers).map((entry) => entry.id),
    [7, 65534],
  );
});

test('parseAclBlob reads back what aclBlob wrote; bad entries are refused', () => {
  assert.deepEqual(
    parseAclBlob(aclBlob(ENTRIES)),
    [...ENTRIES].sort((a, b) => aclOrder(a) - aclOrder(b)),
  );
  assert.throws(() => aclBlob([{ tag: 'USER', perm: 4 }]), /needs id/);
  assert.throws(() => aclBlob([{ tag: 'MASK', perm: 4, id: 1 }]), /takes no id/);
  assert.throws(() => aclBlob([{ tag: 'OTHER', perm: 8 }]), /not 0-7/);
  assert.throws(() => parseAclBlob(Buffer.from('01000000', 'hex')), /not a version 2/);
});

const aclOrder = (entry: AclEntry) => ['USER_OBJ', 'USER', 'GROUP_OBJ', 'GROUP', 'MASK', 'OTHER'].indexOf(entry.tag);
