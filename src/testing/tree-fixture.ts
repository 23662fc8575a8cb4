// A directory tree full of the cases backup and restore get wrong: odd names, links, holes, modes, times.
import { promises as fs } from 'node:fs';
import { execFile } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { utimeSecondsFromNs } from '../source/fs/entry-meta.ts';
import { seededRandom } from './repo-fixture.ts';

const MiB = 1024 * 1024;
const execFileAsync = promisify(execFile);

export interface HardTreeOptions {
  /** Size of `files/large.bin`, pseudo-random and so incompressible; 12 MiB by default. */
  largeFileBytes?: number;
  /** Seeds file contents and times; the same seed always builds the same tree. */
  seed?: number;
}

/** Apparent size of `files/sparse.bin`; only a few 4 KiB regions are written. */
export const SPARSE_FILE_BYTES = 64 * MiB;
/** Nesting depth of `deep/d01/.../d60/leaf.txt`. */
export const DEEP_LEVELS = 60;
/** Owner given to `owners/*` when the tree is built as root. */
export const OTHER_OWNER = { uid: 4242, gid: 4343 } as const;

/**
 * Builds the tree under `root`, which must not exist or be empty. Modes are set explicitly, so the
 * umask does not matter; `owners/` only changes owner when running as root; `special/fifo` is left out
 * where mkfifo is unavailable. Every entry, the root included, gets a seeded mtime with a sub-second part.
 */
export async function createHardTree(root: string, options: HardTreeOptions = {}): Promise<void> {
  const seed = options.seed ?? 1;
  await fs.mkdir(root, { recursive: true });
  await writeFiles(join(root, 'files'), seed, options.largeFileBytes ?? 12 * MiB);
  await writeNames(root);
  await writeLinks(root);
  await writeModes(join(root, 'modes'));
  await writeSpecial(join(root, 'special'));
  await writeOwners(join(root, 'owners'));
  await setTimes(root, seededRandom(seed));
}

async function writeFiles(dir: string, seed: number, largeFileBytes: number): Promise<void> {
  await makeDir(dir);
  await writeFile(join(dir, 'zero-bytes'), '');
  await writeFile(join(dir, 'one-byte'), 'x');
  await writeRandomFile(join(dir, 'one-mib.bin'), MiB, `one-mib:${seed}`);
  await writeRandomFile(join(dir, 'large.bin'), largeFileBytes, `large:${seed}`);
  const lines: string[] = [];
  for (let i = 0; i < 4096; i++) lines.push(`line ${i}: the quick brown fox jumps over the lazy dog\n`);
  await writeFile(join(dir, 'text.txt'), lines.join(''));
  await writeSparseFile(join(dir, 'sparse.bin'), seed);
}

async function writeNames(root: string): Promise<void> {
  await makeDir(join(root, 'empty-dir'));
  await makeDir(join(root, 'nested'));
  await makeDir(join(root, 'nested', 'empty-inside'));
  await writeFile(join(root, 'nested', 'file.txt'), 'nested\n');
  const unicode = join(root, 'unicode');
  await makeDir(unicode);
  // The same word in two normal forms: different bytes, so two different files.
  await writeFile(join(unicode, 'caf\u00e9.txt'), 'NFC\n');
  await writeFile(join(unicode, 'cafe\u0301.txt'), 'NFD\n');
  await writeFile(join(unicode, '\u{1f98a} fox \u{1f468}\u200d\u{1f469}\u200d\u{1f467}.txt'), 'emoji\n');
  await writeFile(join(unicode, '\u65e5\u672c\u8a9e\u306e\u30d5\u30a1\u30a4\u30eb.txt'), 'CJK\n');
  await writeFile(join(unicode, '\ud55c\uad6d\uc5b4'), 'Hangul\n');
  const names = join(root, 'names');
  await makeDir(names);
  for (const name of [
    `${'n'.repeat(251)}.txt`,
    '\u5b57'.repeat(85),
    ' leading space',
    'trailing space ',
    'new\nline',
    'tab\there',
    'back\\slash',
    '-dash',
    '.hidden',
    '*glob?[x]',
    `quote"'`,
  ]) {
    await writeFile(join(names, name), `${name}\n`);
  }
  let deep = join(root, 'deep');
  await makeDir(deep);
  for (let level = 1; level <= DEEP_LEVELS; level++) {
    deep = join(deep, `d${String(level).padStart(2, '0')}`);
    await makeDir(deep);
  }
  await writeFile(join(deep, 'leaf.txt'), 'bottom\n');
}

async function writeLinks(root: string): Promise<void> {
  const links = join(root, 'links');
  await makeDir(links);
  await fs.symlink('../files/one-byte', join(links, 'relative'));
  await fs.symlink('/etc/hostname', join(links, 'absolute'));
  await fs.symlink('does-not-exist', join(links, 'dangling'));
  await fs.symlink('../nested', join(links, 'to-dir'));
  await fs.symlink('loop-b', join(links, 'loop-a'));
  await fs.symlink('loop-a', join(links, 'loop-b'));
  await fs.symlink('self', join(links, 'self'));
  const hard = join(root, 'hardlinks');
  for (const sub of ['', 'a', 'b', 'c']) await makeDir(join(hard, sub));
  await writeFile(join(hard, 'a', 'pair-1'), 'two names\n');
  await fs.link(join(hard, 'a', 'pair-1'), join(hard, 'b', 'pair-2'));
  await writeFile(join(hard, 'a', 'triple-1'), 'three names\n', 0o640);
  await fs.link(join(hard, 'a', 'triple-1'), join(hard, 'b', 'triple-2'));
  await fs.link(join(hard, 'a', 'triple-1'), join(hard, 'c', 'triple-3'));
  await writeFile(join(hard, 'c', 'single'), 'one name\n');
}

async function writeModes(dir: string): Promise<void> {
  await makeDir(dir);
  await writeFile(join(dir, 'private.txt'), 'secret\n', 0o600);
  await writeFile(join(dir, 'run.sh'), '#!/bin/sh\necho hi\n', 0o755);
  await writeFile(join(dir, 'read-only.txt'), 'frozen\n', 0o444);
  await writeFile(join(dir, 'setuid'), '', 0o4755);
  await makeDir(join(dir, 'setgid-dir'), 0o2775);
  await writeFile(join(dir, 'setgid-dir', 'inside.txt'), 'group\n');
  await makeDir(join(dir, 'sticky-dir'), 0o1777);
  await makeDir(join(dir, 'private-dir'), 0o700);
  await writeFile(join(dir, 'private-dir', 'inside.txt'), 'hidden\n');
}

async function writeSpecial(dir: string): Promise<void> {
  await makeDir(dir);
  try {
    await execFileAsync('mkfifo', ['-m', '644', join(dir, 'fifo')]);
  } catch {
    // No mkfifo on this system: the tree simply has no fifo.
  }
}

async function writeOwners(dir: string): Promise<void> {
  await makeDir(dir);
  await writeFile(join(dir, 'other.txt'), 'owned by someone else\n');
  await fs.symlink('other.txt', join(dir, 'other-link'));
  if (process.getuid?.() !== 0) return;
  await fs.chown(join(dir, 'other.txt'), OTHER_OWNER.uid, OTHER_OWNER.gid);
  await fs.lchown(join(dir, 'other-link'), OTHER_OWNER.uid, OTHER_OWNER.gid);
}

async function makeDir(path: string, mode = 0o755): Promise<void> {
  await fs.mkdir(path);
  await fs.chmod(path, mode);
}

async function writeFile(path: string, content: string, mode = 0o644): Promise<void> {
  await fs.writeFile(path, content, { flag: 'wx' });
  await fs.chmod(path, mode);
}

/** Writes `sizeBytes` of AES-CTR keystream keyed by `label`, 1 MiB at a time. */
async function writeRandomFile(path: string, sizeBytes: number, label: string): Promise<void> {
  const key = createHash('sha256').update(`amber-tree-fixture:${label}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(MiB);
  const handle = await fs.open(path, 'wx', 0o644);
  try {
    for (let written = 0; written < sizeBytes; written += MiB) {
      const piece = cipher.update(zeros.subarray(0, Math.min(MiB, sizeBytes - written)));
      await handle.write(piece, 0, piece.length, written);
    }
  } finally {
    await handle.close();
  }
  await fs.chmod(path, 0o644);
}

async function writeSparseFile(path: string, seed: number): Promise<void> {
  const handle = await fs.open(path, 'wx', 0o644);
  try {
    await handle.truncate(SPARSE_FILE_BYTES);
    const region = Buffer.alloc(4096, seed & 0xff);
    for (const offset of [0, 16 * MiB + 123, 40 * MiB, SPARSE_FILE_BYTES - region.length]) {
      region.write(`region at ${offset}`, 0);
      await handle.write(region, 0, region.length, offset);
    }
  } finally {
    await handle.close();
  }
  await fs.chmod(path, 0o644);
}

/**
 * Gives every entry a seeded mtime (and atime), children before their directory, since creating
 * entries changes a directory's mtime. A few fixed times cover the epoch and a date past 2038.
 */
async function setTimes(root: string, random: () => number): Promise<void> {
  const fixed = new Map<string, bigint>([
    [join(root, 'files', 'zero-bytes'), 0n],
    [join(root, 'files', 'one-byte'), 4_102_444_800_500_000_000n],
  ]);
  const visit = async (path: string, isDir: boolean, isLink: boolean): Promise<void> => {
    if (isDir) {
      const entries = await fs.readdir(path, { withFileTypes: true });
      entries.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
      for (const entry of entries) await visit(join(path, entry.name), entry.isDirectory(), entry.isSymbolicLink());
    }
    const seconds = 1_000_000_000n + BigInt(Math.floor(random() * 700_000_000));
    const ns = fixed.get(path) ?? seconds * 1_000_000_000n + BigInt(Math.floor(random() * 1e9));
    const time = utimeSecondsFromNs(ns);
    await (isLink ? fs.lutimes(path, time, time) : fs.utimes(path, time, time));
  };
  await visit(root, true, false);
}
