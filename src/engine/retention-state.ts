// Everything retention decisions read from the repository, loaded together: the policy chain,
// grants (folded into per-object dates), holds, forget marks and condemn notices. Records that are
// forged, unauthorised or malformed are left out and listed in `problems` (verify reports them).
import type { Clock } from '../core/clock.ts';
import type { RecordProblem } from '../repo/records.ts';
import type { RepositoryView } from '../repo/repository.ts';
import { CONDEMNS, FORGETS, GRANTS, HOLDS, loadRecords, POLICIES, type CondemnNotice, type ForgetMark, type Hold, type Loaded } from '../repo/retention-records.ts';
import { snapshotName } from '../repo/layout.ts';
import type { SnapshotId } from '../core/ids.ts';
import { resolvePolicy, type Policy } from '../governance/policy.ts';
import { approvedRequests } from './request-book.ts';
import { foldGrants, roundUpMs, strongerMode, type ObjectLock, type RetentionLedger } from '../governance/retention.ts';

export interface RetentionState {
  policy: Policy;
  ledger: RetentionLedger;
  holds: Loaded<Hold>[];
  /**
   * Snapshot ids that an owner-signed forget mark names and that it may forget: the snapshot's lock
   * had ended when the store received the mark (by the store's clock), and no hold applies. A mark
   * written by a host with a forged clock therefore hides nothing (it is listed in `problems`).
   */
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
  const ledger = foldGrants(grants, governanceEnds);
  const heldSnapshots = holds.filter(({ name }) => !releasedHolds.has(name));
  return {
    policy,
    ledger,
    holds: heldSnapshots,
    releasedHolds,
    snapshotGrants: new Map(grants.flatMap(({ name, value }) => (value.snapshot === null ? [] : [[value.snapshot, name] as const])).reverse()),
    forgotten: applicableForgets(forgets, ledger, new Set(heldSnapshots.map(({ value }) => value.snapshot)), problems),
    condemns,
    condemned: new Set(condemns.flatMap(({ value }) => value.objects.map(({ name }) => name))),
    problems,
  };
}

/**
 * The snapshots forget marks may forget. The mark's own time is written by whoever forgot, so it
 * proves nothing; the time the store received the mark (the vault's or the S3 server's clock, the
 * kernel's on a local directory) is what shows that a snapshot's lock had ended when it was forgotten.
 */
function applicableForgets(forgets: Loaded<ForgetMark>[], ledger: RetentionLedger, held: Set<string>, problems: RecordProblem[]): Set<string> {
  const forgotten = new Set<string>();
  for (const { name, value, writtenMs } of forgets) {
    for (const id of value.snapshots) {
      if (held.has(id)) continue; // a hold keeps it; once released, the mark applies again
      const lock = ledger.lockOf(snapshotName(id as SnapshotId));
      if (lock === undefined || (writtenMs !== undefined && lock.untilMs <= writtenMs)) {
        forgotten.add(id);
        continue;
      }
      const received = writtenMs === undefined ? 'at a time the store does not say' : `on ${new Date(writtenMs).toISOString()}`;
      problems.push({
        name,
        code: 'RETENTION_ACTIVE',
        problem: `it forgets snapshot ${id.slice(0, 8)}, whose ${lock.mode} lock runs until ${new Date(lock.untilMs).toISOString()}, ` +
          `but the store received it ${received}: the snapshot stays (was the forgetting host's clock wrong?)`,
      });
    }
  }
  return forgotten;
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
