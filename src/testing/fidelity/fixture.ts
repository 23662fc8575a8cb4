// The fidelity fixture (issue #17): one tree holding everything a restore must bring back exactly,
// made with real syscalls. Names are built as bytes and every call gets a Buffer path, so names that
// are not UTF-8 reach the kernel unchanged. Extended attributes and ACLs go through an injected
// setXattr (Node has none), which takes Amber strings: bad bytes as lone surrogates.
//
// Order matters: contents, then owners (chown clears set-id bits and file capabilities), then modes,
// then xattrs and ACLs (an access ACL rewrites the group bits), then times, every non-directory first
// and then the directories deepest first, the root last, so that no later step moves a time.
import { execFileSync, spawnSync } from 'node:child_process';
import {
  closeSync,
  ftruncateSync,
  chmodSync,
  chownSync,
  lchownSync,
  linkSync,
  lutimesSync,
  mkdirSync,
  openSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { nameFromBytes } from '../../core/byte-names.ts';
import { ACL_ACCESS_XATTR, ACL_DEFAULT_XATTR, aclBlob } from './acl.ts';
import { pathKey } from './snapshot.ts';

export const FIXTURE_KINDS = [
  'nonUtf8Names',
  'oddNames',
  'symlinks',
  'fifos',
  'devices',
  'setIdBits',
  'modes',
  'owners',
  'hardLinks',
  'nsTimes',
  'pre1970Times',
  'y2100Times',
  'atimes',
  'directoryTimes',
  'sparseFiles',
  'bigSparse',
  'largeDirectory',
  'empty',
  'xattrs',
  'privilegedXattrs',
  'acls',
] as const;

/**
 * What each kind holds. Every kind lists the paths (pathKey) of the entries that carry it; the times
 * kinds list the entries whose time was set to such a value.
 */
export type FixtureKind = (typeof FIXTURE_KINDS)[number];

export interface FidelityOptions {
  /** Foreign owners, devices, trusted.* and security.capability: needs root (CAP_CHOWN, CAP_MKNOD…). */
  privileged: boolean;
  /** A 2 GiB sparse file (`sparse/big.bin`) with 12 KiB of data. */
  bigSparse: boolean;
  /** Sets one extended attribute on the path itself (never through a symlink); without it, no xattrs or ACLs. */
  setXattr?: (path: string, name: string, value: Buffer) => void;
}

export interface FixtureInfo {
  root: string;
  /** Entries per kind. */
  counts: Record<FixtureKind, number>;
  /** The entries of each kind, as snapshot keys (relative path bytes, hex). */
  paths: Record<FixtureKind, string[]>;
  /** Kinds left out, and why. */
  skipped: { kind: FixtureKind; reason: string }[];
  /** True when extended attributes (and ACLs) were set. */
  xattrs: boolean;
  elapsedMs: number;
}

/** Entries in `many/`. */
export const LARGE_DIRECTORY_ENTRIES = 20_000;
export const BIG_SPARSE_BYTES = 2 * 1024 ** 3;
export const SMALL_SPARSE_BYTES = 16 * 1024 ** 2;
/** Where `sparse/big.bin` holds data (4 KiB at each). */
export const BIG_SPARSE_DATA_OFFSETS = [0, 1024 ** 3 + 7, BIG_SPARSE_BYTES - 4096] as const;
export const FOREIGN_OWNER = { uid: 12345, gid: 23456 } as const;
export const NOBODY_ID = 65534;

/** Every byte value once, 0x00 to 0xff. */
export const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

/** A security.capability value (VFS_CAP_REVISION_2, effective): cap_net_bind_service permitted. */
export const CAPABILITY_BLOB = (() => {
  const blob = Buffer.alloc(20);
  blob.writeUInt32LE(0x02000001, 0);
  blob.writeUInt32LE(1 << 10, 4);
  return blob;
})();

type Part = string | Buffer | readonly number[];

/** A relative path from parts joined with "/": strings as UTF-8, arrays as raw bytes. */
export function bytePath(...parts: Part[]): Buffer {
  const pieces: Buffer[] = [];
  parts.forEach((part, i) => {
    if (i > 0) pieces.push(Buffer.from('/'));
    pieces.push(typeof part === 'string' ? Buffer.from(part, 'utf8') : Buffer.from(part as Uint8Array));
  });
  return Buffer.concat(pieces);
}

interface TimeSetting {
  relative: Buffer;
  atime: string;
  mtime: string;
  symlink: boolean;
  dir: boolean;
}

class Builder {
  readonly root: Buffer;
  readonly paths = Object.fromEntries(FIXTURE_KINDS.map((kind) => [kind, [] as string[]])) as Record<
    FixtureKind,
    string[]
  >;
  readonly skipped: FixtureInfo['skipped'] = [];
  readonly times: TimeSetting[] = [];
  readonly dirs: Buffer[] = [];
  /** Applied after every entry exists: owners first, then modes (chown clears set-id bits). */
  readonly ownersLater: { relative: Buffer; uid: number; gid: number; symlink: boolean }[] = [];
  readonly modesLater: [Buffer, number][] = [];

  constructor(root: string) {
    this.root = Buffer.from(root);
  }

  abs(relative: Buffer): Buffer {
    return relative.length === 0 ? this.root : Buffer.concat([this.root, Buffer.from('/'), relative]);
  }

  /** The absolute path as an Amber string, for setXattr. */
  amberPath(relative: Buffer): string {
    return nameFromBytes(this.abs(relative));
  }

  mark(relative: Buffer, ...kinds: FixtureKind[]): Buffer {
    for (const kind of kinds) {
      const list = this.paths[kind];
      const key = pathKey(relative);
      if (!list.includes(key)) list.push(key);
    }
    return relative;
  }

  dir(relative: Buffer, ...kinds: FixtureKind[]): Buffer {
    mkdirSync(this.abs(relative));
    this.dirs.push(relative);
    return this.mark(relative, ...kinds);
  }

  file(relative: Buffer, content: string | Buffer, ...kinds: FixtureKind[]): Buffer {
    writeFileSync(this.abs(relative), content, { flag: 'wx' });
    return this.mark(relative, ...kinds);
  }

  symlink(relative: Buffer, target: string | Buffer, ...kinds: FixtureKind[]): Buffer {
    symlinkSync(target, this.abs(relative));
    return this.mark(relative, 'symlinks', ...kinds);
  }

  /** Times as numeric strings of seconds: Node passes a negative string through, not a negative number. */
  time(relative: Buffer, mtime: string, atime: string, options: { symlink?: boolean; dir?: boolean } = {}): void {
    this.times.push({ relative, mtime, atime, symlink: options.symlink ?? false, dir: options.dir ?? false });
  }

  applyOwnersAndModes(): void {
    for (const { relative, uid, gid, symlink } of this.ownersLater) {
      if (symlink) lchownSync(this.abs(relative), uid, gid);
      else chownSync(this.abs(relative), uid, gid);
    }
    for (const [relative, mode] of this.modesLater) chmodSync(this.abs(relative), mode);
  }

  skip(kind: FixtureKind, reason: string): void {
    this.skipped.push({ kind, reason });
  }

  applyTimes(): void {
    const explicit = new Set(this.times.filter((t) => t.dir).map((t) => pathKey(t.relative)));
    // Every directory gets a time of its own with nanoseconds, unless a kind above chose one.
    this.dirs.forEach((relative, i) => {
      if (explicit.has(pathKey(relative))) return;
      const ns = String(100_000_007 + i * 1_234_567).padStart(9, '0');
      this.time(relative, `1750000${String(i).padStart(3, '0')}.${ns}`, `1740000000.${ns}`, { dir: true });
      this.mark(relative, 'directoryTimes');
    });
    const depth = (relative: Buffer) => (relative.length === 0 ? -1 : relative.filter((byte) => byte === 0x2f).length);
    const order = [
      ...this.times.filter((t) => !t.dir),
      ...this.times.filter((t) => t.dir).sort((a, b) => depth(b.relative) - depth(a.relative)),
    ];
    for (const { relative, atime, mtime, symlink } of order) {
      // The type says number | string | Date; a numeric string goes to the syscall as it is.
      if (symlink) lutimesSync(this.abs(relative), atime, mtime);
      else utimesSync(this.abs(relative), atime, mtime);
    }
  }
}

/**
 * Builds the fixture under `root`, which must not exist yet (its parent must). Run as root with
 * `privileged` for owners, devices and the privileged xattrs. Times are set as exactly as Node
 * allows (about 240 ns); snapshot the tree afterwards for the values the kernel actually holds.
 */
export async function buildFidelityTree(root: string, options: FidelityOptions): Promise<FixtureInfo> {
  const started = performance.now();
  const b = new Builder(root);
  mkdirSync(b.root);
  b.dirs.push(Buffer.alloc(0));

  buildNames(b);
  buildSymlinks(b);
  buildSpecial(b, options);
  buildModes(b, options);
  buildOwners(b, options);
  buildHardLinks(b);
  buildTimes(b);
  buildSparse(b, options);
  buildLargeDirectory(b);
  b.dir(bytePath('empty'));
  b.file(bytePath('empty', 'file'), '', 'empty');
  b.dir(bytePath('empty', 'dir'), 'empty');
  b.applyOwnersAndModes();
  buildXattrs(b, options);
  b.applyTimes();

  const counts = Object.fromEntries(FIXTURE_KINDS.map((kind) => [kind, b.paths[kind].length])) as Record<
    FixtureKind,
    number
  >;
  return {
    root,
    counts,
    paths: b.paths,
    skipped: b.skipped,
    xattrs: options.setXattr !== undefined,
    elapsedMs: Math.round(performance.now() - started),
  };
}

function buildNames(b: Builder): void {
  b.dir(bytePath('names'));
  b.file(bytePath('names', [0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74]), 'latin-1 name\n', 'nonUtf8Names');
  const dir = b.dir(bytePath('names', [0xff, 0xfe]), 'nonUtf8Names');
  b.file(bytePath(dir, 'inside.txt'), 'in a directory whose name is not UTF-8\n', 'nonUtf8Names');
  b.file(bytePath(dir, [0x80, 0x2d, 0x6c, 0x6f, 0x6e, 0x65]), 'lone continuation byte\n', 'nonUtf8Names');
  b.file(
    bytePath(dir, [0xc0, 0xaf, 0x2d, 0x6f, 0x76, 0x65, 0x72, 0x6c, 0x6f, 0x6e, 0x67]),
    'overlong /\n',
    'nonUtf8Names',
  );
  // A lone surrogate encoded as UTF-8 (ed a0 80): CESU-style, invalid in UTF-8.
  b.file(bytePath('names', [0xed, 0xa0, 0x80, 0x2e, 0x62, 0x69, 0x6e]), 'encoded surrogate\n', 'nonUtf8Names');
  b.file(bytePath('names', 'line\nbreak.txt'), 'newline\n', 'oddNames');
  b.file(bytePath('names', 'back\\slash.txt'), 'backslash\n', 'oddNames');
  b.file(bytePath('names', 'ctrl-\x01-\x1b[31m.txt'), 'control bytes\n', 'oddNames');
  b.file(bytePath('names', 'emoji-😀🎉-👩‍👩‍👧.txt'), 'emoji\n', 'oddNames');
  // The same visible name twice: NFC and NFD are different bytes, so two files.
  b.file(bytePath('names', '\u00e9.txt'), 'NFC\n', 'oddNames');
  b.file(bytePath('names', 'e\u0301.txt'), 'NFD\n', 'oddNames');
  b.file(bytePath('names', ' leading space and trailing '), 'spaces\n', 'oddNames');
  b.file(bytePath('names', '-dash'), 'dash\n', 'oddNames');
  b.file(bytePath('names', 'n'.repeat(255)), 'NAME_MAX\n', 'oddNames');
}

function buildSymlinks(b: Builder): void {
  b.dir(bytePath('symlinks'));
  b.file(bytePath('symlinks', 'target.txt'), 'symlink target\n');
  b.symlink(bytePath('symlinks', 'normal'), 'target.txt');
  b.symlink(bytePath('symlinks', 'to-dir'), '../names');
  b.symlink(bytePath('symlinks', 'absolute'), '/etc/hostname');
  b.symlink(bytePath('symlinks', 'dangling'), 'does/not/exist');
  b.symlink(bytePath('symlinks', 'loop-a'), 'loop-b');
  b.symlink(bytePath('symlinks', 'loop-b'), 'loop-a');
  // Target bytes that are not UTF-8 (it points at names/caf\xe9.txt).
  b.symlink(
    bytePath('symlinks', 'non-utf8-target'),
    bytePath('..', 'names', [0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74]),
    'nonUtf8Names',
  );
  b.symlink(bytePath('symlinks', 'newline-target'), 'line\nbreak', 'oddNames');
}

function buildSpecial(b: Builder, options: FidelityOptions): void {
  b.dir(bytePath('special'));
  execFileSync('mkfifo', ['-m', '0640', b.abs(bytePath('special', 'fifo')).toString()]);
  b.mark(bytePath('special', 'fifo'), 'fifos');
  if (!options.privileged) {
    b.skip('devices', 'not privileged: mknod of devices needs CAP_MKNOD');
    return;
  }
  execFileSync('/usr/bin/mknod', ['-m', '0666', b.abs(bytePath('special', 'null')).toString(), 'c', '1', '3']);
  execFileSync('/usr/bin/mknod', ['-m', '0660', b.abs(bytePath('special', 'loop0')).toString(), 'b', '7', '0']);
  b.mark(bytePath('special', 'null'), 'devices');
  b.mark(bytePath('special', 'loop0'), 'devices');
}

function buildModes(b: Builder, options: FidelityOptions): void {
  b.dir(bytePath('modes'));
  const setuid = b.file(bytePath('modes', 'setuid'), '#!/bin/sh\n', 'setIdBits');
  const setgid = b.dir(bytePath('modes', 'setgid-dir'), 'setIdBits');
  b.file(bytePath(setgid, 'child'), 'in a setgid directory\n');
  const sticky = b.dir(bytePath('modes', 'sticky-dir'), 'setIdBits');
  const both = b.file(bytePath('modes', 'setuid-setgid'), '#!/bin/sh\n', 'setIdBits');
  // A read-only file and a directory nobody may write into, with a child: a restore must write them
  // before setting their modes. As root also a file nobody may read (without root no backup could).
  const readOnlyFile = b.file(bytePath('modes', 'read-only'), 'mode 0444\n', 'modes');
  const readOnly = b.dir(bytePath('modes', 'read-only-dir'), 'modes');
  b.file(bytePath(readOnly, 'child'), 'in a read-only directory\n');
  b.modesLater.push([setuid, 0o4755], [setgid, 0o2755], [sticky, 0o1777], [both, 0o6711]);
  b.modesLater.push([readOnlyFile, 0o444], [readOnly, 0o555]);
  if (options.privileged) b.modesLater.push([b.file(bytePath('modes', 'no-access'), 'mode 0000\n', 'modes'), 0]);
}

function buildOwners(b: Builder, options: FidelityOptions): void {
  if (!options.privileged) {
    b.skip('owners', 'not privileged: chown to other users needs CAP_CHOWN');
    return;
  }
  const dir = b.dir(bytePath('owners'));
  const { uid, gid } = FOREIGN_OWNER;
  const owned = [
    { relative: b.file(bytePath(dir, 'foreign-file'), 'owned by 12345:23456\n', 'owners'), uid, gid },
    {
      relative: b.file(bytePath(dir, 'nobody-file'), 'owned by 65534:65534\n', 'owners'),
      uid: NOBODY_ID,
      gid: NOBODY_ID,
    },
    { relative: b.file(bytePath(dir, 'mixed-file'), 'owned by 0:23456\n', 'owners'), uid: 0, gid },
    { relative: b.dir(bytePath(dir, 'foreign-dir'), 'owners'), uid, gid },
    { relative: b.symlink(bytePath(dir, 'foreign-symlink'), 'foreign-file', 'owners'), uid, gid, symlink: true },
    // chown clears the set-uid bit, so a set-uid file of another user tests the order on restore.
    { relative: b.file(bytePath(dir, 'foreign-setuid'), '#!/bin/sh\n', 'owners', 'setIdBits'), uid, gid },
  ];
  for (const { relative, uid, gid, symlink } of owned)
    b.ownersLater.push({ relative, uid, gid, symlink: symlink ?? false });
  b.file(bytePath(dir, 'foreign-dir', 'child'), 'root-owned file in a foreign directory\n');
  b.modesLater.push([bytePath(dir, 'foreign-setuid'), 0o4750]);
}

function buildHardLinks(b: Builder): void {
  const dir = b.dir(bytePath('hardlinks'));
  for (const sub of ['a', 'b', 'c']) b.dir(bytePath(dir, sub));
  const first = b.file(bytePath(dir, 'a', 'original'), 'one inode, three names\n', 'hardLinks');
  for (const other of [bytePath(dir, 'b', 'second'), bytePath(dir, 'c', 'third')]) {
    linkSync(b.abs(first), b.abs(other));
    b.mark(other, 'hardLinks');
  }
  // Shared times: set once, through any of the names.
  b.time(first, '1600000000.111111111', '1600000100.222222222');
  // A second group inside one directory, so a restore that links only across directories shows.
  const pair = b.file(bytePath(dir, 'a', 'pair-1'), 'two names in one directory\n', 'hardLinks');
  linkSync(b.abs(pair), b.abs(bytePath(dir, 'a', 'pair-2')));
  b.mark(bytePath(dir, 'a', 'pair-2'), 'hardLinks');
}

function buildTimes(b: Builder): void {
  const dir = b.dir(bytePath('times'));
  const file = (name: string, mtime: string, atime: string, ...kinds: FixtureKind[]) => {
    const relative = b.file(bytePath(dir, name), `${name}\n`, ...kinds, 'atimes');
    b.time(relative, mtime, atime);
  };
  // Before 1970: negative seconds, passed as strings (Node turns a negative number into "now").
  file('1969-end', '-1.5', '-86400.25', 'pre1970Times');
  file('1969-ns', '-0.000001234', '-10.987654321', 'pre1970Times');
  file('1930-ns', '-1234567891.987654321', '-1234567000.5', 'pre1970Times');
  // Close to the earliest time ext4 keeps (-2^31 s, 1901-12-13T20:45:52Z); earlier ones are clamped to it.
  file('1901-ns', '-2147483000.75', '-2147483600.125', 'pre1970Times');
  // Nanoseconds in 2026.
  file('2026-ns', '1780000000.123456789', '1780003600.987654321', 'nsTimes');
  file('2026-more-ns', '1770000000.987654321', '1770000000.000000999', 'nsTimes');
  // After the 32-bit limit: 2038 and 2100.
  file('2038-after-int32', '2147483648.5', '2147483649.25', 'y2100Times');
  file('2100-ns', '4102444800.123456789', '4102444801.5', 'y2100Times');
  file('2100-end', '4133980799.999999', '4133980000.75', 'y2100Times');
  // Atime far from mtime, either way round.
  file('atime-older', '1700000000.5', '1600000000.25');
  file('atime-newer', '1600000000.25', '1700000000.5');
  // A directory before 1970, set after its child.
  const old = b.dir(bytePath(dir, 'old-dir'), 'pre1970Times', 'directoryTimes');
  b.file(bytePath(old, 'child'), 'child of a 1960s directory\n');
  b.time(old, '-300000000.123456789', '-299999000.5', { dir: true });
  const link = b.symlink(bytePath(dir, 'symlink-ns'), '2026-ns', 'nsTimes');
  b.time(link, '1780000000.555555555', '1780000000.666666666', { symlink: true });
}

/** ftruncate to `size`, then 4 KiB (or `length`) of non-zero data at each offset. */
function writeSparse(path: Buffer, size: number, writes: readonly [offset: number, length: number][]): void {
  const fd = openSync(path, 'wx');
  try {
    ftruncateSync(fd, size);
    writes.forEach(([offset, length], i) => {
      const data = Buffer.alloc(length, 0x41 + i);
      writeSync(fd, data, 0, length, offset);
    });
  } finally {
    closeSync(fd);
  }
}

function buildSparse(b: Builder, options: FidelityOptions): void {
  const dir = b.dir(bytePath('sparse'));
  const small = b.mark(bytePath(dir, 'small.bin'), 'sparseFiles');
  writeSparse(b.abs(small), SMALL_SPARSE_BYTES, [
    [0, 4096],
    [5 * 1024 ** 2 + 123, 1000],
    [SMALL_SPARSE_BYTES - 4096, 4096],
  ]);
  // Data, then a hole to the end: the size must come from a truncate, not from the last write.
  const tail = b.mark(bytePath(dir, 'hole-at-end.bin'), 'sparseFiles');
  writeSparse(b.abs(tail), 8 * 1024 ** 2, [[0, 4096]]);
  if (!options.bigSparse) {
    b.skip('bigSparse', 'bigSparse not asked for');
    return;
  }
  const big = b.mark(bytePath(dir, 'big.bin'), 'sparseFiles', 'bigSparse');
  writeSparse(
    b.abs(big),
    BIG_SPARSE_BYTES,
    BIG_SPARSE_DATA_OFFSETS.map((offset) => [offset, 4096] as [number, number]),
  );
}

function buildLargeDirectory(b: Builder): void {
  const dir = b.dir(bytePath('many'), 'largeDirectory');
  const base = b.abs(dir).toString();
  for (let i = 0; i < LARGE_DIRECTORY_ENTRIES; i++) {
    const name = `f${String(i).padStart(5, '0')}`;
    writeFileSync(`${base}/${name}`, `${i}\n`, { flag: 'wx' });
    b.paths.largeDirectory.push(pathKey(bytePath(dir, name)));
  }
}

function buildXattrs(b: Builder, options: FidelityOptions): void {
  const set = options.setXattr;
  if (!set) {
    for (const kind of ['xattrs', 'privilegedXattrs', 'acls'] as const) b.skip(kind, 'no setXattr given');
    return;
  }
  const attempt = (kind: FixtureKind, relative: Buffer, name: string, value: Buffer) => {
    try {
      set(b.amberPath(relative), name, value);
      b.mark(relative, kind);
    } catch (error) {
      b.skip(kind, `${name} on ${relative.toString()}: ${(error as Error).message.split('\n')[0]}`);
    }
  };
  const dir = b.dir(bytePath('xattrs'));
  const file = b.file(bytePath(dir, 'binary-values'), 'has user xattrs\n');
  attempt('xattrs', file, 'user.all-bytes', ALL_BYTES);
  attempt('xattrs', file, 'user.empty', Buffer.alloc(0));
  attempt('xattrs', file, 'user.nul-and-newline', Buffer.from('a\0b\nc'));
  attempt('xattrs', file, 'user.big', Buffer.from(Array.from({ length: 2000 }, (_, i) => (i * 7) & 0xff)));
  attempt('xattrs', b.dir(bytePath(dir, 'on-dir')), 'user.on-dir', Buffer.from('directory attribute'));
  attempt(
    'xattrs',
    bytePath('names', [0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74]),
    'user.latin1',
    Buffer.from([0xe9]),
  );
  if (options.privileged) {
    attempt(
      'privilegedXattrs',
      b.file(bytePath(dir, 'trusted'), 'trusted.* needs CAP_SYS_ADMIN\n'),
      'trusted.amber',
      ALL_BYTES.subarray(0, 64),
    );
    const capable = b.file(bytePath(dir, 'capability'), '#!/bin/sh\n');
    chmodSync(b.abs(capable), 0o755);
    attempt('privilegedXattrs', capable, 'security.capability', CAPABILITY_BLOB);
  } else {
    b.skip('privilegedXattrs', 'not privileged: trusted.* needs CAP_SYS_ADMIN, security.capability CAP_SETFCAP');
  }

  const acl = b.dir(bytePath('acl'));
  const accessFile = b.file(bytePath(acl, 'access-file'), 'has an access ACL\n');
  attempt(
    'acls',
    accessFile,
    ACL_ACCESS_XATTR,
    aclBlob([
      { tag: 'USER_OBJ', perm: 6 },
      { tag: 'USER', id: FOREIGN_OWNER.uid, perm: 4 },
      { tag: 'USER', id: NOBODY_ID, perm: 6 },
      { tag: 'GROUP_OBJ', perm: 4 },
      { tag: 'GROUP', id: FOREIGN_OWNER.gid, perm: 6 },
      { tag: 'MASK', perm: 6 },
      { tag: 'OTHER', perm: 0 },
    ]),
  );
  const defaultDir = b.dir(bytePath(acl, 'default-dir'));
  attempt(
    'acls',
    defaultDir,
    ACL_DEFAULT_XATTR,
    aclBlob([
      { tag: 'USER_OBJ', perm: 7 },
      { tag: 'USER', id: FOREIGN_OWNER.uid, perm: 5 },
      { tag: 'GROUP_OBJ', perm: 5 },
      { tag: 'MASK', perm: 5 },
      { tag: 'OTHER', perm: 0 },
    ]),
  );
  // Created after the default ACL, so it inherits an access ACL from it.
  b.file(bytePath(defaultDir, 'inherits'), 'inherited an access ACL\n', 'acls');
}

/** Removes a fixture (or any tree) whatever its names and modes: rm(1) takes the bytes as they are. */
export function removeFidelityTree(path: string): void {
  // Without root a read-only directory keeps its children; chmod's complaints (none exist) are moot.
  spawnSync('chmod', ['-R', 'u+rwX', path], { stdio: 'ignore' });
  execFileSync('rm', ['-rf', path]);
}
