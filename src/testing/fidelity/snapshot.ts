// The fidelity tests' own record of a tree, independent of Amber's source code: every name and link
// target stays the bytes the kernel returned (Buffer paths throughout, never decoded), every stat is
// read with bigint, and two records are compared field by field.
//
// Reading must not change what it records: regular files are opened with O_NOATIME, so hashing them
// leaves their atime alone. Directories (readdir) and symlinks (readlink) cannot be read that way and
// under relatime their atime moves on the first read after any change, which is why compareTrees
// ignores atime for those two types unless told otherwise.
import { createHash } from 'node:crypto';
import { closeSync, constants, lstatSync, openSync, readdirSync, readlinkSync, readSync } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import { displayName, nameFromBytes } from '../../core/byte-names.ts';
import { type EntryType, entryTypeOf } from '../../source/fs/entry-meta.ts';

/** Reads the extended attributes of one entry; `path` is an Amber string (lone surrogates for bad bytes). */
export type XattrReader = (path: string, type: EntryType) => { name: string; value: Buffer }[];

export interface SnapshotOptions {
  /** Without it, xattrs are not recorded. */
  xattrs?: XattrReader;
}

/** Files at least this large record their allocation: the sparse ones (small files' says nothing). */
export const ALLOCATION_RECORDED_FROM_BYTES = 1024 * 1024;

export interface EntryRecord {
  /** The path below the root, as bytes; empty for the root itself. */
  path: Buffer;
  type: EntryType;
  /** `st_mode & 0o7777`. */
  mode: number;
  uid: number;
  gid: number;
  /** `st_size`; absent for directories, whose size depends on the filesystem's history. */
  size?: number;
  mtimeNs: bigint;
  atimeNs: bigint;
  /** Character and block devices. */
  rdev?: bigint;
  /** Symlinks: the target bytes, as hex. */
  linkTarget?: string;
  /** Regular files: SHA-256 of the content, hex. */
  contentSha256?: string;
  /** Non-directories whose inode other paths in the tree share: all of them (keys), sorted. */
  hardLinks?: string[];
  /** `st_blocks * 512` for regular files of ALLOCATION_RECORDED_FROM_BYTES or more. */
  allocatedBytes?: number;
  /** Attribute name → value as hex, by name; only when an xattr reader was given. */
  xattrs?: Record<string, string>;
}

/** The key of a relative path: its bytes as hex. */
export function pathKey(relative: Buffer): string {
  return relative.toString('hex');
}

/** A key as a person reads it: non-UTF-8 bytes and control characters escaped, "." for the root. */
export function showKey(key: string): string {
  return key === '' ? '.' : displayName(nameFromBytes(Buffer.from(key, 'hex')));
}

const SLASH = Buffer.from('/');
const CHUNK = 4 * 1024 * 1024;

/** Records every entry under `root` (the root included, key ""), keyed by pathKey, in byte order. */
export function snapshotOfTree(root: string | Buffer, options: SnapshotOptions = {}): Map<string, EntryRecord> {
  const records = new Map<string, EntryRecord>();
  const inodes = new Map<string, string[]>();
  const chunk = Buffer.allocUnsafe(CHUNK);
  const rootBytes = typeof root === 'string' ? Buffer.from(root) : root;

  const visit = (absolute: Buffer, relative: Buffer) => {
    const stats = lstatSync(absolute, { bigint: true });
    const record = recordOf(absolute, relative, stats, chunk, options);
    const key = pathKey(relative);
    records.set(key, record);
    if (record.type !== 'dir' && stats.nlink > 1n) {
      const inode = `${stats.dev}:${stats.ino}`;
      const group = inodes.get(inode);
      if (group) group.push(key);
      else inodes.set(inode, [key]);
    }
    if (record.type !== 'dir') return;
    const names = readdirSync(absolute, { encoding: 'buffer' }).sort(Buffer.compare);
    for (const name of names) {
      visit(
        Buffer.concat([absolute, SLASH, name]),
        relative.length === 0 ? name : Buffer.concat([relative, SLASH, name]),
      );
    }
  };
  visit(rootBytes, Buffer.alloc(0));

  for (const group of inodes.values()) {
    if (group.length < 2) continue;
    const sorted = [...group].sort((a, b) => Buffer.compare(Buffer.from(a, 'hex'), Buffer.from(b, 'hex')));
    for (const key of group) records.get(key)!.hardLinks = sorted;
  }
  return records;
}

function recordOf(
  absolute: Buffer,
  relative: Buffer,
  stats: BigIntStats,
  chunk: Buffer,
  options: SnapshotOptions,
): EntryRecord {
  const type = entryTypeOf(stats);
  const record: EntryRecord = {
    path: relative,
    type,
    mode: Number(stats.mode & 0o7777n),
    uid: Number(stats.uid),
    gid: Number(stats.gid),
    mtimeNs: stats.mtimeNs,
    atimeNs: stats.atimeNs,
  };
  if (type !== 'dir') record.size = Number(stats.size);
  if (type === 'chardev' || type === 'blockdev') record.rdev = stats.rdev;
  if (type === 'symlink') record.linkTarget = readlinkSync(absolute, { encoding: 'buffer' }).toString('hex');
  if (type === 'file') {
    record.contentSha256 = hashFile(absolute, chunk);
    if (stats.size >= BigInt(ALLOCATION_RECORDED_FROM_BYTES)) record.allocatedBytes = Number(stats.blocks * 512n);
  }
  if (options.xattrs) {
    const entries = options.xattrs(nameFromBytes(absolute), type);
    const sorted = [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    record.xattrs = Object.fromEntries(sorted.map(({ name, value }) => [name, value.toString('hex')]));
  }
  return record;
}

/** SHA-256 of a file's content without touching its atime; an unreadable file records why. */
function hashFile(path: Buffer, chunk: Buffer): string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOATIME);
  } catch (error) {
    // O_NOATIME needs the owner or CAP_FOWNER; anyone else reads the plain way.
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EPERM') return `unreadable (${code})`;
    try {
      fd = openSync(path, constants.O_RDONLY);
    } catch (again) {
      return `unreadable (${(again as NodeJS.ErrnoException).code})`;
    }
  }
  try {
    const hash = createHash('sha256');
    for (let read: number; (read = readSync(fd, chunk, 0, chunk.length, null)) > 0; )
      hash.update(chunk.subarray(0, read));
    return hash.digest('hex');
  } finally {
    closeSync(fd);
  }
}

export type RecordField = Exclude<keyof EntryRecord, 'path'>;

export interface CompareOptions {
  /** Fields left out, e.g. ['atimeNs'], or ['uid', 'gid'] for a run without root. */
  ignore?: readonly RecordField[];
  /** Largest mtime or atime difference still counted as equal; default 0 (Node sets times through a double). */
  timeToleranceNs?: bigint;
  /** Types whose atime is not compared; default ['dir', 'symlink'] (reading them moves it, see above). */
  ignoreAtimeOf?: readonly EntryType[];
}

export interface Difference {
  key: string;
  /** The path as a person reads it (showKey). */
  path: string;
  /** `presence` for an entry on one side only. */
  field: RecordField | 'presence';
  /** For `xattrs`: the attribute that differs. */
  xattr?: string;
  expected?: string;
  actual?: string;
  message: string;
}

/** Human-readable differences between two snapshots, field by field; empty when they agree. */
export function compareTrees(
  expected: Map<string, EntryRecord>,
  actual: Map<string, EntryRecord>,
  options: CompareOptions = {},
): string[] {
  return diffTrees(expected, actual, options).map((difference) => difference.message);
}

const FIELDS: readonly RecordField[] = [
  'type',
  'mode',
  'uid',
  'gid',
  'size',
  'mtimeNs',
  'atimeNs',
  'rdev',
  'linkTarget',
  'contentSha256',
  'hardLinks',
  'allocatedBytes',
  'xattrs',
];

/** The differences as records, for callers that sort them by kind (the restic comparison). */
export function diffTrees(
  expected: Map<string, EntryRecord>,
  actual: Map<string, EntryRecord>,
  options: CompareOptions = {},
): Difference[] {
  const ignored = new Set<string>(options.ignore ?? []);
  const tolerance = options.timeToleranceNs ?? 0n;
  const atimeIgnoredFor = new Set<string>(options.ignoreAtimeOf ?? ['dir', 'symlink']);
  const differences: Difference[] = [];
  const add = (
    key: string,
    field: Difference['field'],
    detail: Omit<Difference, 'key' | 'path' | 'field' | 'message'>,
  ) => {
    const path = showKey(key);
    const what = detail.xattr === undefined ? field : `xattr ${detail.xattr}`;
    const message =
      field === 'presence'
        ? `${path}: ${detail.expected === undefined ? 'only in actual' : 'missing from actual'} (${detail.expected ?? detail.actual})`
        : `${path}: ${what}: expected ${detail.expected ?? '(none)'}, actual ${detail.actual ?? '(none)'}`;
    differences.push({ key, path, field, ...detail, message });
  };

  for (const [key, want] of expected) {
    const got = actual.get(key);
    if (!got) {
      add(key, 'presence', { expected: want.type });
      continue;
    }
    if (want.type !== got.type) {
      if (!ignored.has('type')) add(key, 'type', { expected: want.type, actual: got.type });
      continue;
    }
    for (const field of FIELDS) {
      if (field === 'type' || ignored.has(field)) continue;
      if (field === 'atimeNs' && atimeIgnoredFor.has(want.type)) continue;
      if (field === 'xattrs') {
        compareXattrs(key, want.xattrs, got.xattrs, add);
        continue;
      }
      const a = want[field];
      const b = got[field];
      if (field === 'mtimeNs' || field === 'atimeNs') {
        const delta = (a as bigint) - (b as bigint);
        if (delta > tolerance || -delta > tolerance)
          add(key, field, {
            expected: showTime(a as bigint),
            actual: `${showTime(b as bigint)}, off by ${delta < 0n ? -delta : delta} ns`,
          });
        continue;
      }
      if (same(a, b)) continue;
      add(key, field, { expected: showValue(field, a), actual: showValue(field, b) });
    }
  }
  for (const [key, got] of actual) if (!expected.has(key)) add(key, 'presence', { actual: got.type });
  return differences;
}

function same(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((item, i) => item === b[i]);
  return a === b;
}

function compareXattrs(
  key: string,
  want: Record<string, string> | undefined,
  got: Record<string, string> | undefined,
  add: (key: string, field: 'xattrs', detail: Omit<Difference, 'key' | 'path' | 'field' | 'message'>) => void,
): void {
  if (want === undefined && got === undefined) return;
  if (want === undefined || got === undefined) {
    add(key, 'xattrs', {
      expected: want ? 'recorded' : 'not recorded',
      actual: got ? 'recorded' : 'not recorded (no reader given on one side)',
    });
    return;
  }
  const names = [...new Set([...Object.keys(want), ...Object.keys(got)])].sort();
  for (const name of names) {
    const [a, b] = [want[name], got[name]];
    if (a === b) continue;
    add(key, 'xattrs', { xattr: name, ...showHexPair(a, b) });
  }
}

/** Two attribute values, around the first byte where they differ when both are long. */
function showHexPair(a: string | undefined, b: string | undefined): { expected?: string; actual?: string } {
  let from = 0;
  if (a !== undefined && b !== undefined) {
    while (from < a.length && a.slice(from, from + 2) === b.slice(from, from + 2)) from += 2;
  }
  const show = (hex: string | undefined) => {
    if (hex === undefined) return undefined;
    const bytes = hex.length / 2;
    if (bytes <= 24) return `0x${hex} (${bytes} bytes)`;
    const start = Math.max(0, from - 8);
    return `${start > 0 ? '…' : '0x'}${hex.slice(start, start + 32)}${start + 32 < hex.length ? '…' : ''} (${bytes} bytes, first difference at byte ${from / 2})`;
  };
  return { expected: show(a), actual: show(b) };
}

function showValue(field: RecordField, value: unknown): string | undefined {
  if (value === undefined) return field === 'hardLinks' ? 'no other name' : undefined;
  switch (field) {
    case 'mode':
      return `0o${(value as number).toString(8).padStart(4, '0')}`;
    case 'rdev':
      return showDevice(value as bigint);
    case 'linkTarget':
      return JSON.stringify(displayName(nameFromBytes(Buffer.from(value as string, 'hex'))));
    case 'hardLinks':
      return `linked with ${(value as string[]).map(showKey).join(', ')}`;
    case 'allocatedBytes':
      return `${(value as number) / 1024} KiB`;
    default:
      return String(value);
  }
}

/** Linux dev_t as major:minor (the glibc encoding). */
export function showDevice(rdev: bigint): string {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

/** Nanoseconds since the epoch, also as an ISO date with all nine digits. */
export function showTime(ns: bigint): string {
  let seconds = ns / 1_000_000_000n;
  let fraction = ns % 1_000_000_000n;
  if (fraction < 0n) {
    fraction += 1_000_000_000n;
    seconds -= 1n;
  }
  const iso = new Date(Number(seconds) * 1000).toISOString().replace(/\.\d{3}Z$/, '');
  return `${ns} ns (${iso}.${fraction.toString().padStart(9, '0')}Z)`;
}
