// Extended attributes of one entry, in every namespace the process may read: user., trusted. (root),
// security. (security.capability included) and POSIX ACLs, which are the attributes
// system.posix_acl_access and system.posix_acl_default kept as the kernel's raw bytes (their ids as
// this process's user namespace sees them). Nothing here follows a symlink: the path binding uses
// l*xattr, the fd binding works on an fd opened with O_NOFOLLOW. Node has no xattr calls of its own;
// docs/decisions/0005-xattrs-and-device-nodes.md says why these two bindings and what they cannot do.
//
// Both bindings take paths and names as JS strings, so a path carrying bytes that are not UTF-8
// (src/core/byte-names.ts) is reached another way:
// - the leaf is UTF-8 but an ancestor is not: the parent directory is opened by its bytes and the
//   entry named as /proc/self/fd/N/<leaf> (the magic link is followed, the leaf is not);
// - the leaf itself is not UTF-8: a directory is opened (O_PATH|O_NOFOLLOW) and named as
//   /proc/self/fd/N/.; a regular file is opened (O_RDONLY|O_NOFOLLOW|O_NONBLOCK) and read through
//   its fd. Any other type (symlink, fifo, socket, device) cannot be reached without opening it, which
//   is either impossible or has side effects: reading throws XATTRS_UNREADABLE; writing is a
//   programmer error (create such an entry under a temporary UTF-8 name, set its attributes, rename).
//
// Restoring: write attributes after the content and after chown (both clear security.capability),
// and after chmod (an access ACL and the mode's group bits are one value; the ACL as backed up is the
// one to keep).
import { closeSync, constants, fstatSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import { AmberError } from '../../core/errors.ts';
import { compareNameBytes, displayName, hasEscapedBytes, nameBytes } from '../../core/byte-names.ts';
import type { EntryType } from './entry-meta.ts';

export interface Xattr {
  /** The full name with its namespace, e.g. `user.mime_type`, `system.posix_acl_access`. */
  name: string;
  value: Buffer;
}

/**
 * What a failed attribute is, for warning once per kind: the namespace, with security.capability
 * (needs CAP_SETFCAP; a binary without it loses its privileges) and the POSIX ACLs apart. `other` is
 * any other system.* attribute (e.g. system.nfs4_acl) or prefix.
 */
export type XattrKind = 'user' | 'trusted' | 'security' | 'capability' | 'acl' | 'other';

/** Attributes of one kind that the target refused with one errno. */
export interface XattrFailure {
  kind: XattrKind;
  /**
   * The system's code: ENOTSUP (EOPNOTSUPP, the same number) when the target filesystem does not
   * keep such attributes at all, EPERM when the process is not privileged for them (or, for user.*,
   * the entry is neither a file nor a directory), EACCES, ENOSPC (no room beside the inode: ext4
   * keeps all of an inode's attributes in one block), EINVAL (a value the kernel refuses, such as a
   * malformed ACL).
   */
  errno: string;
  names: string[];
}

export function xattrKind(name: string): XattrKind {
  if (name === 'security.capability') return 'capability';
  if (name === 'system.posix_acl_access' || name === 'system.posix_acl_default') return 'acl';
  const prefix = name.slice(0, name.indexOf('.') + 1);
  if (prefix === 'user.') return 'user';
  if (prefix === 'trusted.') return 'trusted';
  if (prefix === 'security.') return 'security';
  return 'other';
}

/**
 * All extended attributes of `path` that this process may read, sorted by name (byte order), never
 * following a symlink; `type` is its lstat type. A filesystem without attributes gives none.
 * Throws SOURCE_NOT_FOUND, SOURCE_UNREADABLE, or XATTRS_UNREADABLE for a symlink, fifo, socket or
 * device whose own name is not UTF-8.
 */
export function readXattrs(path: string, type: EntryType): Xattr[] {
  return withAccess(path, type, 'read', (access) => readAll(access, path));
}

/** Like readXattrs, through an open fd (not O_PATH) of a regular file or directory; `path` names it in errors. */
export function readXattrsFd(fd: number, path: string): Xattr[] {
  return readAll(fdAccess(fd), path);
}

/**
 * Sets each attribute on `path` (never following a symlink), replacing one of the same name. Returns
 * the attributes the target refused, one entry per kind and errno; errors that concern the entry
 * rather than an attribute (it is gone, a read-only filesystem) throw TARGET_UNWRITABLE. A symlink,
 * fifo, socket or device whose own name is not UTF-8 cannot be reached: a programmer error.
 */
export function writeXattrs(path: string, type: EntryType, xattrs: readonly Xattr[]): XattrFailure[] {
  if (xattrs.length === 0) return [];
  return withAccess(path, type, 'write', (access) => writeAll(access, path, xattrs));
}

/** Like writeXattrs, through an open fd (not O_PATH), as restore writes files; `path` names it in errors. */
export function writeXattrsFd(fd: number, xattrs: readonly Xattr[], path: string): XattrFailure[] {
  return writeAll(fdAccess(fd), path, xattrs);
}

/** One sentence for a restore warning about `failure`, without the path. */
export function describeXattrFailure(failure: XattrFailure): string {
  const what = KIND_TEXT[failure.kind];
  if (failure.errno === 'ENOTSUP') return `the target filesystem does not support ${what}`;
  if (failure.errno === 'EPERM') return `${what} were not permitted (${PRIVILEGE[failure.kind]})`;
  return `${what} were refused (${failure.errno})`;
}

const KIND_TEXT: Record<XattrKind, string> = {
  user: 'user.* attributes',
  trusted: 'trusted.* attributes',
  security: 'security.* attributes',
  capability: 'file capabilities (security.capability)',
  acl: 'POSIX ACLs',
  other: 'system.* attributes',
};

const PRIVILEGE: Record<XattrKind, string> = {
  user: 'only regular files and directories take them',
  trusted: 'they need root (CAP_SYS_ADMIN)',
  security: 'they need root, and the security module may refuse them',
  capability: 'they need root (CAP_SETFCAP)',
  acl: "they need the entry's owner or root",
  other: 'they need root',
};

/** The two bindings behind one shape: names as strings, values as bytes. */
interface Access {
  list(): string[];
  /** Null when the attribute does not exist; the path binding also returns null on any error. */
  get(name: string): Buffer | null;
  set(name: string, value: Buffer): void;
}

interface PathBinding {
  listAttributesSync(path: string): string[];
  getAttributeSync(path: string, name: string): Buffer | null;
  setAttributeSync(path: string, name: string, value: Uint8Array): void;
}

interface FdBinding {
  listAttrsSync(fd: number): string[];
  getAttrSync(fd: number, name: string): Buffer | null;
  setAttrSync(fd: number, name: string, value: Uint8Array): void;
}

// Loaded on first use: the CLI imports every command, and most never touch an attribute.
const require = createRequire(import.meta.url);
let pathBinding: PathBinding | undefined;
let fdBinding: FdBinding | undefined;

function pathAccess(path: string): Access {
  const binding = (pathBinding ??= require('@napi-rs/xattr') as PathBinding);
  return {
    list: () => binding.listAttributesSync(path),
    get: (name) => binding.getAttributeSync(path, name),
    set: (name, value) => binding.setAttributeSync(path, name, value),
  };
}

function fdAccess(fd: number): Access {
  const binding = (fdBinding ??= require('fs-native-extensions') as FdBinding);
  return {
    list: () => binding.listAttrsSync(fd),
    get: (name) => binding.getAttrSync(fd, name),
    set: (name, value) => binding.setAttrSync(fd, name, value),
  };
}

// Linux's O_PATH (0o10000000 on every architecture Node builds for); Node does not export it. An
// O_PATH fd needs search permission on the ancestors only, like the l*xattr calls on the path.
const O_PATH = 0o10000000;
const { O_DIRECTORY, O_NOATIME, O_NOFOLLOW, O_NONBLOCK, O_RDONLY } = constants;

type Purpose = 'read' | 'write';

/** Runs `use` with a way to reach the attributes of `path` itself; see the top of this file. */
function withAccess<T>(path: string, type: EntryType, purpose: Purpose, use: (access: Access) => T): T {
  if (!hasEscapedBytes(path)) return use(pathAccess(path));
  const slash = path.lastIndexOf('/');
  const dir = slash < 0 ? '.' : slash === 0 ? '/' : path.slice(0, slash);
  const leaf = path.slice(slash + 1);
  let fd: number;
  let access: (fd: number) => Access;
  if (!hasEscapedBytes(leaf)) {
    fd = openEntry(dir, O_PATH | O_DIRECTORY, path, purpose);
    access = (n) => pathAccess(`/proc/self/fd/${n}/${leaf}`);
  } else if (type === 'dir') {
    fd = openEntry(path, O_PATH | O_DIRECTORY | O_NOFOLLOW, path, purpose);
    access = (n) => pathAccess(`/proc/self/fd/${n}/.`);
  } else if (type === 'file') {
    fd = openFile(path, purpose);
    access = fdAccess;
  } else if (purpose === 'read') {
    throw new AmberError(
      'XATTRS_UNREADABLE',
      `the extended attributes of ${type} "${displayName(path)}" cannot be read: its name is not valid UTF-8`,
      { hint: 'rename it to a UTF-8 name to back up its attributes', details: { path: displayName(path), type } },
    );
  } else {
    throw new Error(
      `writeXattrs: ${type} "${displayName(path)}" has a non-UTF-8 name; set its attributes under a UTF-8 name and rename it`,
    );
  }
  try {
    return use(access(fd));
  } finally {
    closeSync(fd);
  }
}

/**
 * A regular file's fd for fgetxattr/fsetxattr (O_PATH fds give EBADF). A symlink put in its place
 * since lstat fails (O_NOFOLLOW); a fifo or device opens without blocking (O_NONBLOCK) and is refused.
 */
function openFile(path: string, purpose: Purpose): number {
  const flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK;
  let fd: number;
  try {
    fd = openEntry(path, flags | O_NOATIME, path, purpose);
  } catch (error) {
    // O_NOATIME is only for the file's owner (or CAP_FOWNER).
    if ((error as AmberError).details?.errno !== 'EPERM') throw error;
    fd = openEntry(path, flags, path, purpose);
  }
  if (!fstatSync(fd).isFile()) {
    closeSync(fd);
    const code = purpose === 'read' ? 'SOURCE_UNREADABLE' : 'TARGET_UNWRITABLE';
    throw new AmberError(code, `"${displayName(path)}" was replaced by another type of entry`, {
      details: { path: displayName(path) },
    });
  }
  return fd;
}

function openEntry(target: string, flags: number, path: string, purpose: Purpose): number {
  try {
    return openSync(nameBytes(target), flags);
  } catch (error) {
    throw entryError(purpose, path, errnoOf(error), error);
  }
}

function readAll(access: Access, path: string): Xattr[] {
  let names: string[];
  try {
    names = access.list();
  } catch (error) {
    if (errnoOf(error) === 'ENOTSUP') return [];
    throw entryError('read', path, errnoOf(error), error);
  }
  const xattrs: Xattr[] = [];
  for (const name of names) {
    const value = readOne(access, name, path);
    if (value !== null) xattrs.push({ name, value });
  }
  return xattrs.sort((a, b) => compareNameBytes(a.name, b.name));
}

/**
 * One listed attribute's value, or null when it was removed since the listing. The path binding
 * answers null for every error, so a null is checked against a new listing and one more read.
 */
function readOne(access: Access, name: string, path: string): Buffer | null {
  try {
    const value = access.get(name);
    if (value !== null) return value;
    if (!access.list().includes(name)) return null;
    const again = access.get(name);
    if (again !== null) return again;
  } catch (error) {
    throw entryError('read', path, errnoOf(error), error, `extended attribute "${displayName(name)}"`);
  }
  throw new AmberError(
    'SOURCE_UNREADABLE',
    `extended attribute "${displayName(name)}" of "${displayName(path)}" is listed but could not be read`,
    {
      hint: 'run with permission to read it, or exclude the entry',
      details: { path: displayName(path), attribute: displayName(name) },
    },
  );
}

/** Errors that concern the entry as a whole: no attribute can be set, so they are not per-kind failures. */
const ENTRY_ERRORS = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'ENAMETOOLONG', 'EROFS', 'EIO', 'EBADF']);

function writeAll(access: Access, path: string, xattrs: readonly Xattr[]): XattrFailure[] {
  const failures = new Map<string, XattrFailure>();
  for (const { name, value } of xattrs) {
    try {
      access.set(name, value);
    } catch (error) {
      let errno = errnoOf(error);
      if (errno === undefined || ENTRY_ERRORS.has(errno)) throw entryError('write', path, errno, error);
      const kind = xattrKind(name);
      // The kernel answers EOPNOTSUPP to an ACL whose header is not version 2 (posix_acl_from_xattr),
      // which would be reported as a filesystem without ACLs: it is a malformed value.
      if (errno === 'ENOTSUP' && kind === 'acl' && !(value.length >= 4 && value.readUInt32LE(0) === 2))
        errno = 'EINVAL';
      const key = `${kind} ${errno}`;
      const failure = failures.get(key) ?? { kind, errno, names: [] };
      failure.names.push(name);
      failures.set(key, failure);
    }
  }
  return [...failures.values()];
}

function entryError(purpose: Purpose, path: string, errno: string | undefined, cause: unknown, what?: string) {
  const shown = displayName(path);
  const subject = what ? `${what} of "${shown}"` : `the extended attributes of "${shown}"`;
  const reason = errno ?? (cause instanceof Error ? cause.message : String(cause));
  const details = { path: shown, errno };
  if (purpose === 'write') {
    return new AmberError('TARGET_UNWRITABLE', `${subject} could not be set (${reason})`, { cause, details });
  }
  if (errno === 'ENOENT') {
    return new AmberError('SOURCE_NOT_FOUND', `"${shown}" does not exist`, {
      hint: 'check the path; a file removed during the backup is reported like this',
      cause,
      details,
    });
  }
  return new AmberError('SOURCE_UNREADABLE', `${subject} could not be read (${reason})`, {
    hint: errno === 'EACCES' || errno === 'EPERM' ? 'run with permission to read it, or exclude it' : undefined,
    cause,
    details,
  });
}

/** errno numbers to names; ENOTSUP and EOPNOTSUPP are one number on Linux and named ENOTSUP here. */
const ERRNO_NAMES = new Map<number, string>();
for (const [name, value] of Object.entries(osConstants.errno))
  if (!ERRNO_NAMES.has(value)) ERRNO_NAMES.set(value, name);
ERRNO_NAMES.set(osConstants.errno.ENOTSUP, 'ENOTSUP');

/**
 * The errno name of an error from Node's fs or fs-native-extensions (`code`), or from the napi-rs
 * binding, whose errors carry only Rust's message ("Permission denied (os error 13)").
 */
export function errnoOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code)) return code === 'EOPNOTSUPP' ? 'ENOTSUP' : code;
  const match = /\(os error (\d+)\)/.exec(error instanceof Error ? error.message : '');
  return match ? (ERRNO_NAMES.get(Number(match[1])) ?? `errno ${match[1]}`) : undefined;
}
