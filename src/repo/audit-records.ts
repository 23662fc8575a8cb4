// The audit log's objects: entries (one per state-changing operation) and checkpoints, both signed,
// plaintext records so that an auditor can read and check them without any data key. An entry is
// named by its sequence number and the hash of its bytes and names the hash(es) of the head(s) its
// writer saw, so the log is a hash DAG that concurrent writers fork and the next append merges.
import { AmberError, isAmberError } from '../core/errors.ts';
import type { KeyId } from '../core/ids.ts';
import { sha256Hex } from '../crypto/index.ts';
import type { PutOptions, Store } from '../storage/store.ts';
import { parseSequencedName, PREFIX, sequencedName } from './layout.ts';
import type { RecordCache } from './record-cache.ts';
import {
  claimedSigner,
  isBadRecord,
  readCheckedRecord,
  readRecord,
  type RecordProblem,
  type SignerLookup,
} from './records.ts';
import { encodeSignedRecord, jsonBytes, parseJsonPayload, type Signer } from './signed-record.ts';

export interface AuditEvent {
  /** What happened, e.g. `backup`, `lock.extend`, `hold.add`, `prune.delete`. */
  action: string;
  /** What it happened to: a snapshot id, a key id, a request id, "repository", … */
  target: string;
  details: Record<string, unknown>;
}

export interface AuditEntry extends AuditEvent {
  repository: string;
  seq: number;
  time: string;
  /** Who did it, as they named themselves (user@host, approver name); the signature says with which key. */
  actor: string;
  /** Hashes of the heads the writer saw: one normally, several when it merges a fork, none for the first. */
  previous: string[];
  [unknownField: string]: unknown;
}

/** A signed statement that the log had these heads and this many entries behind them. */
export interface AuditCheckpoint {
  repository: string;
  time: string;
  seq: number;
  heads: string[];
  entries: number;
  [unknownField: string]: unknown;
}

export interface LoadedEntry {
  name: string;
  hash: string;
  entry: AuditEntry;
  signerKeyId: KeyId;
}

export interface LoadedCheckpoint {
  name: string;
  checkpoint: AuditCheckpoint;
  signerKeyId: KeyId;
}

const isTime = (value: unknown) => typeof value === 'string' && !Number.isNaN(Date.parse(value));
const isHashList = (value: unknown): value is string[] =>
  Array.isArray(value) && value.every((item) => typeof item === 'string' && /^[0-9a-f]{64}$/.test(item));

export function isEntry(e: AuditEntry): boolean {
  return (
    typeof e.repository === 'string' &&
    Number.isSafeInteger(e.seq) &&
    e.seq >= 1 &&
    isTime(e.time) &&
    typeof e.actor === 'string' &&
    typeof e.action === 'string' &&
    typeof e.target === 'string' &&
    e.details !== null &&
    typeof e.details === 'object' &&
    isHashList(e.previous)
  );
}

export function isCheckpoint(c: AuditCheckpoint): boolean {
  return (
    typeof c.repository === 'string' &&
    isTime(c.time) &&
    Number.isSafeInteger(c.seq) &&
    isHashList(c.heads) &&
    Number.isSafeInteger(c.entries) &&
    c.entries >= 0
  );
}

export async function putAuditEntry(
  store: Store,
  entry: AuditEntry,
  signer: Signer,
  options?: PutOptions,
): Promise<LoadedEntry> {
  const bytes = encodeSignedRecord('audit', jsonBytes(entry), signer);
  const hash = sha256Hex(bytes);
  const name = sequencedName('audit', entry.seq, hash);
  try {
    await store.put(name, bytes, options);
  } catch (error) {
    // The name is the hash of the bytes: an existing object is this very entry, logged twice in one millisecond.
    if (!isAmberError(error, 'OBJECT_EXISTS')) throw error;
  }
  return { name, hash, entry, signerKeyId: signer.keyId };
}

export async function putAuditCheckpoint(
  store: Store,
  checkpoint: AuditCheckpoint,
  signer: Signer,
  options?: PutOptions,
): Promise<string> {
  const bytes = encodeSignedRecord('checkpoint', jsonBytes(checkpoint), signer);
  const name = sequencedName('checkpoints', checkpoint.seq, sha256Hex(bytes));
  await store.put(name, bytes, options);
  return name;
}

/** Names of the log's entries with their sequence numbers, in order; other names under audit/ are problems. */
export async function listAuditNames(
  store: Store,
  problems: RecordProblem[],
): Promise<{ name: string; seq: number; hash: string }[]> {
  const names: { name: string; seq: number; hash: string }[] = [];
  for await (const { name } of store.list(PREFIX.audit)) {
    const parsed = parseSequencedName('audit', name);
    if (parsed) names.push({ name, ...parsed });
    // No author with the authority writes such a name: ignored, like an unsigned entry.
    else
      problems.push({
        name,
        problem: `${name} is not an audit entry name, so no key with the authority wrote it`,
        code: 'SIGNATURE_INVALID',
      });
  }
  return names.sort((a, b) => a.seq - b.seq || (a.hash < b.hash ? -1 : 1));
}

/** One entry, checked against its name (bytes, sequence number) and its signer's authority. */
export async function readAuditEntry(
  store: Store,
  name: string,
  signers: SignerLookup,
  cache?: RecordCache,
): Promise<LoadedEntry> {
  const record = await readCheckedRecord(store, name, 'audit', signers, cache);
  const entry = parseJsonPayload<AuditEntry>(record, name);
  if (entry === null || typeof entry !== 'object' || !isEntry(entry)) {
    throw new AmberError('OBJECT_CORRUPT', `${name} is signed but not a well-formed audit entry`);
  }
  const parsed = parseSequencedName('audit', name)!;
  if (entry.seq !== parsed.seq)
    throw new AmberError('OBJECT_CORRUPT', `${name} says it is entry ${entry.seq} (renamed)`);
  return { name, hash: parsed.hash, entry, signerKeyId: record.signerKeyId };
}

/** Reads entries; bad ones land in `problems`, anything but a bad record is thrown. */
export async function readAuditEntries(
  store: Store,
  names: readonly string[],
  signers: SignerLookup,
  problems: RecordProblem[],
  cache?: RecordCache,
): Promise<LoadedEntry[]> {
  const loaded: LoadedEntry[] = [];
  for (const name of names) {
    try {
      loaded.push(await readAuditEntry(store, name, signers, cache));
    } catch (error) {
      if (!isBadRecord(error)) throw error;
      const signer = claimedSigner(error);
      problems.push({ name, problem: error.message, code: error.code, ...(signer ? { signer } : {}) });
    }
  }
  return loaded;
}

export async function readAuditCheckpoints(
  store: Store,
  signers: SignerLookup,
  problems: RecordProblem[],
  only?: (name: string) => boolean,
): Promise<LoadedCheckpoint[]> {
  const loaded: LoadedCheckpoint[] = [];
  for await (const { name } of store.list(PREFIX.checkpoints)) {
    if (only && !only(name)) continue;
    try {
      const record = await readRecord(store, name, 'checkpoint', signers);
      const checkpoint = parseJsonPayload<AuditCheckpoint>(record, name);
      if (checkpoint === null || typeof checkpoint !== 'object' || !isCheckpoint(checkpoint)) {
        throw new AmberError('OBJECT_CORRUPT', `${name} is signed but not a well-formed audit checkpoint`);
      }
      if (checkpoint.seq !== parseSequencedName('checkpoints', name)?.seq) {
        throw new AmberError('OBJECT_CORRUPT', `${name} says it checkpoints entry ${checkpoint.seq} (renamed)`);
      }
      loaded.push({ name, checkpoint, signerKeyId: record.signerKeyId });
    } catch (error) {
      if (!isBadRecord(error)) throw error;
      problems.push({ name, problem: error.message, code: error.code });
    }
  }
  return loaded.sort((a, b) => a.checkpoint.seq - b.checkpoint.seq || (a.name < b.name ? -1 : 1));
}
