// The plaintext, signed records that carry retention where a store keeps no dates of its own (fs,
// the vault): grants, legal holds, forget marks and condemn notices. Their payload is JSON in the
// clear so that an enforcer can read it without any repository key; the signature says who wrote it.
// Grants may be written by any authorised writer (they only ever extend); holds, forgets and
// condemns only by the owner key. Anything else is ignored and reported (see readRecords).
import { AmberError, isAmberError } from '../core/errors.ts';
import { sha256Hex } from '../crypto/index.ts';
import type { PutOptions, RetentionMode } from '../storage/store.ts';
import { objectName, type PrefixKind } from './layout.ts';
import { isHexId, type SnapshotId } from '../core/ids.ts';
import type { ObjectKind } from './object-header.ts';
import { readRecords, type RecordProblem, type SignerLookup } from './records.ts';
import type { Repository, RepositoryView } from './repository.ts';
import { encodeSignedRecord, jsonBytes, parseJsonPayload } from './signed-record.ts';

export interface GrantEntry {
  mode: RetentionMode;
  until: string;
  objects: string[];
}

/** Retention for objects: each entry holds its objects until `until` in `mode`. */
export interface Grant {
  time: string;
  /** The snapshot whose retention this grant raises, or null for objects only. */
  snapshot: SnapshotId | null;
  entries: GrantEntry[];
  [unknownField: string]: unknown;
}

/** A legal hold: the snapshot and everything it needs stay past any retention until released. */
export interface Hold {
  time: string;
  snapshot: SnapshotId;
  reason: string;
  actor: string;
  /** The packs the snapshot needs (and the snapshot itself), so an enforcer without the key (a vault) can keep them. */
  objects?: string[];
  [unknownField: string]: unknown;
}

/** Snapshots the owner has forgotten: no longer listed, restored or kept by prune. */
export interface ForgetMark {
  time: string;
  snapshots: SnapshotId[];
  rule: string;
  [unknownField: string]: unknown;
}

/** Objects a prune found unreferenced and expired; a later prune deletes them after the grace. */
export interface CondemnNotice {
  time: string;
  graceMs: number;
  objects: { name: string; sizeBytes: number }[];
  [unknownField: string]: unknown;
}

interface RecordType<T> {
  prefix: PrefixKind;
  kind: ObjectKind;
  ownerOnly: boolean;
  isValid(value: T): boolean;
}

const isTime = (value: unknown): value is string => typeof value === 'string' && !Number.isNaN(Date.parse(value));
const isStringArray = (value: unknown): value is string[] =>
  Array.isArray(value) && value.every((item) => typeof item === 'string');
const isMode = (value: unknown): value is RetentionMode => value === 'governance' || value === 'compliance';

export const GRANTS: RecordType<Grant> = {
  prefix: 'grants',
  kind: 'grant',
  ownerOnly: false,
  // A grant only ever raises retention, so one whose snapshot field is not an id still counts for its
  // objects (it matches no snapshot): dropping it would drop retention a key with the authority gave.
  isValid: (g) =>
    isTime(g.time) &&
    (g.snapshot === null || typeof g.snapshot === 'string') &&
    Array.isArray(g.entries) &&
    g.entries.every((e) => isMode(e?.mode) && isTime(e.until) && isStringArray(e.objects)),
};
export const HOLDS: RecordType<Hold> = {
  prefix: 'holds',
  kind: 'hold',
  ownerOnly: true,
  isValid: (h) =>
    isTime(h.time) &&
    isHexId(h.snapshot) &&
    typeof h.reason === 'string' &&
    typeof h.actor === 'string' &&
    (h.objects === undefined || isStringArray(h.objects)),
};
export const FORGETS: RecordType<ForgetMark> = {
  prefix: 'forgets',
  kind: 'forget',
  ownerOnly: true,
  isValid: (f) =>
    isTime(f.time) && Array.isArray(f.snapshots) && f.snapshots.every(isHexId) && typeof f.rule === 'string',
};
export const CONDEMNS: RecordType<CondemnNotice> = {
  prefix: 'condemns',
  kind: 'condemn',
  ownerOnly: true,
  isValid: (c) =>
    isTime(c.time) &&
    Number.isSafeInteger(c.graceMs) &&
    c.graceMs >= 0 &&
    Array.isArray(c.objects) &&
    c.objects.every((o) => typeof o?.name === 'string' && Number.isSafeInteger(o.sizeBytes)),
};

export interface Loaded<T> {
  name: string;
  value: T;
  signerKeyId: string;
  writtenMs?: number;
}

/** Signs and stores a record; returns its name. Only the owner key may write owner-only kinds. */
export async function putRecord<T>(
  repo: Repository,
  type: RecordType<T>,
  value: T,
  options?: PutOptions,
): Promise<string> {
  if (type.ownerOnly && repo.key.role !== 'full') {
    throw new AmberError('WRITE_ONLY_KEY', `writing ${type.prefix} records needs a full-access key`, {
      hint: 'run this with the owner passphrase (a full-access key)',
    });
  }
  const bytes = encodeSignedRecord(type.kind, jsonBytes(value), repo.key.signer);
  const name = objectName(type.prefix as Exclude<PrefixKind, 'data'>, sha256Hex(bytes));
  await repo.store.put(name, bytes, options);
  return name;
}

/** Every record of a type that an authorised key signed and that is well formed; the rest land in problems. */
/** Reading needs no key: the vault and auditors read records with a repository view. */
export async function loadRecords<T>(
  repo: RepositoryView,
  type: RecordType<T>,
  problems: RecordProblem[],
): Promise<Loaded<T>[]> {
  const signers: SignerLookup = type.ownerOnly
    ? (keyId) => repo.authority.ownerKeyFor(keyId)
    : (keyId, name) => repo.authority.signingKeyFor(keyId, name);
  const loaded: Loaded<T>[] = [];
  for (const { name, record, writtenMs } of await readRecords(
    repo.store,
    type.prefix,
    type.kind,
    signers,
    problems,
    repo.recordCache,
  )) {
    try {
      const value = parseJsonPayload<T>(record, name);
      if (value === null || typeof value !== 'object' || !type.isValid(value)) {
        throw new AmberError('OBJECT_CORRUPT', `${name} is signed but not a well-formed ${type.kind} record`);
      }
      loaded.push({ name, value, signerKeyId: record.signerKeyId, writtenMs });
    } catch (error) {
      if (!isAmberError(error, 'OBJECT_CORRUPT')) throw error;
      problems.push({ name, problem: error.message, code: error.code });
    }
  }
  return loaded;
}

export interface PolicySettings {
  /** Shortest retention a backup or an extension may ask for; null for none. */
  minRetentionMs: number | null;
  /** Longest retention; null for none. */
  maxRetentionMs: number | null;
  defaultMode: RetentionMode;
  /** Retention of a backup that names none. */
  defaultRetentionMs: number;
  requireCompliance: boolean;
  /** Reused objects are extended to dates rounded up to this step, so each is touched rarely. */
  extendStepMs: number;
  /** Who may approve requests (Ed25519 public keys, hex). Records from before approvers existed have none. */
  approvers?: Approver[];
  /** M: how many distinct approvers a request needs; 0 while there are none. */
  quorum?: number;
}

export interface Approver {
  name: string;
  publicKey: string;
}

/** One link of the policy chain: the whole policy as of `time`, and the link it replaces. */
export interface PolicyRecord {
  time: string;
  previous: string | null;
  settings: PolicySettings;
  /** Set by `policy lock`: until `coolingOffUntil` the lock may be cancelled; after it, only tightening. */
  lock: { at: string; coolingOffUntil: string } | null;
  [unknownField: string]: unknown;
}

const isDuration = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;

export const POLICIES: RecordType<PolicyRecord> = {
  prefix: 'policies',
  kind: 'policy',
  ownerOnly: true,
  isValid: (p) => {
    const s = p.settings;
    return (
      isTime(p.time) &&
      (p.previous === null || typeof p.previous === 'string') &&
      s !== null &&
      typeof s === 'object' &&
      (s.minRetentionMs === null || isDuration(s.minRetentionMs)) &&
      (s.maxRetentionMs === null || isDuration(s.maxRetentionMs)) &&
      isMode(s.defaultMode) &&
      isDuration(s.defaultRetentionMs) &&
      typeof s.requireCompliance === 'boolean' &&
      isDuration(s.extendStepMs) &&
      s.extendStepMs > 0 &&
      (s.approvers === undefined ||
        (Array.isArray(s.approvers) &&
          s.approvers.every((a) => typeof a?.name === 'string' && /^[0-9a-f]{64}$/.test(a.publicKey)))) &&
      (s.quorum === undefined || isDuration(s.quorum)) &&
      (p.lock === null || (typeof p.lock === 'object' && isTime(p.lock.at) && isTime(p.lock.coolingOffUntil)))
    );
  },
};
