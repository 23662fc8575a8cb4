// The repository's retention policy, like a locked backup vault: bounds on retention, defaults, and a
// lock after which the policy can only be tightened. The policy is a hash chain of owner-signed
// records from a root (each names the one it replaces), never "latest timestamp wins": a record that
// does not continue the chain cannot replace the policy.
import { AmberError } from '../core/errors.ts';
import { formatDurationMs } from '../core/units.ts';
import type { RetentionMode } from '../storage/store.ts';
import type { RecordProblem } from '../repo/records.ts';
import type { Approver, Loaded, PolicyRecord, PolicySettings } from '../repo/retention-records.ts';

const DAY_MS = 86_400_000;

/** A new repository's policy: no bounds (so tests can lock for seconds), 30 days governance. */
export const DEFAULT_POLICY: PolicySettings = {
  minRetentionMs: null,
  maxRetentionMs: null,
  defaultMode: 'governance',
  defaultRetentionMs: 30 * DAY_MS,
  requireCompliance: false,
  extendStepMs: 30 * DAY_MS,
  approvers: [],
  quorum: 0,
};

export interface ApproverSet {
  approvers: Approver[];
  quorum: number;
}

/** The approvers and quorum of a policy (none in records written before approvers existed). */
export const approverSet = (settings: PolicySettings): ApproverSet => ({
  approvers: settings.approvers ?? [],
  quorum: settings.quorum ?? 0,
});

export interface Policy {
  settings: PolicySettings;
  lock: PolicyRecord['lock'];
  /** Name of the chain's last record, or null while the repository has only the default. */
  head: string | null;
  /** The approved request that the last record carried out, if it did. */
  approval?: string;
}

/** Follows the chain from its root; at a fork the longer branch wins (then the smaller name) and the fork is reported. */
export function resolvePolicy(records: Loaded<PolicyRecord>[], problems: RecordProblem[]): Policy {
  const children = new Map<string | null, Loaded<PolicyRecord>[]>();
  for (const record of records) {
    const list = children.get(record.value.previous) ?? [];
    list.push(record);
    children.set(record.value.previous, list);
  }
  const depth = new Map<string, number>();
  const depthOf = (name: string): number => {
    const known = depth.get(name);
    if (known !== undefined) return known;
    depth.set(name, 0); // a cycle cannot happen with hash names, but never loop on hostile input
    const value = 1 + Math.max(0, ...(children.get(name) ?? []).map((child) => depthOf(child.name)));
    depth.set(name, value);
    return value;
  };
  let current: Loaded<PolicyRecord> | undefined;
  let next = children.get(null) ?? [];
  const seen = new Set<string>();
  while (next.length > 0) {
    const ranked = [...next].sort((a, b) => depthOf(b.name) - depthOf(a.name) || (a.name < b.name ? -1 : 1));
    if (ranked.length > 1) {
      problems.push({
        name: ranked[1].name,
        problem: `the policy chain forks after ${current?.name ?? 'its root'}; ${ranked[0].name} was followed`,
      });
    }
    current = ranked[0];
    if (seen.has(current.name)) break;
    seen.add(current.name);
    next = children.get(current.name) ?? [];
  }
  for (const record of records) {
    if (!seen.has(record.name) && !problems.some(({ name }) => name === record.name)) {
      problems.push({
        name: record.name,
        problem: 'a policy record that does not continue the policy chain was ignored',
      });
    }
  }
  return current
    ? {
        settings: { ...current.value.settings, ...approverSet(current.value.settings) },
        lock: current.value.lock,
        head: current.name,
        ...(typeof current.value.approval === 'string' ? { approval: current.value.approval } : {}),
      }
    : { settings: DEFAULT_POLICY, lock: null, head: null };
}

/** Whether the lock's cooling-off has ended by `nowMs` (judge with a time that moving the clock back cannot lower). */
export function isLocked(policy: Policy, nowMs: number): boolean {
  return policy.lock !== null && Date.parse(policy.lock.coolingOffUntil) <= nowMs;
}

/** Refuses settings that contradict themselves, and (once locked) any change that loosens. */
export function checkPolicyChange(policy: Policy, next: PolicySettings, nowMs: number, approved = false): void {
  if (next.minRetentionMs !== null && next.maxRetentionMs !== null && next.minRetentionMs > next.maxRetentionMs) {
    throw new AmberError(
      'POLICY_VIOLATION',
      `the minimum retention ${formatDurationMs(next.minRetentionMs)} is longer than the maximum ${formatDurationMs(next.maxRetentionMs)}`,
    );
  }
  checkRetentionMs(next, next.defaultRetentionMs, 'the default retention');
  if (next.requireCompliance && next.defaultMode !== 'compliance') {
    throw new AmberError('POLICY_VIOLATION', 'the policy requires compliance mode but its default mode is governance', {
      hint: 'add --default-mode compliance',
    });
  }
  const { approvers, quorum } = approverSet(next);
  if (
    new Set(approvers.map(({ publicKey }) => publicKey)).size !== approvers.length ||
    new Set(approvers.map(({ name }) => name)).size !== approvers.length
  ) {
    throw new AmberError('POLICY_VIOLATION', 'each approver must have its own name and its own key');
  }
  if (quorum > approvers.length) {
    throw new AmberError(
      'POLICY_VIOLATION',
      `a quorum of ${quorum} needs at least ${quorum} approvers; there are ${approvers.length}`,
      {
        hint: 'add approvers first (`amber approver add`), then raise the quorum',
      },
    );
  }
  if (!isLocked(policy, nowMs) || approved) return;
  const loosened = loosening(policy.settings, next);
  if (loosened.length > 0) {
    throw new AmberError(
      'POLICY_LOCKED',
      `the policy was locked on ${policy.lock!.coolingOffUntil}; without an approved request it can only be tightened, not changed by ${loosened.join(', ')}`,
      {
        hint: 'a locked policy takes a longer minimum, requiring compliance, or a quorum raised up to N-1 as they are; for anything else, `amber request policy-change`',
      },
    );
  }
}

/** What a change does besides tightening (a longer minimum or default, compliance, a quorum raised up to N-1). */
export function loosening(was: PolicySettings, next: PolicySettings): string[] {
  const loosened: string[] = [];
  const before = approverSet(was);
  const after = approverSet(next);
  if ((was.minRetentionMs ?? 0) > (next.minRetentionMs ?? 0)) loosened.push('a shorter minimum retention');
  if (was.maxRetentionMs !== next.maxRetentionMs) loosened.push('a different maximum retention');
  if (was.requireCompliance && !next.requireCompliance) loosened.push('dropping the compliance requirement');
  if (was.defaultMode === 'compliance' && next.defaultMode !== 'compliance') loosened.push('a governance default');
  if (next.defaultRetentionMs < was.defaultRetentionMs) loosened.push('a shorter default retention');
  if (was.extendStepMs !== next.extendStepMs) loosened.push('a different extension step');
  const keys = (set: ApproverSet) =>
    set.approvers
      .map(({ name, publicKey }) => `${name}\0${publicKey}`)
      .sort()
      .join('\n');
  if (keys(before) !== keys(after)) loosened.push('a different approver set');
  if (after.quorum < before.quorum) loosened.push('a lower quorum');
  if (after.quorum > before.quorum && after.quorum > after.approvers.length - 1)
    loosened.push(`a quorum of all ${after.approvers.length} approvers (one lost key would block every request)`);
  return loosened;
}

function checkRetentionMs(settings: PolicySettings, retentionMs: number, what: string): void {
  if (settings.minRetentionMs !== null && retentionMs < settings.minRetentionMs) {
    throw new AmberError(
      'POLICY_VIOLATION',
      `${what} (${formatDurationMs(retentionMs)}) is shorter than the policy's minimum of ${formatDurationMs(settings.minRetentionMs)}`,
      {
        hint: 'ask for a longer retention; `amber policy show` prints the bounds',
      },
    );
  }
  if (settings.maxRetentionMs !== null && retentionMs > settings.maxRetentionMs) {
    throw new AmberError(
      'POLICY_VIOLATION',
      `${what} (${formatDurationMs(retentionMs)}) is longer than the policy's maximum of ${formatDurationMs(settings.maxRetentionMs)}`,
      {
        hint: 'ask for a shorter retention, or raise the maximum with `amber policy set --max-retention`',
      },
    );
  }
}

export interface RetentionRequest {
  retainMs?: number;
  mode?: RetentionMode;
}

/** The mode and duration a backup or extension gets under the policy; refuses what it forbids. */
export function retentionUnder(
  settings: PolicySettings,
  request: RetentionRequest,
): { mode: RetentionMode; retainMs: number } {
  const mode = request.mode ?? settings.defaultMode;
  const retainMs = request.retainMs ?? settings.defaultRetentionMs;
  if (settings.requireCompliance && mode !== 'compliance') {
    throw new AmberError(
      'POLICY_VIOLATION',
      'the repository policy requires compliance mode; governance locks are refused',
      {
        hint: 'use --lock-mode compliance (or leave it out to get the default)',
      },
    );
  }
  checkRetentionMs(settings, retainMs, 'the retention asked for');
  return { mode, retainMs };
}

export function describePolicy(policy: Policy, nowMs: number): string {
  const s = policy.settings;
  const span = (ms: number | null) => (ms === null ? 'none' : formatDurationMs(ms));
  const lock =
    policy.lock === null
      ? 'not locked'
      : isLocked(policy, nowMs)
        ? `locked since ${policy.lock.coolingOffUntil} (only tightening is allowed)`
        : `lock pending: may still be changed or cancelled until ${policy.lock.coolingOffUntil}`;
  return [
    `minimum retention:  ${span(s.minRetentionMs)}`,
    `maximum retention:  ${span(s.maxRetentionMs)}`,
    `default:            ${formatDurationMs(s.defaultRetentionMs)} ${s.defaultMode}`,
    `compliance needed:  ${s.requireCompliance ? 'yes' : 'no'}`,
    `extension step:     ${formatDurationMs(s.extendStepMs)}`,
    `approvers:          ${
      approverSet(s)
        .approvers.map(({ name }) => name)
        .join(', ') || 'none'
    }`,
    `quorum:             ${describeQuorum(approverSet(s))}`,
    `lock:               ${lock}`,
  ].join('\n');
}

function describeQuorum({ approvers, quorum }: ApproverSet): string {
  if (quorum === 0) return 'none (governance locks are liftable by the key holder until the policy is locked)';
  return `${quorum} of ${approvers.length}${quorum < 2 ? ' (one person can approve alone: 2 or more is recommended)' : ''}`;
}
