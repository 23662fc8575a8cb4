import type { Command } from 'commander';
import { formatBytes, formatDurationMs } from '../../core/units.ts';
import { prune, type PruneResult } from '../../protection/prune.ts';
import { type CliContext, openOp, print, warnIfClockUntrusted } from '../context.ts';
import { durationFlag } from '../options.ts';

export function registerPrune(program: Command, context: CliContext): void {
  program
    .command('prune')
    .description('delete data condemned by an earlier prune, then condemn what no snapshot needs any more')
    .option('--grace <duration>', 'how long newly condemned objects wait before a later prune may delete them', '24h')
    .option('--dry-run', 'show what would be deleted and condemned; change nothing')
    .addHelpText(
      'after',
      `
Deletion takes two runs. A prune condemns (in a signed notice) every object that no remaining
snapshot needs, whose retention has ended (by the guarded clock) and that no hold keeps. A later
prune, once the grace has passed, deletes each condemned object that is still unneeded, expired and
unheld; the others are spared. Backups never reuse condemned data. Each deletion is printed on its
own line ("deleted NAME SIZE") so that logs can be searched.

Examples:
  amber forget --keep-daily 7 && amber prune
  amber prune --dry-run
  amber prune --grace 72h`,
    )
    .action(async (flags: { grace: string; dryRun?: boolean }) => {
      const graceMs = durationFlag('--grace', flags.grace);
      const repo = await openOp(context);
      const dryRun = flags.dryRun === true;
      const { json, quiet } = context.globals();
      // Each deletion is printed as it happens: a prune that fails half-way has still logged what it removed.
      const onDelete =
        json || quiet
          ? undefined
          : (name: string, sizeBytes: number) => {
              context.output.out.write(`${dryRun ? 'would delete' : 'deleted'} ${name} ${formatBytes(sizeBytes)}\n`);
            };
      warnIfClockUntrusted(context, repo.retentionClock);
      const result = await prune({ repo, graceMs, dryRun, onDelete });
      print(context, result, (r) => render(r, graceMs));
    });
}

function render(result: PruneResult, graceMs: number): string {
  const condemn = result.dryRun ? 'would condemn' : 'condemned';
  const lines: string[] = [];
  for (const { name, problem } of result.ignored)
    lines.push(`warning: ignored ${name}, which is no snapshot: ${problem}`);
  for (const { name, sizeBytes, reason } of result.spared)
    lines.push(`spared ${name} ${formatBytes(sizeBytes)}: ${reason}`);
  for (const { name, sizeBytes } of result.condemned) lines.push(`${condemn} ${name} ${formatBytes(sizeBytes)}`);
  const plural = (n: number) => `${n} object${n === 1 ? '' : 's'}`;
  lines.push(
    `${result.dryRun ? 'would delete' : 'deleted'} ${plural(result.deleted.length)} (${formatBytes(result.bytesFreed)} freed), ` +
      `spared ${plural(result.spared.length)}, ` +
      `${condemn} ${plural(result.condemned.length)} (${formatBytes(result.bytesCondemned)})` +
      (result.condemned.length > 0 ? `, deletable by a prune after ${formatDurationMs(graceMs)}` : '') +
      (result.notice ? ` (notice ${result.notice})` : ''),
  );
  if (result.deleteMarkersRemoved > 0)
    lines.push(
      `removed ${result.deleteMarkersRemoved} delete marker(s) someone left in the bucket (\`amber verify\` reports them)`,
    );
  return lines.join('\n');
}
