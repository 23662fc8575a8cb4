// What a backup records about one filesystem entry, read with lstat so symlinks are never followed.
import { lstatSync, readlinkSync } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import { AmberError } from '../../core/errors.ts';
import { displayName, fsPath, nameFromBytes } from '../../core/byte-names.ts';

export type EntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'chardev' | 'blockdev';

export interface EntryMeta {
  /** The entry's own name (one path component); bytes that are not UTF-8 are escaped (core/byte-names.ts). */
  name: string;
  type: EntryType;
  /** Permission, setuid, setgid and sticky bits only (`st_mode & 0o7777`); the type is in `type`. */
  mode: number;
  uid: number;
  gid: number;
  /** `st_size`: bytes for files, target length for symlinks; filesystem-dependent for directories. */
  sizeBytes: number;
  mtimeNs: bigint;
  /**
   * Absent for directories and symlinks: listing a directory and reading a link are accesses that
   * no flag can make silent from Node, so their access time would only record the backup's visit.
   */
  atimeNs?: bigint;
  /** Changes on any metadata update; used to notice changed files, never restored. */
  ctimeNs: bigint;
  inode: bigint;
  /** `st_dev` of the filesystem holding the entry; with `inode` it identifies hard links. */
  deviceId: bigint;
  nlink: number;
  /** Symlink target exactly as readlink returns its bytes (escaped like names where not UTF-8). */
  linkTarget?: string;
  /** Device number of a character or block device. */
  rdev?: bigint;
  /** Extended attributes (POSIX ACLs included), sorted by name; absent when there are none. */
  xattrs?: { name: string; value: Buffer }[];
}

/**
 * Reads the metadata of `path` (never following a symlink); `name` is its last component.
 * Synchronous on purpose: an lstat from the page cache takes microseconds, far less than a round
 * trip through libuv's thread pool, and the metadata path is what a no-change backup is made of.
 */
export function readEntryMeta(path: string, name: string): EntryMeta {
  let stats: BigIntStats;
  let linkTarget: string | undefined;
  try {
    const at = fsPath(path);
    stats = lstatSync(at, { bigint: true });
    if (stats.isSymbolicLink()) linkTarget = nameFromBytes(readlinkSync(at, { encoding: 'buffer' }));
  } catch (error) {
    throw translateSourceError(error, path);
  }
  return metaFromStats(name, stats, linkTarget);
}

/** Builds an EntryMeta from lstat results a caller already has; symlinks need their target. */
export function metaFromStats(name: string, stats: BigIntStats, linkTarget?: string): EntryMeta {
  const type = entryTypeOf(stats);
  if (type === 'symlink' && linkTarget === undefined) {
    throw new Error(`metaFromStats: symlink "${name}" needs its link target`);
  }
  const meta: EntryMeta = {
    name,
    type,
    mode: Number(stats.mode & 0o7777n),
    uid: Number(stats.uid),
    gid: Number(stats.gid),
    sizeBytes: Number(stats.size),
    mtimeNs: stats.mtimeNs,
    ctimeNs: stats.ctimeNs,
    inode: stats.ino,
    deviceId: stats.dev,
    nlink: Number(stats.nlink),
  };
  if (type !== 'dir' && type !== 'symlink') meta.atimeNs = stats.atimeNs;
  if (type === 'symlink') meta.linkTarget = linkTarget;
  if (type === 'chardev' || type === 'blockdev') meta.rdev = stats.rdev;
  return meta;
}

export function entryTypeOf(stats: BigIntStats): EntryType {
  if (stats.isFile()) return 'file';
  if (stats.isDirectory()) return 'dir';
  if (stats.isSymbolicLink()) return 'symlink';
  if (stats.isFIFO()) return 'fifo';
  if (stats.isSocket()) return 'socket';
  if (stats.isCharacterDevice()) return 'chardev';
  if (stats.isBlockDevice()) return 'blockdev';
  throw new AmberError('SOURCE_UNREADABLE', `file type ${(stats.mode & 0o170000n).toString(8)} is not supported`, {
    hint: 'exclude the entry from the backup',
  });
}

/**
 * Converts nanoseconds since the epoch into what fs.utimes/lutimes take: seconds as a numeric string.
 * Node passes a numeric string through as the number it spells, negative ones included, while it
 * silently replaces a negative *number* (a time before 1970) with the current time. The number is a
 * double, so a restored time is within about 240 ns of `ns` before 2038 and 480 ns before 2106 (Node
 * has no call that takes integer nanoseconds: nodejs/node#50859); before 1970 it is closer still.
 */
export function utimeSecondsFromNs(ns: bigint): string {
  const negative = ns < 0n;
  const magnitude = negative ? -ns : ns;
  const whole = magnitude / 1_000_000_000n;
  const fraction = (magnitude % 1_000_000_000n).toString().padStart(9, '0');
  return `${negative ? '-' : ''}${whole}.${fraction}`;
}

/** Maps an fs error on a source path to SOURCE_NOT_FOUND or SOURCE_UNREADABLE. */
export function translateSourceError(error: unknown, path: string): unknown {
  if (error instanceof AmberError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') {
    return new AmberError('SOURCE_NOT_FOUND', `"${displayName(path)}" does not exist`, {
      hint: 'check the path; a file removed during the backup is reported like this',
      cause: error,
      details: { path },
    });
  }
  if (typeof code === 'string') {
    return new AmberError('SOURCE_UNREADABLE', `"${displayName(path)}" could not be read (${code})`, {
      hint: code === 'EACCES' || code === 'EPERM' ? 'run with permission to read it, or exclude it' : undefined,
      cause: error,
      details: { path, errno: code },
    });
  }
  return error;
}
