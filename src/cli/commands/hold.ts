import type { Command } from 'commander';
import { formatTime } from '../../core/units.ts';
import { shortId } from '../../core/ids.ts';
import { addHold, listHolds, releaseHold, type HoldEntry } from '../../protection/holds.ts';
import { type CliContext, openOp, print } from '../context.ts';

export function registerHold(program: Command, context: CliContext): void {
  const hold = program
    .command('hold')
    .description('legal holds: keep a snapshot and everything it needs past its retention')
    .addHelpText(
      'after',
      `
Examples:
  amber hold add 3f2a9c1e --reason "litigation 2026-17"
  amber hold list`,
    );

  hold
    .command('add')
    .description('place a legal hold on a snapshot (recorded with who placed it)')
    .argument('<snapshot>', 'snapshot id, id prefix or "latest"')
    .requiredOption('--reason <text>', 'why the data must be kept, e.g. a case number (recorded)')
    .addHelpText(
      'after',
      `
A held snapshot is never forgotten and nothing it needs is pruned, whatever its retention.
Releasing a hold needs a request approved by the approver quorum
(\`amber request release-hold SNAPSHOT --reason …\`); on S3, \`amber request apply ID\` then lifts the
bucket's legal holds.

Examples:
  amber hold add 3f2a9c1e --reason "litigation 2026-17"`,
    )
    .action(async (ref: string, flags: { reason: string }) => {
      const repo = await openOp(context);
      const added = await addHold(repo, { snapshot: ref, reason: flags.reason });
      print(
        context,
        added,
        (result) =>
          `held snapshot ${shortId(result.snapshot)}: ${result.reason} (by ${result.actor})` +
          (result.storageHold ? `\nstorage legal hold: ${result.storageHold}` : ''),
      );
    });

  hold
    .command('list')
    .description('list legal holds, oldest first')
    .addHelpText(
      'after',
      `
Examples:
  amber hold list
  amber hold list --json`,
    )
    .action(async () => {
      const repo = await openOp(context);
      print(context, await listHolds(repo), renderHolds);
    });

  hold
    .command('release')
    .description('release a legal hold: needs a request approved by the approver quorum')
    .argument('<snapshot>', 'snapshot id, id prefix or "latest"')
    .addHelpText(
      'after',
      `
This command changes nothing: it explains the refusal and names the request to make instead
(\`amber request release-hold SNAPSHOT --reason …\`), which takes effect once the quorum approves it.

Examples:
  amber hold release 3f2a9c1e`,
    )
    .action(async (ref: string) => {
      const repo = await openOp(context);
      await releaseHold(repo, { snapshot: ref });
    });
}

function renderHolds(holds: HoldEntry[]): string {
  if (holds.length === 0) return 'no holds';
  return holds
    .map((hold) => `${shortId(hold.snapshot)}  ${formatTime(hold.time)}  ${hold.actor}  ${hold.reason}`)
    .join('\n');
}
