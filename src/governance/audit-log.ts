// Appending to, reading and verifying the audit log.
// An append lists the log, reads its newest levels to find the heads (several when writers raced),
// and writes one entry that names them all, so concurrent writers fork the DAG for one step at most
// and nothing relies on conditional writes. Entries are kept as long as anything in the repository.
//
// Checking the audit log as a hash DAG: every entry names the hash(es) of the entries it follows, so
// an edited entry no longer hashes to its name, a removed one leaves its successors pointing at
// nothing, a reordered or inserted one breaks the sequence numbers or the last checkpoint's count.
// Forks (two writers appending at once) are normal until the next append merges them; one still
// open behind the last checkpoint is reported.
import { AmberError, isAmberError } from '../core/errors.ts';
import { asKeyId, isHexId, type KeyId } from '../core/ids.ts';
import type { ObjectLock } from './retention.ts';
import type { Repository, RepositoryView } from '../repo/repository.ts';
import type { Clock } from '../core/clock.ts';
import { nowIso } from '../core/clock.ts';
import {
  decodeSignedRecord,
  hasValidSignature,
  keyIdOf,
  parseJsonPayload,
  type Signer,
} from '../repo/signed-record.ts';
import { sha256Hex } from '../crypto/index.ts';
import { hashOfName, objectName } from '../repo/layout.ts';
import type { KeyFileInfo, UnlockedKey } from '../repo/keys.ts';
import { asBuffer } from '../storage/store.ts';
import { loadRecords, POLICIES, type Loaded, type PolicyRecord } from '../repo/retention-records.ts';
import type { RecordProblem, SignerLookup } from '../repo/records.ts';
import {
  listAuditNames,
  putAuditCheckpoint,
  putAuditEntry,
  readAuditCheckpoints,
  readAuditEntries,
  readAuditEntry,
  type AuditEntry,
  type AuditEvent,
  type LoadedCheckpoint,
  type LoadedEntry,
} from '../repo/audit-records.ts';
import { metadataLock, type RetentionClock, type RetentionState } from './retention-state.ts';
import type { Operation } from './operation.ts';

/** How many of the newest sequence levels an append reads to find every head. */
const HEAD_WINDOW = 16;

/**
 * Who may sign audit entries: keys the owner certified, accepted witnesses, and approvers — every key
 * any link of the policy chain ever registered, since their entries stay valid after they leave.
 */
async function auditSigners(
  view: RepositoryView,
  links?: Loaded<PolicyRecord>[],
): Promise<SignerLookup & { describe(keyId: KeyId): string }> {
  const approvers = new Map<string, { key: Buffer; name: string }>();
  for (const { value } of links ?? (await loadRecords(view, POLICIES, []))) {
    for (const { name, publicKey } of value.settings.approvers ?? [])
      approvers.set(keyIdOf(Buffer.from(publicKey, 'hex')), { key: Buffer.from(publicKey, 'hex'), name });
  }
  const lookup = (keyId: KeyId) => view.authority.certifiedKeyFor(keyId) ?? approvers.get(keyId)?.key;
  return Object.assign(lookup, {
    describe: (keyId: KeyId) =>
      approvers.has(keyId) && !view.authority.certifiedKeyFor(keyId)
        ? `approver ${approvers.get(keyId)!.name}`
        : view.authority.describe(keyId),
  });
}

/** Who appends: an opened repository's key, or a vault's witness key (which has no repository key). */
export interface AuditAuthor extends RepositoryView {
  clock: Clock;
  actor: string;
  signer: Signer;
  /** The retention state the operation already holds: entries are retained as long as anything it names. */
  retentionState(): Promise<RetentionState>;
  /** The clock the operation judges retention and expiry by. */
  retentionClock: RetentionClock;
  /** Only the owner key signs checkpoints. */
  owner?: Operation;
}

const authorOf = (op: Operation): AuditAuthor => ({
  ...op,
  signer: op.key.signer,
  owner: op.key.role === 'full' ? op : undefined,
});

/** Writes one entry for an operation that changed the repository; returns it. */
export async function appendAudit(
  by: Operation | AuditAuthor,
  event: AuditEvent,
  options: { lock?: ObjectLock } = {},
): Promise<LoadedEntry> {
  const repo = 'key' in by ? authorOf(by) : by;
  const heads = await currentHeads(repo);
  const signerKeyFile = 'key' in by ? await ownKeyFile(by) : undefined;
  const entry: AuditEntry = {
    repository: repo.config.repositoryId,
    seq: Math.max(0, ...heads.map(({ seq }) => seq)) + 1,
    time: nowIso(repo.clock),
    actor: repo.actor,
    ...event,
    previous: heads.map(({ hash }) => hash).sort(),
    ...(signerKeyFile ? { signerKeyFile } : {}),
  };
  try {
    const lock = options.lock ?? metadataLock(await repo.retentionState(), repo.retentionClock.retentionBaseMs());
    const written = await putAuditEntry(repo.store, entry, repo.signer, {
      retainUntilMs: lock.untilMs,
      mode: lock.mode,
    });
    await repo.store.protect([written.name], lock);
    if (repo.owner) {
      // Sealed after every operation of a full key, so removing the newest entry is detected: the
      // checkpoint names it as a head. (Write-only keys and witnesses cannot sign one; their entries
      // are covered from the next full-key operation on.) A vault token that may not read the log
      // cannot seal it; a maintainer's prune will.
      await sealAfter(repo.owner, written, lock).catch((error) => {
        if (!isAmberError(error, 'ROLE_FORBIDDEN')) throw error;
      });
    }
    return written;
  } catch (error) {
    if (!(error instanceof AmberError)) throw error;
    // The operation itself is done: say so, so that nobody repeats it (a second backup, a second hold).
    throw new AmberError(
      error.code,
      `${event.action} ${event.target.slice(0, 16)} took effect, but its audit entry could not be written: ${error.message}`,
      {
        cause: error,
        hint: 'fix the cause, then check the log with `amber audit verify`; the operation need not be repeated',
      },
    );
  }
}

const keyFileBytes = new WeakMap<UnlockedKey, Promise<string | undefined>>();

/**
 * A write-only key's entries carry its own key file (base64), which the owner signed: a reader that
 * no longer finds that file under keys/ (root removed it) can still tell a certified writer's entry
 * from junk, and say which key file is missing (docs/format.md §16.8). Full keys sign with the owner
 * key, whose entries need no certificate.
 */
function ownKeyFile(repo: Repository): Promise<string | undefined> {
  if (repo.key.role !== 'write-only' || repo.key.signer.keyId === repo.authority.ownerKeyId)
    return Promise.resolve(undefined);
  let bytes = keyFileBytes.get(repo.key);
  if (!bytes) {
    const name = repo.keyFiles.find(({ info }) => info.keyId === repo.key.keyId)?.name;
    bytes =
      name === undefined
        ? Promise.resolve(undefined)
        : repo.store.get(name).then((got) => asBuffer(got).toString('base64'));
    keyFileBytes.set(repo.key, bytes);
  }
  return bytes;
}

/** A key the repository's own records name: a certified writer whose entries carry its key file, or a `key.add` entry. */
export interface NamedKey {
  keyId: KeyId;
  /** Its key file's object name, when the record gives it (`key.add` entries before this field name only the id). */
  keyFile?: string;
  /** The (first) audit entry that names it. */
  namedBy: string;
  how: 'key.add' | 'signed with it';
}

/**
 * An entry whose signer is no key in keys/, but that carries an owner-signed key file, pinned to this
 * config, for exactly that signer, and whose signature that key file's public key verifies: written by
 * a certified writer whose key file has since gone. Undefined for anything else (junk stays junk).
 */
async function readCertifiedEntry(
  view: RepositoryView,
  name: string,
): Promise<{ loaded: LoadedEntry; key: NamedKey } | undefined> {
  try {
    const bytes = asBuffer(await view.store.get(name));
    if (hashOfName(name) !== sha256Hex(bytes)) return undefined;
    const envelope = decodeSignedRecord('audit', bytes, name);
    const claimed = parseJsonPayload<{ signerKeyFile?: unknown }>(envelope, name)?.signerKeyFile;
    if (typeof claimed !== 'string') return undefined;
    const certificate = Buffer.from(claimed, 'base64');
    const keyFile = objectName('keys', sha256Hex(certificate));
    const record = decodeSignedRecord('key', certificate, keyFile);
    const ownerKey = view.authority.ownerKeyFor(record.signerKeyId);
    if (!ownerKey || !hasValidSignature('key', record, ownerKey)) return undefined;
    const info = parseJsonPayload<KeyFileInfo>(record, keyFile);
    if (info?.configHash !== view.configHash || info.keyId !== envelope.signerKeyId || info.role !== 'write-only')
      return undefined;
    const publicKey = Buffer.from(info.signingPublicKey, 'hex');
    const loaded = await readAuditEntry(view.store, name, (keyId) => (keyId === info.keyId ? publicKey : undefined));
    return { loaded, key: { keyId: info.keyId, keyFile, namedBy: name, how: 'signed with it' } };
  } catch (error) {
    if (isAmberError(error)) return undefined;
    throw error;
  }
}

/**
 * Keys that the log's entries name but whose key file keys/ no longer holds: a writer certified by
 * the key file its entries carry, and every key an owner-signed `key.add` entry records. Nothing
 * Amber does removes a key file, so each is a removal behind Amber's back (§16.8).
 */
export function missingKeys(
  view: RepositoryView,
  log: Pick<AuditLog, 'entries' | 'certifiedKeys'>,
  counts: (name: string) => boolean = () => true,
): NamedKey[] {
  const present = new Set(view.keyFiles.map(({ info }) => info.keyId as string));
  const presentNames = new Set(view.keyFiles.map(({ name }) => name));
  const missing = new Map<string, NamedKey>();
  const note = (key: NamedKey) => {
    const known = missing.get(key.keyId);
    if (!known) missing.set(key.keyId, key);
    else if (!known.keyFile && key.keyFile) known.keyFile = key.keyFile;
  };
  for (const { name, entry, signerKeyId } of log.entries) {
    if (
      !counts(name) ||
      entry.action !== 'key.add' ||
      signerKeyId !== view.authority.ownerKeyId ||
      !/^[0-9a-f]{64}$/.test(entry.target)
    )
      continue;
    const keyFile =
      typeof entry.details.keyFile === 'string' && /^keys\/[0-9a-f]{64}$/.test(entry.details.keyFile)
        ? entry.details.keyFile
        : undefined;
    if (present.has(entry.target) && (!keyFile || presentNames.has(keyFile))) continue;
    note({ keyId: asKeyId(entry.target), keyFile, namedBy: name, how: 'key.add' });
  }
  for (const key of log.certifiedKeys.values()) if (counts(key.namedBy) && !present.has(key.keyId)) note({ ...key });
  return [...missing.values()];
}

/** What to tell the operator about a key the records name whose key file is gone. */
export function describeMissingKey(key: NamedKey): string {
  const file = key.keyFile ?? 'its key file';
  const named =
    key.how === 'key.add'
      ? `the owner's key.add entry ${key.namedBy} records it`
      : `the audit entry ${key.namedBy} was signed with it and carries its owner-signed key file`;
  return (
    `the key file ${key.keyFile ? `${key.keyFile} ` : ''}of key ${key.keyId} is missing from the store, but ${named}: ` +
    'everything that key signed (its snapshots, grants and audit entries) now reads as unauthorised. ' +
    `Put ${file} back from an isolated copy of this repository (the same bytes: its name is their hash${key.keyFile ? '' : `; it is the key file whose keyId is ${key.keyId}`}), and find out who removed it`
  );
}

/**
 * The entries the next one follows: those no other entry names, among the valid entries within
 * HEAD_WINDOW levels of the newest valid one. Names alone are never trusted — a forged or damaged
 * entry with a huge sequence number must not push honest entries out of the chain. A vault writer
 * token, which may list the log but not read it, follows every entry of the newest level.
 */
async function currentHeads(repo: AuditAuthor): Promise<{ seq: number; hash: string }[]> {
  const problems: RecordProblem[] = [];
  const names = await listAuditNames(repo.store, problems);
  // The policy links the operation's retention state holds already: an append reads nothing twice.
  const signers = await auditSigners(repo, (await repo.retentionState()).policyLinks);
  const valid: LoadedEntry[] = [];
  try {
    for (const { name, seq } of names.reverse()) {
      if (valid.length > 0 && seq <= valid[0].entry.seq - HEAD_WINDOW) break;
      valid.push(...(await readAuditEntries(repo.store, [name], signers, problems, repo.recordCache)));
    }
  } catch (error) {
    if (!isAmberError(error, 'ROLE_FORBIDDEN')) throw error;
    const topSeq = names[0]?.seq ?? 0;
    return names.filter(({ seq }) => seq === topSeq);
  }
  return headsOf(valid).map(({ entry, hash }) => ({ seq: entry.seq, hash }));
}

export interface AuditLog {
  entries: LoadedEntry[];
  /** Writers no key file in keys/ certifies whose entries carry their owner-signed key file, by key id. */
  certifiedKeys: Map<KeyId, NamedKey>;
  /** Who a signer is: owner, writer, witness or approver NAME. */
  describe(keyId: KeyId): string;
  checkpoints: LoadedCheckpoint[];
  /** Records that could not be read or are not signed by a key with the authority. */
  problems: RecordProblem[];
}

/** Every entry and checkpoint, in sequence order; needs no data key. */
export async function readAuditLog(view: RepositoryView): Promise<AuditLog> {
  const { entries, certifiedKeys, problems, describe } = await readEntries(view);
  const checkpoints = await readAuditCheckpoints(view.store, (keyId) => view.authority.ownerKeyFor(keyId), problems);
  return { entries, certifiedKeys, checkpoints, problems, describe };
}

async function readEntries(view: RepositoryView): Promise<Omit<AuditLog, 'checkpoints'>> {
  const found: RecordProblem[] = [];
  const names = await listAuditNames(view.store, found);
  const signers = await auditSigners(view);
  const entries = await readAuditEntries(
    view.store,
    names.map(({ name }) => name),
    signers,
    found,
    view.recordCache,
  );
  // An entry of a signer keys/ does not know may be a certified writer's whose key file was removed.
  const certifiedKeys = new Map<KeyId, NamedKey>();
  const problems: RecordProblem[] = [];
  for (const problem of found) {
    const certified =
      problem.code === 'SIGNATURE_INVALID' && problem.signer && !signers(problem.signer, problem.name)
        ? await readCertifiedEntry(view, problem.name)
        : undefined;
    if (!certified) {
      problems.push(problem);
      continue;
    }
    entries.push(certified.loaded);
    if (!certifiedKeys.has(certified.key.keyId)) certifiedKeys.set(certified.key.keyId, certified.key);
  }
  if (certifiedKeys.size > 0) entries.sort((a, b) => a.entry.seq - b.entry.seq || (a.name < b.name ? -1 : 1));
  const describe = (keyId: KeyId) =>
    certifiedKeys.has(keyId) ? `writer ${keyId.slice(0, 8)} (key file missing)` : signers.describe(keyId);
  return { entries, certifiedKeys, problems, describe };
}

export interface AuditVerification {
  entries: number;
  heads: string[];
  checkpoint: { name: string; seq: number; entries: number } | null;
  problems: ChainProblem[];
  /** The first bad entry (lowest sequence number), the one to look at first. */
  firstBad: ChainProblem | null;
  /**
   * Objects under audit/ and checkpoints/ that no key with the authority wrote (their bytes match
   * their names, so no damage made them): not part of the log, reported, and no problem of it.
   */
  ignored: ChainProblem[];
  /** Keys the valid chain names whose key file is gone; each is also one of `problems`. */
  missingKeys: NamedKey[];
}

/** `log` when the caller has read it already (it must be read from the store, not the local cache). */
export async function verifyAudit(view: RepositoryView, log?: AuditLog): Promise<AuditVerification> {
  // Verification reads every entry from the store itself, never from the local cache.
  log ??= await readAuditLog({ ...view, recordCache: undefined });
  const revoked = new Map(view.revocations.map(({ keyId, revokedAt }) => [keyId as KeyId, { revokedAt }]));
  const chain = checkChain(log.entries, log.checkpoints, { repositoryId: view.config.repositoryId, revoked });
  const located = log.problems.map(({ name, problem, code }) => ({ seq: seqOfName(name), name, problem, code }));
  // Anyone who may write to the store can add an object; only a real entry missing or altered is tampering.
  const ignored = located
    .filter(({ code }) => code === 'SIGNATURE_INVALID')
    .map(({ seq, name, problem }) => ({ seq, name, problem }));
  const unreadable = located
    .filter(({ code }) => code !== 'SIGNATURE_INVALID')
    .map(({ seq, name, problem }) => ({ seq, name, problem }));
  // Only entries of the real chain count as records of a key: not one that is itself tampering.
  const bad = new Set(chain.problems.map(({ name }) => name));
  const missing = missingKeys(view, log, (name) => !bad.has(name));
  const missingProblems = missing.map((key) => ({
    seq: seqOfName(key.namedBy),
    name: key.namedBy,
    problem: describeMissingKey(key),
  }));
  const problems = [...unreadable, ...chain.problems, ...missingProblems].sort(
    (a, b) => a.seq - b.seq || (a.name < b.name ? -1 : 1),
  );
  const checkpoint = chain.checkpoint;
  return {
    entries: chain.entries,
    heads: chain.heads.map(({ name }) => name),
    checkpoint: checkpoint
      ? { name: checkpoint.name, seq: checkpoint.checkpoint.seq, entries: checkpoint.checkpoint.entries }
      : null,
    problems,
    firstBad: problems[0] ?? null,
    ignored,
    missingKeys: missing,
  };
}

const seqOfName = (name: string) => Number(/^(?:audit|checkpoints)\/(\d{12})-/.exec(name)?.[1] ?? 0);

/**
 * The checkpoint after an entry this owner just appended. When the newest checkpoint sealed exactly
 * the heads the entry follows, the entry is the one new head and the count grows by one: nothing
 * else need be read, so sealing after every operation costs the same however long the log is.
 * Otherwise (another client appended meanwhile, or no checkpoint yet) the whole log is counted.
 */
async function sealAfter(repo: Operation, written: LoadedEntry, lock: ObjectLock): Promise<void> {
  const before = written.entry.seq - 1;
  const top = await readAuditCheckpoints(
    repo.store,
    (keyId) => repo.authority.ownerKeyFor(keyId),
    [],
    (name) => seqOfName(name) === before,
  );
  const previous = [...written.entry.previous].sort().join();
  const sealed = top.find(({ checkpoint }) => [...checkpoint.heads].sort().join() === previous);
  if (!sealed || written.entry.previous.length === 0) {
    await writeCheckpoint(repo, { lock });
    return;
  }
  const checkpoint = {
    repository: repo.config.repositoryId,
    time: nowIso(repo.clock),
    seq: written.entry.seq,
    heads: [written.hash],
    entries: sealed.checkpoint.entries + 1,
  };
  const name = await putAuditCheckpoint(repo.store, checkpoint, repo.key.signer, {
    retainUntilMs: lock.untilMs,
    mode: lock.mode,
  });
  await repo.store.protect([name], lock);
}

/**
 * Signs the log as it stands: its heads and how many entries lie behind them. Only the owner key
 * signs checkpoints; entries removed behind one are then detected even if every later one is gone.
 */
export async function writeCheckpoint(
  repo: Operation,
  options: { lock?: ObjectLock } = {},
): Promise<LoadedCheckpoint['checkpoint'] & { name: string }> {
  if (repo.key.role !== 'full') {
    throw new AmberError('WRITE_ONLY_KEY', 'audit checkpoints are signed with the owner key', {
      hint: 'run this with a full-access key',
    });
  }
  // Only the entries: earlier checkpoints do not change what this one says.
  const log = await readEntries(repo);
  const heads = headsOf(log.entries);
  const byHash = new Map(log.entries.map((loaded) => [loaded.hash, loaded]));
  const checkpoint = {
    repository: repo.config.repositoryId,
    time: nowIso(repo.clock),
    seq: Math.max(0, ...heads.map(({ entry }) => entry.seq)),
    heads: heads.map(({ hash }) => hash).sort(),
    entries: ancestorsOf(
      heads.map(({ hash }) => hash),
      byHash,
    ).size,
  };
  const lock = options.lock ?? metadataLock(await repo.retentionState(), repo.retentionClock.retentionBaseMs());
  const name = await putAuditCheckpoint(repo.store, checkpoint, repo.key.signer, {
    retainUntilMs: lock.untilMs,
    mode: lock.mode,
  });
  await repo.store.protect([name], lock);
  return { ...checkpoint, name };
}

export interface ChainProblem {
  /** The entry's sequence number (from its name when it could not be read). */
  seq: number;
  name: string;
  problem: string;
}

export interface ChainReport {
  entries: number;
  heads: LoadedEntry[];
  /** The checkpoint the log was checked against (the latest valid one), if any. */
  checkpoint?: LoadedCheckpoint;
  problems: ChainProblem[];
}

/** Entries no other entry names as previous: where the next append continues (several = a fork). */
export function headsOf(entries: readonly LoadedEntry[]): LoadedEntry[] {
  const named = new Set(entries.flatMap(({ entry }) => entry.previous));
  return entries.filter(({ hash }) => !named.has(hash));
}

/** The entries `heads` lead back to (themselves included); hashes with no entry are reported. */
export function ancestorsOf(
  heads: readonly string[],
  byHash: ReadonlyMap<string, LoadedEntry>,
  missing?: (hash: string, from?: LoadedEntry) => void,
): Set<string> {
  const seen = new Set<string>();
  const stack: { hash: string; from?: LoadedEntry }[] = heads.map((hash) => ({ hash }));
  while (stack.length > 0) {
    const { hash, from } = stack.pop()!;
    if (seen.has(hash)) continue;
    const loaded = byHash.get(hash);
    if (!loaded) {
      missing?.(hash, from);
      continue;
    }
    seen.add(hash);
    for (const previous of loaded.entry.previous) stack.push({ hash: previous, from: loaded });
  }
  return seen;
}

export interface ChainContext {
  repositoryId: string;
  /** Keys the owner revoked: entries they signed after the revocation's own entry are reported. */
  revoked: ReadonlyMap<KeyId, { revokedAt: string }>;
}

export function checkChain(
  entries: readonly LoadedEntry[],
  checkpoints: readonly LoadedCheckpoint[],
  context: ChainContext,
): ChainReport {
  const problems: ChainProblem[] = [];
  const report = (loaded: { name: string; entry?: { seq: number }; seq?: number }, problem: string) =>
    problems.push({ seq: loaded.entry?.seq ?? loaded.seq ?? 0, name: loaded.name, problem });
  const byHash = new Map(entries.map((loaded) => [loaded.hash, loaded]));

  for (const loaded of entries) {
    const { entry } = loaded;
    if (entry.repository !== context.repositoryId)
      report(loaded, `belongs to repository ${entry.repository}, not this one (copied in)`);
    const previous = entry.previous.map((hash) => byHash.get(hash));
    previous.forEach((found, i) => {
      if (!found) report(loaded, `follows entry ${entry.previous[i].slice(0, 12)}, which is missing (removed)`);
    });
    if (entry.previous.length === 0 && entry.seq !== 1)
      report(loaded, `entry ${entry.seq} names no previous entry (inserted)`);
    const known = previous.filter((found) => found !== undefined);
    if (known.length === entry.previous.length && entry.previous.length > 0) {
      const expected = 1 + Math.max(...known.map((found) => found.entry.seq));
      if (entry.seq !== expected)
        report(loaded, `has sequence number ${entry.seq} but follows entry ${expected - 1} (reordered or inserted)`);
    }
  }
  checkRevokedSigners(entries, context, report);

  // Of the checkpoints at the highest level, the one that saw most: two full keys finishing at once
  // each seal the log (one follows every full-key operation), and the later one saw both entries.
  const top = checkpoints.at(-1)?.checkpoint.seq;
  const checkpoint = checkpoints
    .filter(({ checkpoint: { seq } }) => seq === top)
    .sort((a, b) => b.checkpoint.entries - a.checkpoint.entries)[0];
  if (checkpoint) {
    const { heads, entries: count, seq } = checkpoint.checkpoint;
    // Behind a missing entry the walk cannot go on: what lies below it is not blamed for being unreachable.
    let blindBelowSeq = 0;
    const behind = ancestorsOf(heads, byHash, (hash, from) => {
      if (!from)
        report(
          { name: checkpoint.name, seq },
          `the checkpoint names head ${hash.slice(0, 12)}, which is missing (log truncated)`,
        );
      blindBelowSeq = Math.max(blindBelowSeq, from?.entry.seq ?? seq + 1);
    });
    if (behind.size !== count) {
      report(
        { name: checkpoint.name, seq },
        `the checkpoint counts ${count} entries behind it, ${behind.size} found (entries removed or inserted)`,
      );
    }
    // An entry at the checkpoint's own level that it does not cover was appended while it was being
    // written (a checkpoint follows every full-key operation, so two clients often meet there): that
    // is a fork at the top, which the next append merges, not history rewritten. Below it, it is.
    for (const loaded of entries) {
      if (loaded.entry.seq < seq && loaded.entry.seq >= blindBelowSeq && !behind.has(loaded.hash)) {
        report(loaded, `is not part of the log signed at checkpoint ${seq} (inserted later, or a fork never merged)`);
      }
    }
    if (checkpoint.checkpoint.repository !== context.repositoryId)
      report({ name: checkpoint.name, seq }, 'the checkpoint belongs to another repository');
  }
  problems.sort((a, b) => a.seq - b.seq || (a.name < b.name ? -1 : 1));
  return { entries: entries.length, heads: headsOf(entries), checkpoint, problems };
}

/** An entry a revoked key signed after the entry that revoked it (or, without one, after the revocation time). */
function checkRevokedSigners(
  entries: readonly LoadedEntry[],
  context: ChainContext,
  report: (loaded: LoadedEntry, problem: string) => void,
): void {
  if (context.revoked.size === 0) return;
  const revokedAtSeq = new Map<string, number>();
  for (const { entry } of entries) {
    if (entry.action === 'key.revoke' && isHexId(entry.target) && context.revoked.has(asKeyId(entry.target))) {
      revokedAtSeq.set(entry.target, Math.min(revokedAtSeq.get(entry.target) ?? Infinity, entry.seq));
    }
  }
  for (const loaded of entries) {
    const revocation = context.revoked.get(loaded.signerKeyId);
    if (!revocation) continue;
    const atSeq = revokedAtSeq.get(loaded.signerKeyId);
    const late =
      atSeq !== undefined ? loaded.entry.seq > atSeq : Date.parse(loaded.entry.time) > Date.parse(revocation.revokedAt);
    if (late) report(loaded, `is signed by key ${loaded.signerKeyId.slice(0, 8)} after its revocation`);
  }
}
