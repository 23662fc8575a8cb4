// Restore: recreate a snapshot's tree under a target directory. Names are validated when trees are
// decoded; here nothing is ever opened through a symlink (O_NOFOLLOW, lstat before descending), files
// are created exclusively, and a blob that fails authentication is never written.
import {
  chmodSync, closeSync, constants, fchmodSync, fchownSync, ftruncateSync, futimesSync, lchownSync, linkSync, lstatSync,
  lutimesSync, mkdirSync, openSync, renameSync, rmSync, symlinkSync, unlinkSync, writeSync,
} from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { AmberError, isAmberError } from '../core/errors.ts';
import type { Repository } from '../repo/repository.ts';
import { loadIndex } from '../repo/index-loader.ts';
import { createBlobReader, type BlobReader } from '../repo/blob-reader.ts';
import type { TreeNode } from '../repo/tree.ts';
import { utimeSecondsFromNs } from '../source/entry-meta.ts';
import { readTree, resolvePath, rootNode, splitPath } from './tree-walk.ts';
import type { SnapshotEntry } from './snapshots.ts';

export interface RestoreOptions {
  repo: Repository;
  snapshot: SnapshotEntry;
  target: string;
  /** Absolute paths inside the snapshot; only they (and their ancestors' directories) are restored. */
  include?: string[];
  overwrite?: boolean;
  onProgress?: (progress: RestoreProgress) => void;
  onWarning?: (warning: { path: string; code: string; message: string }) => void;
}

export interface RestoreProgress {
  files: number;
  dirs: number;
  bytesWritten: number;
}

export interface RestoreResult extends RestoreProgress {
  errors: { path: string; code: string; message: string }[];
  /** Sockets and device files, which are listed but not recreated. */
  skipped: { path: string; type: string }[];
}

/** All-zero runs are skipped in blocks of this size, so holes inside a chunk stay holes. */
const SPARSE_BLOCK_BYTES = 4096;
const ZERO = Buffer.alloc(SPARSE_BLOCK_BYTES);
const isRoot = process.getuid?.() === 0;

interface Context {
  reader: BlobReader;
  options: RestoreOptions;
  progress: RestoreProgress;
  errors: RestoreResult['errors'];
  skipped: RestoreResult['skipped'];
  hardLinks: Map<string, string>;
}

export async function restore(options: RestoreOptions): Promise<RestoreResult> {
  const { index } = await loadIndex(options.repo);
  const context: Context = {
    reader: createBlobReader(options.repo, index),
    options,
    progress: { files: 0, dirs: 0, bytesWritten: 0 },
    errors: [],
    skipped: [],
    hardLinks: new Map(),
  };
  mkdirSync(options.target, { recursive: true });
  const root = rootNode(options.snapshot.snapshot.tree);
  const includes = (options.include ?? []).map((path) => splitPath(path));
  for (const path of options.include ?? []) await resolvePath(context.reader, root.subtree!, path);
  await restoreChildren(context, root, options.target, '/', includes.length > 0 ? includes : undefined);
  return { ...context.progress, errors: context.errors, skipped: context.skipped };
}

/** `includes`: remaining path components still to match below this directory; undefined = everything. */
async function restoreChildren(context: Context, dir: TreeNode, targetDir: string, path: string, includes: string[][] | undefined): Promise<void> {
  const tree = await readTree(context.reader, dir.subtree!);
  for (const node of tree.nodes) {
    let below: string[][] | undefined;
    if (includes) {
      const matching = includes.filter((parts) => parts[0] === node.name);
      if (matching.length === 0) continue;
      below = matching.some((parts) => parts.length === 1) ? undefined : matching.map((parts) => parts.slice(1));
    }
    const nodePath = path === '/' ? `/${node.name}` : `${path}/${node.name}`;
    try {
      await restoreNode(context, node, join(targetDir, node.name), nodePath, below);
    } catch (error) {
      if (!isAmberError(error) || error.code === 'WRITE_ONLY_KEY') throw error;
      const failure = { path: nodePath, code: error.code, message: error.message };
      context.errors.push(failure);
      context.options.onWarning?.(failure);
    }
  }
}

async function restoreNode(context: Context, node: TreeNode, target: string, path: string, includes: string[][] | undefined): Promise<void> {
  switch (node.type) {
    case 'dir':
      makeDirectory(target, context.options.overwrite === true);
      if (node.subtree) await restoreChildren(context, node, target, path, includes);
      context.progress.dirs += 1;
      break;
    case 'file':
      await restoreFile(context, node, target);
      context.progress.files += 1;
      context.options.onProgress?.(context.progress);
      return; // restoreFile sets the metadata itself (hard links share it)
    case 'symlink':
      removeForOverwrite(target, context.options.overwrite === true);
      try {
        symlinkSync(node.linkTarget ?? '', target);
      } catch (error) {
        throw targetError(error, target);
      }
      break;
    case 'fifo':
      removeForOverwrite(target, context.options.overwrite === true);
      if (lstatSync(target, { throwIfNoEntry: false })) throw targetError(Object.assign(new Error('exists'), { code: 'EEXIST' }), target);
      await promisify(execFile)('mkfifo', [target]).catch((error: unknown) => {
        throw new AmberError('RESTORE_INCOMPLETE', `the named pipe "${target}" could not be created (${(error as Error).message.trim()})`, { cause: error });
      });
      break;
    default:
      // Sockets are recreated by the programs that own them; device files need mknod, which Node lacks.
      context.skipped.push({ path, type: node.type });
      return;
  }
  applyMetadata(node, target);
}

// File system calls here are synchronous on purpose: each takes microseconds, while a trip through
// libuv's thread pool costs more than the call itself, and a restore makes several per file.

function makeDirectory(target: string, overwrite: boolean): void {
  try {
    mkdirSync(target, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw targetError(error, target);
    // Never descend through a symlink: it could point anywhere, outside the target included.
    if (!lstatSync(target).isDirectory()) {
      if (!overwrite) throw new AmberError('TARGET_EXISTS', `"${target}" exists and is not a directory`, { hint: 'restore into an empty directory, or pass --overwrite' });
      rmSync(target, { force: true });
      mkdirSync(target, { mode: 0o700 });
    }
  }
}

/** With --overwrite: true when `target` exists and may be replaced. Without it, creation itself refuses. */
function replaceable(target: string, overwrite: boolean): boolean {
  if (!overwrite) return false;
  const existing = lstatSync(target, { throwIfNoEntry: false });
  if (!existing) return false;
  if (existing.isDirectory()) throw new AmberError('TARGET_EXISTS', `"${target}" is a directory; it is not replaced by a file`);
  return true;
}

function removeForOverwrite(target: string, overwrite: boolean): void {
  if (replaceable(target, overwrite)) unlinkSync(target);
}

async function restoreFile(context: Context, node: TreeNode, target: string): Promise<void> {
  const overwrite = context.options.overwrite === true;
  const linkKey = node.links > 1 ? `${node.deviceId}:${node.inode}` : undefined;
  const first = linkKey ? context.hardLinks.get(linkKey) : undefined;
  if (first) {
    removeForOverwrite(target, overwrite);
    try {
      linkSync(first, target);
    } catch (error) {
      throw targetError(error, target);
    }
    return;
  }
  // An existing file is replaced (rename) only once the new content is complete and authentic, so a
  // damaged chunk never costs the file that was there.
  const replacing = replaceable(target, overwrite);
  const path = replacing ? join(dirname(target), `.amber-restore-${randomBytes(8).toString('hex')}`) : target;
  let fd: number;
  try {
    // O_EXCL refuses an existing name and O_NOFOLLOW a symlink planted in the target.
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (error) {
    throw targetError(error, target);
  }
  try {
    let position = 0;
    for (const id of node.content ?? []) {
      const data = await context.reader.readBlob(Buffer.from(id, 'hex'));
      writeNonZero(fd, data, position);
      position += data.length;
      context.progress.bytesWritten += data.length;
    }
    ftruncateSync(fd, position);
    // Metadata goes through the descriptor this restore created, never through a path.
    if (isRoot) fchownSync(fd, node.uid, node.gid);
    fchmodSync(fd, node.mode);
    futimesSync(fd, ...mtimeOf(node));
  } catch (error) {
    closeSync(fd);
    rmSync(path, { force: true });
    throw targetError(error, target);
  }
  closeSync(fd);
  if (replacing) {
    try {
      renameSync(path, target);
    } catch (error) {
      rmSync(path, { force: true });
      throw targetError(error, target);
    }
  }
  if (linkKey) context.hardLinks.set(linkKey, target);
}

/** Writes the runs of `data` that are not all-zero blocks; the file is new, so what is skipped reads as zeros. */
function writeNonZero(fd: number, data: Buffer, position: number): void {
  let runStart = -1;
  for (let at = 0; at < data.length; at += SPARSE_BLOCK_BYTES) {
    const end = Math.min(at + SPARSE_BLOCK_BYTES, data.length);
    const zero = ZERO.compare(data, at, end, 0, end - at) === 0;
    if (!zero && runStart < 0) runStart = at;
    if (zero && runStart >= 0) {
      writeAll(fd, data.subarray(runStart, at), position + runStart);
      runStart = -1;
    }
  }
  if (runStart >= 0) writeAll(fd, data.subarray(runStart), position + runStart);
}

function writeAll(fd: number, data: Buffer, position: number): void {
  for (let written = 0; written < data.length;) {
    written += writeSync(fd, data, written, data.length - written, position + written);
  }
}

/** Node turns a negative number of seconds into "now"; a Date keeps times before 1970 (to the ms). */
function mtimeOf(node: TreeNode): [Date | number, Date | number] {
  const ns = BigInt(node.mtimeNs);
  const mtime = ns < 0n ? new Date(Number(ns / 1_000_000n)) : utimeSecondsFromNs(ns);
  return [mtime, mtime];
}

function applyMetadata(node: TreeNode, target: string): void {
  if (isRoot) {
    try {
      lchownSync(target, node.uid, node.gid);
    } catch {
      // ownership is best effort (e.g. ids unknown to this system's filesystem)
    }
  }
  if (node.type !== 'symlink') chmodSync(target, node.mode);
  lutimesSync(target, ...mtimeOf(node));
}

function targetError(error: unknown, target: string): unknown {
  const code = (error as NodeJS.ErrnoException)?.code;
  if (code === 'EEXIST') return new AmberError('TARGET_EXISTS', `"${target}" already exists`, { hint: 'restore into an empty directory, or pass --overwrite' });
  if (code === 'ELOOP') return new AmberError('UNSAFE_PATH', `"${target}" is a symlink; Amber does not write through symlinks`);
  if (code === 'ENOSPC') return new AmberError('STORAGE_FULL', `no space left to restore "${target}"`, { hint: 'free space on the target filesystem' });
  return error;
}
