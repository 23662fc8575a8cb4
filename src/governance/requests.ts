// Requests to weaken protection and the approvers' decisions on them. A request's id is the SHA-256
// of its canonical JSON (RFC 8785), which covers the repository, kind, target, parameters, requester,
// times and a nonce; an approver signs a domain-separated message of that id and the decision, so a
// signature can never count for another request, another repository, or the other decision.
//
// Where requests, approvers' decisions and executions live. A request is stored under its id (the
// hash of its canonical JSON) and signed by the key that opened the repository; a decision is the
// approver's own signed JSON, stored as is under the hash of its bytes; an execution is stored under
// the request's id, so a request can execute only once whoever races to execute it.
//
// The requests of a repository and where each stands: the decisions that count under the current
// approver set, and so whether a quorum approved it (its effect is then in force), rejected it, or
// it expired. Retention state reads the approved ones; the request commands read all of them.
import { canonicalJson } from '../core/canonical-json.ts';
import { sha256Hex, verifySignature } from '../crypto/index.ts';
import type { Approver } from '../repo/retention-records.ts';
import { AmberError, isAmberError } from '../core/errors.ts';
import { asBuffer, type PutOptions, type Store } from '../storage/store.ts';
import { hashOfName, objectName, PREFIX } from '../repo/layout.ts';
import { isBadRecord, type RecordProblem } from '../repo/records.ts';
import type { Repository, RepositoryView } from '../repo/repository.ts';
import {
  decodeSignedRecord,
  encodeSignedRecord,
  hasValidSignature,
  jsonBytes,
  parseJsonPayload,
  type Signer,
} from '../repo/signed-record.ts';
import { approverSet, type Policy } from './policy.ts';

export const REQUEST_KINDS = ['unlock', 'shorten', 'release-hold', 'policy-change', 'confirm-clock'] as const;
export type RequestKind = (typeof REQUEST_KINDS)[number];
export type Decision = 'approve' | 'reject';

export interface ApprovalRequest {
  repository: string;
  kind: RequestKind;
  /** A snapshot id (unlock, shorten), a hold's object name (release-hold), "policy" or "clock". */
  target: string;
  parameters: Record<string, unknown>;
  /** Who asked: a name and, when an approver asked (`--as`), their public key, which may then not approve. */
  requester: { name: string; keyId: string; approverKey?: string };
  created: string;
  expires: string;
  nonce: string;
}

/** What an approver hands in: their decision on one request, signed. Also the `--out SIG` file. */
export interface SignedDecision {
  type: 'amber-decision';
  request: string;
  decision: Decision;
  approver: string;
  signature: string;
}

export const requestBytes = (request: ApprovalRequest): Buffer => Buffer.from(canonicalJson(request), 'utf8');
export const requestId = (request: ApprovalRequest): string => sha256Hex(requestBytes(request));

/** The exact bytes an approver signs: "amber/v1/request-decision\0" ‖ id (64 hex) ‖ "\0" ‖ decision. */
export function decisionMessage(id: string, decision: Decision): Buffer {
  return Buffer.from(`amber/v1/request-decision\0${id}\0${decision}`, 'utf8');
}

function isSignedDecision(value: unknown): value is SignedDecision {
  const d = value as SignedDecision;
  return (
    d !== null &&
    typeof d === 'object' &&
    d.type === 'amber-decision' &&
    /^[0-9a-f]{64}$/.test(d.request) &&
    (d.decision === 'approve' || d.decision === 'reject') &&
    /^[0-9a-f]{64}$/.test(d.approver) &&
    typeof d.signature === 'string'
  );
}

/** A signed decision from its JSON (a decisions/ object, a `--out SIG` file); undefined when it is none. */
export function parseSignedDecision(json: string | Uint8Array): SignedDecision | undefined {
  let value: unknown;
  try {
    value = JSON.parse(
      typeof json === 'string' ? json : Buffer.from(json.buffer, json.byteOffset, json.byteLength).toString('utf8'),
    );
  } catch {
    return undefined;
  }
  return isSignedDecision(value) ? value : undefined;
}

/** Whether the approver key a decision names signed it, over the request it names. */
export function decisionSignatureVerifies(decision: SignedDecision): boolean {
  return verifySignature(
    Buffer.from(decision.approver, 'hex'),
    decisionMessage(decision.request, decision.decision),
    Buffer.from(decision.signature, 'base64'),
  );
}

export type RequestStatus = 'pending' | 'executed' | 'rejected' | 'expired';

export interface Tally {
  approvedBy: string[];
  rejectedBy: string[];
  /** Decisions that do not count, each with the reason (logged and shown). */
  refused: { approver: string; decision: Decision; reason: string }[];
  quorumReached: boolean;
  rejected: boolean;
}

/**
 * Counts the decisions that are valid for this request under the current approver set: signed by
 * a registered approver over this request's id, not by the requester, each approver once (their
 * first valid decision; a later change of mind does not count twice).
 */
export function tally(
  id: string,
  requester: ApprovalRequest['requester'],
  decisions: readonly SignedDecision[],
  approvers: readonly Approver[],
  quorum: number,
): Tally {
  const byKey = new Map(approvers.map((approver) => [approver.publicKey, approver]));
  const result: Tally = { approvedBy: [], rejectedBy: [], refused: [], quorumReached: false, rejected: false };
  const decided = new Set<string>();
  for (const decision of decisions) {
    const approver = byKey.get(decision.approver);
    const refuse = (reason: string) =>
      result.refused.push({
        approver: approver?.name ?? decision.approver.slice(0, 16),
        decision: decision.decision,
        reason,
      });
    if (decision.request !== id) refuse('signed for another request');
    else if (!approver) refuse('not a registered approver');
    else if (!decisionSignatureVerifies(decision)) refuse('the signature does not verify');
    else if (requester.approverKey === decision.approver) refuse('the requester cannot decide on their own request');
    else if (decided.has(approver.publicKey)) refuse('this approver has already decided');
    else {
      decided.add(approver.publicKey);
      (decision.decision === 'approve' ? result.approvedBy : result.rejectedBy).push(approver.name);
    }
  }
  result.quorumReached = quorum > 0 && result.approvedBy.length >= quorum;
  result.rejected = quorum > 0 && result.rejectedBy.length >= approvers.length - quorum + 1;
  return result;
}

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
  await repo.store.put(
    objectName('requests', id),
    encodeSignedRecord('request', requestBytes(request), repo.key.signer),
    options,
  );
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
export async function putExecution(
  store: Store,
  signer: Signer,
  execution: Execution,
  options?: PutOptions,
): Promise<boolean> {
  try {
    await store.put(
      objectName('executions', execution.request),
      encodeSignedRecord('execution', jsonBytes(execution), signer),
      options,
    );
    return true;
  } catch (error) {
    if (isAmberError(error, 'OBJECT_EXISTS')) return false;
    throw error;
  }
}

/** Signed by a key the owner certified and not revoked (or an object its revocation accepts). */
const signerOf =
  (view: RepositoryView) => (keyId: Parameters<RepositoryView['authority']['signingKeyFor']>[0], name: string) =>
    view.authority.signingKeyFor(keyId, name);

export async function loadRequests(view: RepositoryView, problems: RecordProblem[]): Promise<StoredRequest[]> {
  const found: StoredRequest[] = [];
  for await (const { name, writtenMs } of view.store.list(PREFIX.requests)) {
    try {
      const record = decodeSignedRecord('request', asBuffer(await view.store.get(name)), name);
      const key = signerOf(view)(record.signerKeyId, name);
      if (!key || !hasValidSignature('request', record, key))
        throw new AmberError('SIGNATURE_INVALID', `${name} is not signed by a key of this repository`);
      const request = parseJsonPayload<ApprovalRequest>(record, name);
      const id = hashOfName(name);
      if (
        id !== sha256Hex(record.payload) ||
        canonicalJson(request) !== record.payload.toString('utf8') ||
        id !== requestId(request)
      ) {
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
    const decision = parseSignedDecision(bytes);
    if (hashOfName(name) !== sha256Hex(bytes) || decision === undefined) {
      problems.push({
        name,
        problem: `${name} is not a well-formed decision matching its name`,
        code: 'OBJECT_CORRUPT',
      });
      continue;
    }
    found.push({ name, decision, writtenMs });
  }
  return found.sort((a, b) => (a.writtenMs ?? 0) - (b.writtenMs ?? 0) || (a.name < b.name ? -1 : 1));
}

export interface RequestView {
  id: string;
  kind: RequestKind;
  target: string;
  parameters: Record<string, unknown>;
  requester: ApprovalRequest['requester'];
  created: string;
  expires: string;
  status: RequestStatus;
  quorum: number;
  approvedBy: string[];
  rejectedBy: string[];
  refused: Tally['refused'];
}

export function requestView(
  id: string,
  request: ApprovalRequest,
  counted: Tally,
  status: RequestStatus,
  quorum: number,
): RequestView {
  const { kind, target, parameters, requester, created, expires } = request;
  return {
    id,
    kind,
    target,
    parameters,
    requester,
    created,
    expires,
    status,
    quorum,
    approvedBy: counted.approvedBy,
    rejectedBy: counted.rejectedBy,
    refused: counted.refused,
  };
}

export interface RequestBook {
  requests: RequestView[];
  /** Requests whose effect is in force: a quorum approved them before they expired. */
  approved: StoredRequest[];
  problems: RecordProblem[];
}

/** Each request with the decisions that count for it (received before it expired). */
async function tallied(repo: RepositoryView, policy: Policy, problems: RecordProblem[]) {
  const { approvers, quorum } = approverSet(policy.settings);
  const [requests, decisions] = await Promise.all([loadRequests(repo, problems), loadDecisions(repo, problems)]);
  return requests.map((stored) => {
    const expiresMs = Date.parse(stored.request.expires);
    const timely = decisions.filter(
      ({ decision, writtenMs }) =>
        decision.request === stored.id && (writtenMs === undefined || writtenMs <= expiresMs),
    );
    return {
      stored,
      expiresMs,
      counted: tally(
        stored.id,
        stored.request.requester,
        timely.map(({ decision }) => decision),
        approvers,
        quorum,
      ),
    };
  });
}

/**
 * Requests whose effect is in force: a quorum approved them before they expired. Needs no clock:
 * what counts is when the store received each decision.
 */
export async function approvedRequests(
  repo: RepositoryView,
  policy: Policy,
  problems: RecordProblem[] = [],
): Promise<StoredRequest[]> {
  if (approverSet(policy.settings).quorum === 0) return []; // no decision can count: nothing to read
  return (await tallied(repo, policy, problems))
    .filter(({ counted }) => counted.quorumReached)
    .map(({ stored }) => stored);
}

/** Every request with its status under `policy`; `nowMs` decides expiry (a time the clock cannot lower). */
export async function readRequests(repo: RepositoryView, policy: Policy, nowMs: number): Promise<RequestBook> {
  const problems: RecordProblem[] = [];
  const { quorum } = approverSet(policy.settings);
  const book: RequestBook = { requests: [], approved: [], problems };
  for (const { stored, expiresMs, counted } of await tallied(repo, policy, problems)) {
    const status: RequestStatus = counted.quorumReached
      ? 'executed'
      : counted.rejected
        ? 'rejected'
        : nowMs > expiresMs
          ? 'expired'
          : 'pending';
    if (status === 'executed') book.approved.push(stored);
    book.requests.push(requestView(stored.id, stored.request, counted, status, quorum));
  }
  book.requests.sort((a, b) => (a.created < b.created ? -1 : 1));
  return book;
}

export async function findRequest(
  repo: RepositoryView,
  policy: Policy,
  nowMs: number,
  ref: string,
): Promise<RequestView> {
  const matches = (await readRequests(repo, policy, nowMs)).requests.filter(({ id }) =>
    id.startsWith(ref.toLowerCase()),
  );
  if (matches.length === 1 && ref.length >= 4) return matches[0];
  throw new AmberError('USAGE', matches.length > 1 ? `request id ${ref} is ambiguous` : `no request ${ref}`, {
    hint: '`amber request list` shows the ids',
  });
}
