// POSIX ACLs as the raw xattr values Linux keeps in system.posix_acl_access and
// system.posix_acl_default (include/uapi/linux/posix_acl_xattr.h): a u32 version (2), then one
// {u16 tag, u16 perm, u32 id} per entry, all little-endian, sorted by tag and then id. The *_OBJ,
// MASK and OTHER entries carry no id (0xffffffff). Tests build ACLs with this instead of setfacl.

export const ACL_XATTR_VERSION = 2;
export const ACL_ACCESS_XATTR = 'system.posix_acl_access';
export const ACL_DEFAULT_XATTR = 'system.posix_acl_default';

export const ACL_TAG = {
  USER_OBJ: 0x01,
  USER: 0x02,
  GROUP_OBJ: 0x04,
  GROUP: 0x08,
  MASK: 0x10,
  OTHER: 0x20,
} as const;

export type AclTag = keyof typeof ACL_TAG;

/** Permission bits of one entry. */
export const ACL_PERM = { READ: 4, WRITE: 2, EXECUTE: 1 } as const;

export interface AclEntry {
  tag: AclTag;
  /** rwx as 4 | 2 | 1. */
  perm: number;
  /** The uid (USER) or gid (GROUP); required for those two, not allowed for the others. */
  id?: number;
}

const NO_ID = 0xffffffff;

/** Encodes `entries` as the kernel's xattr blob, sorted as the kernel expects. */
export function aclBlob(entries: readonly AclEntry[]): Buffer {
  const rows = entries.map(({ tag, perm, id }) => {
    const named = tag === 'USER' || tag === 'GROUP';
    if (named !== (id !== undefined)) throw new Error(`aclBlob: ${tag} entry ${named ? 'needs' : 'takes no'} id`);
    if (!Number.isInteger(perm) || perm < 0 || perm > 7) throw new Error(`aclBlob: permission ${perm} is not 0-7`);
    return { tag: ACL_TAG[tag], perm, id: id ?? NO_ID };
  });
  rows.sort((a, b) => a.tag - b.tag || a.id - b.id);
  const blob = Buffer.alloc(4 + rows.length * 8);
  blob.writeUInt32LE(ACL_XATTR_VERSION, 0);
  rows.forEach((row, i) => {
    blob.writeUInt16LE(row.tag, 4 + i * 8);
    blob.writeUInt16LE(row.perm, 6 + i * 8);
    blob.writeUInt32LE(row.id, 8 + i * 8);
  });
  return blob;
}

/** The entries of a blob (for readable test failures); throws on a malformed one. */
export function parseAclBlob(blob: Buffer): AclEntry[] {
  if (blob.length < 4 || (blob.length - 4) % 8 !== 0 || blob.readUInt32LE(0) !== ACL_XATTR_VERSION)
    throw new Error(`not a version ${ACL_XATTR_VERSION} POSIX ACL blob (${blob.length} bytes)`);
  const names = new Map<number, AclTag>(Object.entries(ACL_TAG).map(([name, tag]) => [tag, name as AclTag]));
  const entries: AclEntry[] = [];
  for (let offset = 4; offset < blob.length; offset += 8) {
    const tag = names.get(blob.readUInt16LE(offset));
    if (!tag) throw new Error(`unknown ACL tag ${blob.readUInt16LE(offset)}`);
    const id = blob.readUInt32LE(offset + 4);
    entries.push({ tag, perm: blob.readUInt16LE(offset + 2), ...(tag === 'USER' || tag === 'GROUP' ? { id } : {}) });
  }
  return entries;
}
