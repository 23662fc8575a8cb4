// A restored tree read back from disk and compared with the snapshot it came from: every byte of
// every file against the snapshot's blob ids (recomputed from what is on disk, not from what the
// restore meant to write), and each entry's type, size, permissions, modification time, symlink
// target, owner and extended attributes. What the restore reported it could not set (owners as a
// user other than root, an attribute namespace the target refused) is listed as not checked, never
// passed over silently. Used by restore drills (src/ops/drill.ts).
import { closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync, type BigIntStats } from 'node:fs';
import { constants } from 'node:fs';
import { displayName, fsPath, nameBytes, nameFromBytes } from '../core/byte-names.ts';
import { AmberError } from '../core/errors.ts';
import { loadIndex } from '../repo/index-loader.ts';
import { createBlobReader } from '../repo/blob-reader.ts';
import { blobIdOf } from '../repo/blob-codec.ts';
import type { Repository } from '../repo/repository.ts';
import type { TreeNode } from '../repo/tree.ts';
import { readXattrs, xattrKind } from '../source/fs/xattrs.ts';
import type { RestoreResult } from './restore.ts';
import { timeAsRestored } from './restore.ts';
import type { SnapshotEntry } from './snapshots.ts';
import { rootNode, walkNodes } from './tree-walk.ts';

export interface RestoreCheckProblem {
  path: string;
  problem: string;
}

export interface RestoreCheck {
  files: number;
  dirs: number;
  /** Symlinks, pipes and devices. */
  others: number;
  /** File bytes read back and found equal to the snapshot's. */
  bytes: number;
  problems: RestoreCheckProblem[];
  /** What was not compared, and why (one line per kind). */
  notChecked: string[];
}

const MAX_PROBLEMS = 1000;
const isRoot = process.getuid?.() === 0;

const TYPE_OF: Record<TreeNode['type'], (stats: BigIntStats) => boolean> = {
  file: (s) => s.isFile(),
  dir: (s) => s.isDirectory(),
  symlink: (s) => s.isSymbolicLink(),
  fifo: (s) => s.isFIFO(),
  socket: (s) => s.isSocket(),
  chardev: (s) => s.isCharacterDevice(),
  blockdev: (s) => s.isBlockDevice(),
};

export async function checkRestoredTree(
  repo: Repository,
  snapshot: SnapshotEntry,
  target: string,
  restored: Pick<RestoreResult, 'skipped' | 'notSet'>,
  signal?: AbortSignal,
): Promise<RestoreCheck> {
  const { index } = await loadIndex(repo);
  const reader = createBlobReader(repo, index);
  const idKey = repo.key.secrets.idKey;
  const result: RestoreCheck = { files: 0, dirs: 0, others: 0, bytes: 0, problems: [], notChecked: [] };
  const skipped = new Set(restored.skipped.map((entry) => entry.path));
  if (skipped.size > 0)
    result.notChecked.push(
      `${skipped.size} socket(s) or device(s) the restore did not recreate, e.g. ${displayName(restored.skipped[0].path)}`,
    );
  const ownersChecked = isRoot && !restored.notSet.some((entry) => entry.kind === 'owner');
  if (!ownersChecked) result.notChecked.push(isRoot ? 'owners (the target refused some)' : 'owners (not run as root)');
  const xattrsUnset = new Set(
    restored.notSet.filter((entry) => entry.kind.startsWith('xattr:')).map((entry) => entry.kind.slice(6)),
  );
  for (const kind of xattrsUnset)
    result.notChecked.push(`extended attributes of kind ${kind} (the restore could not set them)`);
  const problem = (path: string, text: string) => {
    if (result.problems.length < MAX_PROBLEMS) result.problems.push({ path, problem: text });
  };
  let buffer = Buffer.alloc(1 << 20);
  /** Every path of the snapshot: anything else found in the target was not restored from it. */
  const expected = new Set<string>(['/']);
  /** Per hard-linked inode of the snapshot, the first restored path and its inode on disk. */
  const linkGroups = new Map<string, { path: string; disk: string }>();
  /** Per inode on disk with several links, the snapshot's inode (or the path, for a file it does not link). */
  const diskInodes = new Map<string, { group: string; path: string }>();

  const checkContent = (local: string | Buffer, path: string, node: TreeNode) => {
    const fd = openSync(local, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      let position = 0;
      for (const hex of node.content ?? []) {
        const id = Buffer.from(hex, 'hex');
        const length = reader.rawLengthOf(id);
        if (length === undefined) {
          problem(path, `blob ${hex.slice(0, 16)} at byte ${position} is in no index of the repository`);
          return;
        }
        if (buffer.length < length) buffer = Buffer.alloc(length);
        let got = 0;
        while (got < length) {
          const n = readSync(fd, buffer, got, length - got, position + got);
          if (n === 0) break;
          got += n;
        }
        if (got < length || !blobIdOf(idKey, buffer.subarray(0, length)).equals(id)) {
          problem(
            path,
            got < length
              ? `ends at byte ${position + got}; the snapshot has ${node.sizeBytes} bytes`
              : `bytes ${position}–${position + length - 1} differ from the snapshot's blob ${hex.slice(0, 16)}`,
          );
          return;
        }
        position += length;
        result.bytes += length;
      }
      if (readSync(fd, buffer, 0, 1, position) !== 0) problem(path, `is longer than the snapshot's ${position} bytes`);
    } finally {
      closeSync(fd);
    }
  };

  const check = (path: string, node: TreeNode) => {
    const local = fsPath(`${target}${path}`);
    const stats = lstatSync(local, { bigint: true, throwIfNoEntry: false });
    if (!stats) {
      if (!skipped.has(path)) problem(path, `is missing (a ${node.type} in the snapshot)`);
      return;
    }
    if (!TYPE_OF[node.type](stats)) return problem(path, `is not a ${node.type}, as in the snapshot`);
    if (node.type === 'file') result.files++;
    else if (node.type === 'dir') result.dirs++;
    else result.others++;
    if (node.type !== 'symlink' && Number(stats.mode & 0o7777n) !== node.mode)
      problem(path, `has mode ${(Number(stats.mode) & 0o7777).toString(8)}, the snapshot ${node.mode.toString(8)}`);
    if (ownersChecked && (Number(stats.uid) !== node.uid || Number(stats.gid) !== node.gid))
      problem(path, `is owned by ${stats.uid}:${stats.gid}, the snapshot ${node.uid}:${node.gid}`);
    if (!timeAsRestored(stats.mtimeNs, node.mtimeNs))
      problem(path, `was modified ${stats.mtimeNs} ns, the snapshot says ${node.mtimeNs}`);
    if (node.type === 'symlink') {
      const link = readlinkSync(local, { encoding: 'buffer' });
      if (!link.equals(nameBytes(node.linkTarget ?? ''))) problem(path, 'points elsewhere than in the snapshot');
    }
    if (node.type === 'file') {
      const disk = `${stats.dev}:${stats.ino}`;
      const group = node.links > 1 ? `${node.deviceId}:${node.inode}` : `path:${path}`;
      if (node.links > 1) {
        const first = linkGroups.get(group);
        if (!first) linkGroups.set(group, { path, disk });
        else if (first.disk !== disk)
          problem(path, `is a separate file, not a hard link to ${displayName(first.path)} as in the snapshot`);
      }
      if (stats.nlink > 1n) {
        const seen = diskInodes.get(disk);
        if (!seen) diskInodes.set(disk, { group, path });
        else if (seen.group !== group)
          problem(path, `is a hard link to ${displayName(seen.path)}, which the snapshot has as a separate file`);
      }
      if (stats.size !== BigInt(node.sizeBytes))
        problem(path, `has ${stats.size} bytes, the snapshot ${node.sizeBytes}`);
      else checkContent(local, path, node);
    }
    if (node.type === 'file' || node.type === 'dir' || node.xattrs?.length) {
      const comparable = (xattrs: readonly { name: string; value: Uint8Array }[]) =>
        xattrs
          .filter((x) => !xattrsUnset.has(xattrKind(x.name)))
          .map((x) => `${x.name}=${Buffer.from(x.value).toString('hex')}`)
          .sort()
          .join('\n');
      const found = readXattrs(`${target}${path}`, node.type);
      if (comparable(found) !== comparable(node.xattrs ?? []))
        problem(path, `has extended attributes ${names(found)}, the snapshot ${names(node.xattrs ?? [])}`);
    }
  };

  const root = rootNode(snapshot.snapshot.tree);
  await walkNodes(reader, root, '/', (path, node) => {
    if (signal?.aborted) throw new AmberError('INTERRUPTED', 'the check of the restored tree was interrupted');
    if (node === root) return;
    expected.add(path);
    try {
      check(path, node);
    } catch (error) {
      problem(path, `could not be read back: ${(error as Error).message}`);
    }
  });
  // What the target holds beyond the snapshot: planted there during the restore, or written by a
  // restore that made up entries. Only directories of the snapshot are entered (never a symlink).
  const extras = (local: Buffer, path: string) => {
    if (signal?.aborted) throw new AmberError('INTERRUPTED', 'the check of the restored tree was interrupted');
    let entries;
    try {
      entries = readdirSync(local, { withFileTypes: true, encoding: 'buffer' });
    } catch (error) {
      // Missing or not a directory: the walk above has said so.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR')
        return;
      return problem(path, `could not be listed: ${(error as Error).message}`);
    }
    for (const entry of entries) {
      const childPath = `${path === '/' ? '' : path}/${nameFromBytes(entry.name)}`;
      const childLocal = Buffer.concat([local, Buffer.from('/'), entry.name]);
      if (!expected.has(childPath))
        problem(
          childPath,
          `is not in the snapshot (${entry.isDirectory() ? 'a directory' : entry.isSymbolicLink() ? 'a symlink' : 'an entry'} the restore did not write)`,
        );
      else if (entry.isDirectory()) extras(childLocal, childPath);
    }
  };
  extras(Buffer.from(target), '/');
  return result;
}

const names = (xattrs: readonly { name: string }[]) =>
  xattrs.length === 0 ? 'none' : xattrs.map((x) => x.name).join(', ');
