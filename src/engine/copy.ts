// The isolated copy: a second repository pulls the primary's snapshots into itself, under its own
// keys, policy and locks (docs/isolation.md). The primary is only read. The two repositories share
// the id key and the chunker's seed (`amber init --from-repo`), so a blob keeps its id and a tree
// its bytes: only blobs the copy lacks travel, each decrypted under the primary's key, decompressed,
// its id computed again, and sealed under the copy's own key without recompression. Each copied
// snapshot is committed as a backup is — packs, index, one grant from the copy's policy, then the
// snapshot — so an interrupted copy leaves the copy valid, and the next run completes it.
import { AmberError, isAmberError } from '../core/errors.ts';
import { nowIso } from '../core/clock.ts';
import { asSnapshotId, type PackId, type SnapshotId, type TreeId } from '../core/ids.ts';
import { isoDate } from '../core/units.ts';
import { merkleRoot } from '../core/merkle.ts';
import { sha256Hex } from '../crypto/index.ts';
import type { RetentionMode } from '../storage/store.ts';
import type { Repository } from '../repo/repository.ts';
import type { BlobIndex, BlobLocation } from '../repo/blob-index.ts';
import { createBlobReader, type BlobReader } from '../repo/blob-reader.ts';
import { loadIndex } from '../repo/index-loader.ts';
import { decodeTree } from '../repo/tree.ts';
import { encodeSnapshot, snapshotProblem, type Snapshot } from '../repo/snapshot.ts';
import { MAX_RECORD_BYTES } from '../repo/signed-record.ts';
import { hashOfName, packName, snapshotName } from '../repo/layout.ts';
import type { RecordProblem } from '../repo/records.ts';
import type { Operation } from '../governance/operation.ts';
import { appendAudit, verifyAudit } from '../governance/audit-log.ts';
import { ANCHOR_ACTION } from '../governance/audit-anchors.ts';
import { strongerMode } from '../governance/retention.ts';
import { createBlobSink, type BlobSink } from './blob-sink.ts';
import {
  checkNotCondemned,
  CondemnedDuringBackup,
  dedupablePacks,
  grantBackupLocks,
  planLock,
  type LockPlan,
} from './backup-lock.ts';
import { listSnapshots, type SnapshotEntry } from './snapshots.ts';

/** Which of the primary's snapshots to copy; empty lists mean all. */
export interface CopyFilter {
  hosts?: string[];
  tags?: string[];
  /** A snapshot is taken when it backed up every one of these paths. */
  paths?: string[];
  /** Snapshot ids or unique prefixes (at least 4 hex digits). */
  snapshots?: string[];
}

export interface CopyProgress {
  snapshot: number;
  snapshots: number;
  blobs: number;
  bytesTransferred: number;
}

export interface CopyOptions {
  /** The copy: the repository written to, with its own key, policy and clock. */
  copy: Operation;
  /** The primary, opened with a key of its own; nothing is ever written to it. */
  primary: Repository;
  filter?: CopyFilter;
  /** Retention for the copied snapshots; the copy's policy gives the default and the bounds. */
  retainMs?: number;
  lockMode?: RetentionMode;
  onProgress?: (progress: CopyProgress) => void;
  /** Called as each snapshot is copied or fails. */
  onSnapshot?: (event: { copied: CopiedSnapshot } | { failed: CopyFailure }) => void;
}

/** Where a copied snapshot came from, as the copy records it (signed by the copy, in its snapshot). */
export interface CopiedFrom {
  repository: string;
  snapshot: SnapshotId;
  time: string;
  host: string;
  paths: string[];
  tags: string[];
  /** The key that signed the snapshot at the primary, as the primary's authority describes it… */
  signer: string;
  /** …and its key id. */
  signerKeyId: string;
  /** The retention the primary gave it: information only, the copy's own lock is `retention`. */
  retention: Snapshot['retention'];
  location: string;
  copiedAt: string;
  /** When the primary's store received the source snapshot, by that store's clock, where it says. */
  receivedAt?: string;
  /** A copy of a copy keeps where its source came from. */
  copiedFrom?: CopiedFrom;
}

export interface CopiedSnapshot {
  source: SnapshotId;
  copy: SnapshotId;
  time: string;
  host: string;
  paths: string[];
  retention: NonNullable<Snapshot['retention']>;
  blobsAdded: number;
  bytesAdded: number;
  bytesStored: number;
  bytesTransferred: number;
}

export interface CopyFailure {
  source: SnapshotId;
  code: string;
  message: string;
  /** The blob and pack at the primary that failed their check, where one did. */
  blob?: string;
  object?: string;
}

/** The primary's audit log as this run saw it, recorded in the copy's own log (the anchor). */
export interface PrimaryAnchor {
  repository: string;
  location: string;
  entries: number;
  heads: string[];
  checkpoint: { name: string; seq: number; entries: number } | null;
  /** Problems the primary's log verification found (the log was altered or damaged there). */
  problems: { name: string; problem: string }[];
}

export interface CopyResult {
  primary: { repository: string; location: string };
  copied: CopiedSnapshot[];
  /** Snapshots of the primary (after the filter) the copy held already. */
  alreadyCopied: number;
  failed: CopyFailure[];
  /** Snapshot objects at the primary that no authorised key signed, or that do not open: not copied. */
  ignored: RecordProblem[];
  anchor: PrimaryAnchor;
}

/** Snapshots of `repo` copied from the repository `repositoryId`, by the source snapshot id. */
export function copiesFrom(entries: SnapshotEntry[], repositoryId: string): Map<string, SnapshotEntry> {
  const found = new Map<string, SnapshotEntry>();
  for (const entry of entries) {
    const from = copiedFromOf(entry.snapshot);
    if (from?.repository === repositoryId) found.set(from.snapshot, entry);
  }
  return found;
}

/** A snapshot's provenance, when it is a well-formed copy record. */
export function copiedFromOf(snapshot: Snapshot): CopiedFrom | undefined {
  const from = snapshot.copiedFrom as CopiedFrom | undefined;
  return from && typeof from === 'object' && typeof from.repository === 'string' && typeof from.snapshot === 'string'
    ? from
    : undefined;
}

/** Refuses a copy that does not share the primary's dedup secrets, or that is the primary itself. */
export function checkCopyPair(copy: Repository, primary: Repository): void {
  if (copy.config.repositoryId === primary.config.repositoryId) {
    throw new AmberError('USAGE', `${copy.store.location} and ${primary.store.location} are the same repository`, {
      hint: 'the copy must be a repository of its own, made with `amber init --from-repo PRIMARY`',
    });
  }
  const same =
    copy.key.secrets.idKey.equals(primary.key.secrets.idKey) &&
    copy.key.secrets.gearSeed.equals(primary.key.secrets.gearSeed);
  if (!same) {
    throw new AmberError(
      'COPY_INCOMPATIBLE',
      `${copy.store.location} was not made to hold copies of ${primary.store.location} (repository ${primary.config.repositoryId.slice(0, 8)})`,
      {
        hint: 'create the copy with `amber init --repo COPY --from-repo PRIMARY`: it takes the primary’s chunker and blob-id secrets, nothing else (docs/isolation.md)',
      },
    );
  }
}

export function matchesFilter(entry: SnapshotEntry, filter: CopyFilter): boolean {
  const { snapshot } = entry;
  if (filter.hosts?.length && !filter.hosts.includes(snapshot.host)) return false;
  if (filter.tags?.length && !filter.tags.every((tag) => snapshot.tags.includes(tag))) return false;
  if (filter.paths?.length && !filter.paths.every((path) => snapshot.paths.includes(path))) return false;
  if (filter.snapshots?.length && !filter.snapshots.some((ref) => entry.id.startsWith(ref))) return false;
  return true;
}

export async function copySnapshots(options: CopyOptions): Promise<CopyResult> {
  const { copy, primary } = options;
  checkCopyPair(copy, primary);
  const filter = options.filter ?? {};
  for (const ref of filter.snapshots ?? []) {
    if (!/^[0-9a-f]{4,64}$/.test(ref))
      throw new AmberError('USAGE', `--snapshot "${ref}" is not a snapshot id`, {
        hint: 'give an id or a prefix of at least 4 hex digits from `amber snapshots --repo PRIMARY`',
      });
  }
  const ignored: RecordProblem[] = [];
  const atPrimary = (await listSnapshots(primary, ignored)).filter((entry) => matchesFilter(entry, filter));
  for (const ref of filter.snapshots ?? []) {
    const matches = atPrimary.filter((entry) => entry.id.startsWith(ref));
    if (matches.length === 0 && !ignored.some(({ name }) => hashOfName(name)?.startsWith(ref)))
      throw new AmberError('SNAPSHOT_NOT_FOUND', `no snapshot ${ref} at the primary ${primary.store.location}`, {
        hint: 'list them with `amber snapshots --repo PRIMARY`',
      });
    if (matches.length > 1)
      throw new AmberError('SNAPSHOT_AMBIGUOUS', `"${ref}" matches ${matches.length} snapshots at the primary`, {
        hint: 'give more digits of the id',
      });
  }
  // Forgotten ones count too: a copy the copy's own rules forgot is not brought back.
  const held = copiesFrom(await listSnapshots(copy, [], { includeForgotten: true }), primary.config.repositoryId);
  const wanted = atPrimary.filter((entry) => !held.has(entry.id));
  const run = await startRun(options, held);
  const copied: CopiedSnapshot[] = [];
  const failed: CopyFailure[] = [];
  for (const [n, entry] of wanted.entries()) {
    run.progress.snapshot = n + 1;
    run.progress.snapshots = wanted.length;
    try {
      const done = await copyWithRetry(run, entry);
      copied.push(done);
      options.onSnapshot?.({ copied: done });
    } catch (error) {
      if (!isSourceProblem(error)) throw error;
      const failure: CopyFailure = {
        source: entry.id,
        code: error.code,
        message: error.message,
        ...(typeof error.details?.blob === 'string' ? { blob: error.details.blob } : {}),
        ...(typeof error.details?.object === 'string' ? { object: error.details.object } : {}),
      };
      failed.push(failure);
      options.onSnapshot?.({ failed: failure });
      // Blobs this snapshot claimed but never stored would otherwise count as present.
      run.index = await loadRunIndex(run);
    } finally {
      copy.retentionStateChanged();
    }
  }
  const anchor = await anchorPrimary(copy, primary, { copied: copied.length, failed: failed.length });
  return {
    primary: { repository: primary.config.repositoryId, location: primary.store.location },
    copied,
    alreadyCopied: atPrimary.length - wanted.length,
    failed,
    ignored,
    anchor,
  };
}

/**
 * Damage or absence at the primary, or a tree no restore would accept (a name that leaves its
 * directory, twice the same name), fails one snapshot's copy; anything else (the copy's storage)
 * ends the run.
 */
function isSourceProblem(error: unknown): error is AmberError {
  return isAmberError(error) && ['OBJECT_CORRUPT', 'OBJECT_NOT_FOUND', 'UNSAFE_PATH'].includes(error.code);
}

interface Run {
  options: CopyOptions;
  copy: Operation;
  primary: Repository;
  /** Source snapshot id → its copy's id, for the copies' parents. */
  copies: Map<string, SnapshotId>;
  lock: LockPlan;
  index: BlobIndex;
  primaryIndex: BlobIndex;
  primaryReader: BlobReader;
  progress: CopyProgress;
  /** The references of the trees this run has read, for the walks of its later snapshots. */
  trees: TreeRefs;
}

/** A tree's data blobs (32-byte ids back to back) and subtrees, in the order the tree names them. */
interface TreeEntry {
  blobs: Buffer;
  subtrees: TreeId[];
}

/**
 * What the trees a run has read refer to, taken from their checked plaintext. The snapshots of one
 * run share most of their trees, and a later snapshot walks those without reading, decrypting,
 * checking and decoding each one again (that was most of a walk). Bounded: past the bound, trees are
 * read as before.
 */
interface TreeRefs {
  get(id: TreeId): TreeEntry | undefined;
  add(id: TreeId, entry: TreeEntry): void;
}

/** Memory for tree references in one run: their ids, and an estimate of each entry's overhead. */
const TREE_REFS_BYTES = 64 * 1024 * 1024;

function createTreeRefs(limitBytes: number): TreeRefs {
  const entries = new Map<string, TreeEntry>();
  let bytes = 0;
  return {
    get: (id) => entries.get(id),
    add(id, entry) {
      const size = 160 + entry.blobs.length + entry.subtrees.length * 96;
      if (bytes + size > limitBytes || entries.has(id)) return;
      entries.set(id, entry);
      bytes += size;
    },
  };
}

async function startRun(options: CopyOptions, held: Map<string, SnapshotEntry>): Promise<Run> {
  const { copy, primary } = options;
  const state = await copy.retentionState();
  const lock = planLock(state, { retainMs: options.retainMs, mode: options.lockMode }, copy.retentionClock);
  const primaryIndex = (await loadIndex(primary)).index;
  const run: Run = {
    options,
    copy,
    primary,
    copies: new Map([...held].map(([source, entry]) => [source, entry.id])),
    lock,
    index: undefined as unknown as BlobIndex,
    primaryIndex,
    primaryReader: createBlobReader(primary, primaryIndex),
    progress: { snapshot: 0, snapshots: 0, blobs: 0, bytesTransferred: 0 },
    trees: createTreeRefs(TREE_REFS_BYTES),
  };
  run.index = await loadRunIndex(run);
  return run;
}

async function loadRunIndex(run: Run): Promise<BlobIndex> {
  const state = await run.copy.retentionState();
  return (await loadIndex(run.copy, { dedupable: dedupablePacks(state, run.lock.mode, run.copy.store) })).index;
}

/** As a backup does: a pack reused from the copy and condemned by a prune meanwhile means start again. */
async function copyWithRetry(run: Run, entry: SnapshotEntry): Promise<CopiedSnapshot> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await copyOne(run, entry);
    } catch (error) {
      if (!(error instanceof CondemnedDuringBackup) || attempt >= 3) throw error;
      run.copy.retentionStateChanged();
      run.index = await loadRunIndex(run);
    }
  }
}

async function copyOne(run: Run, entry: SnapshotEntry): Promise<CopiedSnapshot> {
  const { copy, primary } = run;
  const state = await copy.retentionState();
  // Planned again for each snapshot: "the copy's policy at the moment it arrives".
  const lock = planLock(state, { retainMs: run.options.retainMs, mode: run.options.lockMode }, copy.retentionClock);
  const source = entry.snapshot;
  const parent = source.parent !== undefined ? run.copies.get(source.parent) : undefined;
  const build = () => copiedSnapshot(run, entry, lock, parent);
  // Checked before anything is stored: the copy keeps every field of the source and adds its own
  // (copiedFrom repeats paths and tags, and nests a source's copiedFrom one level deeper), so a
  // source its own readers accept can make a snapshot the copy's readers would refuse. Written, it
  // would be a locked object that lists as damage, and every later run would copy it again.
  checkWritable(build(), entry.id);
  const sink = createBlobSink(copy, run.index, {
    retention: { retainUntilMs: lock.untilMs, mode: lock.mode },
    indexRetention: { retainUntilMs: lock.untilMs, mode: strongerMode(lock.mode, state.ledger.strongestMode)! },
  });
  const transferred = { bytes: 0 };
  try {
    const copyReader = createBlobReader(copy, run.index);
    const transfer = createTransfer(run, sink, transferred);
    await copyTree(run, { sink, copyReader, transfer, seen: new Set() }, entry.snapshot.tree);
    await transfer.finish();
    await sink.flush();
  } finally {
    await sink.close();
  }
  const snapshot = build();
  const bytes = checkWritable(snapshot, entry.id, encodeSnapshot(snapshot, copy.currentEpoch, copy.key.signer));
  const snapshotId = asSnapshotId(sha256Hex(bytes));
  await checkNotCondemned(copy, state, sink.reusedPacks);
  const commit = await grantBackupLocks(copy, state, {
    plan: lock,
    snapshotId,
    written: sink.written,
    reused: sink.reusedPacks,
    nowMs: copy.clock.nowMs(),
    parent: parent ? snapshotName(parent) : undefined,
  });
  await copy.store.put(snapshotName(snapshotId), bytes, { retainUntilMs: lock.untilMs, mode: lock.mode });
  await copy.store.protect([snapshotName(snapshotId)], { untilMs: lock.untilMs, mode: lock.mode });
  run.copies.set(entry.id, snapshotId);
  const stored = [...sink.written, snapshotName(snapshotId), commit.grant];
  await appendAudit(
    copy,
    {
      action: 'copy',
      target: snapshotId,
      details: {
        from: { repository: primary.config.repositoryId, snapshot: entry.id, location: primary.store.location },
        objects: stored.length,
        merkleRoot: merkleRoot(stored),
        host: source.host,
        paths: source.paths,
        retention: snapshot.retention,
        bytesAdded: sink.stats.bytesAdded,
      },
    },
    { lock: commit.metadataLock },
  );
  return {
    source: entry.id,
    copy: snapshotId,
    time: source.time,
    host: source.host,
    paths: source.paths,
    retention: snapshot.retention!,
    blobsAdded: sink.stats.blobsAdded,
    bytesAdded: sink.stats.bytesAdded,
    bytesStored: sink.stats.bytesStored,
    bytesTransferred: transferred.bytes,
  };
}

/** The copy's snapshot of `entry`: every field of the source but its own lock, parent and provenance. */
function copiedSnapshot(run: Run, entry: SnapshotEntry, lock: LockPlan, parent: SnapshotId | undefined): Snapshot {
  const { copy, primary } = run;
  const source = entry.snapshot;
  const { parent: _sourceParent, copiedFrom: sourceCopiedFrom, ...kept } = source;
  const copiedFrom: CopiedFrom = {
    repository: primary.config.repositoryId,
    snapshot: entry.id,
    time: source.time,
    host: source.host,
    paths: source.paths,
    tags: source.tags,
    signer: entry.signer,
    signerKeyId: entry.signerKeyId,
    retention: source.retention,
    location: primary.store.location,
    copiedAt: nowIso(copy.clock),
    ...(entry.writtenMs !== undefined ? { receivedAt: isoDate(entry.writtenMs) } : {}),
    ...(copiedFromOf(source) ? { copiedFrom: sourceCopiedFrom as CopiedFrom } : {}),
  };
  return {
    ...kept,
    ...(parent ? { parent } : {}),
    retention: { mode: lock.mode, until: isoDate(lock.untilMs) },
    copiedFrom,
  };
}

/** Room for the snapshot's envelope, epoch and sealed box around its JSON. */
const SNAPSHOT_OVERHEAD_BYTES = 4096;

/**
 * Refuses (OBJECT_CORRUPT: that snapshot fails, the run goes on) a copy the copy's own readers would
 * not accept; returns `bytes` when given.
 */
function checkWritable(snapshot: Snapshot, source: SnapshotId, bytes?: Buffer): Buffer {
  const refuse = (why: string) =>
    new AmberError(
      'OBJECT_CORRUPT',
      `snapshot ${source.slice(0, 16)} at the primary cannot be copied: its copy ${why}`,
      {
        hint: 'the primary holds a snapshot no backup writes; other snapshots are copied',
        details: { object: snapshotName(source) },
      },
    );
  const problem = snapshotProblem(snapshot);
  if (problem) throw refuse(problem);
  const size = bytes?.length ?? Buffer.byteLength(JSON.stringify(snapshot)) + SNAPSHOT_OVERHEAD_BYTES;
  if (size > MAX_RECORD_BYTES) throw refuse(`would be ${size} bytes, larger than any record may be`);
  return bytes ?? Buffer.alloc(0);
}

interface Walk {
  sink: BlobSink;
  copyReader: BlobReader;
  transfer: Transfer;
  seen: Set<string>;
}

/**
 * Every tree of the snapshot is visited, so that the grant covers every pack it needs; a tree the
 * copy holds already is read from the copy, only the others from the primary, and one this run has
 * read before is walked from its references. Data blobs the copy lacks are queued for transfer; a
 * tree is stored after its children were queued.
 */
async function copyTree(run: Run, walk: Walk, treeId: TreeId): Promise<void> {
  if (walk.seen.has(treeId)) return;
  walk.seen.add(treeId);
  const id = Buffer.from(treeId, 'hex');
  const known = run.index.get(id)?.trusted ? run.trees.get(treeId) : undefined;
  if (known) {
    for (let at = 0; at < known.blobs.length; at += 32) {
      const blobId = known.blobs.subarray(at, at + 32);
      if (walk.sink.claim(blobId)) await walk.transfer.add(blobId);
    }
    for (const subtree of known.subtrees) await copyTree(run, walk, subtree);
    // The copy holds it: noted as reused, so that the grant covers its pack.
    walk.sink.claim(id);
    return;
  }
  const plaintext = await readTreeBytes(run, walk, id);
  const tree = decodeTree(plaintext, `tree ${treeId.slice(0, 16)}`);
  run.trees.add(treeId, treeEntry(tree.nodes));
  for (const node of tree.nodes) {
    for (const blob of node.content ?? []) {
      const blobId = Buffer.from(blob, 'hex');
      if (walk.sink.claim(blobId)) await walk.transfer.add(blobId);
    }
    if (node.subtree) await copyTree(run, walk, node.subtree);
  }
  await walk.sink.storeBlob('tree', plaintext);
}

function treeEntry(nodes: readonly { content?: string[]; subtree?: TreeId }[]): TreeEntry {
  const blobs = Buffer.allocUnsafe(32 * nodes.reduce((sum, node) => sum + (node.content?.length ?? 0), 0));
  const subtrees: TreeId[] = [];
  let at = 0;
  for (const node of nodes) {
    for (const blob of node.content ?? []) at += blobs.write(blob, at, 32, 'hex');
    if (node.subtree) subtrees.push(node.subtree);
  }
  return { blobs, subtrees };
}

async function readTreeBytes(run: Run, walk: Walk, id: Buffer): Promise<Buffer> {
  if (run.index.get(id)?.trusted) {
    try {
      return await walk.copyReader.readBlob(id);
    } catch (error) {
      // Damage at the copy: the primary's copy of the tree is as good (same id, checked on reading).
      if (!isSourceProblem(error)) throw error;
    }
  }
  return run.primaryReader.readBlob(id);
}

interface Transfer {
  /** Queues a claimed data blob; may wait while earlier blobs are fetched. */
  add(id: Buffer): Promise<void>;
  /** Fetches everything queued. */
  finish(): Promise<void>;
}

/** Sealed bytes queued before a batch of reads starts. */
const QUEUE_BYTES = 32 * 1024 * 1024;
/** Blobs closer than this in a pack are fetched in one read, the bytes between them discarded. */
const GAP_BYTES = 64 * 1024;
const RANGE_MAX_BYTES = 8 * 1024 * 1024;
const READS_IN_FLIGHT = 4;

interface Wanted {
  id: Buffer;
  location: BlobLocation;
}

/**
 * Fetches the blobs a snapshot's copy lacks from the primary: grouped by pack, adjacent ones read
 * together, a few reads in flight, while the walk fills the next batch (one batch at a time, so
 * memory stays at about two batches).
 */
function createTransfer(run: Run, sink: BlobSink, transferred: { bytes: number }): Transfer {
  let queue = new Map<PackId, Wanted[]>();
  let queuedBytes = 0;
  let draining: Promise<void> = Promise.resolve();

  const fetchBatch = async (batch: Map<PackId, Wanted[]>) => {
    const ranges = [...batch].flatMap(([packId, wanted]) => rangesOf(packId, wanted));
    let next = 0;
    const worker = async () => {
      while (next < ranges.length) await fetchRange(run, sink, ranges[next++], transferred);
    };
    await Promise.all(Array.from({ length: Math.min(READS_IN_FLIGHT, ranges.length) }, worker));
  };

  const startBatch = async () => {
    const batch = queue;
    queue = new Map();
    queuedBytes = 0;
    await draining; // one batch in flight: the walk fills the next meanwhile
    draining = fetchBatch(batch);
    // A failure is seen by the next add or by finish.
    draining.catch(() => undefined);
  };

  return {
    async add(id) {
      const location = run.primaryIndex.get(id);
      if (!location) {
        throw new AmberError(
          'OBJECT_NOT_FOUND',
          `blob ${id.toString('hex').slice(0, 16)} is not in the primary's index (the primary is missing data)`,
          {
            hint: 'run `amber verify --repo PRIMARY` at the primary; other snapshots are copied',
            details: { blob: id.toString('hex') },
          },
        );
      }
      const list = queue.get(location.packId) ?? [];
      if (list.length === 0) queue.set(location.packId, list);
      list.push({ id, location });
      queuedBytes += location.sealedLength;
      if (queuedBytes >= QUEUE_BYTES) await startBatch();
    },
    async finish() {
      await startBatch();
      await draining;
    },
  };
}

interface Range {
  packId: PackId;
  offset: number;
  length: number;
  blobs: Wanted[];
}

function rangesOf(packId: PackId, wanted: Wanted[]): Range[] {
  const sorted = [...wanted].sort((a, b) => a.location.offset - b.location.offset);
  const ranges: Range[] = [];
  for (const blob of sorted) {
    const { offset, sealedLength } = blob.location;
    const last = ranges.at(-1);
    const end = last ? last.offset + last.length : 0;
    if (last && offset >= end && offset - end <= GAP_BYTES && offset + sealedLength - last.offset <= RANGE_MAX_BYTES) {
      last.length = offset + sealedLength - last.offset;
      last.blobs.push(blob);
    } else ranges.push({ packId, offset, length: sealedLength, blobs: [blob] });
  }
  return ranges;
}

async function fetchRange(run: Run, sink: BlobSink, range: Range, transferred: { bytes: number }): Promise<void> {
  const name = packName(range.packId);
  const { primary, primaryReader } = run;
  let sealed: Buffer;
  let sourceKey: Buffer;
  try {
    sourceKey = await primaryReader.packDataKey(range.packId);
    const bytes = await primary.store.get(name, { offset: range.offset, length: range.length });
    if (bytes.length !== range.length)
      throw new AmberError('OBJECT_CORRUPT', `${name} is shorter than the primary's index says (truncated)`, {
        details: { object: name },
      });
    transferred.bytes += bytes.length;
    // The blobs alone, back to back, in memory of their own: it moves to a worker thread.
    const total = range.blobs.reduce((sum, blob) => sum + blob.location.sealedLength, 0);
    sealed = Buffer.allocUnsafeSlow(total);
    let at = 0;
    for (const { location } of range.blobs) {
      const from = location.offset - range.offset;
      at += Buffer.from(bytes.buffer, bytes.byteOffset + from, location.sealedLength).copy(sealed, at);
    }
  } catch (error) {
    if (!isSourceProblem(error)) throw error;
    await fetchEachElsewhere(run, sink, range.blobs, error);
    return;
  }
  try {
    await sink.storeResealed({
      refs: range.blobs.map(({ id, location }) => ({
        id,
        type: location.type,
        compression: location.compression,
        rawLength: location.rawLength,
      })),
      sealed,
      lengths: range.blobs.map(({ location }) => location.sealedLength),
      sourceKey,
      where: `${name} at the primary`,
    });
  } catch (error) {
    if (!isSourceProblem(error)) throw error;
    await fetchEachElsewhere(run, sink, range.blobs, error);
    return;
  }
  run.progress.blobs += range.blobs.length;
  run.progress.bytesTransferred += range.length;
  run.options.onProgress?.(run.progress);
}

/**
 * A read or check failed for a batch: each of its blobs is read again one by one, through every
 * copy the primary's index objects know of (the reader's fallback), and stored from its checked
 * plaintext. A blob no copy of which is intact fails the snapshot, naming the first failure.
 */
async function fetchEachElsewhere(run: Run, sink: BlobSink, blobs: Wanted[], first: AmberError): Promise<void> {
  for (const { id, location } of blobs) {
    let plaintext: Buffer;
    try {
      plaintext = await run.primaryReader.readBlob(id);
    } catch (error) {
      if (!isSourceProblem(error)) throw error;
      const failed = first.details?.blob === id.toString('hex') || blobs.length === 1 ? first : error;
      throw new AmberError(
        failed.code,
        `${failed.message}; no other copy of blob ${id.toString('hex').slice(0, 16)} at the primary is intact`,
        {
          hint: 'run `amber verify --read-data --repo PRIMARY` at the primary; earlier copies are intact and the other snapshots are copied',
          details: { blob: id.toString('hex'), object: failed.details?.object ?? packName(location.packId) },
        },
      );
    }
    // File content, whatever type the failed entry claimed (a forged one may call it a tree).
    await sink.storeBlob('data', plaintext, { claimed: true });
  }
}

/**
 * Records the primary's audit log as this run found it (its heads, entry count and newest
 * checkpoint) in the copy's own log: `amber audit verify --anchors-from COPY` later detects a
 * primary whose history was rewritten after the copy saw it.
 */
async function anchorPrimary(
  copy: Operation,
  primary: Repository,
  counts: { copied: number; failed: number },
): Promise<PrimaryAnchor> {
  const seen = await verifyAudit(primary);
  const anchor: PrimaryAnchor = {
    repository: primary.config.repositoryId,
    location: primary.store.location,
    entries: seen.entries,
    heads: seen.heads,
    checkpoint: seen.checkpoint,
    problems: seen.problems.map(({ name, problem }) => ({ name, problem })),
  };
  await appendAudit(copy, {
    action: ANCHOR_ACTION,
    target: primary.config.repositoryId,
    details: { ...anchor, problems: anchor.problems.length, copied: counts.copied, failed: counts.failed },
  });
  return anchor;
}
