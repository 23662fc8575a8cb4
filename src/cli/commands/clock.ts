import type { Command } from 'commander';
import type { ClockStatus } from '../../governance/guarded-clock.ts';
import { type CliContext, openOp, operatorName, print } from '../context.ts';
import { confirmClock } from '../../protection/clock-admin.ts';
import { isoDate } from '../../core/units.ts';

export function registerClock(program: Command, context: CliContext): void {
  const clock = program
    .command('clock')
    .description('the guarded clock that decides when retention has ended on this host')
    .addHelpText(
      'after',
      `
Deletions (forget, prune) use the wall clock only while it agrees with an anchor plus the time since
boot. After a reboot or a clock jump they use the last trusted time, so nothing expires early, until
an operator confirms the time. Backups carry on either way.

Examples:
  amber clock status
  amber clock confirm`,
    );

  clock
    .command('status')
    .description('show whether the clock is trusted for deletions, and why')
    .addHelpText(
      'after',
      `
Examples:
  amber clock status
  amber clock status --json`,
    )
    .action(async () => {
      const op = await openOp(context);
      print(context, op.retentionClock.status(), renderClockStatus);
    });

  clock
    .command('confirm')
    .description('confirm that the wall clock is right (after checking it): deletions trust it again')
    .addHelpText(
      'after',
      `
Check the time against a source you trust first: confirming a wrong clock lets retention end early.
The confirmation records who confirmed and what was wrong before.

Once the repository has an approver quorum, confirming needs an approved confirm-clock request made
on this host (\`amber request confirm-clock\`).

Examples:
  date -u && amber clock confirm
  amber clock confirm --request 9c41d2`,
    )
    .option('--request <id>', 'the approved confirm-clock request (needed once a quorum is set)')
    .action(async (flags: { request?: string }) => {
      const op = await openOp(context);
      print(
        context,
        await confirmClock(op, { request: flags.request, confirmedBy: operatorName() }),
        renderClockStatus,
      );
    });
}

const iso = (ms: number) => (ms > 0 ? isoDate(ms) : 'none (nothing may expire)');

export function renderClockStatus(status: ClockStatus): string {
  const lines = [
    `clock:         ${status.trusted ? 'trusted' : 'NOT TRUSTED for deletions'}: ${status.reason}`,
    `wall time:     ${iso(status.wallMs)}`,
    `last trusted:  ${iso(status.lastTrustedMs)}`,
    `deletions use: ${iso(status.deletionNowMs)}`,
  ];
  const { anchor } = status;
  if (anchor)
    lines.push(
      `anchor:        ${anchor.at}, boot ${anchor.bootId.slice(0, 8) || 'unknown'}, ${anchor.confirmedBy ? `confirmed by ${anchor.confirmedBy}` : 'set on first use'}`,
    );
  return lines.join('\n');
}
