// Requests to weaken protection and the approvers' decisions on them. A request's id is the SHA-256
// of its canonical JSON (RFC 8785), which covers the repository, kind, target, parameters, requester,
// times and a nonce; an approver signs a domain-separated message of that id and the decision, so a
// signature can never count for another request, another repository, or the other decision.
import { canonicalJson } from '../core/canonical-json.ts';
import { sha256Hex, verifySignature } from '../crypto/index.ts';
import type { Approver } from '../repo/retention-records.ts';

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

export function isSignedDecision(value: unknown): value is SignedDecision {
  const d = value as SignedDecision;
  return d !== null && typeof d === 'object' && d.type === 'amber-decision' && /^[0-9a-f]{64}$/.test(d.request) &&
    (d.decision === 'approve' || d.decision === 'reject') && /^[0-9a-f]{64}$/.test(d.approver) && typeof d.signature === 'string';
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
export function tally(id: string, requester: ApprovalRequest['requester'], decisions: readonly SignedDecision[], approvers: readonly Approver[], quorum: number): Tally {
  const byKey = new Map(approvers.map((approver) => [approver.publicKey, approver]));
  const result: Tally = { approvedBy: [], rejectedBy: [], refused: [], quorumReached: false, rejected: false };
  const decided = new Set<string>();
  for (const decision of decisions) {
    const approver = byKey.get(decision.approver);
    const refuse = (reason: string) => result.refused.push({ approver: approver?.name ?? decision.approver.slice(0, 16), decision: decision.decision, reason });
    if (decision.request !== id) refuse('signed for another request');
    else if (!approver) refuse('not a registered approver');
    else if (!verifySignature(Buffer.from(decision.approver, 'hex'), decisionMessage(id, decision.decision), Buffer.from(decision.signature, 'base64'))) refuse('the signature does not verify');
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
