// The embedded default store: a directory on a local filesystem. Object 'data/ab/cd' lives at
// <root>/data/ab/cd. Create-only is structural: bytes are written to a private temporary file and
// hard-linked into place, and link() fails if the name exists, so no code path can replace an object.
//
// Retention: the store keeps no dates (they are the repository's signed grant records). protect()
// makes object files immutable and every directory from an object up to the root append-only (Linux
// file attributes, set with chattr in batches), where the process may: root or CAP_LINUX_IMMUTABLE on
// a filesystem that has them. Then no one short of root lifting the attributes can change, rename or
// remove an object, while puts still work: an append-only directory accepts new entries (links and
// subdirectories), only refusing to remove or rename them. <root>/tmp/ never gets an attribute, so
// temporary files stay removable; and a temporary name is never made immutable, since an immutable
// file cannot gain the link that puts it in place. deleteExpired() is the only code that lifts the
// attributes, for one object at a time, once prune has checked its grants.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { chmod, link, mkdir, open, readdir, rm, stat, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { AmberError } from '../../core/errors.ts';
import type { AmberErrorOptions, ErrorCode } from '../../core/errors.ts';
import { checkObjectName, isValidObjectName } from '../store.ts';
import type {
  ByteRange,
  Enforcement,
  ObjectInfo,
  ObjectProtection,
  ObjectRetention,
  PutOptions,
  Store,
} from '../store.ts';

/** Directory under the root for temporary files; names under it are reserved. */
const TMP_DIR = 'tmp';
const DIR_MODE = 0o700;
const FILE_MODE = 0o444;
/** Descriptors kept open for ranged reads, per store. */
const OPEN_READ_DESCRIPTORS = 32;
/** Paths per chattr/lsattr call: one process for many objects, far below the kernel's argument limit. */
const ATTR_BATCH = 500;

export interface FsStoreOptions {
  /** Make protected objects immutable and their directories append-only where the process may
   *  (default true). Off, protect only checks that the objects exist. */
  lockObjects?: boolean;
}

function isReserved(name: string): boolean {
  return name === TMP_DIR || name.startsWith(`${TMP_DIR}/`);
}

const CODE_BY_ERRNO: Record<string, ErrorCode> = {
  ENOENT: 'OBJECT_NOT_FOUND',
  ENOTDIR: 'OBJECT_NOT_FOUND',
  EISDIR: 'OBJECT_NOT_FOUND',
  EEXIST: 'OBJECT_EXISTS',
  ENOSPC: 'STORAGE_FULL',
  EDQUOT: 'STORAGE_FULL',
  EACCES: 'STORAGE_ACCESS_DENIED',
  EPERM: 'STORAGE_ACCESS_DENIED',
  EROFS: 'STORAGE_ACCESS_DENIED',
  EIO: 'STORAGE_TRANSIENT',
  EAGAIN: 'STORAGE_TRANSIENT',
  EMFILE: 'STORAGE_TRANSIENT',
  ENFILE: 'STORAGE_TRANSIENT',
  EBUSY: 'STORAGE_TRANSIENT',
};

type Action = 'read' | 'write' | 'list' | 'protect' | 'delete';

function errnoOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Translates a Node fs error into the store's closed set of codes. Errors without a known errno
 * (bugs, or conditions nobody anticipated) are returned unchanged so they surface with their stack.
 */
function translateFsError(error: unknown, action: Action, name: string, location: string): unknown {
  if (error instanceof AmberError) return error;
  const errno = errnoOf(error);
  let code = errno === undefined ? undefined : CODE_BY_ERRNO[errno];
  if (code === undefined) return error;
  // A file where the store needs a directory (the location itself, or one of its folders) does not
  // pass on a retry: say what it is instead of "retry".
  if (errno === 'ENOTDIR' && action === 'write') {
    return new AmberError(
      'INVALID_OBJECT_NAME',
      `Could not write ${name === '' ? `the store ${location}` : `object '${name}' in ${location}`}: a part of its path is a file, not a directory (ENOTDIR)`,
      {
        cause: error,
        details: { name, location, errno },
        hint: `The store ${location} must be a directory whose folders Amber made; if a file is in the way, choose another location or remove it.`,
      },
    );
  }
  // A path vanishing under a write means a directory was removed concurrently, not a missing object.
  if (code === 'OBJECT_NOT_FOUND' && action === 'write') code = 'STORAGE_TRANSIENT';
  const what = name === '' ? `the store ${location}` : `object '${name}' in ${location}`;
  const options = { cause: error, details: { name, location, errno } };
  switch (code) {
    case 'OBJECT_NOT_FOUND':
      return notFound(name, location, options);
    case 'OBJECT_EXISTS':
      return new AmberError(code, `Object '${name}' already exists in ${location}`, {
        ...options,
        hint: 'Objects are never overwritten; write under a new name.',
      });
    case 'STORAGE_FULL':
      return new AmberError(code, `No space left to ${action} ${what} (${errno})`, {
        ...options,
        hint: `Free space or raise the quota on the filesystem holding ${location}, then retry.`,
      });
    case 'STORAGE_ACCESS_DENIED':
      return new AmberError(code, `Access denied trying to ${action} ${what} (${errno})`, {
        ...options,
        hint: `Check that this user may read and write ${location} and that its filesystem is not mounted read-only.`,
      });
    default:
      return new AmberError(code, `Could not ${action} ${what} (${errno})`, {
        ...options,
        hint: 'Retry; if it keeps failing, check the disk and the system log.',
      });
  }
}

function notFound(name: string, location: string, options: AmberErrorOptions = {}): AmberError {
  const message = name === '' ? `${location} does not exist` : `Object '${name}' does not exist in ${location}`;
  return new AmberError('OBJECT_NOT_FOUND', message, options);
}

// Some filesystems (certain FUSE and network mounts) cannot fsync a directory; that is not a reason
// to fail a write whose data is already synced.
async function syncDir(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } catch (error) {
    if (errnoOf(error) !== 'EINVAL' && errnoOf(error) !== 'ENOTSUP') throw error;
  } finally {
    await handle.close();
  }
}

// --- File attributes (chattr/lsattr) ---------------------------------------------------------

/** How a chattr or lsattr run ended: done, the tool or the attribute is unavailable here, or failed. */
type AttrRun =
  | { outcome: 'done'; stdout: string }
  | { outcome: 'unavailable'; reason: string; stdout: string }
  | { outcome: 'failed'; error: Error & { code?: string }; stdout: string };

// What the tools print (in the C locale, which runAttrTool asks for) when the kernel refuses the
// ioctl; turned back into an errno so translateFsError can handle it like any fs error.
const ERRNO_BY_MESSAGE: Array<[RegExp, string]> = [
  [/Operation not permitted/, 'EPERM'],
  [/Inappropriate ioctl for device/, 'ENOTTY'],
  [/Operation not supported/, 'EOPNOTSUPP'],
  [/Permission denied/, 'EACCES'],
  [/No such file or directory/, 'ENOENT'],
  [/Not a directory/, 'ENOTDIR'],
  [/Read-only file system/, 'EROFS'],
  [/No space left on device/, 'ENOSPC'],
  [/Input\/output error/, 'EIO'],
];

/** Errnos that mean this process or this filesystem cannot have the attributes, not that a call failed. */
const UNAVAILABLE_ERRNOS = new Set(['EPERM', 'ENOTTY', 'EOPNOTSUPP']);

/**
 * Runs chattr or lsattr on `args` without a shell. A missing binary or an attribute the process or
 * filesystem cannot have (not root, no CAP_LINUX_IMMUTABLE, a filesystem without attributes) is
 * 'unavailable' when `refusalMeansUnavailable`; any other failure carries the errno it printed.
 */
function runAttrTool(tool: 'chattr' | 'lsattr', args: string[], refusalMeansUnavailable: boolean): Promise<AttrRun> {
  return new Promise((resolveRun) => {
    const env = { ...process.env, LC_ALL: 'C', LANG: 'C' };
    execFile(tool, args, { env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error === null) return resolveRun({ outcome: 'done', stdout });
      // A string code is the spawn's own errno; a number is the tool's exit status.
      if (errnoOf(error) === 'ENOENT')
        return resolveRun({ outcome: 'unavailable', reason: `${tool} is not installed`, stdout });
      const message = stderr.trim() || error.message;
      const errno =
        typeof error.code === 'string' ? error.code : ERRNO_BY_MESSAGE.find(([pattern]) => pattern.test(message))?.[1];
      if (refusalMeansUnavailable && errno !== undefined && UNAVAILABLE_ERRNOS.has(errno)) {
        return resolveRun({ outcome: 'unavailable', reason: message.split('\n')[0], stdout });
      }
      resolveRun({
        outcome: 'failed',
        error: Object.assign(new Error(`${tool} failed: ${message}`), { code: errno }),
        stdout,
      });
    });
  });
}

function chunked<T>(items: T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let start = 0; start < items.length; start += size) chunks.push(items.slice(start, start + size));
  return chunks;
}

/** lsattr -d output, one `<flags> <path>` line per path, as path → flags. */
function parseLsattr(stdout: string): Map<string, string> {
  const flags = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const space = line.indexOf(' ');
    if (space > 0) flags.set(line.slice(space + 1), line.slice(0, space));
  }
  return flags;
}

export function createFsStore(root: string, options: FsStoreOptions = {}): Store {
  const rootPath = resolve(root);
  const location = rootPath;
  const tmpPath = join(rootPath, TMP_DIR);
  // Directories whose entry chain up to the root this process has fsynced; see ensureDurableDir.
  const durableDirs = new Set<string>();

  function checkName(name: string): void {
    checkObjectName(name, location, TMP_DIR);
  }

  function pathOf(name: string): string {
    return join(rootPath, ...name.split('/'));
  }

  // A new object is durable only if every directory entry leading to it is: after creating
  // directories, fsync each one from the root (or above, if the root itself was created) down.
  // "Existed already" is not enough, because a concurrent put may have created it and not yet
  // synced it, so every process does the chain once per directory.
  async function ensureDurableDir(dir: string): Promise<void> {
    const firstCreated = await mkdir(dir, { recursive: true, mode: DIR_MODE });
    if (firstCreated === undefined && durableDirs.has(dir)) return;
    const top = firstCreated !== undefined && firstCreated.length <= rootPath.length ? dirname(firstCreated) : rootPath;
    for (let current = dir; ; current = dirname(current)) {
      await syncDir(current);
      if (current === top || current === dirname(current)) break;
    }
    durableDirs.add(dir);
  }

  async function openTemp(path: string): Promise<FileHandle> {
    try {
      return await open(path, 'wx', 0o600);
    } catch (error) {
      if (errnoOf(error) !== 'ENOENT') throw error;
      // The first put into a new store creates the root and tmp/; later puts never pay for this.
      await mkdir(tmpPath, { recursive: true, mode: DIR_MODE });
      return await open(path, 'wx', 0o600);
    }
  }

  /** Writes bytes to a fresh temporary file, read-only and synced; removes it again on failure. */
  async function writeTemp(bytes: Uint8Array): Promise<string> {
    const path = join(tmpPath, randomBytes(16).toString('hex'));
    const handle = await openTemp(path);
    try {
      try {
        await handle.writeFile(bytes);
        // Made read-only before it is linked, so the object is never visible with write permission.
        await handle.chmod(FILE_MODE);
        await handle.sync();
      } finally {
        await handle.close();
      }
    } catch (error) {
      await rm(path, { force: true }).catch(() => {});
      throw error;
    }
    return path;
  }

  /** Turns a failed link() into the right error: the name is taken, or it collides with a directory. */
  async function linkError(error: unknown, name: string, finalPath: string): Promise<unknown> {
    const errno = errnoOf(error);
    const collides =
      errno === 'ENOTDIR' ||
      (errno === 'EEXIST' &&
        !(await stat(finalPath).then(
          (s) => s.isFile(),
          () => false,
        )));
    if (!collides) return translateFsError(error, 'write', name, location);
    return new AmberError(
      'INVALID_OBJECT_NAME',
      `Object name '${name}' collides with another object's path in ${location}: one name is a directory of the other`,
      { cause: error, hint: 'A filesystem store cannot hold both "a" and "a/b"; choose names that do not nest.' },
    );
  }

  async function put(name: string, bytes: Uint8Array, _options: PutOptions = {}): Promise<void> {
    // Retention options are accepted so callers can pass them everywhere, but this store keeps no
    // dates: they are grant records, and callers lock objects with protect(), in batches, since
    // locking here would cost a chattr process per object.
    checkName(name);
    const finalPath = pathOf(name);
    const parent = dirname(finalPath);
    let tempPath: string;
    try {
      tempPath = await writeTemp(bytes);
    } catch (error) {
      throw translateFsError(error, 'write', name, location);
    }
    try {
      try {
        await ensureDurableDir(parent);
        await link(tempPath, finalPath);
      } catch (error) {
        throw await linkError(error, name, finalPath);
      }
      // Once linked, the object is complete and is never removed again, even if this sync fails:
      // a concurrent put of the same name may already have been told it exists.
      await syncDir(parent).catch((error: unknown) => {
        throw translateFsError(error, 'write', name, location);
      });
    } finally {
      // A leftover temporary file is only garbage, so failing to remove it must not fail the put.
      await rm(tempPath, { force: true }).catch(() => {});
    }
  }

  async function get(name: string, range?: ByteRange, into?: Uint8Array): Promise<Uint8Array> {
    checkName(name);
    if (range !== undefined) {
      assert.ok(Number.isSafeInteger(range.offset) && range.offset >= 0, 'range.offset must be a non-negative integer');
      assert.ok(Number.isSafeInteger(range.length) && range.length >= 0, 'range.length must be a non-negative integer');
    }
    if (range !== undefined) return readRange(name, range, into);
    let handle: FileHandle | undefined;
    try {
      handle = await open(pathOf(name), 'r');
      const info = await handle.stat();
      if (!info.isFile()) throw notFound(name, location);
      if (into && into.length >= info.size) {
        let filled = 0;
        while (filled < info.size) {
          const { bytesRead } = await handle.read(into, filled, info.size - filled, filled);
          if (bytesRead === 0) break;
          filled += bytesRead;
        }
        return into.subarray(0, filled);
      }
      const buffer = await handle.readFile();
      return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    } catch (error) {
      throw translateFsError(error, 'read', name, location);
    } finally {
      await handle?.close();
    }
  }

  // Ranged reads (restores, parent trees) come many to a pack. Objects never change once written,
  // so a few descriptors stay open, and the reads are synchronous: from the page cache they take
  // microseconds, far less than a round trip through libuv's thread pool.
  const readDescriptors = new Map<string, { fd: number; sizeBytes: number }>();

  /** Closes the cached descriptor of an object about to be removed, so no read sees the old inode. */
  function forgetDescriptor(name: string): void {
    const cached = readDescriptors.get(name);
    if (cached === undefined) return;
    readDescriptors.delete(name);
    closeSync(cached.fd);
  }

  function descriptorFor(name: string): { fd: number; sizeBytes: number } {
    const cached = readDescriptors.get(name);
    if (cached) {
      readDescriptors.delete(name);
      readDescriptors.set(name, cached);
      return cached;
    }
    const fd = openSync(pathOf(name), 'r');
    const info = fstatSync(fd);
    if (!info.isFile()) {
      closeSync(fd);
      throw notFound(name, location);
    }
    const entry = { fd, sizeBytes: info.size };
    readDescriptors.set(name, entry);
    if (readDescriptors.size > OPEN_READ_DESCRIPTORS) {
      const [oldest, { fd: old }] = readDescriptors.entries().next().value!;
      readDescriptors.delete(oldest);
      closeSync(old);
    }
    return entry;
  }

  async function readRange(name: string, range: ByteRange, into: Uint8Array | undefined): Promise<Uint8Array> {
    try {
      const { fd, sizeBytes } = descriptorFor(name);
      // Judged by the size before any memory is taken: a hostile index may ask for 4 GiB of a small
      // pack, which readSync (lengths of at most 2^31 - 1) would throw on as a RangeError.
      const short = range.offset + range.length > sizeBytes;
      const out = short
        ? new Uint8Array(0)
        : into && into.length >= range.length
          ? into.subarray(0, range.length)
          : new Uint8Array(range.length);
      let filled = 0;
      while (!short && filled < range.length) {
        const bytesRead = readSync(fd, out, filled, range.length - filled, range.offset + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      if (short || filled < range.length) {
        // The caller asks for bytes an index promised; a short object is damage, not a short read.
        throw new AmberError(
          'OBJECT_CORRUPT',
          `Object '${name}' in ${location} holds ${sizeBytes} bytes, fewer than the ${range.length} asked for at offset ${range.offset}`,
          { details: { name, location, sizeBytes, ...range } },
        );
      }
      return out;
    } catch (error) {
      throw translateFsError(error, 'read', name, location);
    }
  }

  async function statObject(name: string): Promise<ObjectInfo> {
    checkName(name);
    try {
      const info = await stat(pathOf(name));
      if (!info.isFile()) throw notFound(name, location);
      return { name, sizeBytes: info.size, writtenMs: info.mtimeMs };
    } catch (error) {
      throw translateFsError(error, 'read', name, location);
    }
  }

  // Walks <root>/<dirName> for entries starting with `partial`; everything below a matching
  // directory matches. Entries that are not valid object names (including tmp/) are not objects.
  async function* walk(dirName: string, partial: string, prefix: string): AsyncGenerator<ObjectInfo> {
    let entries;
    try {
      entries = await readdir(dirName === '' ? rootPath : pathOf(dirName), { withFileTypes: true });
    } catch (error) {
      const errno = errnoOf(error);
      if (errno === 'ENOENT' || errno === 'ENOTDIR') return;
      throw translateFsError(error, 'list', prefix, location);
    }
    for (const entry of entries) {
      if (!entry.name.startsWith(partial)) continue;
      const name = dirName === '' ? entry.name : `${dirName}/${entry.name}`;
      if (!isValidObjectName(name) || isReserved(name)) continue;
      if (entry.isDirectory()) {
        yield* walk(name, '', prefix);
      } else if (entry.isFile()) {
        try {
          const info = await stat(pathOf(name));
          yield { name, sizeBytes: info.size, writtenMs: info.mtimeMs };
        } catch (error) {
          if (errnoOf(error) !== 'ENOENT') throw translateFsError(error, 'list', prefix, location);
        }
      }
    }
  }

  async function* list(prefix: string): AsyncIterable<ObjectInfo> {
    const cut = prefix.lastIndexOf('/');
    const dirName = cut < 0 ? '' : prefix.slice(0, cut);
    // A prefix whose directory part is no valid name matches no object; it must never reach a path.
    if (cut >= 0 && (!isValidObjectName(dirName) || isReserved(dirName))) return;
    yield* walk(dirName, prefix.slice(cut + 1), prefix);
  }

  async function exists(): Promise<boolean> {
    try {
      const entries = await readdir(rootPath);
      return entries.some((entry) => entry !== TMP_DIR);
    } catch (error) {
      if (errnoOf(error) === 'ENOENT' || errnoOf(error) === 'ENOTDIR') return false;
      throw translateFsError(error, 'read', '', location);
    }
  }

  // --- Retention: attributes ---------------------------------------------------------------------

  // Whether this store can set the attributes: learned at the first chattr (or lsattr) and kept, so
  // a store that cannot lock pays for one failed process, not one per protect.
  let lockState: 'untried' | 'able' | 'unable' = 'untried';
  let unableReason = '';
  if (options.lockObjects === false) [lockState, unableReason] = ['unable', 'locking was turned off for this store'];
  else if (process.platform !== 'linux') [lockState, unableReason] = ['unable', 'file attributes are Linux-only'];
  // Directories this store has made append-only; the attribute stays, so each needs one chattr.
  const appendOnlyDirs = new Set<string>();

  function learnUnable(reason: string): void {
    if (lockState === 'unable') return;
    lockState = 'unable';
    unableReason = reason;
  }

  /** The directories from an object's parent up to and including the root (never tmp/). */
  function directoryChain(path: string): string[] {
    const dirs: string[] = [];
    for (let dir = dirname(path); ; dir = dirname(dir)) {
      assert.ok(dir !== tmpPath && dir.startsWith(rootPath), `${dir} is not an object directory of ${rootPath}`);
      dirs.push(dir);
      if (dir === rootPath) return dirs;
    }
  }

  /** The error for a failed attribute change on the objects `names` (the one the tool named, if any). */
  function attrError(error: Error, action: Action, names: string[]): unknown {
    const named = names.find((name) => error.message.includes(pathOf(name))) ?? names[0] ?? '';
    return translateFsError(error, action, named, location);
  }

  /**
   * chattr `change` on `paths`, in batches. False when the store turns out unable to set the
   * attribute (it remembers, and protect stops trying); other failures throw.
   */
  async function changeAttribute(change: '+i' | '+a', paths: string[], names: string[]): Promise<boolean> {
    for (const batch of chunked(paths, ATTR_BATCH)) {
      const run = await runAttrTool('chattr', [change, '--', ...batch], true);
      if (run.outcome === 'unavailable') {
        learnUnable(run.reason);
        return false;
      }
      if (run.outcome === 'failed') throw attrError(run.error, 'protect', names);
      lockState = 'able';
    }
    return true;
  }

  /** Checks every name is an object, a batch at a time (a protect can name many thousands). */
  async function requireObjects(names: string[]): Promise<void> {
    for (const name of names) checkName(name);
    for (const batch of chunked(names, ATTR_BATCH)) await Promise.all(batch.map((name) => statObject(name)));
  }

  // protect() calls made in the same turn of the event loop share one chattr run (a process each).
  let pending: { names: string[]; done: Promise<void> } | undefined;

  async function protect(names: string[], retention: ObjectRetention): Promise<void> {
    // The date is checked for sense only: this store keeps none (see the header).
    assert.ok(Number.isFinite(retention.untilMs), 'retention.untilMs must be a finite number of epoch ms');
    await requireObjects(names);
    if (lockState === 'unable' || names.length === 0) return;
    if (!pending) {
      const batch = { names: [] as string[], done: Promise.resolve() };
      batch.done = new Promise((resolve) => setImmediate(resolve)).then(() => {
        pending = undefined;
        return lockObjects(batch.names);
      });
      pending = batch;
    }
    pending.names.push(...names);
    return pending.done;
  }

  async function lockObjects(names: string[]): Promise<void> {
    const files = names.map(pathOf);
    const dirs = [...new Set(files.flatMap(directoryChain))].filter((dir) => !appendOnlyDirs.has(dir));
    // Read-only again where someone made a file writable (an immutable file refuses, and needs none).
    await Promise.all(files.map((file) => chmod(file, FILE_MODE).catch(() => undefined)));
    // Files first: a directory made append-only with its files still mutable protects nothing yet.
    if (!(await changeAttribute('+i', files, names))) return;
    if (dirs.length === 0) return;
    await withDirectories(dirs, async () => {
      if (await changeAttribute('+a', dirs, names)) for (const dir of dirs) appendOnlyDirs.add(dir);
    });
  }

  /** The attribute flags of each path (lsattr -d, batched), or undefined where lsattr cannot tell. */
  async function readFlags(paths: string[], names: string[], action: Action): Promise<Map<string, string> | undefined> {
    const flags = new Map<string, string>();
    for (const batch of chunked(paths, ATTR_BATCH)) {
      const run = await runAttrTool('lsattr', ['-d', '--', ...batch], true);
      if (run.outcome === 'failed') throw attrError(run.error, action, names);
      if (run.outcome === 'unavailable') {
        // Without lsattr, or on a filesystem without attributes, nothing can be locked either.
        learnUnable(run.reason);
        return undefined;
      }
      for (const [path, pathFlags] of parseLsattr(run.stdout)) flags.set(path, pathFlags);
    }
    return flags;
  }

  async function protection(names: string[]): Promise<ObjectProtection[]> {
    await requireObjects(names);
    if (names.length === 0) return [];
    const flags = await readFlags(names.map(pathOf), names, 'read');
    // lsattr's flags column: a lowercase i is the immutable attribute (uppercase I is another one).
    const found = names.map((name) => ({ name, locked: flags?.get(pathOf(name))?.includes('i') ?? false }));
    // An object found immutable proves this store can lock, whatever this process has tried so far.
    if (lockState === 'untried' && found.some(({ locked }) => locked)) lockState = 'able';
    return found;
  }

  // deleteExpired lifts a directory's append-only attribute for the moment of one unlink. Within this
  // store, whatever else changes that directory's attribute (another deleteExpired, protect) waits for
  // it, or the unlink would meet the attribute again. Operations register all their directories at
  // once and wait for those registered before them, so they cannot wait on each other in a circle.
  const busyDirectories = new Map<string, Promise<void>>();

  async function withDirectories<T>(dirs: string[], fn: () => Promise<T>): Promise<T> {
    const earlier = dirs.flatMap((dir) => busyDirectories.get(dir) ?? []);
    let release!: () => void;
    const mine = new Promise<void>((resolveMine) => (release = resolveMine));
    for (const dir of dirs) busyDirectories.set(dir, mine);
    try {
      await Promise.all(earlier);
      return await fn();
    } finally {
      release();
      for (const dir of dirs) if (busyDirectories.get(dir) === mine) busyDirectories.delete(dir);
    }
  }

  /** chattr for deleteExpired: a refusal here is an error (the object stays), not a missing ability. */
  async function changeForDelete(change: '-ia' | '+a', paths: string[], name: string): Promise<void> {
    const run = await runAttrTool('chattr', [change, '--', ...paths], false);
    if (run.outcome === 'done') return;
    const error = run.outcome === 'failed' ? run.error : new Error(run.reason);
    if (errnoOf(error) === 'EPERM' || run.outcome === 'unavailable') {
      throw new AmberError(
        'STORAGE_ACCESS_DENIED',
        `Cannot lift the attributes protecting object '${name}' in ${location}: ${error.message}`,
        {
          cause: error,
          hint: 'The object is immutable (chattr +i) or its directory append-only, and only root (or CAP_LINUX_IMMUTABLE) can lift that: run the removal as root.',
          details: { name, location, paths },
        },
      );
    }
    throw translateFsError(error, 'delete', name, location);
  }

  /**
   * Removes an object the attributes block: lifts them (one chattr for the file and its directory),
   * unlinks, and makes the directory append-only again. Each chattr is a process (~10 ms), hence
   * one lsattr to learn what to lift rather than trying each in turn.
   */
  async function unlinkLocked(name: string, path: string, refused: unknown): Promise<void> {
    const parent = dirname(path);
    const flags = await readFlags([path, parent], [name], 'delete');
    const fileFlags = flags?.get(path) ?? '';
    const dirFlags = flags?.get(parent) ?? '';
    const lift = [...(/[ia]/.test(fileFlags) ? [path] : []), ...(dirFlags.includes('a') ? [parent] : [])];
    // An immutable directory was made so by its administrator, never by this store: it stays so.
    if (lift.length === 0 || dirFlags.includes('i')) throw refused;
    await changeForDelete('-ia', lift, name);
    if (!lift.includes(parent)) return unlink(path);
    try {
      await unlink(path);
    } finally {
      // Failing to restore must not report the removal as failed (the object is gone); forgetting
      // the directory makes the next protect of an object in it set the attribute again.
      await changeForDelete('+a', [parent], name).then(
        () => appendOnlyDirs.add(parent),
        () => appendOnlyDirs.delete(parent),
      );
    }
  }

  async function deleteExpired(name: string): Promise<void> {
    await statObject(name);
    const path = pathOf(name);
    const parent = dirname(path);
    try {
      await withDirectories([parent], async () => {
        // Most objects prune removes are unprotected or in a store that cannot lock: one unlink.
        // EPERM (not EACCES) is what the attributes answer, so only then are they looked at.
        await unlink(path).catch((error: unknown) =>
          errnoOf(error) === 'EPERM' ? unlinkLocked(name, path, error) : Promise.reject(error),
        );
      });
      // Closed once the name is gone, so a ranged read in between cannot cache the old file again.
      forgetDescriptor(name);
      await syncDir(parent);
    } catch (error) {
      throw translateFsError(error, 'delete', name, location);
    }
  }

  function enforcement(): Enforcement {
    // Until the first chattr, running as root is the guess (CAP_LINUX_IMMUTABLE and a filesystem
    // with attributes are the rest); protect and protection correct it.
    const canLock = lockState === 'able' || (lockState === 'untried' && process.getuid?.() === 0);
    const holdsAgainst = ['other users on this host (the root is private and files are read-only)'];
    if (canLock) {
      holdsAgainst.push(
        "the directory's owner (objects are immutable and their directories append-only)",
        'a careless rm by root (it fails on immutable files)',
      );
    }
    const how =
      lockState === 'able'
        ? 'Protected objects are immutable and their directories append-only (Linux file attributes).'
        : lockState === 'untried'
          ? canLock
            ? 'Protected objects will be made immutable and their directories append-only (running as root; not yet tried).'
            : 'Not running as root, so protected objects probably cannot be made immutable (not yet tried); the account that owns the directory can remove files.'
          : `Protected objects cannot be made immutable here (${unableReason}); the account that owns the directory can remove files.`;
    return {
      enforcer: 'client',
      holdsAgainst,
      notes:
        `Retention dates are checked by this program (the repository's grant records); the store only blocks changes. ${how} ` +
        'Root on the same host can lift the attributes (chattr -i) and then remove files: against root, keep a copy ' +
        'on a vault on another host or in S3 with Object Lock in compliance mode.',
    };
  }

  return { location, put, get, stat: statObject, list, exists, enforcement, protect, protection, deleteExpired };
}
