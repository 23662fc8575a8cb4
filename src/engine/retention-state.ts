// Everything retention decisions read from the repository, loaded together: the policy chain,
// grants (folded into per-object dates), holds, forget marks and condemn notices. Records that are
// forged, unauthorised or malformed are left out and listed in `problems` (verify reports them).
import type { Clock } from '../core/clock.ts';
import type { RecordProblem } from '../repo/records.ts';
import type { RepositoryView } from '../repo/repository.ts';
import { CONDEMNS, FORGETS, GRANTS, HOLDS, loadRecords, POLICIES, type CondemnNotice, type Hold, type Loaded } from '../repo/retention-records.ts';
import { resolvePolicy, type Policy } from '../governance/policy.ts';
import { approvedRequests } from './request-book.ts';
import { foldGrants, roundUpMs, strongerMode, type ObjectLock, type RetentionLedger } from '../governance/retention.ts';

export interface RetentionState {
  policy: Policy;
  ledger: RetentionLedger;
  holds: Loaded<Hold>[];
  /** Snapshot ids an owner-signed forget mark names. */
  forgotten: Set<string>;
  condemns: Loaded<CondemnNotice>[];
  /** Object names any condemn notice names: never a dedup source again. */
  condemned: Set<string>;
  /** Snapshot id → the first valid grant naming it: every backup writes one before its snapshot. */
  snapshotGrants: Map<string, string>;
  /** Holds (object names) that a quorum-approved request released. */
  releasedHolds: Set<string>;
  problems: RecordProblem[];
}

export async function loadRetentionState(repo: RepositoryView): Promise<RetentionState> {
  const problems: RecordProblem[] = [];
  const [policies, grants, holds, forgets, condemns] = await Promise.all([
    loadRecords(repo, POLICIES, problems),
    loadRecords(repo, GRANTS, problems),
    loadRecords(repo, HOLDS, problems),
    loadRecords(repo, FORGETS, problems),
    loadRecords(repo, CONDEMNS, problems),
  ]);
  const policy = resolvePolicy(policies, problems);
  const approved = await approvedRequests(repo, policy, problems);
  // Approved unlock and shorten requests end a snapshot's governance locks at the approved date.
  const governanceEnds = new Map<string, number>();
  for (const { request } of approved) {
    if (request.kind === 'unlock' || request.kind === 'shorten') {
      const untilMs = Date.parse(String(request.parameters.until));
      governanceEnds.set(request.target, Math.min(governanceEnds.get(request.target) ?? Infinity, untilMs));
    }
  }
  const releasedHolds = new Set(approved.filter(({ request }) => request.kind === 'release-hold').map(({ request }) => request.target));
  return {
    policy,
    ledger: foldGrants(grants, governanceEnds),
    holds: holds.filter(({ name }) => !releasedHolds.has(name)),
    releasedHolds,
    snapshotGrants: new Map(grants.flatMap(({ name, value }) => (value.snapshot === null ? [] : [[value.snapshot, name] as const])).reverse()),
    forgotten: new Set(forgets.flatMap(({ value }) => value.snapshots)),
    condemns,
    condemned: new Set(condemns.flatMap(({ value }) => value.objects.map(({ name }) => name))),
    problems,
  };
}

/** The two times retention decisions use (see governance/guarded-clock.ts for the guarded one). */
export interface RetentionClock {
  /** Base for new retain-until dates: never lowered by moving the clock back. */
  retentionBaseMs(): number;
  /** "Now" for deciding that something has expired: never raised by moving the clock forward. */
  deletionNowMs(): number;
}

/** Plain wall time, for callers that do not guard the clock (tests of other things, scripts). */
export function unguardedClock(clock: Clock): RetentionClock {
  return { retentionBaseMs: () => clock.nowMs(), deletionNowMs: () => clock.nowMs() };
}

/** Retention for records everything depends on (holds, policy links, audit entries): as long as anything, from `baseMs` at least. */
export function metadataLock(state: RetentionState, baseMs: number): ObjectLock {
  // At least the policy's default mode: the next backup's lock will need metadata that strong, and a
  // store that keeps modes (S3) cannot raise governance to compliance without the bypass permission.
  const { defaultMode, requireCompliance } = state.policy.settings;
  return {
    untilMs: roundUpMs(Math.max(state.ledger.maxUntilMs, baseMs), state.policy.settings.extendStepMs),
    mode: strongerMode(strongerMode(state.ledger.strongestMode, defaultMode), requireCompliance ? 'compliance' : undefined)!,
  };
}
