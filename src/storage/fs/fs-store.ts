// The embedded default store: a directory on a local filesystem. Object 'data/ab/cd' lives at
// <root>/data/ab/cd. Create-only is structural: bytes are written to a private temporary file and
// hard-linked into place, and link() fails if the name exists, so no code path can replace an object.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { link, mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { AmberError } from '../../core/errors.ts';
import type { AmberErrorOptions, ErrorCode } from '../../core/errors.ts';
import { isValidObjectName } from '../store.ts';
import type { ByteRange, Enforcement, ObjectInfo, PutOptions, Store } from '../store.ts';

/** Directory under the root for temporary files; names under it are reserved. */
const TMP_DIR = 'tmp';
const DIR_MODE = 0o700;
const FILE_MODE = 0o444;
/** Descriptors kept open for ranged reads, per store. */
const OPEN_READ_DESCRIPTORS = 32;

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

type Action = 'read' | 'write' | 'list';

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

export function createFsStore(root: string): Store {
  const rootPath = resolve(root);
  const location = rootPath;
  const tmpPath = join(rootPath, TMP_DIR);
  // Directories whose entry chain up to the root this process has fsynced; see ensureDurableDir.
  const durableDirs = new Set<string>();

  function checkName(name: string): void {
    const reserved = isReserved(name);
    if (!isValidObjectName(name) || reserved) {
      throw new AmberError('INVALID_OBJECT_NAME', `Object name ${JSON.stringify(name)} is not valid for ${location}`, {
        hint: reserved
          ? `'${TMP_DIR}/' holds temporary files in a filesystem store and cannot hold objects.`
          : 'Object names are lowercase segments of a-z, 0-9, _, . and - joined by /.',
      });
    }
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
      errno === 'ENOTDIR' || (errno === 'EEXIST' && !(await stat(finalPath).then((s) => s.isFile(), () => false)));
    if (!collides) return translateFsError(error, 'write', name, location);
    return new AmberError(
      'INVALID_OBJECT_NAME',
      `Object name '${name}' collides with another object's path in ${location}: one name is a directory of the other`,
      { cause: error, hint: 'A filesystem store cannot hold both "a" and "a/b"; choose names that do not nest.' },
    );
  }

  async function put(name: string, bytes: Uint8Array, _options: PutOptions = {}): Promise<void> {
    // Retention options are accepted so callers can pass them everywhere; enforcing them here
    // (grant records, the immutable attribute) comes with the retention work.
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
      const out = into && into.length >= range.length ? into.subarray(0, range.length) : new Uint8Array(range.length);
      let filled = 0;
      while (filled < range.length) {
        const bytesRead = readSync(fd, out, filled, range.length - filled, range.offset + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      if (filled < range.length) {
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
      return { name, sizeBytes: info.size };
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
          yield { name, sizeBytes: (await stat(pathOf(name))).size };
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

  function enforcement(): Enforcement {
    return {
      enforcer: 'client',
      holdsAgainst: ['other users on this host (the root is private and files are read-only)'],
      notes:
        'Retention is kept by this program only. The account that owns the directory, and root on the same host, ' +
        'can remove files; keep a copy on a vault on another host or in S3 with Object Lock.',
    };
  }

  return { location, put, get, stat: statObject, list, exists, enforcement };
}
