// The requests of a repository and where each stands: the decisions that count under the current
// approver set, and so whether a quorum approved it (its effect is then in force), rejected it, or
// it expired. Retention state reads the approved ones; the request commands read all of them.
import { AmberError } from '../core/errors.ts';
import type { RepositoryView } from '../repo/repository.ts';
import type { RecordProblem } from '../repo/records.ts';
import { loadDecisions, loadRequests, type StoredRequest } from '../governance/request-records.ts';
import { approverSet, type Policy } from '../governance/policy.ts';
import { tally, type ApprovalRequest, type RequestKind, type RequestStatus, type Tally } from '../governance/requests.ts';

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

export function requestView(id: string, request: ApprovalRequest, counted: Tally, status: RequestStatus, quorum: number): RequestView {
  const { kind, target, parameters, requester, created, expires } = request;
  return { id, kind, target, parameters, requester, created, expires, status, quorum, approvedBy: counted.approvedBy, rejectedBy: counted.rejectedBy, refused: counted.refused };
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
    const timely = decisions.filter(({ decision, writtenMs }) => decision.request === stored.id && (writtenMs === undefined || writtenMs <= expiresMs));
    return { stored, expiresMs, counted: tally(stored.id, stored.request.requester, timely.map(({ decision }) => decision), approvers, quorum) };
  });
}

/**
 * Requests whose effect is in force: a quorum approved them before they expired. Needs no clock:
 * what counts is when the store received each decision.
 */
export async function approvedRequests(repo: RepositoryView, policy: Policy, problems: RecordProblem[] = []): Promise<StoredRequest[]> {
  if (approverSet(policy.settings).quorum === 0) return []; // no decision can count: nothing to read
  return (await tallied(repo, policy, problems)).filter(({ counted }) => counted.quorumReached).map(({ stored }) => stored);
}

/** Every request with its status under `policy`; `nowMs` decides expiry (a time the clock cannot lower). */
export async function readRequests(repo: RepositoryView, policy: Policy, nowMs: number): Promise<RequestBook> {
  const problems: RecordProblem[] = [];
  const { quorum } = approverSet(policy.settings);
  const book: RequestBook = { requests: [], approved: [], problems };
  for (const { stored, expiresMs, counted } of await tallied(repo, policy, problems)) {
    const status: RequestStatus = counted.quorumReached ? 'executed' : counted.rejected ? 'rejected' : nowMs > expiresMs ? 'expired' : 'pending';
    if (status === 'executed') book.approved.push(stored);
    book.requests.push(requestView(stored.id, stored.request, counted, status, quorum));
  }
  book.requests.sort((a, b) => (a.created < b.created ? -1 : 1));
  return book;
}

export async function findRequest(repo: RepositoryView, policy: Policy, nowMs: number, ref: string): Promise<RequestView> {
  const matches = (await readRequests(repo, policy, nowMs)).requests.filter(({ id }) => id.startsWith(ref.toLowerCase()));
  if (matches.length === 1 && ref.length >= 4) return matches[0];
  throw new AmberError('USAGE', matches.length > 1 ? `request id ${ref} is ambiguous` : `no request ${ref}`, { hint: '`amber request list` shows the ids' });
}

