// Restore: recreate a snapshot's tree under a target directory. Names are validated when trees are
// decoded; here nothing is ever opened through a symlink (O_NOFOLLOW, lstat before descending), files
// are created exclusively, and a blob that fails authentication is never written.
// Several files are in flight at once: their blobs are decoded on worker threads and written at their
// offsets as they arrive, within a bound on open files and on bytes decoded but not yet written. A
// directory's own metadata is set once everything in it is done.
// A file is written under a hidden partial name in its own directory (`.NAME.amber-partial-HEX`) and
// given its final name (one rename, atomic in that directory) only once its content and metadata are
// complete: a file at its final name is always whole, whenever the restore stops. An interrupted
// restore (options.signal) removes its partial files; one killed outright leaves them, and the next
// restore into the same target removes them and keeps the files that were complete.
import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  ftruncateSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  accessSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  type BigIntStats,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { AmberError, isAmberError } from '../core/errors.ts';
import { displayName, fsPath, hasEscapedBytes, nameBytes, findNamed } from '../core/byte-names.ts';
import { fileInTheWay } from '../core/local-paths.ts';
import { settleAll } from '../core/settle.ts';
import type { Repository } from '../repo/repository.ts';
import { loadIndex } from '../repo/index-loader.ts';
import { createBlobReader, type BlobReader } from '../repo/blob-reader.ts';
import { createDecodePool } from './decode-pool.ts';
import { defaultPoolSize } from './worker-pool.ts';
import type { TreeNode } from '../repo/tree.ts';
import { utimeSecondsFromNs } from '../source/fs/entry-meta.ts';
import { describeXattrFailure, writeXattrs, writeXattrsFd, type XattrFailure } from '../source/fs/xattrs.ts';
import { makeSpecialFile } from '../source/fs/special-files.ts';
import { startExactTimes, type ExactTimes } from '../source/fs/exact-times.ts';
import { readTree, resolvePath, rootNode, splitPath } from './tree-walk.ts';
import { conflictError, findConflicts } from './restore-conflicts.ts';
import { createExcludeMatcher, type ExcludeMatcher } from '../source/fs/excludes.ts';
import type { SnapshotEntry } from './snapshots.ts';

export interface RestoreOptions {
  repo: Repository;
  snapshot: SnapshotEntry;
  target: string;
  /** Absolute paths inside the snapshot; only they (and their ancestors' directories) are restored. */
  include?: string[];
  /** Exclude patterns with backup's meaning (source/fs/excludes.ts): what they match is not restored. */
  exclude?: string[];
  overwrite?: boolean;
  onProgress?: (progress: RestoreProgress) => void;
  /** Errors of single entries (level absent) and what could not be set (level 'warning'). */
  onWarning?: (warning: { path: string; code: string; message: string; level?: 'warning' }) => void;
  /** Aborting stops the restore: its partial files are removed and it rejects with INTERRUPTED. */
  signal?: AbortSignal;
  /**
   * Without overwrite: look at the target first and refuse the whole restore (TARGET_EXISTS) when
   * anything there is in the way, instead of restoring around it and reporting each entry.
   */
  checkFirst?: boolean;
}

export interface RestoreProgress {
  files: number;
  dirs: number;
  bytesWritten: number;
}

export interface RestoreResult extends RestoreProgress {
  /**
   * Files found already restored (a regular file of the snapshot's size, mode and modification time,
   * as an earlier, interrupted restore leaves them) and kept; counted in `files` too. Without
   * --overwrite only such a file is taken as done; any other existing file is an error.
   */
  alreadyPresent: number;
  /** Partial files of an earlier restore that was killed, found in the target and removed. */
  partialsRemoved: number;
  errors: { path: string; code: string; message: string }[];
  /** Sockets (recreated by the programs that own them) and, when not run as root, device files. */
  skipped: { path: string; type: string }[];
  /**
   * What could not be set, one line per kind (owner, a namespace of extended attributes, ACLs):
   * as a user other than root, or on a target filesystem without support. Never dropped silently.
   */
  notSet: NotSet[];
}

export interface NotSet {
  kind: string;
  /** Entries affected, and the first of them. */
  count: number;
  example: string;
  reason: string;
}

const isRoot = process.getuid?.() === 0;
const EUID = process.geteuid?.();
const EGID = process.getegid?.();

/** What is known of a directory files are restored into. */
interface Place {
  /** Made by this restore: nothing is in it but what the restore puts there. */
  fresh: boolean;
  /**
   * A file created in it gets this process's uid and gid (its gid is the egid, which a setgid
   * directory or a grpid mount would otherwise replace by the directory's): a root restore then
   * needs no fchown for files that belong to root, as system files do.
   */
  ownsAsCreated: boolean;
}

function placeOf(dir: string, fresh: boolean): Place {
  return { fresh, ownsAsCreated: isRoot && lstatSync(fsPath(dir)).gid === EGID };
}
/** Files being written at once, and plaintext decoded (or being decoded) but not yet written. */
const FILES_IN_FLIGHT = 64;
const BYTES_IN_FLIGHT = 64 * 1024 * 1024;

interface Context {
  reader: BlobReader;
  options: RestoreOptions;
  progress: RestoreProgress;
  errors: RestoreResult['errors'];
  skipped: RestoreResult['skipped'];
  notSet: Map<string, NotSet>;
  /** Sets again, to the nanosecond, the times set through Node. */
  exactTimes: ExactTimes;
  /** First restored path of each hard-linked inode, once its content is complete (undefined if it failed). */
  hardLinks: Map<string, Promise<string | undefined>>;
  files: Limiter;
  bytes: Limiter;
  /** Partial files being written now: what an interruption removes. */
  partials: Set<string>;
  aborted: boolean;
  alreadyPresent: number;
  partialsRemoved: number;
  /** What --exclude leaves out of the restore. */
  exclude: ExcludeMatcher | undefined;
}

/**
 * Creates the target and its missing parents one at a time and checks that it may be written, so a
 * read-only or foreign target is refused up front, by name and with the real cause (a recursive
 * mkdir answers ENOENT on a read-only filesystem). True when the target is new.
 */
function makeTarget(target: string): boolean {
  const file = fileInTheWay(target);
  if (file !== undefined) {
    throw new AmberError(
      'TARGET_UNWRITABLE',
      file === resolve(target)
        ? `the restore target ${target} is a file, not a directory`
        : `the restore target ${target} is below ${file}, which is a file`,
      {
        hint: 'choose a directory (new or empty) for --target',
      },
    );
  }
  const missing: string[] = [];
  try {
    for (let dir = resolve(target); !lstatSync(dir, { throwIfNoEntry: false }); dir = dirname(dir))
      missing.unshift(dir);
    for (const dir of missing) mkdirSync(dir);
    accessSync(target, constants.W_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EROFS') {
      throw new AmberError('TARGET_UNWRITABLE', `the restore target ${target} is on a read-only filesystem (EROFS)`, {
        cause: error,
        hint: 'choose a --target on a writable filesystem, or remount this one read-write',
      });
    }
    if (code === 'EACCES' || code === 'EPERM') {
      throw new AmberError('TARGET_UNWRITABLE', `this user may not write into the restore target ${target} (${code})`, {
        cause: error,
        hint: 'choose a --target you may write, or restore as a user who may',
      });
    }
    throw targetError(error, target);
  }
  return missing.length > 0;
}

/** A partial file's name: hidden, beside its final name, recognisable by a later restore. */
const PARTIAL_NAME = /^\.(?:.+\.)?amber-partial-[0-9a-f]{16}$/;
const NAME_MAX = 255;
/** Linux's limit on a path given to a system call, terminating NUL included. */
const PATH_MAX = 4096;

/**
 * A fresh partial name in `dir`: 8 random hex digits per process and a counter (a random draw per
 * file costs more than the rename). O_EXCL still refuses a name that happens to exist.
 */
let partialCounter = 0;
const PARTIAL_PREFIX = randomBytes(4).toString('hex');
function partialPath(dir: string, name: string): string {
  partialCounter = (partialCounter + 1) >>> 0;
  const suffix = `amber-partial-${PARTIAL_PREFIX}${partialCounter.toString(16).padStart(8, '0')}`;
  // The final name stays readable in the partial one unless that would pass the length of a name or
  // its bytes are not UTF-8 (a later restore must recognise the partial name when it lists it).
  const readable = !hasEscapedBytes(name) && Buffer.byteLength(name) + suffix.length + 2 <= NAME_MAX;
  return join(dir, readable ? `.${name}.${suffix}` : `.${suffix}`);
}

/** Removes the partial files a killed restore left in a directory that existed before this one. */
function removeStalePartials(context: Context, dir: string): void {
  let names: string[];
  try {
    names = readdirSync(fsPath(dir));
  } catch {
    return; // unreadable: the restore reports the directory itself when it writes into it
  }
  for (const name of names) {
    if (!PARTIAL_NAME.test(name)) continue;
    try {
      unlinkSync(fsPath(join(dir, name)));
      context.partialsRemoved += 1;
    } catch {
      // a partial file that cannot be removed is only hidden clutter; the restore goes on
    }
  }
}

function interrupted(context: Context): AmberError {
  const left = context.partials.size;
  return new AmberError(
    'INTERRUPTED',
    `the restore was interrupted: ${context.progress.files} files are complete under their names` +
      (left > 0 ? `, ${left} partial file${left === 1 ? '' : 's'} removed` : '') +
      '; no file under its final name is incomplete',
    {
      hint: 'run the same restore again to finish it: complete files are kept (not restored again) and partial files removed',
      details: { files: context.progress.files, partialsRemoved: left },
    },
  );
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
    notSet: new Map(),
    exactTimes: startExactTimes(),
    hardLinks: new Map(),
    files: createLimiter(FILES_IN_FLIGHT),
    bytes: createLimiter(BYTES_IN_FLIGHT),
    partials: new Set(),
    aborted: false,
    exclude: options.exclude?.length ? createExcludeMatcher(options.exclude) : undefined,
    alreadyPresent: 0,
    partialsRemoved: 0,
  };
  // On abort the partial files go at once, synchronously: a worker still writing into one writes
  // into an unlinked file, and nothing in flight gives it a final name any more (see writeFile).
  let abortWith: (error: AmberError) => void = () => {};
  const abortion = new Promise<never>((_, reject) => (abortWith = reject));
  abortion.catch(() => {});
  const onAbort = () => {
    context.aborted = true;
    const error = interrupted(context);
    context.exactTimes.kill();
    for (const path of context.partials) rmSync(fsPath(path), { force: true });
    abortWith(error);
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    if (options.signal?.aborted) onAbort();
    const fresh = makeTarget(options.target);
    if (!fresh) removeStalePartials(context, options.target);
    const root = rootNode(options.snapshot.snapshot.tree);
    const includes = (options.include ?? []).map((path) => splitPath(path));
    for (const path of options.include ?? []) await resolvePath(context.reader, root.subtree!, path);
    if (!fresh && options.checkFirst && !options.overwrite) {
      const conflicts = await findConflicts(
        context.reader,
        root,
        options.target,
        includes.length > 0 ? includes : undefined,
        context.exclude,
        (existing, node, path) =>
          node.type === 'file' ? alreadyRestored(existing, node) : nodeAlreadyThere(existing, node, path),
      );
      if (conflicts.count > 0) throw conflictError(options.target, conflicts);
    }
    const pending: Promise<void>[] = [];
    const walk = (async () => {
      try {
        await restoreChildren(
          context,
          root,
          options.target,
          placeOf(options.target, fresh),
          '/',
          includes.length > 0 ? includes : undefined,
          pending,
        );
      } finally {
        await settleAll(pending);
      }
    })();
    walk.catch(() => {});
    await Promise.race([walk, abortion]);
    await finishExactTimes(context);
  } finally {
    context.exactTimes.kill();
    options.signal?.removeEventListener('abort', onAbort);
    await decoder?.close();
  }
  return {
    ...context.progress,
    alreadyPresent: context.alreadyPresent,
    partialsRemoved: context.partialsRemoved,
    errors: context.errors,
    skipped: context.skipped,
    notSet: [...context.notSet.values()],
  };
}

/**
 * Counts what could not be set, by kind and reason; the first of each is reported as a warning and
 * the rest are counted, so a restore of a million files as a user warns once, not a million times.
 */
function noteNotSet(context: Context, kind: string, path: string, reason: string): void {
  const key = `${kind}\0${reason}`;
  const known = context.notSet.get(key);
  if (known) {
    known.count += 1;
    return;
  }
  context.notSet.set(key, { kind, count: 1, example: path, reason });
  context.options.onWarning?.({
    path,
    code: 'RESTORE_INCOMPLETE',
    level: 'warning',
    message: `${reason}, first on "${displayName(path)}"; further entries are counted in the summary`,
  });
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
async function restoreChildren(
  context: Context,
  dir: TreeNode,
  targetDir: string,
  place: Place,
  path: string,
  includes: string[][] | undefined,
  pending: Promise<void>[],
): Promise<void> {
  const tree = await readTree(context.reader, dir.subtree!);
  // Each path to include names one entry here, as dump and ls resolve it.
  const chosen = includes?.map((parts) => findNamed(tree.nodes, parts[0]));
  for (const node of tree.nodes) {
    if (context.aborted) throw interrupted(context);
    let below: string[][] | undefined;
    if (includes) {
      const matching = includes.filter((_, k) => chosen![k] === node);
      if (matching.length === 0) continue;
      below = matching.some((parts) => parts.length === 1) ? undefined : matching.map((parts) => parts.slice(1));
    }
    const nodePath = path === '/' ? `/${node.name}` : `${path}/${node.name}`;
    if (context.exclude?.(nodePath, node.name, node.type === 'dir')) continue;
    const target = join(targetDir, node.name);
    const reportFailure = (error: unknown) => {
      if (!isAmberError(error) || error.code === 'WRITE_ONLY_KEY' || error.code === 'INTERRUPTED') throw error;
      const failure = { path: nodePath, code: error.code, message: error.message };
      context.errors.push(failure);
      context.options.onWarning?.(failure);
    };
    if (node.type === 'file') {
      await context.files.acquire(1);
      pending.push(
        restoreFile(context, node, target, place, nodePath)
          .then(() => {
            context.progress.files += 1;
            context.options.onProgress?.(context.progress);
          })
          .catch(reportFailure)
          .finally(() => context.files.release(1)),
      );
    } else if (node.type === 'dir') {
      // The walk goes on while files are written; a directory's mode and times are set once
      // everything inside it is done (writing into it would change its times again).
      const inside: Promise<void>[] = [];
      let walked = false;
      try {
        const made = makeDirectory(target, context.options.overwrite === true);
        if (!made) removeStalePartials(context, target);
        if (node.subtree) await restoreChildren(context, node, target, placeOf(target, made), nodePath, below, inside);
        walked = true;
      } catch (error) {
        reportFailure(error);
      } finally {
        pending.push(
          settleAll(inside)
            .then(() => {
              if (!walked) return;
              applyMetadata(context, node, target, nodePath);
              context.progress.dirs += 1;
            })
            .catch(reportFailure),
        );
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

/**
 * Whether a symlink or named pipe in the target is this node as an earlier restore left it (the
 * same link target; a FIFO with the same permissions): kept, as a complete file is.
 */
export function nodeAlreadyThere(existing: BigIntStats, node: TreeNode, target: string): boolean {
  if (node.type === 'symlink' && existing.isSymbolicLink()) {
    try {
      return readlinkSync(fsPath(target), { encoding: 'buffer' }).equals(nameBytes(node.linkTarget ?? ''));
    } catch {
      return false;
    }
  }
  return node.type === 'fifo' && existing.isFIFO() && Number(existing.mode & 0o7777n) === node.mode;
}

/** Symlinks, named pipes, device files, and sockets (listed, not recreated). */
async function restoreNode(context: Context, node: TreeNode, target: string, path: string): Promise<void> {
  if (!context.options.overwrite && (node.type === 'symlink' || node.type === 'fifo')) {
    const existing = lstatSync(fsPath(target), { bigint: true, throwIfNoEntry: false });
    if (existing && nodeAlreadyThere(existing, node, target)) {
      context.alreadyPresent += 1;
      return;
    }
  }
  switch (node.type) {
    case 'symlink':
      removeForOverwrite(target, context.options.overwrite === true);
      try {
        symlinkSync(nameBytes(node.linkTarget ?? ''), fsPath(target));
      } catch (error) {
        throw targetError(error, target);
      }
      break;
    case 'fifo':
    case 'chardev':
    case 'blockdev':
      if (node.type !== 'fifo' && !isRoot) {
        context.skipped.push({ path, type: node.type });
        noteNotSet(context, 'device', path, 'device files were not created: only root may create them');
        return;
      }
      removeForOverwrite(target, context.options.overwrite === true);
      if (lstatSync(fsPath(target), { throwIfNoEntry: false }))
        throw targetError(Object.assign(new Error('exists'), { code: 'EEXIST' }), target);
      makeSpecialFile(target, node.type, node.mode, BigInt(node.rdev ?? '0'));
      break;
    default:
      // Sockets are recreated by the programs that own them: a file in their place would be wrong.
      context.skipped.push({ path, type: node.type });
      return;
  }
  applyMetadata(context, node, target, path);
}

// File system calls here are synchronous on purpose: each takes microseconds, while a trip through
// libuv's thread pool costs more than the call itself, and a restore makes several per file.

/** True when the directory is new: nothing is in it but what this restore puts there. */
function makeDirectory(target: string, overwrite: boolean): boolean {
  try {
    mkdirSync(fsPath(target), { mode: 0o700 });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw targetError(error, target);
    // Never descend through a symlink: it could point anywhere, outside the target included.
    if (!lstatSync(fsPath(target)).isDirectory()) {
      if (!overwrite)
        throw new AmberError('TARGET_EXISTS', `"${displayName(target)}" exists and is not a directory`, {
          hint: 'restore into an empty directory, or pass --overwrite',
        });
      rmSync(fsPath(target), { force: true });
      mkdirSync(fsPath(target), { mode: 0o700 });
      return true;
    }
    return false;
  }
}

/** With --overwrite: true when `target` exists and may be replaced. Without it, creation itself refuses. */
function replaceable(target: string, overwrite: boolean): boolean {
  if (!overwrite) return false;
  const existing = lstatSync(fsPath(target), { throwIfNoEntry: false });
  if (!existing) return false;
  if (existing.isDirectory())
    throw new AmberError('TARGET_EXISTS', `"${displayName(target)}" is a directory; it is not replaced by a file`);
  return true;
}

function removeForOverwrite(target: string, overwrite: boolean): void {
  if (!replaceable(target, overwrite)) return;
  try {
    unlinkSync(fsPath(target));
  } catch (error) {
    throw targetError(error, target);
  }
}

/**
 * Whether an existing file is this node as a restore leaves it: a regular file with the snapshot's
 * size, permissions and modification time (to the microsecond that utimes keeps; to the millisecond
 * before 1970). Only complete files get their final name, so this is a file an earlier restore finished.
 */
function alreadyRestored(existing: BigIntStats, node: TreeNode): boolean {
  return (
    existing.isFile() &&
    existing.size === BigInt(node.sizeBytes) &&
    Number(existing.mode & 0o7777n) === node.mode &&
    timeAsRestored(existing.mtimeNs, node.mtimeNs)
  );
}

/** Whether a time on disk is the recorded one as a restore sets it: to the microsecond (the millisecond before 1970). */
export function timeAsRestored(actualNs: bigint, recordedNs: string): boolean {
  const ns = BigInt(recordedNs);
  const tolerance = ns < 0n ? 1_000_000n : 1_000n;
  const drift = actualNs - ns;
  return drift <= tolerance && drift >= -tolerance;
}

/**
 * What is at `target` before a file is restored there, in a directory that existed before: undefined
 * (nothing, or something --overwrite replaces) or 'present' (already restored, kept). Anything else
 * without --overwrite is refused.
 */
function existingFile(target: string, node: TreeNode, overwrite: boolean): 'present' | undefined {
  const existing = lstatSync(fsPath(target), { bigint: true, throwIfNoEntry: false });
  if (!existing) return undefined;
  if (existing.isDirectory())
    throw new AmberError('TARGET_EXISTS', `"${displayName(target)}" is a directory; it is not replaced by a file`);
  if (overwrite) return undefined;
  if (alreadyRestored(existing, node)) return 'present';
  throw targetError(Object.assign(new Error('exists'), { code: 'EEXIST' }), target);
}

async function restoreFile(
  context: Context,
  node: TreeNode,
  target: string,
  place: Place,
  path: string,
): Promise<void> {
  const overwrite = context.options.overwrite === true;
  // In a directory this restore created nothing can be in the way; elsewhere one lstat says what is.
  const present = !place.fresh && existingFile(target, node, overwrite) === 'present';
  if (present) context.alreadyPresent += 1;
  const linkKey = node.links > 1 ? `${node.deviceId}:${node.inode}` : undefined;
  if (!linkKey) return present ? undefined : writeFile(context, node, target, place, overwrite, path);
  // Looked up and claimed without an await in between: links to one inode may be in flight together.
  const known = context.hardLinks.get(linkKey);
  if (!known) {
    const done = (present ? Promise.resolve() : writeFile(context, node, target, place, overwrite, path)).then(
      () => target,
    );
    context.hardLinks.set(
      linkKey,
      done.catch(() => undefined),
    );
    return done.then(() => {});
  }
  const first = await known;
  if (present) return;
  if (!first) return writeFile(context, node, target, place, overwrite, path); // the first copy failed; this one stands alone
  if (context.aborted) throw interrupted(context);
  removeForOverwrite(target, overwrite);
  try {
    linkSync(fsPath(first), fsPath(target));
  } catch (error) {
    throw targetError(error, target);
  }
}

async function writeFile(
  context: Context,
  node: TreeNode,
  target: string,
  place: Place,
  overwrite: boolean,
  path: string,
): Promise<void> {
  // The walk may still reach files after an interruption removed the partial files: it must start
  // none (the process may exit before one made now could be removed).
  if (context.aborted) throw interrupted(context);
  let partial = '';
  let fd = -1;
  for (let attempt = 0; fd < 0; attempt++) {
    partial = partialPath(dirname(target), node.name);
    try {
      // O_EXCL refuses an existing name and O_NOFOLLOW a symlink planted in the target.
      fd = openSync(
        fsPath(partial),
        constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
        0o600,
      );
    } catch (error) {
      // Another restore's partial file by that name: draw the next one.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 3) throw targetError(error, target);
    }
  }
  context.partials.add(partial);
  const discard = () => {
    context.partials.delete(partial);
    rmSync(fsPath(partial), { force: true });
  };
  try {
    const { length, end } = await writeContent(context, fd, node.content ?? []);
    // Zeros at the end were skipped as a hole, which only a length makes part of the file.
    if (end < length) ftruncateSync(fd, length);
    // Metadata goes through the descriptor this restore created, never through a path: owner first
    // (a chown clears set-id bits and file capabilities), then mode, attributes (an ACL after the
    // mode it agrees with), times last.
    if (!isRoot) noteForeignOwner(context, node, path);
    else if (!(place.ownsAsCreated && node.uid === EUID && node.gid === EGID))
      setOwner(context, path, () => fchownSync(fd, node.uid, node.gid));
    fchmodSync(fd, node.mode);
    if (node.xattrs?.length) noteXattrFailures(context, path, writeXattrsFd(fd, node.xattrs, partial));
    futimesSync(fd, ...timesOf(node));
  } catch (error) {
    closeSync(fd);
    discard();
    throw targetError(error, target);
  }
  closeSync(fd);
  // Interrupted meanwhile: the partial file is already gone and must not get a final name.
  if (context.aborted) {
    discard();
    throw interrupted(context);
  }
  try {
    if (place.fresh || overwrite) {
      // A new directory holds nothing else; --overwrite replaces what is there, and only now that
      // the new content is complete and authentic, so a damaged chunk never costs the old file.
      renameSync(fsPath(partial), fsPath(target));
    } else {
      // Elsewhere a name that appeared meanwhile is refused, not replaced: link() never overwrites.
      giveNameExclusively(partial, target);
    }
  } catch (error) {
    discard();
    throw targetError(error, target);
  }
  context.partials.delete(partial);
  exactTimes(context, node, target);
}

/** Renames `partial` to `target` unless something is there; where the filesystem has no hard links, checks first. */
function giveNameExclusively(partialPath: string, targetPath: string): void {
  const partial = fsPath(partialPath);
  const target = fsPath(targetPath);
  try {
    linkSync(partial, target);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EMLINK') throw error;
    if (lstatSync(target, { throwIfNoEntry: false })) throw Object.assign(new Error('exists'), { code: 'EEXIST' });
    renameSync(partial, target);
    return;
  }
  unlinkSync(partial);
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
    writes.push(
      context.reader
        .writeBlob(id, fd, at)
        .then((writtenTo) => {
          context.progress.bytesWritten += expected;
          end = Math.max(end, writtenTo);
        })
        .finally(() => context.bytes.release(expected)),
    );
  }
  // Every write is finished before the caller closes the descriptor, even when one failed.
  await settleAll(writes);
  return { length: position, end };
}

/** Waits for the exact times; what they could not set is reported like any other kind. */
async function finishExactTimes(context: Context): Promise<void> {
  const outcome = await context.exactTimes.close();
  if (outcome.unavailable)
    noteNotSet(
      context,
      'time',
      context.options.target,
      `times were set to within about 240 ns, not to the nanosecond: ${outcome.unavailable}, and Node cannot (nodejs/node#50859)`,
    );
  for (const failure of outcome.failures)
    noteNotSet(context, 'time', failure.path, `times were set to within about 240 ns (${failure.errno})`);
}

function exactTimes(context: Context, node: TreeNode, target: string): void {
  context.exactTimes.set(target, BigInt(node.atimeNs ?? node.mtimeNs), BigInt(node.mtimeNs));
}

/** Access and modification times; a version 1 tree has no access time and gets the modification time. */
function timesOf(node: TreeNode): [string, string] {
  return [utimeSecondsFromNs(BigInt(node.atimeNs ?? node.mtimeNs)), utimeSecondsFromNs(BigInt(node.mtimeNs))];
}

/** Sets an owner as root; a filesystem that refuses (ids it cannot map, EINVAL) is reported, once. */
function setOwner(context: Context, path: string, chown: () => void): void {
  try {
    chown();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    noteNotSet(context, 'owner', path, `owners were not set (${code})`);
  }
}

/** Without root an entry stays the restoring user's: say so once when the snapshot names another owner. */
function noteForeignOwner(context: Context, node: TreeNode, path: string): void {
  if (node.uid !== EUID || node.gid !== EGID)
    noteNotSet(context, 'owner', path, 'owners were not set: only root may give entries to other users and groups');
}

function noteXattrFailures(context: Context, path: string, failures: XattrFailure[]): void {
  for (const failure of failures) noteNotSet(context, `xattr:${failure.kind}`, path, describeXattrFailure(failure));
}

/** Directories (once their contents are done), symlinks, pipes and devices: the same order as files. */
function applyMetadata(context: Context, node: TreeNode, target: string, path: string): void {
  const at = fsPath(target);
  if (isRoot) setOwner(context, path, () => lchownSync(at, node.uid, node.gid));
  else noteForeignOwner(context, node, path);
  try {
    if (node.type !== 'symlink') chmodSync(at, node.mode);
    if (node.xattrs?.length) {
      // Attributes are set through a path, and Node cannot reach a symlink, pipe or device by a
      // name that is not UTF-8 without opening it (docs/decisions/0005).
      if (node.type !== 'dir' && hasEscapedBytes(node.name))
        noteNotSet(
          context,
          'xattr:name',
          path,
          'extended attributes of symlinks, pipes and devices whose own name is not UTF-8 were not set',
        );
      else noteXattrFailures(context, path, writeXattrs(target, node.type, node.xattrs));
    }
    lutimesSync(at, ...timesOf(node));
  } catch (error) {
    throw targetError(error, target);
  }
  exactTimes(context, node, target);
}

/** A system error on the target as the error the restore reports for that entry; Amber's own pass through. */
function targetError(error: unknown, target: string): unknown {
  if (isAmberError(error)) return error;
  const shown = displayName(target);
  const code = (error as NodeJS.ErrnoException)?.code;
  if (code === 'EEXIST')
    return new AmberError('TARGET_EXISTS', `"${shown}" already exists`, {
      hint: 'restore into an empty directory, or pass --overwrite',
    });
  if (code === 'ELOOP')
    return new AmberError('UNSAFE_PATH', `"${shown}" is a symlink; Amber does not write through symlinks`);
  if (code === 'ENOSPC' || code === 'EDQUOT')
    return new AmberError('STORAGE_FULL', `no space left to restore "${shown}"`, {
      hint: 'free space on the target filesystem, or raise the quota',
    });
  if (code === 'ENAMETOOLONG') {
    // Node has no openat(): a path the kernel refuses whole cannot be reached here, so the entry
    // (and, for a directory, what is in it) is reported as not restored, never dropped silently.
    return new AmberError(
      'TARGET_UNWRITABLE',
      `"${shown}" was not restored: its path is ${nameBytes(target).length} bytes, longer than this system accepts (PATH_MAX ${PATH_MAX} bytes, ENAMETOOLONG)`,
      {
        cause: error,
        hint: 'restore that part with --include into a shorter --target, such as /r',
      },
    );
  }
  if (code === 'EROFS')
    return new AmberError('TARGET_UNWRITABLE', `"${shown}" is on a read-only filesystem (EROFS)`, {
      cause: error,
      hint: 'restore onto a writable filesystem, or remount it read-write',
    });
  if (typeof code === 'string') {
    return new AmberError('TARGET_UNWRITABLE', `"${shown}" could not be written (${code})`, {
      cause: error,
      hint:
        code === 'EACCES' || code === 'EPERM'
          ? 'restore where you may write, or as a user who may'
          : code === 'ENAMETOOLONG'
            ? 'choose a shorter --target'
            : undefined,
    });
  }
  return error;
}
