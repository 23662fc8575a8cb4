// Confirming this host's guarded clock: after a reboot or a jump, deletions wait for a person to say
// the wall time is right. Once the repository has an approver quorum, that needs an approved
// confirm-clock request made on this host; either way the confirmation goes into the audit log.
import type { ClockStatus, GuardedClock } from '../governance/guarded-clock.ts';
import type { Operation } from '../governance/operation.ts';
import { appendAudit } from '../governance/audit-log.ts';
import { authoriseClockConfirmation } from './approvals.ts';
import { isoDate } from '../core/units.ts';

/** Trusts the wall time again, in the name of `confirmedBy` (who checked it). */
export async function confirmClock(
  op: Operation & { retentionClock: GuardedClock },
  options: { request?: string; confirmedBy: string },
): Promise<ClockStatus> {
  const approval = await authoriseClockConfirmation(op, options.request);
  const status = await op.retentionClock.confirm(
    approval ? `${options.confirmedBy} (request ${approval.slice(0, 12)})` : options.confirmedBy,
  );
  await appendAudit(op, {
    action: 'clock.confirm',
    target: 'clock',
    details: { wall: isoDate(status.wallMs), lastTrusted: isoDate(status.lastTrustedMs), request: approval },
  });
  return status;
}
