// What the vault checks before an uploaded object becomes visible. It holds no data key, so it
// checks what needs none, and refuses everything else: the name must have exactly the layout of its
// kind (layout.ts); the bytes must hash to it (requests and executions: the request they name); every
// signed record must parse, and be signed by a key with the authority for its kind (the owner, a
// certified writer, an approver of the policy for audit entries and executions); a pack's trailer
// must verify; plaintext records must be well formed; a decision must be signed by the approver key
// it names. Junk that no reader would accept would otherwise break verify, audit verify and prune.
import { AmberError, isAmberError } from '../core/errors.ts';
import type { KeyId } from '../core/ids.ts';
import { asPackId } from '../core/ids.ts';
import { sha256Hex } from '../crypto/index.ts';
import { decodeConfig } from '../repo/config.ts';
import { parseObjectName, type PrefixKind } from '../repo/layout.ts';
import type { ObjectKind } from '../repo/object-header.ts';
import { checkPackBytes } from '../repo/pack.ts';
import type { RepositoryView } from '../repo/repository.ts';
import { CONDEMNS, FORGETS, GRANTS, HOLDS, loadRecords, POLICIES } from '../repo/retention-records.ts';
import { decodeSignedRecord, hasValidSignature, keyIdOf, parseJsonPayload } from '../repo/signed-record.ts';
import { isCheckpoint, isEntry, type AuditCheckpoint, type AuditEntry } from '../repo/audit-records.ts';
import { decisionSignatureVerifies, parseSignedDecision } from '../governance/requests.ts';

const mismatch = (name: string, what: string) =>
  new AmberError('OBJECT_CORRUPT', `${name}: ${what}; the object was not stored`, {
    hint: 'names carry the hash of what they name: upload the bytes that belong to this name',
  });

type Signers = 'owner' | 'writer' | 'audit';

/** The record kind under each prefix and who may sign it (docs/format.md §6.8, §18). */
const RECORDS: Partial<Record<PrefixKind, { kind: ObjectKind; signers: Signers; valid?: (value: never) => boolean }>> =
  {
    keys: { kind: 'key', signers: 'owner' },
    epochs: { kind: 'epoch', signers: 'owner' },
    revocations: { kind: 'revocation', signers: 'owner' },
    witnesses: { kind: 'witness', signers: 'owner' },
    policies: { kind: 'policy', signers: 'owner', valid: POLICIES.isValid },
    holds: { kind: 'hold', signers: 'owner', valid: HOLDS.isValid },
    forgets: { kind: 'forget', signers: 'owner', valid: FORGETS.isValid },
    condemns: { kind: 'condemn', signers: 'owner', valid: CONDEMNS.isValid },
    checkpoints: { kind: 'checkpoint', signers: 'owner', valid: isCheckpoint as (value: never) => boolean },
    index: { kind: 'index', signers: 'writer' },
    snapshots: { kind: 'snapshot', signers: 'writer' },
    grants: { kind: 'grant', signers: 'writer', valid: GRANTS.isValid },
    requests: { kind: 'request', signers: 'writer' },
    audit: { kind: 'audit', signers: 'audit', valid: isEntry as (value: never) => boolean },
    executions: { kind: 'execution', signers: 'audit' },
  };

/** What the checks read from the repository: its view (undefined before `config` exists). */
export interface UploadContext {
  view(): Promise<RepositoryView | undefined>;
}

/** Refuses what does not belong under the name; for a decision, returns the request it decides on. */
export async function checkUpload(
  name: string,
  bytes: Buffer,
  context: UploadContext,
): Promise<{ decidesOn?: string }> {
  const parsed = parseObjectName(name);
  if (!parsed) {
    throw new AmberError(
      'INVALID_OBJECT_NAME',
      `${name} is not an object name of an Amber repository; the object was not stored`,
      {
        hint: 'see docs/format.md §2 for the names: data/<first 2 of H>/<H>, audit/<12-digit seq>-<H>, <prefix>/<H>, config',
      },
    );
  }
  if (parsed.kind === 'config') {
    decodeConfig(bytes, name);
    return {};
  }
  const hash = parsed.hash!;
  if (parsed.kind === 'decisions') {
    if (sha256Hex(bytes) !== hash) throw mismatch(name, 'the bytes do not hash to the name');
    return { decidesOn: checkDecision(name, bytes) };
  }
  if (parsed.kind === 'data') {
    const view = await required(context, name);
    // checkPackBytes checks the hash against the name as well.
    checkPackBytes(bytes, asPackId(hash), (keyId) => view.authority.signingKeyFor(keyId, name), name);
    return {};
  }
  const type = RECORDS[parsed.kind]!;
  const record = decodeSignedRecord(type.kind, bytes, name);
  if (parsed.kind === 'requests') {
    // A request is named by the hash of its canonical JSON, the record's payload.
    if (sha256Hex(record.payload) !== hash) throw mismatch(name, 'the request does not hash to its id');
  } else if (parsed.kind === 'executions') {
    if (parseJsonPayload<{ request?: unknown } | null>(record, name)?.request !== hash)
      throw mismatch(name, 'the execution names another request');
  } else if (record.hash !== hash) {
    throw mismatch(name, 'the bytes do not hash to the name');
  }
  const view = await context.view();
  if (!view) {
    // `init` stores the first epoch and key file before the config that names the owner key.
    if (parsed.kind === 'keys' || parsed.kind === 'epochs') return {};
    throw new AmberError('REPO_NOT_FOUND', `${name} cannot be stored before the repository's config`, {
      hint: 'initialise the repository first (`amber init`)',
    });
  }
  const key = await signerKey(view, type.signers, record.signerKeyId, name);
  if (!key || !hasValidSignature(type.kind, record, key)) {
    throw new AmberError(
      'SIGNATURE_INVALID',
      `${name} is not signed by a key with the authority to write ${type.kind} records (${view.authority.describe(record.signerKeyId)}); the object was not stored`,
      {
        hint:
          type.signers === 'owner'
            ? 'only the owner key (a full-access key) writes these'
            : 'sign it with a key the repository certifies and has not revoked',
      },
    );
  }
  if (type.valid) {
    const value = parseJsonPayload<unknown>(record, name);
    if (value === null || typeof value !== 'object' || Array.isArray(value) || !type.valid(value as never)) {
      throw new AmberError(
        'OBJECT_CORRUPT',
        `${name} is signed but not a well-formed ${type.kind} record; it was not stored`,
      );
    }
    const seq = (value as AuditEntry | AuditCheckpoint).seq;
    if (parsed.seq !== undefined && seq !== parsed.seq) throw mismatch(name, `the record says it is number ${seq}`);
  }
  return {};
}

async function required(context: UploadContext, name: string): Promise<RepositoryView> {
  const view = await context.view();
  if (!view)
    throw new AmberError('REPO_NOT_FOUND', `${name} cannot be stored before the repository's config`, {
      hint: 'initialise the repository first (`amber init`)',
    });
  return view;
}

/** The public key that may sign this record as `keyId`, by the rules of its kind. */
async function signerKey(
  view: RepositoryView,
  signers: Signers,
  keyId: KeyId,
  name: string,
): Promise<Buffer | undefined> {
  if (signers === 'owner') return view.authority.ownerKeyFor(keyId);
  if (signers === 'writer') return view.authority.signingKeyFor(keyId, name);
  // Audit entries and executions: any key the owner certified, a witness, or an approver of the policy.
  const certified = view.authority.certifiedKeyFor(keyId);
  if (certified) return certified;
  for (const { value } of await loadRecords(view, POLICIES, [])) {
    const approver = value.settings.approvers?.find(
      ({ publicKey }) => keyIdOf(Buffer.from(publicKey, 'hex')) === keyId,
    );
    if (approver) return Buffer.from(approver.publicKey, 'hex');
  }
  return undefined;
}

/** Whether the approver named in it signed it (whether that approver counts is for the tally); the request it names. */
function checkDecision(name: string, bytes: Buffer): string {
  const decision = parseSignedDecision(bytes);
  if (decision === undefined) throw mismatch(name, 'it is not a signed decision');
  if (!decisionSignatureVerifies(decision))
    throw new AmberError(
      'SIGNATURE_INVALID',
      `${name}: the decision's signature does not verify with the approver key it names; it was not stored`,
    );
  return decision.request;
}

/** The view for upload checks; undefined while the repository has no config. */
export async function viewOrNothing(open: () => Promise<RepositoryView>): Promise<RepositoryView | undefined> {
  try {
    return await open();
  } catch (error) {
    if (isAmberError(error, 'REPO_NOT_FOUND')) return undefined;
    throw error;
  }
}
