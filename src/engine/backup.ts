// Backup: walk the sources depth-first, store file contents and one tree per directory, then the
// snapshot last. Unreadable entries are reported and skipped; everything else still lands.
import { AMBER_VERSION } from '../core/version.ts';
import { closeSync, constants, fstatSync, lstatSync, openSync, promises as fs, readSync } from 'node:fs';
import { displayName, fsPath } from '../core/byte-names.ts';
import { hostName, userName } from '../core/operator.ts';
import { basename, dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { AmberError, isAmberError } from '../core/errors.ts';
import { nowIso } from '../core/clock.ts';
import { asSnapshotId, asTreeId, type SnapshotId, type TreeId } from '../core/ids.ts';
import { chunksOf, chunkStream, createChunker, type Chunker } from '../chunker/fastcdc.ts';
import { sha256Hex } from '../crypto/index.ts';
import type { EntryMeta } from '../source/fs/entry-meta.ts';
import { compareNames } from '../source/fs/list-directory.ts';
import { createExcludeMatcher, type ExcludeMatcher } from '../source/fs/excludes.ts';
import { errorOf, type Listing, readEntry } from '../source/fs/listing.ts';
import { createDirectoryLister, type DirectoryLister } from './directory-lister.ts';
import { defaultPoolSize } from './worker-pool.ts';
import type { Operation } from '../governance/operation.ts';
import { loadIndex } from '../repo/index-loader.ts';
import { encodeTree, type TreeNode } from '../repo/tree.ts';
import { emptySummary, encodeSnapshot, type Snapshot, type SnapshotSummary } from '../repo/snapshot.ts';
import { snapshotName } from '../repo/layout.ts';
import { createDryRunSink } from './dry-run-sink.ts';
import { createBlobSink, type BlobSink } from './blob-sink.ts';
import { createParentLookup, NO_PARENT, type ParentLookup } from './parent.ts';
import { openWriterCache, type WriterCache } from './writer-cache.ts';
import { openSubtreeCache, subtreeKey, type SubtreeCache } from './subtree-cache.ts';
import type { RetentionMode } from '../storage/store.ts';
import type { OpenedSource, SourceRun } from '../source/source-url.ts';
import type { RetentionState } from '../governance/retention-state.ts';
import { appendAudit } from '../governance/audit-log.ts';
import { merkleRoot } from '../core/merkle.ts';
import { isoDate } from '../core/units.ts';
import { strongerMode } from '../governance/retention.ts';
import {
  checkNotCondemned,
  CondemnedDuringBackup,
  dedupablePacks,
  grantBackupLocks,
  lockError,
  planLock,
} from './backup-lock.ts';

export const PROGRAM = `amber ${AMBER_VERSION}`;

export interface BackupWarning {
  path: string;
  code: string;
  message: string;
}

export interface BackupProgress {
  files: number;
  dirs: number;
  bytesRead: number;
  currentPath: string;
}

/** Entries left out by rule rather than by pattern; each only when the user asks for it. */
export interface LeaveOut {
  /** Files larger than this many bytes. */
  largerThanBytes?: number;
  /** A directory holding a file of one of these names keeps only that file. */
  ifPresent?: string[];
  /** A directory holding a valid CACHEDIR.TAG (bford.info/cachedir) keeps only the tag. */
  caches?: boolean;
  /** A directory on another filesystem than its parent (a mount point) is kept empty. */
  oneFileSystem?: boolean;
}

/** The rules as words for the subtree cache's key: a tree cached under other rules is not reused. */
export const leaveOutKey = (rules: LeaveOut | undefined): string[] =>
  rules
    ? [
        ...(rules.largerThanBytes !== undefined ? [`\0larger-than=${rules.largerThanBytes}`] : []),
        ...(rules.ifPresent ?? []).map((name) => `\0if-present=${name}`),
        ...(rules.caches ? ['\0caches'] : []),
        ...(rules.oneFileSystem ? ['\0one-file-system'] : []),
      ]
    : [];

const CACHEDIR_SIGNATURE = 'Signature: 8a477f597d28d172789f06886806bc55';

export interface BackupOptions {
  repo: Operation;
  paths?: string[];
  stdin?: { stream: Readable; filename: string };
  /** A source named by a URL (postgresql://…): its files go under /DIR in the tree, its record into the snapshot. */
  source?: OpenedSource;
  tags?: string[];
  host?: string;
  /** Exclude patterns (see source/fs/excludes.ts). */
  exclude?: string[];
  /** What else the user chose to leave out (restic's --exclude-larger-than, --exclude-if-present, --exclude-caches, -x). */
  leaveOut?: LeaveOut;
  onWarning?: (warning: BackupWarning) => void;
  onProgress?: (progress: BackupProgress) => void;
  /** Retention for this snapshot; the repository policy's defaults and bounds apply. */
  retainMs?: number;
  lockMode?: RetentionMode;
  /** False: neither use nor update the local cache of unchanged directories' trees. */
  cache?: boolean;
  /** Read everything again: no parent snapshot, no cache (restic's --force). A source lists every item in full. */
  force?: boolean;
  /** Read and chunk as a backup does, count what it would add, write nothing (no packs, no snapshot, no cache). */
  dryRun?: boolean;
  /** A walk started before the repository was opened (startWalk, with the same paths and excludes). */
  walk?: DirectoryLister;
}

export interface BackupResult {
  /** The snapshot written; for a dry run, the id it would have had. */
  snapshotId: SnapshotId;
  /** True for a dry run: nothing was written. */
  dryRun?: boolean;
  snapshot: Snapshot;
  warnings: BackupWarning[];
  /** True when something was skipped or changed while read: exit status 3. */
  partial: boolean;
  /** Objects it relies on that an interrupted run had left unprotected, protected again by this backup. */
  reprotected: number;
}

interface Session {
  repo: Operation;
  sink: BlobSink;
  chunker: Chunker;
  exclude: ExcludeMatcher;
  lister: DirectoryLister;
  parent: ParentLookup;
  summary: SnapshotSummary;
  warnings: BackupWarning[];
  flags: Set<string>;
  progress: BackupProgress;
  hardLinks: Map<string, string[]>;
  /** One read buffer for the whole backup (files are read one at a time), twice the largest chunk. */
  readBuffer: Buffer;
  /** A write-only key's local record of its own trees (see writer-cache.ts). */
  writerCache: WriterCache | undefined;
  /** Trees of unchanged directories, reused whole (see subtree-cache.ts). */
  subtrees: SubtreeCache | undefined;
  options: BackupOptions;
}

/** Backs up; starts again (at most twice) if a prune condemns a pack it reused while it ran. */
export async function backup(options: BackupOptions): Promise<BackupResult> {
  try {
    for (let attempt = 1; ; attempt++) {
      // A restart reads the state again: a prune condemned a pack meanwhile.
      if (attempt > 1) options.repo.retentionStateChanged();
      const state = await options.repo.retentionState();
      try {
        return await backupOnce(options, state, attempt === 1 ? options.walk : undefined);
      } catch (error) {
        if (!(error instanceof CondemnedDuringBackup) || options.stdin || attempt >= 3) lockError(error);
      }
    }
  } finally {
    // Its grants and snapshot are written (or a part of them): what the operation read is stale.
    options.repo.retentionStateChanged();
    // A walker left running would keep the process alive after a refused backup.
    await options.walk?.close();
  }
}

/**
 * Starts walking the sources' directories ahead of the backup: a sole source directory (the usual
 * case) is walked from now on, while the repository opens and its index loads. Pass the result to
 * backup() as `walk`, with the same paths and excludes.
 */
export function startWalk(paths: string[], exclude: string[] = []): DirectoryLister {
  return createDirectoryLister({
    excludes: exclude,
    ahead: defaultPoolSize() > 0,
    start: soleDirectory(paths.map((path) => resolve(path))),
  });
}

async function backupOnce(
  options: BackupOptions,
  state: RetentionState,
  walk: DirectoryLister | undefined,
): Promise<BackupResult> {
  const { repo } = options;
  const started = repo.clock.monotonicMs();
  const paths = (options.paths ?? []).map((path) => resolve(path));
  const host = options.host ?? hostName();
  const lister = walk ?? startWalk(options.stdin ? [] : paths, options.exclude);
  const subtrees =
    options.stdin || options.cache === false || options.force || options.dryRun
      ? undefined
      : openSubtreeCache(repo, {
          host,
          paths,
          excludes: [...(options.exclude ?? []), ...leaveOutKey(options.leaveOut)],
        });
  try {
    return await backupWalked(options, state, { lister, subtrees, started, host, paths });
  } finally {
    subtrees?.close();
    await lister.close();
  }
}

async function backupWalked(
  options: BackupOptions,
  state: RetentionState,
  run: { lister: DirectoryLister; subtrees: SubtreeCache | undefined; started: number; host: string; paths: string[] },
): Promise<BackupResult> {
  const { repo } = options;
  const { started, host, paths } = run;
  const lock = planLock(state, { retainMs: options.retainMs, mode: options.lockMode }, repo.retentionClock);
  const { index } = await loadIndex(repo, { dedupable: dedupablePacks(state, lock.mode, repo.store) });
  // A source's snapshots name it by its URL: the parent is the latest one of the same URL.
  const parent = options.force
    ? NO_PARENT
    : await createParentLookup(repo, index, { host, paths: options.source ? [options.source.display] : paths });
  const session: Session = {
    repo,
    sink: options.dryRun
      ? createDryRunSink(repo, index)
      : createBlobSink(repo, index, {
          retention: { retainUntilMs: lock.untilMs, mode: lock.mode },
          // Index objects are metadata every later snapshot needs: in the strongest mode any grant uses,
          // as the grant will ask (S3 cannot raise a governance object to compliance afterwards).
          indexRetention: { retainUntilMs: lock.untilMs, mode: strongerMode(lock.mode, state.ledger.strongestMode)! },
        }),
    chunker: createChunker(repo.config.chunker, repo.key.secrets.gearSeed),
    exclude: createExcludeMatcher(options.exclude ?? []),
    lister: run.lister,
    parent,
    summary: emptySummary(),
    warnings: [],
    flags: new Set(),
    progress: { files: 0, dirs: 0, bytesRead: 0, currentPath: '' },
    hardLinks: new Map(),
    readBuffer: Buffer.allocUnsafeSlow(2 * repo.config.chunker.maxSizeBytes),
    writerCache: repo.key.role === 'write-only' && !options.dryRun ? openWriterCache(repo) : undefined,
    subtrees: run.subtrees,
    options,
  };
  let tree: TreeId;
  try {
    const rootNodes = options.stdin
      ? [await stdinNode(session, options.stdin)]
      : options.source
        ? [await sourceDirNode(session, options.source)]
        : await sourceRootNodes(session, paths);
    tree = await storeTree(session, rootNodes);
    await session.sink.flush();
  } finally {
    await session.sink.close();
  }

  const summary = session.summary;
  Object.assign(summary, {
    bytesAdded: session.sink.stats.bytesAdded,
    bytesStored: session.sink.stats.bytesStored,
    blobsAdded: session.sink.stats.blobsAdded,
    durationMs: Math.round(repo.clock.monotonicMs() - started),
  });
  if (summary.filesSkipped > 0) session.flags.add('partial');
  const snapshot: Snapshot = {
    time: nowIso(repo.clock),
    host,
    username: userName(),
    paths: options.stdin ? [`/${options.stdin.filename}`] : options.source ? [options.source.display] : paths,
    tags: options.tags ?? [],
    tree,
    ...(session.parent.snapshotId ? { parent: session.parent.snapshotId } : {}),
    summary,
    retention: { mode: lock.mode, until: isoDate(lock.untilMs) },
    flags: [...session.flags].sort(),
    program: PROGRAM,
    ...(options.source ? { source: options.source.record } : {}),
  };
  const bytes = encodeSnapshot(snapshot, repo.currentEpoch, repo.key.signer);
  const snapshotId = asSnapshotId(sha256Hex(bytes));
  if (options.dryRun)
    return {
      snapshotId,
      dryRun: true,
      snapshot,
      warnings: session.warnings,
      partial: session.flags.has('partial'),
      reprotected: 0,
    };
  await checkNotCondemned(repo, state, session.sink.reusedPacks);
  const commit = await grantBackupLocks(repo, state, {
    plan: lock,
    snapshotId,
    written: session.sink.written,
    reused: session.sink.reusedPacks,
    nowMs: repo.clock.nowMs(),
    parent: session.parent.snapshotId ? snapshotName(session.parent.snapshotId) : undefined,
  });
  const retention = { untilMs: lock.untilMs, mode: lock.mode };
  await repo.store.put(snapshotName(snapshotId), bytes, { retainUntilMs: retention.untilMs, mode: retention.mode });
  await repo.store.protect([snapshotName(snapshotId)], retention);
  session.subtrees?.commit();
  const stored = [...session.sink.written, snapshotName(snapshotId), commit.grant];
  await appendAudit(
    repo,
    {
      action: 'backup',
      target: snapshotId,
      details: {
        objects: stored.length,
        merkleRoot: merkleRoot(stored),
        host,
        paths: snapshot.paths,
        retention: snapshot.retention,
        bytesAdded: summary.bytesAdded,
        flags: snapshot.flags,
      },
    },
    { lock: commit.metadataLock },
  );
  session.writerCache?.rememberSnapshot({ id: snapshotId, time: snapshot.time, host, paths: snapshot.paths, tree });
  return {
    snapshotId,
    snapshot,
    warnings: session.warnings,
    partial: session.flags.size > 0,
    reprotected: commit.reprotected.length,
  };
}

function soleDirectory(paths: string[]): string | undefined {
  try {
    return paths.length === 1 && lstatSync(paths[0]).isDirectory() ? paths[0] : undefined;
  } catch {
    return undefined;
  }
}

/** Stores a directory's tree; a write-only key also keeps it in its local cache for the next backup. */
async function storeTree(session: Session, nodes: TreeNode[]): Promise<TreeId> {
  const bytes = encodeTree({ nodes });
  const copy = session.writerCache ? Buffer.from(bytes) : undefined; // storeBlob may move `bytes` to a worker
  const id = asTreeId(await session.sink.storeBlob('tree', bytes));
  if (copy) session.writerCache!.rememberBlob(id, copy);
  return id;
}

function warn(session: Session, path: string, error: unknown): void {
  const warning = isAmberError(error)
    ? { path, code: error.code, message: error.message }
    : {
        path,
        code: 'SOURCE_UNREADABLE',
        message: `"${displayName(path)}": ${String((error as Error)?.message ?? error)}`,
      };
  session.warnings.push(warning);
  session.options.onWarning?.(warning);
}

/**
 * The snapshot's root tree recreates each source's absolute path: /home/u/docs is stored as
 * home → u → docs, with the real metadata of every ancestor directory.
 */
async function sourceRootNodes(session: Session, paths: string[]): Promise<TreeNode[]> {
  if (paths.length === 0)
    throw new AmberError('USAGE', 'no path to back up was given', { hint: 'name at least one file or directory' });
  for (const path of paths) {
    try {
      await fs.lstat(path);
    } catch (error) {
      throw new AmberError('SOURCE_NOT_FOUND', `"${path}" does not exist or cannot be read`, {
        cause: error,
        hint: 'check the path; nothing was backed up',
      });
    }
  }
  return ancestorNodes(session, '/', paths);
}

async function ancestorNodes(session: Session, dir: string, paths: string[]): Promise<TreeNode[]> {
  const children = new Map<string, string[]>();
  for (const path of paths) {
    const rest = path.slice(dir === '/' ? 1 : dir.length + 1);
    const name = rest.split('/')[0];
    if (name === '') continue;
    const list = children.get(name) ?? [];
    list.push(path);
    children.set(name, list);
  }
  const nodes: TreeNode[] = [];
  for (const name of [...children.keys()].sort(compareNames)) {
    const child = join(dir, name);
    const wanted = children.get(name)!;
    const { meta, warning } = readEntry(child, name);
    if (warning) warn(session, child, errorOf(warning, child));
    if (wanted.includes(child)) {
      const node = await backupEntry(session, child, meta);
      if (node) nodes.push(node);
    } else {
      nodes.push({
        ...nodeFromMeta(meta),
        subtree: await storeTree(session, await ancestorNodes(session, child, wanted)),
      });
    }
  }
  return nodes;
}

async function backupEntry(session: Session, path: string, meta: EntryMeta): Promise<TreeNode | undefined> {
  session.progress.currentPath = path;
  const node = nodeFromMeta(meta);
  if (meta.type === 'dir') {
    node.subtree = await backupDirectory(session, path, meta.deviceId);
    session.summary.dirs += 1;
    session.progress.dirs += 1;
  } else if (meta.type === 'file') {
    const content = await backupFile(session, path, meta, node);
    if (!content) return undefined;
    node.content = content;
  }
  return node;
}

/**
 * A listing as --exclude-if-present and --exclude-caches leave it: a directory holding a marker
 * keeps only the marker (the directory itself and the tag that explains its emptiness stay).
 */
function keptOfMarked(session: Session, dir: string, listing: Listing): Listing {
  const rules = session.options.leaveOut;
  if (!rules?.ifPresent?.length && !rules?.caches) return listing;
  const isFile = (entry: Listing['entries'][number]) => 'meta' in entry && entry.meta.type === 'file';
  const markers = listing.entries.filter(
    (entry) =>
      isFile(entry) &&
      (rules.ifPresent?.includes(entry.name) ||
        (rules.caches && entry.name === 'CACHEDIR.TAG' && isCacheTag(join(dir, entry.name)))),
  );
  return markers.length > 0 ? { ...listing, entries: markers } : listing;
}

/** Whether a CACHEDIR.TAG starts with the standard's signature (a file of that name alone is no tag). */
function isCacheTag(path: string): boolean {
  try {
    const fd = openSync(path, 'r');
    try {
      const head = Buffer.alloc(CACHEDIR_SIGNATURE.length);
      readSync(fd, head, 0, head.length, 0);
      return head.toString('latin1') === CACHEDIR_SIGNATURE;
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}

/**
 * Stores a directory's tree. Subdirectories come first: when they and the directory's own entries
 * are as the last backup saw them, its tree from then is reused whole (see subtree-cache.ts).
 */
async function backupDirectory(session: Session, dir: string, device: bigint): Promise<TreeId> {
  const listing = keptOfMarked(session, dir, await session.lister.list(dir));
  // Only a directory read without a problem is cached: a skipped entry must be retried next time.
  let clean = !listing.problem;
  if (listing.problem) {
    warn(session, dir, errorOf(listing.problem, dir));
    session.summary.filesSkipped += 1;
    session.flags.add('partial');
  }
  const kept: { path: string; meta: EntryMeta; empty?: boolean }[] = [];
  for (const entry of listing.entries) {
    const path = join(dir, entry.name);
    if (!('meta' in entry)) {
      warn(session, path, errorOf(entry.problem, path));
      session.summary.filesSkipped += 1;
      clean = false;
      continue;
    }
    if (session.exclude(path, entry.name, entry.meta.type === 'dir')) continue;
    const rules = session.options.leaveOut;
    if (
      rules?.largerThanBytes !== undefined &&
      entry.meta.type === 'file' &&
      entry.meta.sizeBytes > rules.largerThanBytes
    )
      continue;
    // A mount point is kept, empty: its directory is part of this filesystem, its contents are not.
    if (rules?.oneFileSystem && entry.meta.type === 'dir' && entry.meta.deviceId !== device) {
      kept.push({ path, meta: entry.meta, empty: true });
      continue;
    }
    if (entry.warning) {
      warn(session, path, errorOf(entry.warning, path));
      clean = false; // not cached: the warning is given again by every backup
    }
    kept.push({ path, meta: entry.meta });
  }
  const nodes: (TreeNode | undefined)[] = new Array(kept.length);
  const childTrees: TreeId[] = [];
  for (const [n, { path, meta, empty }] of kept.entries()) {
    if (meta.type !== 'dir') continue;
    const node = empty
      ? { ...nodeFromMeta(meta), subtree: await storeTree(session, []) }
      : (await backupEntry(session, path, meta))!;
    nodes[n] = node;
    childTrees.push(node.subtree!);
  }
  const key = session.subtrees && clean ? subtreeKey(listing.fingerprint, childTrees) : undefined;
  const cached = key && session.subtrees!.find(dir, key);
  if (cached && session.sink.reuseIfTrusted(cached.blobs)) {
    session.subtrees!.keep(dir, key, cached);
    const files = kept.filter(({ meta }) => meta.type === 'file').length;
    session.summary.filesUnchanged += files;
    session.progress.files += files;
    return cached.tree;
  }
  const skipped = session.summary.filesSkipped;
  for (const [n, { path, meta }] of kept.entries()) {
    if (meta.type !== 'dir') nodes[n] = await backupEntry(session, path, meta);
  }
  const stored = nodes.filter((node) => node !== undefined);
  const tree = await storeTree(session, stored);
  // Not a directory with hard links either: reusing it would leave their other names uncounted.
  if (
    key &&
    session.summary.filesSkipped === skipped &&
    stored.every((node) => !node.flags?.length && (node.type === 'dir' || node.links <= 1))
  ) {
    session.subtrees!.remember(
      dir,
      key,
      tree,
      stored.flatMap((node) => node.content ?? []),
    );
  }
  return tree;
}

async function backupFile(
  session: Session,
  path: string,
  meta: EntryMeta,
  node: TreeNode,
): Promise<string[] | undefined> {
  session.progress.files += 1;
  const linkKey = meta.nlink > 1 ? `${meta.deviceId}:${meta.inode}` : undefined;
  const known = linkKey ? session.hardLinks.get(linkKey) : undefined;
  if (known) return known;
  const previous = await session.parent.lookup(path);
  const reused = previous && session.parent.unchangedContent(previous, meta);
  if (reused) {
    session.sink.reuse(reused);
    session.summary.filesUnchanged += 1;
    if (linkKey) session.hardLinks.set(linkKey, reused);
    return reused;
  }
  let content: string[];
  try {
    content = await readFileContent(session, path, meta, node);
  } catch (error) {
    // Only a source failure skips the file. A storage failure ends the backup: the blobs queued with
    // the pack that failed are lost, and chunks of files already done may be among them.
    if (isAmberError(error) && !error.code.startsWith('SOURCE_')) throw error;
    warn(session, path, error);
    session.summary.filesSkipped += 1;
    session.flags.add('partial');
    return undefined;
  }
  // Unchanged, but read again because this backup may not rely on the parent's copy of its chunks
  // (a compliance backup on a store that cannot raise governance packs to compliance).
  if (
    previous &&
    !node.flags?.length &&
    session.parent.sameMetadata(previous, meta) &&
    sameChunks(previous.content!, content)
  )
    session.summary.filesUnchanged += 1;
  else if (previous) session.summary.filesChanged += 1;
  else session.summary.filesNew += 1;
  if (linkKey) session.hardLinks.set(linkKey, content);
  return content;
}

function sameChunks(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((id, n) => id === b[n]);
}

/**
 * Opens a source file without changing its access time where the kernel allows it (the owner and
 * root may use O_NOATIME): a backup should leave the times it records as they were.
 */
function openForReading(path: string): number {
  const at = fsPath(path);
  if (noAtime) {
    try {
      return openSync(at, constants.O_RDONLY | constants.O_NOATIME);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EPERM') throw error;
    }
  }
  return openSync(at, constants.O_RDONLY);
}
const noAtime = typeof constants.O_NOATIME === 'number';

/**
 * Reads a file with synchronous calls into the session's one buffer: from the page cache they cost
 * microseconds, while compression and encryption run on the worker threads meanwhile.
 */
async function readFileContent(session: Session, path: string, meta: EntryMeta, node: TreeNode): Promise<string[]> {
  let fd: number;
  try {
    fd = openForReading(path);
  } catch (error) {
    throw new AmberError(
      'SOURCE_UNREADABLE',
      `"${displayName(path)}" could not be opened (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
      { cause: error, details: { path } },
    );
  }
  try {
    const { content, bytes } = (await readSmallFile(session, fd, meta.sizeBytes)) ?? (await readLargeFile(session, fd));
    const after = fstatSync(fd, { bigint: true });
    if (after.mtimeNs !== meta.mtimeNs || after.ctimeNs !== meta.ctimeNs || bytes !== meta.sizeBytes) {
      node.flags = ['changed-while-read'];
      node.sizeBytes = bytes;
      session.flags.add('changed-while-read');
      warn(
        session,
        path,
        new AmberError('SOURCE_CHANGED', `"${displayName(path)}" changed while it was read; it was stored as read`, {
          details: { path },
        }),
      );
    }
    return content;
  } catch (error) {
    if (isAmberError(error)) throw error;
    throw new AmberError(
      'SOURCE_UNREADABLE',
      `"${displayName(path)}" could not be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
      { cause: error, details: { path } },
    );
  } finally {
    closeSync(fd);
  }
}

/**
 * A file no longer than the chunker's minimum is exactly one chunk: it is read into the session's
 * buffer and stored from there, with no allocation per file. Undefined when the file is larger.
 */
async function readSmallFile(
  session: Session,
  fd: number,
  expectedBytes: number,
): Promise<{ content: string[]; bytes: number } | undefined> {
  const limit = session.chunker.params.minSizeBytes;
  const buffer = session.readBuffer;
  if (limit >= buffer.length) return undefined;
  let bytes = 0;
  while (bytes <= limit) {
    const wanted = limit + 1 - bytes;
    const bytesRead = readSync(fd, buffer, bytes, wanted, bytes);
    bytes += bytesRead;
    // A short read of a regular file is its end: no second call to hear so. A file that grew since
    // its lstat reads longer than expected, or shows a new size and ctime to the fstat after reading.
    if (bytesRead === 0 || (bytesRead < wanted && bytes === expectedBytes)) break;
  }
  if (bytes > limit) return undefined;
  countRead(session, bytes);
  return { content: bytes === 0 ? [] : [await session.sink.storeBlob('data', buffer.subarray(0, bytes))], bytes };
}

/** Reads straight into the session's buffer, where the chunks are cut: the sink copies only those it stores. */
async function readLargeFile(session: Session, fd: number): Promise<{ content: string[]; bytes: number }> {
  const content: string[] = [];
  let position = 0;
  const fill = (into: Buffer, offset: number, maxBytes: number) => {
    const bytesRead = readSync(fd, into, offset, maxBytes, position);
    position += bytesRead;
    countRead(session, bytesRead);
    return bytesRead;
  };
  for await (const chunk of chunksOf(fill, session.chunker, session.readBuffer))
    content.push(await session.sink.storeBlob('data', chunk));
  return { content, bytes: position };
}

function countRead(session: Session, bytes: number): void {
  session.summary.bytesRead += bytes;
  session.progress.bytesRead += bytes;
  session.options.onProgress?.(session.progress);
}

async function* countBytes(source: AsyncIterable<Buffer>, session: Session): AsyncGenerator<Buffer> {
  for await (const piece of source) {
    countRead(session, piece.length);
    yield piece;
  }
}

async function stdinNode(session: Session, stdin: { stream: Readable; filename: string }): Promise<TreeNode> {
  const name = basename(stdin.filename);
  if (name !== stdin.filename || name === '' || name === '.' || name === '..' || dirname(stdin.filename) !== '.') {
    throw new AmberError('USAGE', `--stdin-filename "${stdin.filename}" must be a plain file name`, {
      hint: 'for example --stdin-filename db.sql',
    });
  }
  return streamNode(session, stdin.stream, name);
}

/**
 * A source's files as one directory: each streamed into blobs as its tool writes it (no temporary
 * copy on disk), and only kept once the tool said it finished well; a tool that fails half-way
 * fails the backup before any snapshot is written.
 */
async function sourceDirNode(session: Session, source: OpenedSource): Promise<TreeNode> {
  // Open directories from the top down; a file in another directory closes (stores) the ones it left.
  const open: { name: string; nodes: TreeNode[] }[] = [{ name: source.dir, nodes: [] }];
  const close = async () => {
    const dir = open.pop()!;
    const node = await sourceDir(session, dir.name, dir.nodes);
    open.at(-1)?.nodes.push(node);
    return node;
  };
  const previousNode = async (name: string) => session.parent.lookup(`/${source.dir}/${name}`);
  const run: SourceRun = {
    read: async (name, maxBytes) => {
      const node = await previousNode(name);
      return node && session.parent.readContent(node, maxBytes);
    },
    canCarry: async (name) => {
      const node = await previousNode(name);
      return node !== undefined && session.parent.reusableContent(node) !== undefined;
    },
    skipped: (name, reason) => {
      warn(session, `/${source.dir}/${name}`, reason);
      session.summary.filesSkipped += 1;
    },
  };
  for await (const file of source.files(run)) {
    if ('stream' in file) file.finished.catch(() => {}); // awaited below; a failure must not surface as unhandled first
    const parts = file.name.split('/');
    const name = parts.pop()!;
    let depth = 0;
    while (depth < parts.length && depth + 1 < open.length && open[depth + 1].name === parts[depth]) depth++;
    while (open.length > depth + 1) await close();
    for (const part of parts.slice(depth)) open.push({ name: part, nodes: [] });
    if ('stream' in file) {
      open.at(-1)!.nodes.push(await streamNode(session, file.stream, name, file.keep === true));
      await file.finished;
    } else {
      const from = file.from ?? file.name;
      open.at(-1)!.nodes.push(await carriedNode(session, await previousNode(from), name, from));
    }
  }
  while (open.length > 1) await close();
  return close();
}

/** A directory of a source's output, its entries in name order. */
async function sourceDir(session: Session, name: string, nodes: TreeNode[]): Promise<TreeNode> {
  nodes.sort((a, b) => compareNames(a.name, b.name));
  for (let i = 1; i < nodes.length; i++)
    if (nodes[i].name === nodes[i - 1].name)
      throw new AmberError('SOURCE_FAILED', `the source wrote ${name}/${nodes[i].name} twice`);
  const subtree = await storeTree(session, nodes);
  session.summary.dirs += 1;
  const nowNs = (BigInt(session.repo.clock.nowMs()) * 1_000_000n).toString();
  return {
    name,
    type: 'dir',
    mode: 0o700,
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    sizeBytes: 0,
    mtimeNs: nowNs,
    ctimeNs: nowNs,
    inode: '0',
    deviceId: '0',
    links: 1,
    subtree,
  };
}

/** A file of the previous snapshot the source saw unchanged: its node as it was (under its new name), its data reused. */
async function carriedNode(
  session: Session,
  node: TreeNode | undefined,
  name: string,
  from: string,
): Promise<TreeNode> {
  const content = node && session.parent.reusableContent(node);
  // The source asked canCarry first; a parent that changed its mind since is a bug, not a skip.
  if (!node || !content) throw new Error(`the source carried over ${from}, which the previous snapshot cannot give`);
  session.sink.reuse(content);
  session.summary.filesUnchanged += 1;
  return { ...node, name };
}

async function streamNode(session: Session, stream: Readable, name: string, keep = false): Promise<TreeNode> {
  const content: string[] = [];
  let bytes = 0;
  // A write-only key cannot read back what it stored: it keeps what the source will read next time.
  const cache = keep ? session.writerCache : undefined;
  for await (const chunk of chunkStream(countBytes(stream, session), session.chunker, session.readBuffer)) {
    bytes += chunk.length;
    const id = await session.sink.storeBlob('data', chunk);
    cache?.rememberBlob(id, chunk);
    content.push(id);
  }
  session.summary.filesNew += 1;
  const nowNs = (BigInt(session.repo.clock.nowMs()) * 1_000_000n).toString();
  return {
    name,
    type: 'file',
    mode: 0o600,
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    sizeBytes: bytes,
    mtimeNs: nowNs,
    atimeNs: nowNs,
    ctimeNs: nowNs,
    inode: '0',
    deviceId: '0',
    links: 1,
    content,
  };
}

export function nodeFromMeta(meta: EntryMeta): TreeNode {
  const node: TreeNode = {
    name: meta.name,
    type: meta.type,
    mode: meta.mode,
    uid: meta.uid,
    gid: meta.gid,
    sizeBytes: meta.type === 'file' || meta.type === 'symlink' ? meta.sizeBytes : 0,
    mtimeNs: meta.mtimeNs.toString(),
    ctimeNs: meta.ctimeNs.toString(),
    inode: meta.inode.toString(),
    deviceId: meta.deviceId.toString(),
    links: meta.nlink,
  };
  if (meta.linkTarget !== undefined) node.linkTarget = meta.linkTarget;
  if (meta.rdev !== undefined) node.rdev = meta.rdev.toString();
  if (meta.atimeNs !== undefined) node.atimeNs = meta.atimeNs.toString();
  if (meta.xattrs?.length) node.xattrs = meta.xattrs;
  return node;
}
