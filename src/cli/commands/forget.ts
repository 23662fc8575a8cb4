import type { Command } from 'commander';
import { formatTime } from '../../core/units.ts';
import { shortId } from '../../core/ids.ts';
import { forget, type ForgetDecision, type ForgetResult } from '../../protection/forget.ts';
import type { KeepRules } from '../../governance/keep-rules.ts';
import { type CliContext, openOp, print, warnIfClockUntrusted } from '../context.ts';
import { countFlag, durationFlag } from '../options.ts';
import { displayOfSourceUrl, isSourceUrl } from '../../source/source-url.ts';
import { resolve } from 'node:path';

const collect = (value: string, previous: string[]) => [...previous, value];

interface ForgetFlags {
  keepLast?: string;
  keepHourly?: string;
  keepDaily?: string;
  keepWeekly?: string;
  keepMonthly?: string;
  keepYearly?: string;
  keepWithin?: string;
  dryRun?: boolean;
  host: string[];
  tag: string[];
  path: string[];
}

export function registerForget(program: Command, context: CliContext): void {
  program
    .command('forget')
    .description('forget snapshots no keep rule keeps, once their lock has ended and no hold applies')
    .option('--keep-last <n>', 'keep the newest N snapshots')
    .option('--keep-hourly <n>', 'keep the newest snapshot of each of the last N hours that have one')
    .option('--keep-daily <n>', 'keep the newest snapshot of each of the last N days that have one')
    .option('--keep-weekly <n>', 'keep the newest snapshot of each of the last N weeks that have one')
    .option('--keep-monthly <n>', 'keep the newest snapshot of each of the last N months that have one')
    .option('--keep-yearly <n>', 'keep the newest snapshot of each of the last N years that have one')
    .option('--keep-within <duration>', 'keep every snapshot within this span of the newest, e.g. 30d')
    .option('--dry-run', 'show what would be forgotten; change nothing')
    .option('--host <name>', 'consider only snapshots of this host (repeatable)', collect, [])
    .option(
      '--tag <tags>',
      'consider only snapshots with these tags, comma-separated for all (repeatable: any)',
      collect,
      [],
    )
    .option('--path <path>', 'consider only snapshots of this path or source URL (repeatable)', collect, [])
    .addHelpText(
      'after',
      `
Rules apply to each group of snapshots with the same host and paths, in UTC; --host, --tag and
--path leave every other snapshot out of the decision (kept). A snapshot is kept
when any rule keeps it, while its lock lasts (by the guarded clock), and while a legal hold applies.
Forgetting writes a signed mark; no data is deleted until \`amber prune\` condemns it and a later
prune deletes it after the grace period.

Examples:
  amber forget --keep-daily 7 --keep-weekly 5 --keep-monthly 12 --dry-run
  amber forget --keep-last 10 --keep-within 30d
  amber forget --host db1 --tag nightly --keep-daily 14 --dry-run`,
    )
    .action(async (flags: ForgetFlags) => {
      const keep = keepRules(flags);
      const repo = await openOp(context);
      warnIfClockUntrusted(context, repo.retentionClock);
      const filter = {
        hosts: flags.host,
        tags: flags.tag,
        paths: flags.path.map((p) => (isSourceUrl(p) ? displayOfSourceUrl(p) : resolve(p))),
      };
      const result = await forget({ repo, keep, dryRun: flags.dryRun, filter });
      print(context, result, render);
    });
}

function keepRules(flags: ForgetFlags): KeepRules {
  const rules: KeepRules = {};
  const counts = [
    ['last', '--keep-last', flags.keepLast],
    ['hourly', '--keep-hourly', flags.keepHourly],
    ['daily', '--keep-daily', flags.keepDaily],
    ['weekly', '--keep-weekly', flags.keepWeekly],
    ['monthly', '--keep-monthly', flags.keepMonthly],
    ['yearly', '--keep-yearly', flags.keepYearly],
  ] as const;
  for (const [rule, flag, text] of counts) if (text !== undefined) rules[rule] = countFlag(flag, text);
  if (flags.keepWithin !== undefined) rules.withinMs = durationFlag('--keep-within', flags.keepWithin);
  return rules;
}

function line(decision: ForgetDecision): string {
  return `${shortId(decision.snapshotId)}  ${formatTime(decision.time)}  ${decision.host}  ${decision.paths.join(' ')}`;
}

function render(result: ForgetResult): string {
  const lines: string[] = [];
  const width = result.dryRun ? 12 : 6;
  for (const kept of result.kept)
    lines.push(
      `${'keep'.padEnd(width)}  ${line(kept)}`,
      ...kept.keptBecause.map((reason) => `${' '.repeat(width + 4)}${reason}`),
    );
  const verb = result.dryRun ? 'would forget' : 'forget';
  for (const gone of result.forgotten) lines.push(`${verb.padEnd(width)}  ${line(gone)}`);
  const summary =
    `kept ${result.kept.length} snapshot${result.kept.length === 1 ? '' : 's'}, ` +
    `${result.dryRun ? 'would forget' : 'forgot'} ${result.forgotten.length}` +
    (result.mark ? ` (mark ${result.mark})` : '') +
    (result.forgotten.length > 0 && !result.dryRun ? '; run `amber prune` to condemn their data' : '');
  lines.push(summary);
  return lines.join('\n');
}
