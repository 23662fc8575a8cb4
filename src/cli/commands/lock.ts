import type { Command } from 'commander';
import { formatTime } from '../../core/units.ts';
import { AmberError } from '../../core/errors.ts';
import { shortId } from '../../core/ids.ts';
import type { RetentionMode } from '../../storage/store.ts';
import { extendLock, liftLock, type ExtendResult } from '../../protection/locks.ts';
import { lockStatus, type LockStatus } from '../../engine/lock-coverage.ts';
import { type CliContext, openOp, print } from '../context.ts';
import { dateFlag, lockModeOption } from '../options.ts';

export function registerLock(program: Command, context: CliContext): void {
  const lock = program
    .command('lock')
    .description('extend, inspect or (with an approved request) lift snapshot retention locks')
    .addHelpText(
      'after',
      `
Examples:
  amber lock status
  amber lock extend 3f2a9c1e --until +90d
  amber lock extend latest --until 2030-01-01 --lock-mode compliance`,
    );

  lock
    .command('extend')
    .description('keep a snapshot and everything it needs until a later date (never shortens)')
    .argument('<snapshot>', 'snapshot id, id prefix or "latest"')
    .requiredOption('--until <date>', 'ISO date (2030-01-01, 2030-01-01T12:00:00Z) or +DURATION from now (+90d)')
    .addOption(lockModeOption("governance, or compliance (never lifted); default: the snapshot's current mode"))
    .addHelpText(
      'after',
      `
A governance lock may become compliance; a compliance lock stays compliance. An earlier date than
the current lock is refused: shortening needs an approved request (governance) or is impossible
(compliance).

Examples:
  amber lock extend 3f2a9c1e --until +1y
  amber lock extend latest --until 2031-12-31 --lock-mode compliance`,
    )
    .action(async (ref: string, flags: { until: string; lockMode?: RetentionMode }) => {
      // A bad or out-of-range date is refused before the repository opens; the date counts from the trusted clock below.
      dateFlag('--until', flags.until, context.clock.nowMs());
      const repo = await openOp(context);
      const clock = repo.retentionClock;
      const untilMs = dateFlag('--until', flags.until, clock.retentionBaseMs());
      const result = await extendLock({ repo, snapshot: ref, untilMs, mode: flags.lockMode });
      print(context, result, renderExtend);
    });

  lock
    .command('lift')
    .description("lift a snapshot's lock: needs an approved request (governance), impossible (compliance)")
    .argument('<snapshot>', 'snapshot id, id prefix or "latest"')
    .addHelpText(
      'after',
      `
Lifting a governance lock needs an M-of-N approved request; a compliance lock is never lifted.
This command changes nothing: it explains the refusal and names the request to make instead
(\`amber request unlock SNAPSHOT --reason …\`), which takes effect once the quorum approves it.

Examples:
  amber lock lift 3f2a9c1e`,
    )
    .action(async (ref: string) => {
      const repo = await openOp(context);
      await liftLock({ repo, snapshot: ref });
    });

  lock
    .command('status')
    .description("prove each snapshot's lock: the retention every object it needs actually has")
    .argument('[snapshot]', 'snapshot id, id prefix or "latest" (default: every snapshot)')
    .addHelpText(
      'after',
      `
For each snapshot: its lock, whether every object it needs is retained at least that long (COVERED)
or not (GAP, with each object and what is wrong), the earliest date any of them could be deleted,
how many the store itself refuses to change, who enforces retention and what that holds against,
who could lift a governance lock early (the key holder until the policy is locked, then the approver
quorum, or nobody if the locked policy has none), and legal holds. Exit status 1 (LOCK_GAP) when any snapshot has a gap.

Examples:
  amber lock status
  amber lock status latest --json | jq '.[0].covered'`,
    )
    .action(async (ref: string | undefined) => {
      const repo = await openOp(context);
      const statuses = await lockStatus({ repo, snapshot: ref });
      print(context, statuses, renderStatuses);
      const gaps = statuses.filter(({ covered }) => !covered);
      if (gaps.length > 0) {
        throw new AmberError(
          'LOCK_GAP',
          `${gaps.length} snapshot${gaps.length === 1 ? ' has' : 's have'} objects retained for less than the lock (${gaps.map(({ snapshotId }) => shortId(snapshotId)).join(', ')})`,
          {
            hint: 'each gap above names the object; `amber lock extend SNAPSHOT --until <its lock date>` grants the missing retention',
          },
        );
      }
    });
}

function renderExtend(result: ExtendResult): string {
  const was = result.previous ? ` (was until ${result.previous.until}, ${result.previous.mode})` : '';
  return `snapshot ${shortId(result.snapshotId)} locked until ${result.until} (${result.mode})${was}; ${result.objects} objects extended`;
}

function renderStatuses(statuses: LockStatus[]): string {
  if (statuses.length === 0) return 'no snapshots';
  const blocks = statuses.map(renderStatus);
  // One store serves every snapshot, so what its enforcement holds against is said once.
  const { enforcement } = statuses[0];
  blocks.push(
    `retention is enforced by the ${enforcement.enforcer}; it holds against:`,
    ...enforcement.holdsAgainst.map((what) => `  - ${what}`),
  );
  if (enforcement.notes) blocks.push(enforcement.notes);
  const gaps = statuses.filter(({ covered }) => !covered).length;
  blocks.push(
    gaps === 0
      ? `all ${statuses.length} snapshot locks are covered`
      : `${gaps} of ${statuses.length} snapshots have gaps`,
  );
  return blocks.join('\n');
}

function renderStatus(status: LockStatus): string {
  const lock = status.lock ? `${status.lock.mode} until ${status.lock.until}` : 'no lock';
  const lines = [
    `${shortId(status.snapshotId)}  ${formatTime(status.time)}  ${status.host}  ${lock}  ${status.covered ? 'COVERED' : 'GAP'}`,
    `  earliest deletable: ${status.earliestDeletable ?? 'now (an object it needs has no retention)'}`,
    `  objects: ${status.objects}, locked by store ${status.lockedByStore}/${status.objects}, retention enforced by the ${status.enforcement.enforcer}`,
  ];
  if (status.lock) lines.push(`  can be lifted early by: ${status.liftableBy}`);
  for (const hold of status.holds) lines.push(`  hold since ${hold.time}: ${hold.reason}`);
  for (const gap of status.gaps) lines.push(`  gap: ${gap.name} ${gap.problem}`);
  return lines.join('\n');
}
