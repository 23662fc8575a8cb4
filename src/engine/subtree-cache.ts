// A local record of the trees a key stored for one backup source, by directory: when a directory's
// entries look exactly as they did (same listing fingerprint, same subtrees) its earlier tree is
// reused whole, without decoding the parent's tree or encoding a new one. A no-change backup then
// costs little more than the walk's lstat calls.
//
// The record is one file per source (host, paths and excludes, as a parent snapshot is chosen), written in the order a backup finishes
// directories (depth first, children before their parent) and read back in that same order while
// the next backup walks: one sequential pass each way, memory bounded by a read window whatever the
// size of the tree. A backup writes a new file and puts it in place once its snapshot is stored.
//
// Like writer-cache.ts, the record is an optimisation and never trusted: every row carries an HMAC
// under a key derived from the repository's id key, so a row is only a statement a holder of the key
// made; and a tree is reused only when it and every blob its files name are in the index as blobs
// this key may dedup against (the same test a parent's unchanged file passes). A row that fails
// either test is ignored and the directory is backed up as without a cache.
import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { createHash, createHmac, createSecretKey, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { Repository } from '../repo/repository.ts';
import { compareNames } from '../source/fs/list-directory.ts';
import { cacheRoot } from '../core/local-paths.ts';
import { asTreeId, type TreeId } from '../core/ids.ts';

export interface CachedSubtree {
  tree: TreeId;
  /** The tree blob's id, then the ids of the blobs its files' contents name; 32 bytes each. */
  blobs: Buffer;
}

export interface SubtreeCache {
  /**
   * The tree stored for `dir` when it was last backed up with exactly this key. Directories must be
   * asked for in the order a backup finishes them: children first, siblings by name.
   */
  find(dir: string, key: Buffer): CachedSubtree | undefined;
  /** Records `dir`'s new tree and the blob ids its files name, for the next backup. */
  remember(dir: string, key: Buffer, tree: TreeId, contentBlobs: Iterable<string>): void;
  /** Records again, for the next backup, a tree `find` gave and the backup reused. */
  keep(dir: string, key: Buffer, reused: CachedSubtree): void;
  /** Puts this backup's record in place of the last one; call once its snapshot is stored. */
  commit(): void;
  /** Drops an uncommitted record; the last one stays. */
  close(): void;
}

const MAGIC = Buffer.from('amber subtrees v1\n');
/** An unfinished record this old was left by a backup that was killed: it is removed. */
const STALE_MS = 24 * 60 * 60 * 1000;
const READ_BYTES = 1 << 20;
const WRITE_BYTES = 1 << 20;

/**
 * A directory's cache key: its listing fingerprint and its subdirectories' tree ids in order. The
 * exclude patterns, which decide which entries a tree holds, choose the record file itself.
 */
export function subtreeKey(fingerprint: string, childTrees: readonly string[]): Buffer {
  return createHash('sha256')
    .update(`${fingerprint}\n${childTrees.join(',')}`)
    .digest();
}

/** Where `a` comes in a depth-first walk that finishes children before their parent, against `b`. */
export function comparePostOrder(a: string, b: string): number {
  if (a === b) return 0;
  const as = a.split('/');
  const bs = b.split('/');
  for (let n = 0; ; n++) {
    if (n === as.length) return 1; // a is an ancestor of b: it finishes after
    if (n === bs.length) return -1;
    if (as[n] !== bs[n]) return compareNames(as[n], bs[n]);
  }
}

interface Row {
  dir: string;
  key: Buffer;
  /** The tree's id first. */
  blobs: Buffer;
}

/**
 * Rows in file order, read through one window; a damaged or cut file ends the rows early. A row is
 * its length (u32), its directory's length (u16), the directory, the key, the blob ids and the MAC.
 */
function rowReader(path: string, macKey: KeyObject): { next(): Row | undefined; close(): void } {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
  } catch {
    return { next: () => undefined, close: () => {} };
  }
  let window = Buffer.allocUnsafe(READ_BYTES);
  let start = 0;
  let end = 0;
  let position = 0;
  const finish = () => {
    if (fd !== undefined) closeSync(fd);
    fd = undefined;
    return undefined;
  };
  /** Makes `bytes` bytes available from `start`; false at the end of the file. */
  const have = (bytes: number): boolean => {
    while (end - start < bytes) {
      if (fd === undefined) return false;
      if (start > 0) {
        window.copy(window, 0, start, end);
        end -= start;
        start = 0;
      }
      if (bytes > window.length) window = Buffer.concat([window.subarray(0, end), Buffer.allocUnsafe(bytes)]);
      const read = readSync(fd, window, end, window.length - end, position);
      if (read === 0) return false;
      end += read;
      position += read;
    }
    return true;
  };
  const next = (): Row | undefined => {
    if (!have(4)) return finish();
    const length = window.readUInt32LE(start);
    if (length < 6 + 32 + 32 + 32 || !have(length)) return finish();
    const record = window.subarray(start, start + length);
    start += length;
    const dirBytes = record.readUInt16LE(4);
    const body = record.subarray(0, length - 32);
    const mac = createHmac('sha256', macKey).update(body).digest();
    const blobsAt = 6 + dirBytes + 32;
    if (
      !timingSafeEqual(mac, record.subarray(length - 32)) ||
      blobsAt + 32 > body.length ||
      (body.length - blobsAt) % 32 !== 0
    )
      return finish();
    return {
      dir: record.toString('utf8', 6, 6 + dirBytes),
      key: Buffer.from(record.subarray(6 + dirBytes, blobsAt)),
      blobs: Buffer.from(body.subarray(blobsAt)),
    };
  };
  if (!have(MAGIC.length) || !window.subarray(0, MAGIC.length).equals(MAGIC)) finish();
  start = MAGIC.length;
  return { next, close: finish };
}

/** Removes unfinished records (dot files) last written before `beforeMs`. */
function removeStale(dir: string, beforeMs: number): void {
  for (const name of readdirSync(dir)) {
    if (!name.startsWith('.')) continue;
    const path = join(dir, name);
    try {
      if (statSync(path).mtimeMs < beforeMs) rmSync(path, { force: true });
    } catch {
      // gone already, or not ours to remove
    }
  }
}

/** Undefined when the cache folder cannot be made; the backup then works as without a cache. */
export function openSubtreeCache(
  repo: Repository,
  source: { host: string; paths: string[]; excludes: string[] },
): SubtreeCache | undefined {
  const dir = join(cacheRoot(), repo.config.repositoryId, repo.key.keyId, 'subtrees');
  const name = createHash('sha256')
    .update(JSON.stringify({ host: source.host, paths: [...source.paths].sort(), excludes: source.excludes }))
    .digest('hex');
  const file = join(dir, name);
  const temporary = join(dir, `.${name}.${randomBytes(6).toString('hex')}`);
  let out: number | undefined;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    removeStale(dir, repo.clock.nowMs() - STALE_MS);
    out = openSync(temporary, 'wx', 0o600);
  } catch {
    return undefined;
  }
  // A key object made once: importing raw key bytes costs more than the HMAC of a row.
  const macKey = createSecretKey(
    createHmac('sha256', repo.key.secrets.idKey).update('amber/v1/subtree-cache').digest(),
  );
  const reader = rowReader(file, macKey);
  let row = reader.next();
  let pending: Buffer[] = [MAGIC];
  let pendingBytes = MAGIC.length;

  const flush = () => {
    if (out === undefined) return;
    try {
      const joined = Buffer.concat(pending, pendingBytes);
      for (let at = 0; at < joined.length; ) at += writeSync(out, joined, at);
    } catch {
      // A full disk or the like: this backup writes no record and the last one stays.
      drop();
    }
    pending = [];
    pendingBytes = 0;
  };
  const drop = () => {
    if (out === undefined) return;
    closeSync(out);
    out = undefined;
    rmSync(temporary, { force: true });
  };

  /** One row, laid out as rowReader reads it. */
  const write = (path: string, key: Buffer, blobs: Buffer) => {
    const dirBytes = Buffer.from(path, 'utf8');
    if (out === undefined || dirBytes.length > 0xffff) return;
    const head = Buffer.allocUnsafe(6);
    const length = 6 + dirBytes.length + 32 + blobs.length + 32;
    head.writeUInt32LE(length, 0);
    head.writeUInt16LE(dirBytes.length, 4);
    const mac = createHmac('sha256', macKey).update(head).update(dirBytes).update(key).update(blobs).digest();
    pending.push(head, dirBytes, key, blobs, mac);
    pendingBytes += length;
    if (pendingBytes >= WRITE_BYTES) flush();
  };

  return {
    find(path, key) {
      while (row && comparePostOrder(row.dir, path) < 0) row = reader.next();
      if (!row || row.dir !== path || !row.key.equals(key)) return undefined;
      return { tree: asTreeId(row.blobs.toString('hex', 0, 32)), blobs: row.blobs };
    },
    remember(path, key, tree, contentBlobs) {
      if (out !== undefined)
        write(
          path,
          key,
          Buffer.concat([Buffer.from(tree, 'hex'), ...[...new Set(contentBlobs)].map((id) => Buffer.from(id, 'hex'))]),
        );
    },
    keep(path, key, reused) {
      write(path, key, reused.blobs);
    },
    commit() {
      flush();
      if (out === undefined) return;
      try {
        closeSync(out);
        out = undefined;
        renameSync(temporary, file);
      } catch {
        rmSync(temporary, { force: true });
      }
    },
    close() {
      reader.close();
      drop();
    },
  };
}
