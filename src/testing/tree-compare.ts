// Compares two directory trees the way a restore must reproduce them, listing every difference found.
//
// Names are compared as raw bytes (so NFC and NFD spellings stay distinct and non-UTF-8 names work).
// Modification times count as equal within `mtimeToleranceNs`, 1 µs by default: restore sets them
// with fs.utimes/lutimes, which take seconds as a double, so about 120 ns (before 2038; 240 ns before
// 2106) is lost to rounding and a sub-microsecond difference says nothing about the restore.
import { constants, promises as fs } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import { entryTypeOf } from '../source/fs/entry-meta.ts';

export interface CompareTreesOptions {
  /** Skip uid/gid, e.g. when the restore did not run as root. Default false. */
  ignoreOwner?: boolean;
  /** Skip ctime, which no restore can set. Default true. */
  ignoreCtime?: boolean;
  /** Skip mode, owner and times of the two roots themselves. Default false. */
  ignoreRootMeta?: boolean;
  /** Largest mtime (and ctime) difference still counted as equal. Default 1000n (1 µs). */
  mtimeToleranceNs?: bigint;
  /** Receives remarks that are not differences, such as a sparse file that lost its holes. */
  notes?: string[];
}

interface Side {
  stats: BigIntStats;
  path: Buffer;
}

interface Comparison {
  options: CompareTreesOptions;
  toleranceNs: bigint;
  differences: string[];
  /** Relative name (latin1 key) → inode identity, for non-directories present on both sides. */
  expectedInodes: Map<string, string>;
  actualInodes: Map<string, string>;
}

const CHUNK_BYTES = 1024 * 1024;

/** Returns human-readable differences between the trees at `expected` and `actual`; empty when equal. */
export async function compareTrees(
  expected: string,
  actual: string,
  options: CompareTreesOptions = {},
): Promise<string[]> {
  const comparison: Comparison = {
    options,
    toleranceNs: options.mtimeToleranceNs ?? 1000n,
    differences: [],
    expectedInodes: new Map(),
    actualInodes: new Map(),
  };
  const expectedRoot = Buffer.from(expected);
  const actualRoot = Buffer.from(actual);
  const root = Buffer.alloc(0);
  const expectedSide = { stats: await fs.lstat(expectedRoot, { bigint: true }), path: expectedRoot };
  const actualSide = { stats: await fs.lstat(actualRoot, { bigint: true }), path: actualRoot };
  await compareEntry(comparison, root, expectedSide, actualSide);
  compareHardLinks(comparison);
  return comparison.differences;
}

async function compareEntry(comparison: Comparison, relative: Buffer, expected: Side, actual: Side): Promise<void> {
  const { differences, options } = comparison;
  const name = show(relative);
  const expectedType = entryTypeOf(expected.stats);
  const actualType = entryTypeOf(actual.stats);
  if (expectedType !== actualType) {
    differences.push(`${name}: is a ${expectedType} in expected but a ${actualType} in actual`);
    return;
  }
  if (relative.length > 0 || options.ignoreRootMeta !== true)
    compareMeta(comparison, name, expected.stats, actual.stats);
  if (expectedType === 'dir') {
    await compareDirectories(comparison, relative, expected.path, actual.path);
    return;
  }
  const key = relative.toString('latin1');
  comparison.expectedInodes.set(key, `${expected.stats.dev}:${expected.stats.ino}`);
  comparison.actualInodes.set(key, `${actual.stats.dev}:${actual.stats.ino}`);
  if (expectedType === 'file') await compareFiles(comparison, name, expected, actual);
  if (expectedType === 'symlink') {
    const [expectedTarget, actualTarget] = await Promise.all([
      fs.readlink(expected.path, 'buffer'),
      fs.readlink(actual.path, 'buffer'),
    ]);
    if (!expectedTarget.equals(actualTarget)) {
      differences.push(
        `${name}: symlink points to ${show(expectedTarget)} in expected but ${show(actualTarget)} in actual`,
      );
    }
  }
  if ((expectedType === 'chardev' || expectedType === 'blockdev') && expected.stats.rdev !== actual.stats.rdev) {
    differences.push(`${name}: device number ${expected.stats.rdev} in expected but ${actual.stats.rdev} in actual`);
  }
}

function compareMeta(comparison: Comparison, name: string, expected: BigIntStats, actual: BigIntStats): void {
  const { differences, options, toleranceNs } = comparison;
  const expectedMode = expected.mode & 0o7777n;
  const actualMode = actual.mode & 0o7777n;
  if (expectedMode !== actualMode) {
    differences.push(
      `${name}: mode ${expectedMode.toString(8).padStart(4, '0')} in expected but ${actualMode.toString(8).padStart(4, '0')} in actual`,
    );
  }
  if (options.ignoreOwner !== true && (expected.uid !== actual.uid || expected.gid !== actual.gid)) {
    differences.push(
      `${name}: owner ${expected.uid}:${expected.gid} in expected but ${actual.uid}:${actual.gid} in actual`,
    );
  }
  compareTime(differences, name, 'mtime', expected.mtimeNs, actual.mtimeNs, toleranceNs);
  if (options.ignoreCtime === false)
    compareTime(differences, name, 'ctime', expected.ctimeNs, actual.ctimeNs, toleranceNs);
}

function compareTime(
  differences: string[],
  name: string,
  label: string,
  expectedNs: bigint,
  actualNs: bigint,
  toleranceNs: bigint,
): void {
  const offNs = actualNs - expectedNs;
  if (offNs > toleranceNs || -offNs > toleranceNs) {
    differences.push(
      `${name}: ${label} ${expectedNs} ns in expected but ${actualNs} ns in actual (off by ${offNs} ns)`,
    );
  }
}

async function compareDirectories(
  comparison: Comparison,
  relative: Buffer,
  expectedDir: Buffer,
  actualDir: Buffer,
): Promise<void> {
  const [expectedNames, actualNames] = await Promise.all([listNames(expectedDir), listNames(actualDir)]);
  const actualSet = new Set(actualNames.map((name) => name.toString('latin1')));
  const expectedSet = new Set(expectedNames.map((name) => name.toString('latin1')));
  const all = [...expectedNames, ...actualNames.filter((name) => !expectedSet.has(name.toString('latin1')))].sort(
    Buffer.compare,
  );
  for (const entryName of all) {
    const childRelative = relative.length === 0 ? entryName : Buffer.concat([relative, Buffer.from('/'), entryName]);
    const expectedPath = Buffer.concat([expectedDir, Buffer.from('/'), entryName]);
    const actualPath = Buffer.concat([actualDir, Buffer.from('/'), entryName]);
    const key = entryName.toString('latin1');
    if (!actualSet.has(key)) {
      const type = entryTypeOf(await fs.lstat(expectedPath, { bigint: true }));
      comparison.differences.push(`${show(childRelative)}: missing in actual (a ${type} in expected)`);
    } else if (!expectedSet.has(key)) {
      const type = entryTypeOf(await fs.lstat(actualPath, { bigint: true }));
      comparison.differences.push(`${show(childRelative)}: extra in actual (a ${type})`);
    } else {
      const [expectedStats, actualStats] = await Promise.all([
        fs.lstat(expectedPath, { bigint: true }),
        fs.lstat(actualPath, { bigint: true }),
      ]);
      await compareEntry(
        comparison,
        childRelative,
        { stats: expectedStats, path: expectedPath },
        { stats: actualStats, path: actualPath },
      );
    }
  }
}

async function listNames(dir: Buffer): Promise<Buffer[]> {
  return (await fs.readdir(dir, { encoding: 'buffer' })).sort(Buffer.compare);
}

async function compareFiles(comparison: Comparison, name: string, expected: Side, actual: Side): Promise<void> {
  if (expected.stats.size !== actual.stats.size) {
    comparison.differences.push(
      `${name}: size ${expected.stats.size} bytes in expected but ${actual.stats.size} in actual`,
    );
    return;
  }
  const offset = await firstDifferentByte(expected.path, actual.path);
  if (offset !== undefined) comparison.differences.push(`${name}: content differs from byte ${offset}`);
  const allocatedBytes = expected.stats.blocks * 512n;
  if (comparison.options.notes !== undefined && allocatedBytes < expected.stats.size) {
    comparison.options.notes.push(
      `${name}: sparse file of ${expected.stats.size} bytes allocates ${allocatedBytes} bytes in expected and ${actual.stats.blocks * 512n} in actual`,
    );
  }
}

/** Opens without changing the access time where allowed, so comparing a source leaves it as a backup saw it. */
async function openQuietly(path: Buffer): Promise<fs.FileHandle> {
  try {
    return await fs.open(path, constants.O_RDONLY | constants.O_NOATIME);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') throw error;
    return fs.open(path, constants.O_RDONLY);
  }
}

/** Streams both files side by side; returns the first offset where they differ, if any. */
async function firstDifferentByte(expectedPath: Buffer, actualPath: Buffer): Promise<number | undefined> {
  const [expected, actual] = await Promise.all([openQuietly(expectedPath), openQuietly(actualPath)]);
  try {
    const expectedChunk = Buffer.alloc(CHUNK_BYTES);
    const actualChunk = Buffer.alloc(CHUNK_BYTES);
    for (let position = 0; ; position += CHUNK_BYTES) {
      const [expectedRead, actualRead] = await Promise.all([
        readFull(expected, expectedChunk, position),
        readFull(actual, actualChunk, position),
      ]);
      const length = Math.min(expectedRead, actualRead);
      if (!expectedChunk.subarray(0, length).equals(actualChunk.subarray(0, length))) {
        let index = 0;
        while (expectedChunk[index] === actualChunk[index]) index++;
        return position + index;
      }
      if (expectedRead !== actualRead) return position + length;
      if (expectedRead < CHUNK_BYTES) return undefined;
    }
  } finally {
    await Promise.all([expected.close(), actual.close()]);
  }
}

async function readFull(handle: fs.FileHandle, buffer: Buffer, position: number): Promise<number> {
  let filled = 0;
  while (filled < buffer.length) {
    const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled;
}

/** Reports names that share an inode on one side but not on the other. */
function compareHardLinks(comparison: Comparison): void {
  const report = (groupsOf: Map<string, string>, other: Map<string, string>, side: string, otherSide: string) => {
    for (const group of groupByInode(groupsOf)) {
      const otherIds = new Set(group.map((key) => other.get(key)));
      if (otherIds.size > 1) {
        const names = group.map((key) => show(Buffer.from(key, 'latin1'))).join(', ');
        comparison.differences.push(`hard links: ${names} share one inode in ${side} but not in ${otherSide}`);
      }
    }
  };
  report(comparison.expectedInodes, comparison.actualInodes, 'expected', 'actual');
  report(comparison.actualInodes, comparison.expectedInodes, 'actual', 'expected');
}

function groupByInode(inodes: Map<string, string>): string[][] {
  const groups = new Map<string, string[]>();
  for (const [key, inode] of inodes) groups.set(inode, [...(groups.get(inode) ?? []), key]);
  return [...groups.values()].filter((group) => group.length > 1);
}

/** A relative name for messages: quoted UTF-8, or hex when the bytes are not UTF-8; "." for the root. */
function show(relative: Buffer): string {
  if (relative.length === 0) return '.';
  const text = relative.toString('utf8');
  return Buffer.from(text, 'utf8').equals(relative) ? JSON.stringify(text) : `<hex ${relative.toString('hex')}>`;
}
