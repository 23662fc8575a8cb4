// Everything retention decisions read from the repository, loaded together: the policy chain,
// grants (folded into per-object dates), holds, forget marks and condemn notices. Records that are
// forged, unauthorised or malformed are left out and listed in `problems` (verify reports them).
import { isoDate } from '../core/units.ts';
import { asSnapshotId, isHexId, type SnapshotId } from '../core/ids.ts';
import type { Retention } from '../repo/snapshot.ts';
import type { RecordProblem } from '../repo/records.ts';
import type { RepositoryView } from '../repo/repository.ts';
import {
  CONDEMNS,
  FORGETS,
  GRANTS,
  HOLDS,
  loadRecords,
  POLICIES,
  type CondemnNotice,
  type ForgetMark,
  type Grant,
  type Hold,
  type Loaded,
  type PolicyRecord,
} from '../repo/retention-records.ts';
import { resolvePolicy, type Policy } from './policy.ts';
import { approvedRequests } from './requests.ts';
import {
  foldGrants,
  roundUpMs,
  strongerMode,
  type GovernanceEnd,
  type ObjectLock,
  type RetentionLedger,
} from './retention.ts';

export interface ForgetMarkSeen {
  name: string;
  /** When the store received the mark, by its own clock. */
  receivedMs?: number;
}

export interface RetentionState {
  policy: Policy;
  /** Every valid link of the policy chain, current or not (audit entries of past approvers stay valid). */
  policyLinks: Loaded<PolicyRecord>[];
  /** Every valid grant as stored; `ledger` is their fold. */
  grants: Loaded<Grant>[];
  ledger: RetentionLedger;
  /** Approved unlock and shorten requests: the snapshot and the date its governance locks end. */
  governanceRequests: GovernanceRequest[];
  /** Those of them whose shared objects the owner has granted again for the snapshots still locked. */
  regranted: Set<string>;
  holds: Loaded<Hold>[];
  /** Owner-signed forget marks by the snapshot they name; whether one applies is `isForgotten`'s to say. */
  forgetMarks: Map<SnapshotId, ForgetMarkSeen[]>;
  condemns: Loaded<CondemnNotice>[];
  /** Object names any condemn notice names: never a dedup source again. */
  condemned: Set<string>;
  /** Snapshot id → the first valid grant naming it: every backup writes one before its snapshot. */
  snapshotGrants: Map<SnapshotId, string>;
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
  // Approved unlock and shorten requests end a snapshot's governance locks at the approved date: its
  // own object at once, what it shares once the owner has granted that again for the others.
  const governanceRequests = approved
    .filter(({ request }) => (request.kind === 'unlock' || request.kind === 'shorten') && isHexId(request.target))
    .map(({ id, request }) => ({
      id,
      snapshot: asSnapshotId(request.target),
      untilMs: Date.parse(String(request.parameters.until)),
    }));
  const regranted = new Set(
    grants
      .filter(
        ({ value, signerKeyId }) => typeof value.regrantFor === 'string' && signerKeyId === repo.authority.ownerKeyId,
      )
      .map(({ value }) => value.regrantFor as string),
  );
  const releasedHolds = new Set(
    approved.filter(({ request }) => request.kind === 'release-hold').map(({ request }) => request.target),
  );
  const ledger = foldGrants(grants, governanceEnds(governanceRequests, regranted));
  const heldSnapshots = holds.filter(({ name }) => !releasedHolds.has(name));
  return {
    policy,
    policyLinks: policies,
    grants,
    ledger,
    governanceRequests,
    regranted,
    holds: heldSnapshots,
    releasedHolds,
    snapshotGrants: new Map(
      grants.flatMap(({ name, value }) => (value.snapshot === null ? [] : [[value.snapshot, name] as const])).reverse(),
    ),
    forgetMarks: marksBySnapshot(forgets, new Set(heldSnapshots.map(({ value }) => value.snapshot))),
    condemns,
    condemned: new Set(condemns.flatMap(({ value }) => value.objects.map(({ name }) => name))),
    problems,
  };
}

export interface GovernanceRequest {
  id: string;
  snapshot: SnapshotId;
  untilMs: number;
}

/** Where approved requests end each snapshot's governance locks (see foldGrants). */
export function governanceEnds(
  requests: GovernanceRequest[],
  regranted: ReadonlySet<string>,
): Map<SnapshotId, GovernanceEnd> {
  const ends = new Map<SnapshotId, GovernanceEnd>();
  for (const { id, snapshot, untilMs } of requests) {
    const end = ends.get(snapshot) ?? { snapshotMs: Infinity };
    end.snapshotMs = Math.min(end.snapshotMs, untilMs);
    if (regranted.has(id)) end.objectsMs = Math.min(end.objectsMs ?? Infinity, untilMs);
    ends.set(snapshot, end);
  }
  return ends;
}

/**
 * Forget marks by the snapshot they name, with the time the store received each (held snapshots are
 * left out: a hold keeps them, and once it is released the marks apply again).
 */
function marksBySnapshot(forgets: Loaded<ForgetMark>[], held: Set<SnapshotId>): Map<SnapshotId, ForgetMarkSeen[]> {
  const marks = new Map<SnapshotId, ForgetMarkSeen[]>();
  for (const { name, value, writtenMs } of forgets) {
    for (const id of value.snapshots) {
      if (!held.has(id)) marks.set(id, [...(marks.get(id) ?? []), { name, receivedMs: writtenMs }]);
    }
  }
  return marks;
}

/** How far in the future a store's time of receipt may lie (clock skew) before it is not believed. */
const RECEIPT_SKEW_MS = 60 * 60_000;

/**
 * Whether a forget mark forgets the snapshot. The mark's own time is written by whoever forgot, so it
 * proves nothing; the time the store received the mark (the vault's or the S3 server's clock, the
 * kernel's on a local directory) must show that the snapshot's lock — its grants and its own
 * retention — had ended by then. A mark that does not is reported and forgets nothing, and so is one
 * the store says it received in the future (a file time set by hand).
 */
export function isForgotten(
  state: RetentionState,
  id: SnapshotId,
  own: Retention | null,
  problems: RecordProblem[],
  nowMs: number,
): boolean {
  const lock = state.ledger.snapshotLock(id, own);
  let forgotten = false;
  for (const { name, receivedMs } of state.forgetMarks.get(id) ?? []) {
    const report = (why: string) =>
      problems.push({
        name,
        code: 'RETENTION_ACTIVE',
        problem: `it forgets snapshot ${id.slice(0, 8)}, ${why}: the snapshot stays`,
      });
    if (receivedMs === undefined) report('but the store does not say when it received the mark');
    else if (receivedMs > nowMs + RECEIPT_SKEW_MS)
      report(
        `but the store says it received the mark on ${isoDate(receivedMs)}, in the future (was its time set by hand?)`,
      );
    else if (lock === undefined || lock.untilMs <= receivedMs) forgotten = true;
    else
      report(
        `whose ${lock.mode} lock runs until ${isoDate(lock.untilMs)}, but the store received the mark on ${isoDate(receivedMs)} (was the forgetting host's clock wrong?)`,
      );
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

/** Retention for records everything depends on (holds, policy links, audit entries): as long as anything, from `baseMs` at least. */
export function metadataLock(state: RetentionState, baseMs: number): ObjectLock {
  // At least the policy's default mode: the next backup's lock will need metadata that strong, and a
  // store that keeps modes (S3) cannot raise governance to compliance without the bypass permission.
  const { defaultMode, requireCompliance } = state.policy.settings;
  return {
    untilMs: roundUpMs(Math.max(state.ledger.maxUntilMs, baseMs), state.policy.settings.extendStepMs),
    mode: strongerMode(
      strongerMode(state.ledger.strongestMode, defaultMode),
      requireCompliance ? 'compliance' : undefined,
    )!,
  };
}
