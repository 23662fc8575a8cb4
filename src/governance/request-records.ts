// Where requests, approvers' decisions and executions live. A request is stored under its id (the
// hash of its canonical JSON) and signed by the key that opened the repository; a decision is the
// approver's own signed JSON, stored as is under the hash of its bytes; an execution is stored under
// the request's id, so a request can execute only once whoever races to execute it.
import { AmberError, isAmberError } from '../core/errors.ts';
import { canonicalJson } from '../core/canonical-json.ts';
import { sha256Hex } from '../crypto/index.ts';
import { asBuffer, type PutOptions, type Store } from '../storage/store.ts';
import { isSignedDecision, requestBytes, requestId, type ApprovalRequest, type SignedDecision } from './requests.ts';
import { hashOfName, objectName, PREFIX } from '../repo/layout.ts';
import { isBadRecord, type RecordProblem } from '../repo/records.ts';
import type { Repository, RepositoryView } from '../repo/repository.ts';
import { decodeSignedRecord, encodeSignedRecord, hasValidSignature, jsonBytes, parseJsonPayload, type Signer } from '../repo/signed-record.ts';

export interface Execution {
  request: string;
  time: string;
  /** Object names of the decisions that made the quorum. */
  decisions: string[];
  [unknownField: string]: unknown;
}

export interface StoredRequest {
  id: string;
  request: ApprovalRequest;
  writtenMs?: number;
}

export interface StoredDecision {
  name: string;
  decision: SignedDecision;
  writtenMs?: number;
}

export async function putRequest(repo: Repository, request: ApprovalRequest, options?: PutOptions): Promise<string> {
  const id = requestId(request);
  await repo.store.put(objectName('requests', id), encodeSignedRecord('request', requestBytes(request), repo.key.signer), options);
  return id;
}

export async function putDecision(store: Store, decision: SignedDecision, options?: PutOptions): Promise<string> {
  const bytes = Buffer.from(`${canonicalJson(decision)}\n`, 'utf8');
  const name = objectName('decisions', sha256Hex(bytes));
  try {
    await store.put(name, bytes, options);
  } catch (error) {
    if (!isAmberError(error, 'OBJECT_EXISTS')) throw error; // the same signed decision handed in twice
  }
  return name;
}

/** Records the execution; false when another process executed the request first. */
/** Signed by whoever completed the quorum: a repository key or the approver's own. */
export async function putExecution(store: Store, signer: Signer, execution: Execution, options?: PutOptions): Promise<boolean> {
  try {
    await store.put(objectName('executions', execution.request), encodeSignedRecord('execution', jsonBytes(execution), signer), options);
    return true;
  } catch (error) {
    if (isAmberError(error, 'OBJECT_EXISTS')) return false;
    throw error;
  }
}

/** Signed by a key the owner certified and not revoked (or an object its revocation accepts). */
const signerOf = (view: RepositoryView) => (keyId: Parameters<RepositoryView['authority']['signingKeyFor']>[0], name: string) => view.authority.signingKeyFor(keyId, name);

export async function loadRequests(view: RepositoryView, problems: RecordProblem[]): Promise<StoredRequest[]> {
  const found: StoredRequest[] = [];
  for await (const { name, writtenMs } of view.store.list(PREFIX.requests)) {
    try {
      const record = decodeSignedRecord('request', asBuffer(await view.store.get(name)), name);
      const key = signerOf(view)(record.signerKeyId, name);
      if (!key || !hasValidSignature('request', record, key)) throw new AmberError('SIGNATURE_INVALID', `${name} is not signed by a key of this repository`);
      const request = parseJsonPayload<ApprovalRequest>(record, name);
      const id = hashOfName(name);
      if (id !== sha256Hex(record.payload) || canonicalJson(request) !== record.payload.toString('utf8') || id !== requestId(request)) {
        throw new AmberError('OBJECT_CORRUPT', `${name} does not hold the request its id names (altered)`);
      }
      found.push({ id, request, writtenMs });
    } catch (error) {
      if (!isBadRecord(error)) throw error;
      problems.push({ name, problem: error.message, code: error.code });
    }
  }
  return found;
}

/** Decisions in the order the store received them (first valid decision per approver counts). */
export async function loadDecisions(view: RepositoryView, problems: RecordProblem[]): Promise<StoredDecision[]> {
  const found: StoredDecision[] = [];
  for await (const { name, writtenMs } of view.store.list(PREFIX.decisions)) {
    const bytes = asBuffer(await view.store.get(name));
    let decision: unknown;
    try {
      decision = JSON.parse(bytes.toString('utf8'));
    } catch {
      decision = undefined;
    }
    if (hashOfName(name) !== sha256Hex(bytes) || !isSignedDecision(decision)) {
      problems.push({ name, problem: `${name} is not a well-formed decision matching its name`, code: 'OBJECT_CORRUPT' });
      continue;
    }
    found.push({ name, decision, writtenMs });
  }
  return found.sort((a, b) => (a.writtenMs ?? 0) - (b.writtenMs ?? 0) || (a.name < b.name ? -1 : 1));
}
