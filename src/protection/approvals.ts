// Requests that weaken protection, and the quorum that lets them happen. Creating a request checks
// that it could be approved at all (a compliance lock cannot be requested away); each decision is
// checked before it is stored and logged either way; once M registered approvers other than the
// requester have approved before the request expires, its effect is in force (derived from the
// decisions themselves, so a forged execution record can neither fake nor block it) and the first
// process to notice records the execution, exactly once.
import { randomBytes } from 'node:crypto';
import { hostName } from '../core/operator.ts';
import { AmberError, isAmberError } from '../core/errors.ts';
import type { Operation } from '../governance/operation.ts';
import type { RepositoryView } from '../repo/repository.ts';
import type { Clock } from '../core/clock.ts';
import { isoDate } from '../core/units.ts';
import { asSnapshotId, isHexId } from '../core/ids.ts';
import { nowIso } from '../core/clock.ts';
import { loadDecisions, putDecision, putExecution, putRequest } from '../governance/requests.ts';
import { regrantShared } from './storage-effects.ts';
import { findRequest, readRequests, requestView, type RequestView } from '../governance/requests.ts';
import { approverSet, checkPolicyChange, isLocked, loosening } from '../governance/policy.ts';
import {
  decisionMessage,
  tally,
  type ApprovalRequest,
  type Decision,
  type RequestKind,
  type SignedDecision,
} from '../governance/requests.ts';
import type { ApproverSigner } from '../governance/approver-key.ts';
import type { PolicySettings } from '../repo/retention-records.ts';
import { appendAudit, type AuditAuthor } from '../governance/audit-log.ts';
import { applyApprovedPolicyChange } from './policy-admin.ts';
import { loadRetentionState, type RetentionClock, type RetentionState } from '../governance/retention-state.ts';
import { findSnapshot } from '../engine/snapshots.ts';
import { listHolds } from './holds.ts';

export const DEFAULT_REQUEST_EXPIRY_MS = 72 * 3_600_000;

export interface CreateRequestOptions {
  repo: Operation;
  kind: RequestKind;
  /** A snapshot id or prefix (unlock, shorten, release-hold); ignored for policy-change and confirm-clock. */
  target: string;
  /** policy-change: the settings to change. */
  policyChange?: Partial<PolicySettings>;
  reason: string;
  /** shorten: the new retain-until date. */
  untilMs?: number;
  expiresInMs?: number;
  /** `--as APPROVER`: the requester's approver key, which then cannot approve. */
  asApproverKey?: string;
}

/** What a request of each kind is about, checked now: a request that could never be carried out is refused. */
async function subjectOf(
  options: CreateRequestOptions,
  state: RetentionState,
  nowMs: number,
): Promise<{ target: string; parameters: Record<string, unknown> }> {
  const { repo } = options;
  if (options.kind === 'policy-change') {
    const next = { ...state.policy.settings, ...options.policyChange };
    checkPolicyChange(state.policy, next, nowMs, true);
    if (!isLocked(state.policy, nowMs) || loosening(state.policy.settings, next).length === 0) {
      throw new AmberError('USAGE', 'this change needs no approval: make it with `amber policy set`', {
        hint: 'requests are for changes a locked policy refuses',
      });
    }
    return {
      target: 'policy',
      parameters: { previous: state.policy.head, settings: next, changes: loosening(state.policy.settings, next) },
    };
  }
  if (options.kind === 'confirm-clock') {
    // What is confirmed is this host's wall time now; the clock command checks it against its own state.
    return { target: 'clock', parameters: { wall: nowIso(repo.clock), host: hostName() } };
  }
  const snapshot = await findSnapshot(repo, options.target);
  if (options.kind === 'release-hold') {
    const hold = (await listHolds(repo)).find((entry) => entry.snapshot === snapshot.id);
    if (!hold) throw new AmberError('USAGE', `no hold applies to snapshot ${snapshot.id.slice(0, 8)}`);
    return { target: hold.name, parameters: { snapshot: snapshot.id, holdReason: hold.reason } };
  }
  const lock = state.ledger.snapshotLock(snapshot.id, snapshot.snapshot.retention);
  if (!lock || lock.untilMs <= nowMs)
    throw new AmberError('USAGE', `snapshot ${snapshot.id.slice(0, 8)} has no lock in force`);
  if (lock.mode === 'compliance') {
    throw new AmberError(
      'RETENTION_LOCKED',
      `snapshot ${snapshot.id.slice(0, 8)} is under a compliance lock until ${isoDate(lock.untilMs)}; no request can lift or shorten it`,
      {
        hint: 'a compliance lock can only be extended; it ends on its date',
      },
    );
  }
  const untilMs = options.kind === 'unlock' ? nowMs : options.untilMs;
  if (untilMs === undefined || !(untilMs < lock.untilMs)) {
    throw new AmberError('USAGE', `shorten needs a date before the lock's end (${isoDate(lock.untilMs)})`, {
      hint: 'pass --until DATE',
    });
  }
  return { target: snapshot.id, parameters: { until: isoDate(untilMs), lockedUntil: isoDate(lock.untilMs) } };
}

export async function createRequest(options: CreateRequestOptions): Promise<RequestView> {
  const { repo } = options;
  if (options.reason.trim() === '')
    throw new AmberError('USAGE', 'a request needs a reason', { hint: 'pass --reason "why"' });
  const state = await repo.retentionState();
  const { approvers, quorum } = approverSet(state.policy.settings);
  if (quorum === 0) {
    throw new AmberError(
      'APPROVAL_REQUIRED',
      'the repository has no approver quorum yet, so no request can be approved',
      {
        hint: 'register approvers (`amber approver add`) and set `amber policy set --quorum M` first',
      },
    );
  }
  const nowMs = repo.retentionClock.retentionBaseMs();
  const { target, parameters } = await subjectOf(options, state, nowMs);
  parameters.reason = options.reason;
  const request: ApprovalRequest = {
    repository: repo.config.repositoryId,
    kind: options.kind,
    target,
    parameters,
    requester: {
      name: repo.actor ?? repo.key.keyId.slice(0, 8),
      keyId: repo.key.keyId,
      ...(options.asApproverKey ? { approverKey: options.asApproverKey } : {}),
    },
    created: isoDate(nowMs),
    expires: isoDate(nowMs + (options.expiresInMs ?? DEFAULT_REQUEST_EXPIRY_MS)),
    nonce: randomBytes(16).toString('hex'),
  };
  if (options.asApproverKey && !approvers.some(({ publicKey }) => publicKey === options.asApproverKey)) {
    throw new AmberError('USAGE', '--as names a key that is not a registered approver');
  }
  const id = await putRequest(repo, request);
  await appendAudit(repo, {
    action: 'request.create',
    target: id,
    details: { kind: request.kind, target, parameters, expires: request.expires },
  });
  return requestView(
    id,
    request,
    { approvedBy: [], rejectedBy: [], refused: [], quorumReached: false, rejected: false },
    'pending',
    quorum,
  );
}

/** What an approver signs, on their own machine if they like (`--out`). */
export function signDecision(id: string, decision: Decision, approver: ApproverSigner): SignedDecision {
  if (!/^[0-9a-f]{64}$/.test(id))
    throw new AmberError('USAGE', `"${id}" is not a full request id (64 hex digits)`, {
      hint: '`amber request show ID --json` prints it',
    });
  return {
    type: 'amber-decision',
    request: id,
    decision,
    approver: approver.publicKey.toString('hex'),
    signature: approver.sign(decisionMessage(id, decision)).toString('base64'),
  };
}

export interface SubmitResult {
  request: RequestView;
  /** True when this submission completed the quorum and recorded the execution. */
  executedNow: boolean;
}

/**
 * An approver acting with their own key only, without any repository passphrase: their audit entries
 * and any execution record they complete are signed with the approver key.
 */
export async function approverAuthor(
  view: RepositoryView,
  clock: Clock,
  approver: ApproverSigner,
  retentionClock: RetentionClock,
): Promise<AuditAuthor> {
  // Loaded once for the whole approval: registration, the decision's checks and the audit entries.
  const state = loadRetentionState(view);
  const { policy } = await state;
  const registered = approverSet(policy.settings).approvers.find(
    ({ publicKey }) => publicKey === approver.publicKey.toString('hex'),
  );
  if (!registered)
    throw new AmberError('APPROVAL_REFUSED', 'this approver key is not registered in the repository policy', {
      hint: '`amber approver list` shows who is',
    });
  return {
    ...view,
    clock,
    actor: `approver ${registered.name}`,
    signer: approver.signer,
    retentionClock,
    retentionState: () => state,
  };
}

/**
 * Files a signed decision. One that cannot count (forged, unregistered or removed approver, the
 * requester, a second decision by the same approver, another request, an expired or closed request)
 * is refused with the reason — and the refusal is logged.
 */
export async function submitDecision(repo: Operation | AuditAuthor, decision: SignedDecision): Promise<SubmitResult> {
  const nowMs = repo.retentionClock.retentionBaseMs();
  const state = await repo.retentionState();
  const { policy } = state;
  const refuse = async (reason: string): Promise<never> => {
    await appendAudit(repo, {
      action: `request.${decision.decision}.refused`,
      target: decision.request,
      details: { approver: decision.approver, reason },
    });
    throw new AmberError(
      'APPROVAL_REFUSED',
      `the ${decision.decision === 'approve' ? 'approval' : 'rejection'} of request ${decision.request.slice(0, 12)} does not count: ${reason}`,
    );
  };
  const { requests } = await readRequests(repo, policy, nowMs);
  const before = requests.find(({ id }) => id === decision.request);
  // A request altered after it was signed no longer hashes to its id, so it is not found here.
  if (!before) return refuse('there is no intact request with this id (unknown, or altered after it was made)');
  if (before.status !== 'pending') return refuse(`the request is ${before.status}`);
  const { approvers, quorum } = approverSet(policy.settings);
  // Counted on its own, then after the decisions already filed (a second one by the same approver).
  const earlier = (await loadDecisions(repo, []))
    .filter(({ decision: d }) => d.request === before.id)
    .map(({ decision: d }) => d);
  const withThis = tally(before.id, before.requester, [...earlier, decision], approvers, quorum);
  if (withThis.refused.length > before.refused.length) return refuse(withThis.refused.at(-1)!.reason);
  const name = await putDecision(repo.store, decision);
  const after = await findRequest(repo, policy, nowMs, before.id);
  const approverName = approvers.find(({ publicKey }) => publicKey === decision.approver)!.name;
  await appendAudit(repo, {
    action: `request.${decision.decision}`,
    target: before.id,
    details: { approver: approverName, decision: name },
  });
  let executedNow = false;
  if (after.status === 'executed') {
    const decisions = (await loadDecisions(repo, []))
      .filter(({ decision: d }) => d.request === before.id)
      .map(({ name: n }) => n);
    executedNow = await putExecution(repo.store, 'key' in repo ? repo.key.signer : repo.signer, {
      request: before.id,
      time: isoDate(nowMs),
      decisions,
    });
    if (executedNow) {
      await appendAudit(repo, {
        action: 'request.execute',
        target: before.id,
        details: { kind: after.kind, target: after.target, parameters: after.parameters, approvedBy: after.approvedBy },
      });
    }
    // What snapshots still locked share with an unlocked one is granted again for them (it needs a
    // key that reads trees; an approver alone leaves it to `amber request apply`).
    if (
      (after.kind === 'unlock' || after.kind === 'shorten') &&
      isHexId(after.target) &&
      'key' in repo &&
      repo.key.role === 'full'
    ) {
      // The state as read before this decision, with this request now approved: nothing else changed meanwhile.
      await regrantShared(repo, state, {
        id: before.id,
        snapshot: asSnapshotId(after.target),
        untilMs: Date.parse(String(after.parameters.until)),
      });
    }
    // A policy link is owner-signed: a full key writes it now, anyone else leaves it to `amber policy apply`.
    if (after.kind === 'policy-change' && 'key' in repo && repo.key.role === 'full') {
      // A vault token that may not write the policy (an approver's) leaves it to an admin's `policy apply`.
      await applyApprovedPolicyChange(repo, before.id).catch((error) => {
        if (!isAmberError(error, 'ROLE_FORBIDDEN')) throw error;
      });
    }
  } else if (after.status === 'rejected') {
    await appendAudit(repo, {
      action: 'request.rejected',
      target: before.id,
      details: { rejectedBy: after.rejectedBy },
    });
  }
  // Read once for the whole approval; the decision (and an execution) change it from here on.
  if ('retentionStateChanged' in repo) repo.retentionStateChanged();
  return { request: after, executedNow };
}

/** Every request of the repository and where it stands. */
export async function listRequests(repo: Operation | AuditAuthor): Promise<RequestView[]> {
  return (await readRequests(repo, (await repo.retentionState()).policy, repo.retentionClock.retentionBaseMs()))
    .requests;
}

/** One request by its id or an unambiguous prefix. */
export async function showRequest(repo: Operation | AuditAuthor, ref: string): Promise<RequestView> {
  return findRequest(repo, (await repo.retentionState()).policy, repo.retentionClock.retentionBaseMs(), ref);
}

/** An approver's decision on the request `ref`, signed with their key and filed in one step. */
export async function decide(
  author: AuditAuthor,
  ref: string,
  decision: Decision,
  approver: ApproverSigner,
): Promise<SubmitResult> {
  const found = await showRequest(author, ref);
  return submitDecision(author, signDecision(found.id, decision, approver));
}

/**
 * Whether this host may confirm its clock: freely while the repository has no quorum; once it has
 * one, only with an executed confirm-clock request made on this host that has not expired by a time
 * that moving the clock back cannot lower.
 */
export async function authoriseClockConfirmation(
  repo: Operation,
  requestRef: string | undefined,
): Promise<string | null> {
  const clock = repo.retentionClock;
  const state = await repo.retentionState();
  if (approverSet(state.policy.settings).quorum === 0) return null;
  if (requestRef === undefined) {
    throw new AmberError(
      'APPROVAL_REQUIRED',
      'the repository has an approver quorum: confirming the clock needs an approved request',
      {
        hint: 'amber request confirm-clock --reason "time checked against …", then amber clock confirm --request ID',
      },
    );
  }
  const request = await findRequest(repo, state.policy, clock.retentionBaseMs(), requestRef);
  if (request.kind !== 'confirm-clock')
    throw new AmberError('USAGE', `request ${request.id.slice(0, 12)} is a ${request.kind} request, not confirm-clock`);
  if (request.status !== 'executed')
    throw new AmberError('APPROVAL_REQUIRED', `request ${request.id.slice(0, 12)} is ${request.status}, not approved`);
  if (request.parameters.host !== hostName())
    throw new AmberError(
      'USAGE',
      `request ${request.id.slice(0, 12)} confirms the clock of ${String(request.parameters.host)}, not of this host`,
    );
  if (Date.parse(request.expires) < clock.retentionBaseMs())
    throw new AmberError(
      'APPROVAL_REQUIRED',
      `request ${request.id.slice(0, 12)} expired on ${request.expires}; make a new one`,
    );
  return request.id;
}
