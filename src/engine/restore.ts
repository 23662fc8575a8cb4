// Restore: recreate a snapshot's tree under a target directory. Names are validated when trees are
// decoded; here nothing is ever opened through a symlink (O_NOFOLLOW, lstat before descending), files
// are created exclusively, and a blob that fails authentication is never written.
// Several files are in flight at once: their blobs are decoded on worker threads and written at their
// offsets as they arrive, within a bound on open files and on bytes decoded but not yet written. A
// directory's own metadata is set once everything in it is done.
import {
  chmodSync, closeSync, constants, fchmodSync, fchownSync, ftruncateSync, futimesSync, lchownSync, linkSync, lstatSync,
  lutimesSync, mkdirSync, openSync, renameSync, rmSync, symlinkSync, unlinkSync,
} from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { AmberError, isAmberError } from '../core/errors.ts';
import { settleAll } from '../core/settle.ts';
import type { Repository } from '../repo/repository.ts';
import { loadIndex } from '../repo/index-loader.ts';
import { createBlobReader, type BlobReader } from '../repo/blob-reader.ts';
import { createDecodePool } from './decode-pool.ts';
import { defaultPoolSize } from './worker-pool.ts';
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

const isRoot = process.getuid?.() === 0;
/** Files being written at once, and plaintext decoded (or being decoded) but not yet written. */
const FILES_IN_FLIGHT = 64;
const BYTES_IN_FLIGHT = 64 * 1024 * 1024;

interface Context {
  reader: BlobReader;
  options: RestoreOptions;
  progress: RestoreProgress;
  errors: RestoreResult['errors'];
  skipped: RestoreResult['skipped'];
  /** First restored path of each hard-linked inode, once its content is complete (undefined if it failed). */
  hardLinks: Map<string, Promise<string | undefined>>;
  files: Limiter;
  bytes: Limiter;
}

export async function restore(options: RestoreOptions): Promise<RestoreResult> {
  const { index } = await loadIndex(options.repo);
  const workers = defaultPoolSize();
  const decoder = workers > 0 ? createDecodePool(workers) : undefined;
  const context: Context = {
    reader: createBlobReader(options.repo, index, decoder),
    options,
    progress: { files: 0, dirs: 0, bytesWritten: 0 },
    errors: [],
    skipped: [],
    hardLinks: new Map(),
    files: createLimiter(FILES_IN_FLIGHT),
    bytes: createLimiter(BYTES_IN_FLIGHT),
  };
  try {
    try {
      mkdirSync(options.target, { recursive: true });
    } catch (error) {
      throw targetError(error, options.target);
    }
    const root = rootNode(options.snapshot.snapshot.tree);
    const includes = (options.include ?? []).map((path) => splitPath(path));
    for (const path of options.include ?? []) await resolvePath(context.reader, root.subtree!, path);
    const pending: Promise<void>[] = [];
    try {
      await restoreChildren(context, root, options.target, '/', includes.length > 0 ? includes : undefined, pending);
    } finally {
      await settleAll(pending);
    }
  } finally {
    await decoder?.close();
  }
  return { ...context.progress, errors: context.errors, skipped: context.skipped };
}

/** Counts a resource; `acquire` waits while the limit is reached, but one holder may always exceed it. */
interface Limiter {
  acquire(amount: number): Promise<void>;
  release(amount: number): void;
}

function createLimiter(limit: number): Limiter {
  let used = 0;
  const waiting: { amount: number; wake: () => void }[] = [];
  return {
    async acquire(amount) {
      if (waiting.length === 0 && (used === 0 || used + amount <= limit)) {
        used += amount;
        return;
      }
      await new Promise<void>((wake) => waiting.push({ amount, wake }));
    },
    release(amount) {
      used -= amount;
      // Room is taken on the waiter's behalf before it wakes, so no second waiter is woken into it.
      while (waiting.length > 0 && (used === 0 || used + waiting[0].amount <= limit)) {
        const next = waiting.shift()!;
        used += next.amount;
        next.wake();
      }
    },
  };
}

/**
 * Walks a directory: creates what is in it and starts its files, adding to `pending` what is still
 * being written. `includes`: remaining path components still to match below it; undefined = all.
 */
async function restoreChildren(context: Context, dir: TreeNode, targetDir: string, path: string, includes: string[][] | undefined, pending: Promise<void>[]): Promise<void> {
  const tree = await readTree(context.reader, dir.subtree!);
  for (const node of tree.nodes) {
    let below: string[][] | undefined;
    if (includes) {
      const matching = includes.filter((parts) => parts[0] === node.name);
      if (matching.length === 0) continue;
      below = matching.some((parts) => parts.length === 1) ? undefined : matching.map((parts) => parts.slice(1));
    }
    const nodePath = path === '/' ? `/${node.name}` : `${path}/${node.name}`;
    const target = join(targetDir, node.name);
    const reportFailure = (error: unknown) => {
      if (!isAmberError(error) || error.code === 'WRITE_ONLY_KEY') throw error;
      const failure = { path: nodePath, code: error.code, message: error.message };
      context.errors.push(failure);
      context.options.onWarning?.(failure);
    };
    if (node.type === 'file') {
      await context.files.acquire(1);
      pending.push(restoreFile(context, node, target).then(() => {
        context.progress.files += 1;
        context.options.onProgress?.(context.progress);
      }).catch(reportFailure).finally(() => context.files.release(1)));
    } else if (node.type === 'dir') {
      // The walk goes on while files are written; a directory's mode and times are set once
      // everything inside it is done (writing into it would change its times again).
      const inside: Promise<void>[] = [];
      let walked = false;
      try {
        makeDirectory(target, context.options.overwrite === true);
        if (node.subtree) await restoreChildren(context, node, target, nodePath, below, inside);
        walked = true;
      } catch (error) {
        reportFailure(error);
      } finally {
        pending.push(settleAll(inside).then(() => {
          if (!walked) return;
          applyMetadata(node, target);
          context.progress.dirs += 1;
        }).catch(reportFailure));
      }
    } else {
      try {
        await restoreNode(context, node, target, nodePath);
      } catch (error) {
        reportFailure(error);
      }
    }
  }
}

/** Symlinks, named pipes and the types that are listed but not recreated. */
async function restoreNode(context: Context, node: TreeNode, target: string, path: string): Promise<void> {
  switch (node.type) {
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
  if (!replaceable(target, overwrite)) return;
  try {
    unlinkSync(target);
  } catch (error) {
    throw targetError(error, target);
  }
}

async function restoreFile(context: Context, node: TreeNode, target: string): Promise<void> {
  const overwrite = context.options.overwrite === true;
  const linkKey = node.links > 1 ? `${node.deviceId}:${node.inode}` : undefined;
  if (!linkKey) return writeFile(context, node, target, overwrite);
  // Looked up and claimed without an await in between: links to one inode may be in flight together.
  const known = context.hardLinks.get(linkKey);
  if (!known) {
    const done = writeFile(context, node, target, overwrite).then(() => target);
    context.hardLinks.set(linkKey, done.catch(() => undefined));
    return done.then(() => {});
  }
  const first = await known;
  if (!first) return writeFile(context, node, target, overwrite); // the first copy failed; this one stands alone
  removeForOverwrite(target, overwrite);
  try {
    linkSync(first, target);
  } catch (error) {
    throw targetError(error, target);
  }
}

async function writeFile(context: Context, node: TreeNode, target: string, overwrite: boolean): Promise<void> {
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
    const { length, end } = await writeContent(context, fd, node.content ?? []);
    // Zeros at the end were skipped as a hole, which only a length makes part of the file.
    if (end < length) ftruncateSync(fd, length);
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
}

/** Reads a file's blobs concurrently and writes each at its offset; resolves with the file's length. */
/** Writes a file's blobs; `end` is the offset just past the last byte written, `length` the file's. */
async function writeContent(context: Context, fd: number, content: string[]): Promise<{ length: number; end: number }> {
  const writes: Promise<void>[] = [];
  let position = 0;
  let end = 0;
  for (const hex of content) {
    const id = Buffer.from(hex, 'hex');
    // An unknown blob still goes through writeBlob, which names it in its error.
    const expected = context.reader.rawLengthOf(id) ?? 0;
    await context.bytes.acquire(expected);
    const at = position;
    position += expected;
    writes.push(context.reader.writeBlob(id, fd, at).then((writtenTo) => {
      context.progress.bytesWritten += expected;
      end = Math.max(end, writtenTo);
    }).finally(() => context.bytes.release(expected)));
  }
  // Every write is finished before the caller closes the descriptor, even when one failed.
  await settleAll(writes);
  return { length: position, end };
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
  try {
    if (node.type !== 'symlink') chmodSync(target, node.mode);
    lutimesSync(target, ...mtimeOf(node));
  } catch (error) {
    throw targetError(error, target);
  }
}

/** A system error on the target as the error the restore reports for that entry; Amber's own pass through. */
function targetError(error: unknown, target: string): unknown {
  if (isAmberError(error)) return error;
  const code = (error as NodeJS.ErrnoException)?.code;
  if (code === 'EEXIST') return new AmberError('TARGET_EXISTS', `"${target}" already exists`, { hint: 'restore into an empty directory, or pass --overwrite' });
  if (code === 'ELOOP') return new AmberError('UNSAFE_PATH', `"${target}" is a symlink; Amber does not write through symlinks`);
  if (code === 'ENOSPC' || code === 'EDQUOT') return new AmberError('STORAGE_FULL', `no space left to restore "${target}"`, { hint: 'free space on the target filesystem, or raise the quota' });
  if (typeof code === 'string') {
    return new AmberError('TARGET_UNWRITABLE', `"${target}" could not be written (${code})`, {
      cause: error,
      hint: code === 'EACCES' || code === 'EPERM' ? 'restore where you may write, or as a user who may' : code === 'ENAMETOOLONG' ? 'choose a shorter --target' : undefined,
    });
  }
  return error;
}
