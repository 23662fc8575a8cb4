// Verify: every snapshot's trees and chunks are indexed and their packs exist; with --read-data,
// every pack is read whole, checked against its name and signature, and every blob decrypted and
// re-hashed. Problems name the object (and blob) they hit. A clean full read by a full-access key
// certifies the packs it read, so write-only keys may then dedup against them.
import { AmberError, isAmberError } from '../core/errors.ts';
import { asPackId, asSnapshotId, isHexId, type PackId, type SnapshotId, type TreeId } from '../core/ids.ts';
import { settleAll } from '../core/settle.ts';
import { isoDate } from '../core/units.ts';
import type { BoxKeyPair } from '../crypto/index.ts';
import type { Repository } from '../repo/repository.ts';
import { operationOn, type Operation } from '../governance/operation.ts';
import { loadIndex, type LoadedIndex } from '../repo/index-loader.ts';
import { createBlobReader, type BlobReader } from '../repo/blob-reader.ts';
import type { BlobIndex } from '../repo/blob-index.ts';
import { decodeTrailer, TRAILER_BYTES, type PackEntry } from '../repo/pack.ts';
import type { RecordProblem } from '../repo/records.ts';
import { hashOfName, METADATA_PREFIXES, packName, PREFIX, snapshotIdOf, snapshotName } from '../repo/layout.ts';
import type { IndexedPack } from '../repo/index-file.ts';
import { createIndexWriter } from '../repo/index-writer.ts';
import { readTree } from './tree-walk.ts';
import { asBuffer } from '../storage/store.ts';
import { canOpenEpoch, epochKeyVariants } from '../repo/epochs.ts';
import type { PackCheckInput, VerifyProblem } from './pack-check.ts';
import { createPackCheckPool, type PackCheckResult } from './pack-check-pool.ts';
import { listSnapshots, type SnapshotEntry } from './snapshots.ts';
import type { RetentionState } from '../governance/retention-state.ts';
import { describeMissingKey, readAuditLog, verifyAudit, type NamedKey } from '../governance/audit-log.ts';
import type { LoadedEntry } from '../repo/audit-records.ts';
import { lockGaps, type TreeGraph } from './lock-coverage.ts';

/** Packs in memory at once: one checked by every worker while the next is read. */
const READ_AHEAD_PACKS = 2;

export type { VerifyProblem };

const fromRecord = ({ name, problem, code, signer }: RecordProblem, defaultCode: string): VerifyProblem => ({
  object: name,
  code: code ?? defaultCode,
  message: `ignored: ${problem}`,
  ...(signer ? { signer } : {}),
});

export interface VerifyOptions {
  repo: Operation;
  /** Fraction of packs (0..1] to read whole; 0 checks structure only. */
  readDataFraction: number;
  /**
   * Re-index, under the owner key, the packs that read clean and no owner index names (`amber
   * repair index`). Without it verify writes no index: a check stays a check, and it counts them.
   */
  certify?: boolean;
  onProgress?: (progress: { packsRead: number; packsTotal: number; bytesRead: number }) => void;
}

export interface VerifyResult {
  snapshots: number;
  trees: number;
  blobsReferenced: number;
  packs: number;
  packsRead: number;
  bytesRead: number;
  unreferencedPacks: number;
  certifiedPacks: number;
  /** Packs that read clean that no index of the owner names: `amber repair index` certifies them. */
  uncertifiedPacks: number;
  /** Later versions holding an object's own bytes (S3: two writers raced); harmless, reported apart. */
  duplicateVersions: number;
  /** Damage to, or absence of, what the backups and their records need: verify fails on these. */
  problems: VerifyProblem[];
  /**
   * Objects no key with the authority wrote — bytes that match their names but are no record an
   * authorised key signed, or names the format does not define. Anyone who may write to the store
   * can add them; they are not part of the repository, change nothing any reader does and are no
   * damage to the backups, so verify reports them and still succeeds. (A snapshot that a grant or
   * an audit entry names is never one of them: it is a problem when it does not read.)
   */
  ignored: VerifyProblem[];
  /** What verify noticed or did that is no failure (e.g. a backup that was interrupted). */
  notices: string[];
}

export async function verify(options: VerifyOptions): Promise<VerifyResult> {
  // Verify reads every record from the store itself: the local record cache is for speed, not proof.
  const repo = operationOn({ ...options.repo, recordCache: undefined }, options.repo.retentionClock);
  if (repo.key.role !== 'full') {
    throw new AmberError('WRITE_ONLY_KEY', 'verify reads snapshots and data, which a write-only key cannot decrypt', {
      hint: 'run verify with a full-access key',
    });
  }
  const found: VerifyProblem[] = repo.problems.map((problem) => fromRecord(problem, 'SIGNATURE_INVALID'));
  const loaded = await loadIndex(repo);
  for (const problem of loaded.problems) found.push(fromRecord(problem, 'OBJECT_CORRUPT'));
  const state = await repo.retentionState();
  const snapshotProblems: RecordProblem[] = [];
  const snapshots = await listSnapshots(repo, snapshotProblems, { state });
  for (const problem of snapshotProblems) found.push(fromRecord(problem, 'SIGNATURE_INVALID'));

  // The structure check (every snapshot's trees) runs on the main thread while the packs are read
  // and checked on the workers; its problems are reported before theirs.
  const certifier = createCertifier(repo, loaded.trustedPacks, options.certify === true);
  const [structure, data] = await settleAll([
    checkStructure(repo, loaded, snapshots),
    checkPacks(repo, loaded, options, certifier, state.condemned),
  ]);
  found.push(...structure.problems, ...data.problems);
  const notices: string[] = [];
  found.push(...(await checkLocks(repo, state, structure.graph, notices)));
  const strays = await checkStrayVersions(repo);
  found.push(...strays.problems);
  // A vault token without access to the audit log (a writer) skips it; `amber audit verify` is the auditor's.
  const log = await readAuditLog(repo).catch((error) => {
    if (isAmberError(error, 'ROLE_FORBIDDEN')) return undefined;
    throw error;
  });
  const audit = log && (await verifyAudit(repo, log));
  const keyProblems = new Set(audit?.missingKeys.map(({ namedBy }) => namedBy));
  for (const { name, problem } of audit?.problems ?? []) {
    if (!keyProblems.has(name))
      found.push({ object: name, code: 'AUDIT_TAMPERED', message: `audit log: ${name}: ${problem}` });
  }
  for (const { name, problem } of audit?.ignored ?? [])
    found.push({ object: name, code: 'SIGNATURE_INVALID', message: `ignored: ${problem}` });
  // A key the records name whose key file is gone: reported once, and what it signed is no junk.
  const missingKeys = new Map((audit?.missingKeys ?? []).map((key) => [key.keyId as string, key]));
  for (const key of missingKeys.values()) {
    found.push({
      object: key.keyFile ?? `keys/ (key ${key.keyId})`,
      code: 'OBJECT_NOT_FOUND',
      message: describeMissingKey(key),
    });
  }
  // Only entries of the real chain count as records of a backup: not one a revoked key signed late.
  const tampered = new Set(audit?.problems.filter(({ name }) => !keyProblems.has(name)).map(({ name }) => name));
  const named = namedSnapshots(
    state,
    log?.entries.filter(({ name }) => !tampered.has(name)),
  );
  const problems: VerifyProblem[] = [];
  const ignored: VerifyProblem[] = [];
  for (const problem of found) (isUnauthorised(problem, named, missingKeys) ? ignored : problems).push(problem);
  problems.push(...(await missingObjects(repo, state, named, problems, notices)));
  const { certified: certifiedPacks, uncertified: uncertifiedPacks } = await certifier.finish();
  return {
    snapshots: snapshots.length,
    trees: structure.trees,
    blobsReferenced: structure.blobsReferenced,
    packs: data.packs,
    packsRead: data.packsRead,
    bytesRead: data.bytesRead,
    unreferencedPacks: data.unreferencedPacks,
    certifiedPacks,
    uncertifiedPacks,
    duplicateVersions: strays.duplicates,
    problems,
    ignored,
    notices,
  };
}

/** Snapshot id → the records that say it was committed: its grant and its backup's audit entry. */
type NamedSnapshots = Map<SnapshotId, { grant?: string; audit?: string }>;

function namedSnapshots(state: RetentionState, entries: readonly LoadedEntry[] = []): NamedSnapshots {
  const named: NamedSnapshots = new Map();
  for (const [id, grant] of state.snapshotGrants) named.set(id, { grant });
  for (const { name, entry } of entries) {
    if (entry.action !== 'backup' || !isHexId(entry.target)) continue;
    const id = asSnapshotId(entry.target);
    named.set(id, { ...named.get(id), audit: name });
  }
  return named;
}

/**
 * Unauthorised (SIGNATURE_INVALID: no key with the authority wrote it) is not damage — unless it is
 * a snapshot that a grant or an audit entry says was committed: then a real backup does not read.
 */
function isUnauthorised(
  problem: VerifyProblem,
  named: NamedSnapshots,
  missingKeys: ReadonlyMap<string, NamedKey>,
): boolean {
  if (problem.code !== 'SIGNATURE_INVALID') return false;
  const signer = problem.signer === undefined ? undefined : missingKeys.get(problem.signer);
  if (signer) {
    problem.message =
      `${problem.message}; yet its signer is key ${signer.keyId.slice(0, 8)}, which ${signer.namedBy} names and whose key file` +
      `${signer.keyFile ? ` ${signer.keyFile}` : ''} is missing: not junk, put the key file back from an isolated copy`;
    return false;
  }
  const id = snapshotIdOf(problem.object);
  if (id === undefined || !named.has(id)) return true;
  problem.message = `${problem.message}; yet ${describeNamer(named.get(id)!)} names snapshot ${id}, so a committed backup does not read: put the object back from an isolated copy`;
  return false;
}

const describeNamer = ({ grant, audit }: { grant?: string; audit?: string }) =>
  [audit && `the audit entry ${audit}`, grant && `the grant ${grant}`].filter(Boolean).join(' and ');

/**
 * Objects the grants retain until a date still ahead that the store no longer holds: removed before
 * their retention ended, which is all an attacker with root on an fs repository (or write access to
 * the storage) can still do; the grants and audit entries naming them reveal it. One exception: a
 * backup killed after its grant never stored its snapshot, so a snapshot that only a grant names
 * (no audit entry records its backup) is a notice, not a problem.
 */
async function missingObjects(
  repo: Repository,
  state: RetentionState,
  named: NamedSnapshots,
  reported: VerifyProblem[],
  notices: string[],
): Promise<VerifyProblem[]> {
  const prefixes = [PREFIX.data, PREFIX.snapshots, ...METADATA_PREFIXES.map((kind) => PREFIX[kind])];
  const stored = new Set<string>();
  for (const prefix of prefixes) for await (const { name } of repo.store.list(prefix)) stored.add(name);
  const already = new Set(reported.filter(({ code }) => code === 'OBJECT_NOT_FOUND').map(({ object }) => object));
  // What the grants retain, and every snapshot an audit entry records (its grant may be gone too).
  const expected = new Map<string, number>();
  for (const name of state.ledger.names()) expected.set(name, state.ledger.lockOf(name)!.untilMs);
  for (const [id, { audit }] of named)
    if (audit && !expected.has(snapshotName(id))) expected.set(snapshotName(id), Number.NaN);
  const problems: VerifyProblem[] = [];
  for (const [name, untilMs] of expected) {
    // Amber deletes only what a condemn notice names (prune, the vault): anything else missing was removed behind its back.
    if (
      stored.has(name) ||
      already.has(name) ||
      state.condemned.has(name) ||
      !prefixes.some((prefix) => name.startsWith(prefix))
    )
      continue;
    const id = snapshotIdOf(name);
    const namer = id === undefined ? undefined : named.get(id);
    if (id !== undefined && namer && !namer.audit) {
      notices.push(
        `the grant ${namer.grant} names snapshot ${id.slice(0, 8)}, which the store does not hold and no audit entry records: ` +
          'a backup killed between its grant and its snapshot leaves this (harmless); if none was, put the snapshot back from an isolated copy',
      );
      continue;
    }
    const by = namer ? describeNamer(namer) : 'a grant';
    problems.push({
      object: name,
      code: 'OBJECT_NOT_FOUND',
      message:
        `${id ? `snapshot ${id}` : name} is missing from the store, but ${by} names it` +
        `${Number.isFinite(untilMs) ? ` (retained until ${isoDate(untilMs)})` : ''}: ` +
        `it was removed, and not by Amber (prune deletes only what a condemn notice names). Put ${name} back from an isolated copy of this repository (the same bytes: the name is their hash), and find out who removed it`,
    });
  }
  return problems;
}

/**
 * On a versioned store (S3), a version written after an object's first with other bytes is an
 * attempt to replace it, and a delete marker one to hide it: Amber reads the first version, so
 * neither changed a restore, but someone with write access tried.
 */
async function checkStrayVersions(repo: Repository): Promise<{ problems: VerifyProblem[]; duplicates: number }> {
  const problems: VerifyProblem[] = [];
  let duplicates = 0;
  if (!repo.store.strayVersions) return { problems, duplicates };
  for await (const stray of repo.store.strayVersions('')) {
    if (stray.kind === 'later-version' && stray.sameBytes) duplicates += 1;
    else {
      const what =
        stray.kind === 'delete-marker'
          ? 'a delete marker hides it from plain reads'
          : 'a later version with other bytes was written over it';
      problems.push({
        object: stray.name,
        code: 'STORAGE_TAMPERED',
        message: `${stray.name}: ${what} (version ${stray.versionId}); Amber reads the first version, which is intact`,
      });
    }
  }
  return { problems, duplicates };
}

/**
 * Forged or malformed retention records, and every snapshot whose lock its objects do not cover.
 * Objects it finds whole but unprotected it protects again first (see finishProtection), and says so.
 */
async function checkLocks(
  repo: Operation,
  state: RetentionState,
  graph: TreeGraph,
  notices: string[],
): Promise<VerifyProblem[]> {
  const problems: VerifyProblem[] = state.problems.map((problem) => fromRecord(problem, 'SIGNATURE_INVALID'));
  const reprotected: string[] = [];
  for (const { snapshotId, lock, gap } of await lockGaps(repo, state, graph, reprotected)) {
    problems.push({
      object: gap.name,
      code: 'LOCK_GAP',
      message: `snapshot ${snapshotId.slice(0, 8)} is locked until ${lock.until} but ${gap.name} ${gap.problem}; repair: \`amber lock extend ${snapshotId.slice(0, 8)} --until ${lock.until}\` (as root where objects are made immutable)`,
    });
  }
  if (reprotected.length > 0) {
    notices.push(
      `finished the protection of ${reprotected.length} object${reprotected.length === 1 ? '' : 's'} an interrupted run left unprotected (or whose attribute was lifted): ${reprotected.slice(0, 3).join(', ')}${reprotected.length > 3 ? ', …' : ''}`,
    );
  }
  return problems;
}

async function checkStructure(repo: Repository, loaded: LoadedIndex, snapshots: SnapshotEntry[]) {
  const reader = createBlobReader(repo, loaded.index);
  const counts = { trees: 0, blobsReferenced: 0 };
  const problems: VerifyProblem[] = [];
  // Every tree read once; the lock check then walks this graph instead of reading them again.
  const graph: TreeGraph = new Map();
  for (const { id, snapshot } of snapshots) {
    await checkTree(reader, loaded.index, snapshot.tree, `snapshot ${id.slice(0, 8)}`, graph, counts, problems);
  }
  return { ...counts, problems, graph };
}

/** Every stored pack against the index, and the chosen packs read whole and checked. */
async function checkPacks(
  repo: Repository,
  loaded: LoadedIndex,
  options: VerifyOptions,
  certifier: ReturnType<typeof createCertifier>,
  condemned: ReadonlySet<string>,
) {
  const problems: VerifyProblem[] = [];
  const stored = new Map<PackId, number>();
  for await (const { name, sizeBytes } of repo.store.list(PREFIX.data)) {
    const hash = hashOfName(name);
    const packId = hash === undefined ? undefined : asPackId(hash);
    if (packId && name === packName(packId)) stored.set(packId, sizeBytes);
    // No writer makes such a name (packs are data/<2 hex>/<64 hex>): ignored and reported.
    else
      problems.push({
        object: name,
        code: 'SIGNATURE_INVALID',
        message: `ignored: ${name} is not a pack name Amber writes, so no key with the authority wrote it`,
      });
  }
  // Every pack an index object names, not only those the blob index locates blobs in (one location
  // per blob): a second copy of blobs stored elsewhere is indexed, not an interrupted backup's leftover.
  const indexed = loaded.indexedPacks;
  for (const packId of indexed) {
    const name = packName(packId);
    const sizeBytes = stored.get(packId);
    const neededBytes = (loaded.packEnds.get(packId) ?? 0) + TRAILER_BYTES;
    // Index objects are never rewritten, so they still list the packs prune deleted.
    if (sizeBytes === undefined && condemned.has(name)) continue;
    if (sizeBytes === undefined)
      problems.push({
        object: name,
        code: 'OBJECT_NOT_FOUND',
        message: `pack ${name} is in the index but missing from storage`,
      });
    else if (sizeBytes < neededBytes)
      problems.push({
        object: name,
        code: 'OBJECT_CORRUPT',
        message: `pack ${name} holds ${sizeBytes} bytes, fewer than the ${neededBytes} its index entries need (truncated)`,
      });
  }

  // Unreferenced packs are read too: a renamed or altered pack must not pass for a crash's leftover.
  const toRead = choosePacks([...stored.keys()], options.readDataFraction);
  let bytesRead = 0;
  const pool = createPackCheckPool(toRead.length > 1 ? undefined : 0);
  try {
    // Each pack is checked by every worker at once while the next one is read; results are taken in
    // order, so the report is the same however the work was spread.
    const checks: Promise<PackCheckResult>[] = [];
    const start = (packId: PackId) => {
      const memory = pool.take(stored.get(packId) ?? 0);
      checks.push(
        repo.store.get(packName(packId), undefined, memory).then(
          (bytes) => pool.check(checkInput(repo, packId, asBuffer(bytes))),
          (error: unknown) => {
            pool.give(memory);
            if (!isAmberError(error)) throw error;
            return { problems: [{ object: packName(packId), code: error.code, message: error.message }], entries: [] };
          },
        ),
      );
    };
    for (let next = 0; next < Math.min(toRead.length, READ_AHEAD_PACKS); next++) start(toRead[next]);
    for (const [done, packId] of toRead.entries()) {
      const result = await checks[done];
      if (done + READ_AHEAD_PACKS < toRead.length) start(toRead[done + READ_AHEAD_PACKS]);
      const found = [...result.problems, ...misplaced(loaded.index, packId, result.entries)];
      problems.push(...found);
      bytesRead += stored.get(packId) ?? 0;
      if (found.length === 0) await certifier.add({ id: packId, entries: result.entries });
      options.onProgress?.({ packsRead: done + 1, packsTotal: toRead.length, bytesRead });
    }
  } finally {
    await pool.close();
  }
  return {
    problems,
    packs: stored.size,
    packsRead: toRead.length,
    bytesRead,
    unreferencedPacks: [...stored.keys()].filter((id) => !indexed.has(id)).length,
  };
}

async function checkTree(
  reader: BlobReader,
  index: BlobIndex,
  treeId: TreeId,
  where: string,
  graph: TreeGraph,
  counts: { trees: number; blobsReferenced: number },
  problems: VerifyProblem[],
): Promise<void> {
  if (graph.has(treeId)) return;
  const own = index.packOf(Buffer.from(treeId, 'hex'));
  const node: TreeGraph extends Map<TreeId, infer V> ? V : never = {
    packs: new Set(own === undefined ? [] : [packName(own)]),
    subtrees: [],
  };
  graph.set(treeId, node);
  counts.trees += 1;
  // Tree reads resolve without a turn of the event loop; this lets the pack reads of checkPacks run.
  if (counts.trees % 64 === 0) await new Promise((wake) => setImmediate(wake));
  let nodes;
  try {
    nodes = (await readTree(reader, treeId)).nodes;
  } catch (error) {
    if (!isAmberError(error)) throw error;
    problems.push({
      object: where,
      blob: treeId,
      code: error.code,
      message: `tree ${treeId.slice(0, 16)} of ${where}: ${error.message}`,
    });
    return;
  }
  for (const entry of nodes) {
    for (const blob of entry.content ?? []) {
      counts.blobsReferenced += 1;
      const location = index.get(Buffer.from(blob, 'hex'));
      if (location) node.packs.add(packName(location.packId));
      else
        problems.push({
          object: where,
          blob,
          code: 'OBJECT_NOT_FOUND',
          message: `chunk ${blob.slice(0, 16)} of "${entry.name}" (${where}) is not in any pack`,
        });
    }
    if (entry.subtree) {
      node.subtrees.push(entry.subtree);
      await checkTree(reader, index, entry.subtree, where, graph, counts, problems);
    }
  }
}

/** What a pack check needs besides the bytes: who may have signed it and the keys of its epoch. */
function checkInput(repo: Repository, packId: PackId, bytes: Buffer): PackCheckInput {
  const name = packName(packId);
  let signerPublicKey: Buffer | undefined;
  let epochPairs: BoxKeyPair[] = [];
  if (bytes.length >= TRAILER_BYTES) {
    const trailer = decodeTrailer(bytes.subarray(bytes.length - TRAILER_BYTES), name);
    signerPublicKey = repo.authority.signingKeyFor(trailer.signerKeyId, name);
    const epoch = repo.epochs.get(trailer.epoch);
    if (canOpenEpoch(epoch)) {
      epochPairs = epochKeyVariants(epoch).flatMap((variant) =>
        variant.privateKey ? [{ publicKey: variant.publicKey, privateKey: variant.privateKey }] : [],
      );
    }
  }
  return { bytes, packId, name, signerPublicKey, epochPairs, idKey: repo.key.secrets.idKey };
}

/** Index entries that place a blob of this pack elsewhere than its own header does. */
function misplaced(index: BlobIndex, packId: PackId, entries: PackEntry[]): VerifyProblem[] {
  const name = packName(packId);
  return entries.flatMap((entry) => {
    const location = index.get(entry.id);
    if (
      location?.packId !== packId ||
      (location.offset === entry.offset && location.sealedLength === entry.sealedLength)
    )
      return [];
    const blob = entry.id.toString('hex');
    return [
      {
        object: name,
        blob,
        code: 'OBJECT_CORRUPT',
        message: `the index places blob ${blob.slice(0, 16)} elsewhere in ${name} than its header does`,
      },
    ];
  });
}

function choosePacks(packs: PackId[], fraction: number): PackId[] {
  if (fraction <= 0) return [];
  if (fraction >= 1) return packs;
  const count = Math.max(1, Math.ceil(packs.length * fraction));
  // A random subset, so repeated subset runs cover the whole repository over time.
  return [...packs]
    .map((id) => ({ id, order: Math.random() }))
    .sort((a, b) => a.order - b.order)
    .slice(0, count)
    .map(({ id }) => id);
}

/**
 * Certification (`amber repair index`; verify alone only counts): every pack that just read clean and that no index object of this key or the owner
 * names (packs of write-only keys, packs whose only index is damaged, packs of interrupted backups)
 * is re-indexed from its own header in owner-signed index objects. Every key dedups against those,
 * so no writer's index claims are ever taken on trust.
 */
function createCertifier(repo: Repository, alreadyTrusted: Set<string>, write: boolean) {
  const writer = createIndexWriter(repo);
  let owner = repo.key.signer.keyId === repo.authority.ownerKeyId;
  let certified = 0;
  let uncertified = 0;
  // A vault token that may not write index objects (a reader) checks without re-indexing.
  const unlessForbidden = (error: unknown) => {
    if (!isAmberError(error, 'ROLE_FORBIDDEN')) throw error;
    owner = false;
    certified = 0;
  };
  return {
    async add(pack: IndexedPack) {
      if (alreadyTrusted.has(pack.id)) return;
      if (!write || !owner) {
        uncertified += 1;
        return;
      }
      certified += 1;
      await writer.add(pack).catch(unlessForbidden);
    },
    async finish() {
      if (write && owner) await writer.flush().catch(unlessForbidden);
      return { certified, uncertified: write && owner ? 0 : uncertified };
    },
  };
}
