// What a backup records about one filesystem entry, read with lstat so symlinks are never followed.
import { lstatSync, readlinkSync } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import { AmberError } from '../../core/errors.ts';

export type EntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'chardev' | 'blockdev';

export interface EntryMeta {
  /** The entry's own name (one path component), as Node decodes it from the directory. */
  name: string;
  type: EntryType;
  /** Permission, setuid, setgid and sticky bits only (`st_mode & 0o7777`); the type is in `type`. */
  mode: number;
  uid: number;
  gid: number;
  /** `st_size`: bytes for files, target length for symlinks; filesystem-dependent for directories. */
  sizeBytes: number;
  mtimeNs: bigint;
  /** Changes on any metadata update; used to notice changed files, never restored. */
  ctimeNs: bigint;
  inode: bigint;
  /** `st_dev` of the filesystem holding the entry; with `inode` it identifies hard links. */
  deviceId: bigint;
  nlink: number;
  /**
   * Symlink target exactly as readlink returns it, decoded as UTF-8. A target that is not valid UTF-8
   * is altered by the decoding (U+FFFD replaces bad bytes): a known limitation.
   */
  linkTarget?: string;
  /** Device number of a character or block device. */
  rdev?: bigint;
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
    stats = lstatSync(path, { bigint: true });
    if (stats.isSymbolicLink()) linkTarget = readlinkSync(path);
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
 * Converts nanoseconds since the epoch into the seconds number fs.utimes/lutimes take. Splitting
 * whole seconds from the fraction rounds only once; the result is within about 120 ns of `ns` for
 * dates before 2038 and 240 ns before 2106 (a double's precision), so restored times match to 1 µs.
 * Node (v24) silently replaces a negative number (a time before 1970) with the current time, so such
 * times cannot be restored through fs.utimes; callers must check `ns < 0n` themselves.
 */
export function utimeSecondsFromNs(ns: bigint): number {
  return Number(ns / 1_000_000_000n) + Number(ns % 1_000_000_000n) / 1e9;
}

/** Maps an fs error on a source path to SOURCE_NOT_FOUND or SOURCE_UNREADABLE. */
export function translateSourceError(error: unknown, path: string): unknown {
  if (error instanceof AmberError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') {
    return new AmberError('SOURCE_NOT_FOUND', `"${path}" does not exist`, {
      hint: 'check the path; a file removed during the backup is reported like this',
      cause: error,
      details: { path },
    });
  }
  if (typeof code === 'string') {
    return new AmberError('SOURCE_UNREADABLE', `"${path}" could not be read (${code})`, {
      hint: code === 'EACCES' || code === 'EPERM' ? 'run with permission to read it, or exclude it' : undefined,
      cause: error,
      details: { path, errno: code },
    });
  }
  return error;
}
