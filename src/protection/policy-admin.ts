// Reading and changing the repository policy: each change is a new owner-signed link of the chain.
import { strongerMode } from '../governance/retention.ts';
import { AmberError } from '../core/errors.ts';
import { isoDate } from '../core/units.ts';
import type { Operation } from '../governance/operation.ts';
import { POLICIES, putRecord, type PolicySettings } from '../repo/retention-records.ts';
import { checkPolicyChange, isLocked, type Policy } from '../governance/policy.ts';
import { metadataLock, type RetentionState } from '../governance/retention-state.ts';
import { appendAudit } from '../governance/audit-log.ts';
import { approvedRequests } from '../governance/requests.ts';

export interface PolicyView extends Policy {
  locked: boolean;
}

export async function showPolicy(repo: Operation): Promise<PolicyView> {
  const { policy } = await repo.retentionState();
  return { ...policy, locked: isLocked(policy, lockJudgeMs(repo)) };
}

// Whether the lock is in force is judged with the time that moving the clock back cannot lower.
const lockJudgeMs = (repo: Operation) => repo.retentionClock.retentionBaseMs();

async function append(
  repo: Operation,
  state: RetentionState,
  settings: PolicySettings,
  lock: Policy['lock'],
  action: string,
  approval?: string,
): Promise<Policy> {
  const nowMs = repo.clock.nowMs();
  const record = {
    time: isoDate(nowMs),
    previous: state.policy.head,
    settings,
    lock,
    ...(approval ? { approval } : {}),
  };
  // Kept as strongly as the new settings ask, so their own record is not the weak link.
  const current = metadataLock(state, repo.retentionClock.retentionBaseMs());
  const keep = {
    ...current,
    mode: strongerMode(
      strongerMode(current.mode, settings.defaultMode),
      settings.requireCompliance ? 'compliance' : undefined,
    )!,
  };
  const name = await putRecord(repo, POLICIES, record, { retainUntilMs: keep.untilMs, mode: keep.mode });
  await repo.store.protect([name], keep);
  repo.retentionStateChanged();
  await appendAudit(
    repo,
    {
      action,
      target: 'policy',
      details: { record: name, previous: state.policy.head, settings, lock, approval: approval ?? null },
    },
    { lock: keep },
  );
  return { settings, lock, head: name, approval };
}

export async function setPolicy(repo: Operation, change: Partial<PolicySettings>): Promise<Policy> {
  const state = await repo.retentionState();
  const next: PolicySettings = { ...state.policy.settings, ...change };
  checkPolicyChange(state.policy, next, lockJudgeMs(repo));
  return append(repo, state, next, state.policy.lock, 'policy.set');
}

export async function lockPolicy(repo: Operation, coolingOffMs: number): Promise<Policy> {
  const state = await repo.retentionState();
  if (state.policy.lock) {
    throw new AmberError(
      'USAGE',
      `the policy already has a lock (cooling-off until ${state.policy.lock.coolingOffUntil})`,
    );
  }
  const nowMs = lockJudgeMs(repo);
  return append(
    repo,
    state,
    state.policy.settings,
    { at: isoDate(nowMs), coolingOffUntil: isoDate(nowMs + coolingOffMs) },
    'policy.lock',
  );
}

/** Cancels a lock still in its cooling-off period. */
export async function unlockPolicy(repo: Operation): Promise<Policy> {
  const state = await repo.retentionState();
  if (!state.policy.lock) throw new AmberError('USAGE', 'the policy is not locked');
  if (isLocked(state.policy, lockJudgeMs(repo))) {
    throw new AmberError(
      'POLICY_LOCKED',
      `the policy lock took effect on ${state.policy.lock.coolingOffUntil}; it can no longer be cancelled`,
      {
        hint: 'a locked policy stays locked; it can only be tightened',
      },
    );
  }
  return append(repo, state, state.policy.settings, null, 'policy.unlock');
}

/**
 * Writes the policy link a quorum approved (`amber request policy-change`). The link names the
 * request; it applies only on top of the link the request was made against, so a policy that
 * changed meanwhile needs a new request. Applying it twice is a no-op.
 */
export async function applyApprovedPolicyChange(repo: Operation, requestId: string): Promise<Policy> {
  const state = await repo.retentionState();
  if (state.policy.approval === requestId) return state.policy;
  const found = (await approvedRequests(repo, state.policy)).find(
    ({ id, request }) => id === requestId && request.kind === 'policy-change',
  );
  if (!found) {
    throw new AmberError(
      'APPROVAL_REQUIRED',
      `request ${requestId.slice(0, 12)} is not a policy change approved by the quorum`,
      { hint: '`amber request show ID` shows where it stands' },
    );
  }
  const { previous, settings } = found.request.parameters as { previous: string | null; settings: PolicySettings };
  if (!POLICIES.isValid({ time: found.request.created, previous, settings, lock: null })) {
    throw new AmberError(
      'OBJECT_CORRUPT',
      `request ${requestId.slice(0, 12)} holds settings that are not a valid policy`,
    );
  }
  if (previous !== state.policy.head) {
    throw new AmberError(
      'USAGE',
      `the policy changed after request ${requestId.slice(0, 12)} was made; it no longer applies`,
      { hint: 'make a new request against the current policy' },
    );
  }
  checkPolicyChange(state.policy, settings, lockJudgeMs(repo), true);
  return append(repo, state, settings, state.policy.lock, 'policy.change', requestId);
}
