import type { Command } from 'commander';
import { AmberError } from '../../core/errors.ts';
import { shortId } from '../../core/ids.ts';
import { formatBytes, formatDurationMs } from '../../core/units.ts';
import { copySnapshots, type CopyFilter, type CopyResult } from '../../engine/copy.ts';
import { copyLag, type CopyLag } from '../../engine/copy-status.ts';
import type { RetentionMode } from '../../storage/store.ts';
import { type CliContext, openOp, print, warnIfClockUntrusted } from '../context.ts';
import { addFromOptions, fromLocation, openFromRepo, type FromFlags } from '../from-repo.ts';
import { durationFlag, lockModeOption, retainFlag } from '../options.ts';
import { createProgressLine } from '../progress.ts';

interface FilterFlags {
  host: string[];
  tag: string[];
  path: string[];
  snapshot: string[];
}

interface CopyFlags extends FromFlags, FilterFlags {
  retain?: string;
  lockMode?: RetentionMode;
}

interface StatusFlags extends FromFlags, FilterFlags {
  maxLag?: string;
}

const collect = (value: string, previous: string[]) => [...previous, value];

function addFilterOptions(command: Command): Command {
  return command
    .option('--host <name>', "only the primary's snapshots of this host (repeatable)", collect, [])
    .option('--tag <tag>', 'only snapshots with this tag (repeatable: all of them)', collect, [])
    .option('--path <path>', 'only snapshots that backed up this path (repeatable: all of them)', collect, [])
    .option('--snapshot <id>', 'only this snapshot of the primary (repeatable)', collect, []);
}

const filterOf = (flags: FilterFlags): CopyFilter => ({
  hosts: flags.host,
  tags: flags.tag,
  paths: flags.path,
  snapshots: flags.snapshot,
});

export function registerCopy(program: Command, context: CliContext): void {
  // The --from-* and filter options belong to `copy` itself; `copy status` reads them from there
  // (commander parses a parent's options wherever they stand on the line).
  const copy = addFilterOptions(addFromOptions(program.command('copy')))
    .description("pull the primary's snapshots into this repository (the copy), under the copy's own keys and locks")
    .option('--retain <duration>', "lock each copied snapshot for this long (default: the copy's policy)")
    .addOption(lockModeOption("governance or compliance (default: the copy's policy)"))
    .addHelpText(
      'after',
      `
Run at the copy site. --repo (AMBER_REPO, AMBER_PASSWORD, AMBER_VAULT_TOKEN) is the copy, which the
copy site alone can write; --from-repo is the primary, which needs only read access: a vault
\`reader\` token, read-only S3 credentials, or a read-only mount. The primary holds no credential
for the copy and never connects to it. Make the copy once with
\`amber init --repo COPY --from-repo PRIMARY\` (it shares the primary's chunking and blob-id
secrets, nothing else; see docs/isolation.md).

Every snapshot the copy lacks is copied, oldest first, and locked by the copy's policy as it
arrives; only blobs the copy lacks travel, each checked before it is sealed again. A snapshot the
primary cannot vouch for (damaged, or signed by no key the primary authorised) is reported and
left out: exit status 3. An interrupted copy leaves the copy valid; the next run completes it.

Examples:
  amber copy --repo /srv/amber-copy --from-repo https://vault1.example:8420/finance --from-token-file /etc/amber/primary-reader.token --from-password-file /etc/amber/primary.pass
  amber copy --repo s3:https://s3.example:7480/copy --from-repo /mnt/primary-ro --host db1 --json
  amber copy status --repo /srv/amber-copy --from-repo /mnt/primary-ro --max-lag 26h`,
    )
    .action(async (flags: CopyFlags) => {
      requireFrom(flags);
      const retainMs =
        flags.retain === undefined ? undefined : retainFlag('--retain', flags.retain, context.clock.nowMs());
      const primary = await openFromRepo(context, flags);
      const repo = await openOp(context);
      warnIfClockUntrusted(context, repo.retentionClock);
      const { output } = context;
      const progress = createProgressLine(output.err, context.clock, output.showProgress);
      const result = await copySnapshots({
        copy: repo,
        primary,
        filter: filterOf(flags),
        retainMs,
        lockMode: flags.lockMode,
        onProgress: (state) =>
          progress.update({
            bytes: state.bytesTransferred,
            label: `snapshot ${state.snapshot}/${state.snapshots}, ${state.blobs} blobs`,
          }),
        onSnapshot: (event) => {
          progress.done();
          if (context.globals().json || context.globals().quiet) return;
          if ('copied' in event)
            output.err.write(
              `copied ${shortId(event.copied.source)} → ${shortId(event.copied.copy)} (${event.copied.host} ${event.copied.paths.join(' ')}, ${formatBytes(event.copied.bytesTransferred)} transferred)\n`,
            );
          else
            output.err.write(`error: snapshot ${shortId(event.failed.source)} not copied: ${event.failed.message}\n`);
        },
      });
      progress.done();
      print(context, result, renderCopy);
      const left = result.failed.length + result.ignored.length;
      if (left > 0)
        throw new AmberError(
          'COPY_INCOMPLETE',
          `${left} snapshot${left === 1 ? '' : 's'} of the primary ${left === 1 ? 'was' : 'were'} not copied (${result.failed.length} damaged or incomplete there, ${result.ignored.length} signed by no key it authorised); every other snapshot was copied`,
          { hint: 'run `amber verify --read-data --repo PRIMARY` at the primary; earlier copies are intact' },
        );
    });

  copy
    .command('status')
    .description('how far the copy is behind the primary, per host and paths')
    .option('--max-lag <duration>', 'exit 1 when any source lags longer than this, e.g. 26h')
    .configureHelp({ showGlobalOptions: true })
    .addHelpText(
      'after',
      `
The lag of a source is how long the primary has held a snapshot the copy lacks: from the time of
the oldest snapshot at the primary that the copy does not hold, to now; 0 when it holds them all.

Examples:
  amber copy status --repo /srv/amber-copy --from-repo https://vault1.example:8420/finance --max-lag 26h
  amber copy status --json | jq '.[] | select(.lagSeconds > 3600)'`,
    )
    .action(async (_flags: StatusFlags, command: Command) => {
      const flags = command.optsWithGlobals<StatusFlags>();
      requireFrom(flags);
      const maxLagMs = flags.maxLag === undefined ? undefined : durationFlag('--max-lag', flags.maxLag);
      const primary = await openFromRepo(context, flags);
      const repo = await openOp(context);
      const rows = await copyLag({ copy: repo, primary, nowMs: context.clock.nowMs(), filter: filterOf(flags) });
      const over =
        maxLagMs === undefined ? [] : rows.filter((row) => row.lagSeconds !== null && row.lagSeconds * 1000 > maxLagMs);
      print(context, rows, (shown) => renderLag(shown, maxLagMs));
      if (over.length > 0) {
        throw new AmberError(
          'COPY_LAG',
          `${over.length} source${over.length === 1 ? '' : 's'} lag${over.length === 1 ? 's' : ''} more than ${formatDurationMs(maxLagMs!)} behind the primary: ${over.map((row) => `${row.host} ${row.paths.join(' ')}`).join(', ')}`,
          { hint: 'run `amber copy` at the copy site, and check why the last runs did not' },
        );
      }
    });
}

function requireFrom(flags: FromFlags): void {
  if (fromLocation(flags) === undefined)
    throw new AmberError('USAGE', 'no primary repository given', {
      hint: 'pass --from-repo LOCATION (the repository to copy from) or set AMBER_FROM_REPO',
    });
}

function renderCopy(result: CopyResult): string {
  const lines: string[] = [];
  const bytes = result.copied.reduce((sum, copied) => sum + copied.bytesTransferred, 0);
  const stored = result.copied.reduce((sum, copied) => sum + copied.bytesStored, 0);
  lines.push(
    `copied ${result.copied.length} snapshot${result.copied.length === 1 ? '' : 's'} from ${result.primary.location} (${shortId(result.primary.repository)}); ${result.alreadyCopied} already here`,
    `transferred ${formatBytes(bytes)}, stored ${formatBytes(stored)}`,
  );
  for (const problem of result.ignored)
    lines.push(`warning: the primary holds ${problem.name}, which was not copied: ${problem.problem}`);
  if (result.failed.length > 0)
    lines.push(
      `${result.failed.length} snapshot${result.failed.length === 1 ? '' : 's'} not copied (damaged at the primary); earlier copies are intact`,
    );
  const { anchor } = result;
  lines.push(
    `anchored the primary's audit log: ${anchor.entries} entries, head ${anchor.heads.map((name) => name.slice(6, 18)).join(', ') || 'none'}`,
  );
  if (anchor.problems.length > 0)
    lines.push(
      `warning: the primary's audit log has ${anchor.problems.length} problem${anchor.problems.length === 1 ? '' : 's'}, first: ${anchor.problems[0].name}: ${anchor.problems[0].problem}`,
    );
  return lines.join('\n');
}

function renderLag(rows: CopyLag[], maxLagMs: number | undefined): string {
  if (rows.length === 0) return 'the primary has no snapshots (for this filter)';
  const lines = rows.map((row) => {
    const lag =
      row.lagSeconds === null
        ? 'gone at the primary'
        : row.lagSeconds === 0
          ? 'none'
          : formatDurationMs(row.lagSeconds * 1000);
    const over = maxLagMs !== undefined && row.lagSeconds !== null && row.lagSeconds * 1000 > maxLagMs ? '  OVER' : '';
    return [
      `${row.host} ${row.paths.join(' ')}`,
      `  primary newest: ${row.primary ? `${shortId(row.primary.snapshot)} ${row.primary.time}` : 'none'}`,
      `  copy newest:    ${row.copy ? `${shortId(row.copy.snapshot)} ${row.copy.time} (of ${shortId(row.copy.source)})` : 'none'}`,
      `  lag: ${lag}${row.missing > 0 ? `, ${row.missing} snapshot${row.missing === 1 ? '' : 's'} not at the copy` : ''}${over}`,
    ].join('\n');
  });
  return lines.join('\n');
}
