import type { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import { AmberError } from '../../core/errors.ts';
import { formatBytes, formatDurationMs, formatTime } from '../../core/units.ts';
import { listDrills, findDrill, type ListedDrill } from '../../ops/drill-records.ts';
import { buildReport, renderCsv, renderHtml } from '../../ops/drill-report.ts';
import { DEFAULT_CHECK_TIMEOUT_MS, type DrillResult, runDrill } from '../../ops/drill.ts';
import { visible } from '../../core/visible-text.ts';
import { type CliContext, openOp, openRepoView, print } from '../context.ts';
import { addFromOptions, fromLocation, openFromRepo, type FromFlags } from '../from-repo.ts';
import { durationFlag } from '../options.ts';

interface RunFlags extends FromFlags {
  within?: string;
  host?: string;
  path?: string;
  target?: string;
  rto?: string;
  check: string[];
  checkSql: string[];
  database?: string;
  checkTimeout?: string;
  keep?: boolean;
  seed?: string;
  source?: string;
}

const collect = (value: string, previous: string[]) => [...previous, value];

export function registerDrill(program: Command, context: CliContext, setExit: (code: number) => void): void {
  const drill = program
    .command('drill')
    .description(
      'restore drills: restore a snapshot in full, verify it, run checks, and sign the result into the audit log',
    )
    .addHelpText(
      'after',
      `
Examples:
  amber drill run latest --repo /srv/amber --rto 4h
  amber drill run random --within 30d --check 'test -s "$AMBER_DRILL_TARGET/srv/finance/ledger.db"'
  amber drill list --repo /srv/amber
  amber drill report --repo /srv/amber --since 90d --format html > drills.html`,
    );

  addFromOptions(
    drill
      .command('run')
      .description('one drill now: select, restore into empty scratch space, verify every byte, run the checks, record')
      .argument('<snapshot>', 'a snapshot id (prefix), latest, or random')
      .option('--within <duration>', 'choose only among snapshots this recent (e.g. 30d)')
      .option('--host <name>', 'only snapshots of this host')
      .option('--path <path>', 'only snapshots that backed up this path')
      .option('--source <name>', 'the name the drill is reported under (default HOST:PATHS of the snapshot)')
      .option(
        '--target <dir>',
        'restore here: a directory that does not exist or is empty (default a fresh one in $TMPDIR)',
      )
      .option('--rto <duration>', 'the recovery time objective: the drill fails if restore and verify take longer')
      .option(
        '--check <command>',
        'a shell command run in the restored root after the verify (repeatable)',
        collect,
        [],
      )
      .option(
        '--check-sql <query>',
        'a database snapshot: an SQL query run against the restored database, which must return a row (repeatable)',
        collect,
        [],
      )
      .option('--database <name>', 'which database of a whole-server snapshot --check-sql and --check use')
      .option(
        '--check-timeout <duration>',
        `how long each check may take (default ${DEFAULT_CHECK_TIMEOUT_MS / 60_000}m)`,
      )
      .option('--keep', 'leave the restored tree in place (default: removed)')
      .option('--seed <n>', 'seed of the random choice, to repeat one (the record keeps it)'),
  )
    .addHelpText(
      'after',
      `
The snapshot is restored in full into a directory that held nothing, read back and compared with
the snapshot (every byte against its blob ids, each entry's type, mode, time, owner, link target
and extended attributes), then each --check runs through /bin/sh in the restored root with
AMBER_DRILL_TARGET (that root: a snapshot of /srv/db is under $AMBER_DRILL_TARGET/srv/db) and
AMBER_DRILL_SNAPSHOT set. The RTO achieved is the time from the start to the end of the verify.
The result is written as a signed entry of the repository's audit log (action "drill").

A database snapshot (amber backup postgresql://… or mysql://…) is restored into a throwaway
server started on 127.0.0.1 in the scratch directory from the server binaries installed here
(PostgreSQL's initdb and pg_ctl, MariaDB's mariadbd), every table of every restored database is
read in full, then each --check-sql runs in it and must return at least one row. The RTO ends
when those queries answered. A --check then finds the server through PGHOST/PGPORT/PGUSER/
PGPASSWORD/PGDATABASE (MYSQL_HOST/MYSQL_TCP_PORT/MYSQL_PWD) and AMBER_DRILL_DATABASE_URL.

With --from-repo the drilled repository is read with its own, read-only credentials (a vault
reader token, at the copy site) and the record goes to the audit log of --repo, this site's own.

Exit status: 0 the drill passed; 1 it failed (DRILL_FAILED: a restore error, a byte or entry that
differs, a check that failed or timed out, or the RTO missed), with each reason.

Examples:
  amber drill run latest --repo /srv/amber --rto 4h --check 'pg_verifybackup "$AMBER_DRILL_TARGET/srv/pg"'
  amber drill run random --within 30d --seed 7 --json
  amber drill run latest --path postgresql://backup@db1:5432/shop --check-sql 'select count(*) from orders'
  amber drill run latest --repo /srv/copy --from-repo https://vault:8420/finance   # from the copy site`,
    )
    .action(async (snapshot: string, flags: RunFlags) => {
      const recordIn = await openOp(context);
      const repo = fromLocation(flags) ? await openFromRepo(context, flags) : recordIn;
      const seed = flags.seed === undefined ? undefined : Number(flags.seed);
      // Digits only: Number('') is 0 and Number('1e3') 1000, which would record a seed nobody gave.
      if (seed !== undefined && !(/^\d+$/.test(flags.seed!) && Number.isSafeInteger(seed)))
        throw new AmberError('USAGE', `--seed ${flags.seed}: expected a whole number`);
      const controller = new AbortController();
      const onSignal = () => controller.abort();
      // Every signal until the drill is done, not only the first: a second Ctrl-C while the drill
      // cleans up must not leave its throwaway server running on the restored data.
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const quiet = context.globals().json || context.globals().quiet || !context.output.showProgress;
      let result: DrillResult;
      try {
        result = await runDrill({
          repo,
          recordIn,
          select: snapshot,
          withinMs: flags.within === undefined ? undefined : durationFlag('--within', flags.within),
          host: flags.host,
          path: flags.path,
          source: flags.source,
          target: flags.target,
          keep: flags.keep,
          rtoMs: flags.rto === undefined ? undefined : durationFlag('--rto', flags.rto),
          checks: flags.check,
          checkSql: flags.checkSql,
          database: flags.database,
          checkTimeoutMs:
            flags.checkTimeout === undefined ? undefined : durationFlag('--check-timeout', flags.checkTimeout),
          seed,
          signal: controller.signal,
          onStage: quiet
            ? undefined
            : (stage) =>
                context.output.err.write(
                  visible(
                    `${stage.name}: ${stage.result} in ${formatDurationMs(stage.seconds * 1000)}${stage.detail ? ` (${stage.detail})` : ''}\n`,
                  ),
                ),
        });
      } finally {
        process.removeListener('SIGINT', onSignal);
        process.removeListener('SIGTERM', onSignal);
      }
      print(context, result, renderResult);
      if (!result.passed) {
        if (context.globals().json) setExit(1);
        else
          throw new AmberError(
            'DRILL_FAILED',
            visible(`the drill of snapshot ${result.snapshot.slice(0, 8)} failed: ${result.reasons.join('; ')}`),
            {
              hint: `the record is drill ${result.id.slice(0, 12)} in the audit log (amber drill show ${result.id.slice(0, 12)})`,
            },
          );
      }
    });

  drill
    .command('list')
    .description('the drills recorded in the audit log, newest first; tampered records are reported')
    .option('--since <duration>', 'only drills this recent (e.g. 90d)')
    .addHelpText(
      'after',
      `
Reads the audit log only: no passphrase is needed (a vault auditor token is enough). Exit status 1
(AUDIT_TAMPERED) when a drill record was edited, forged, or signed by a key other than the owner's.

Examples:
  amber drill list --repo /srv/amber
  amber drill list --repo /srv/amber --since 30d --json | jq '.drills[] | select(.passed | not)'`,
    )
    .action(async (flags: { since?: string }) => {
      const view = await openRepoView(context);
      const sinceMs =
        flags.since === undefined ? undefined : context.clock.nowMs() - durationFlag('--since', flags.since);
      const listing = await listDrills(view, { sinceMs });
      const drills = [...listing.drills].sort((a, b) => (a.time < b.time ? 1 : -1));
      print(
        context,
        { drills: drills.map(summaryOf), tampered: listing.tampered, auditProblems: listing.auditProblems },
        (r) =>
          [
            ...r.drills.map(
              (d) =>
                `${d.id.slice(0, 12)}  ${formatTime(d.time)}  ${d.passed ? 'passed' : 'FAILED'}  ${d.source}  snapshot ${d.snapshot.slice(0, 8)}  RTO ${formatDurationMs(d.rtoSeconds * 1000)}${d.rtoObjectiveSeconds === null ? '' : ` of ${formatDurationMs(d.rtoObjectiveSeconds * 1000)}`}`,
            ),
            ...(r.drills.length === 0 ? ['no drills recorded'] : []),
            ...r.tampered.map((t) => `TAMPERED  ${t.name}: ${t.problem} [${t.code}]`),
          ]
            .map(visible)
            .join('\n'),
      );
      if (listing.tampered.length > 0)
        throw new AmberError(
          'AUDIT_TAMPERED',
          `${listing.tampered.length} drill record(s) of the audit log do not check out`,
          {
            hint: 'run `amber audit verify` and treat it as an incident: the audit log is write-once',
          },
        );
    });

  drill
    .command('show')
    .description('one drill: its stages, checks and figures')
    .argument('<id>', 'the drill id (a prefix of at least 4 hex digits)')
    .addHelpText(
      'after',
      `
Examples:
  amber drill show 04e078a4 --repo /srv/amber
  amber drill show 04e078a4 --repo /srv/amber --json | jq .checks`,
    )
    .action(async (id: string) => {
      const listing = await listDrills(await openRepoView(context));
      print(context, findDrill(listing, id), renderResult);
    });

  drill
    .command('report')
    .description('per source: the last full restore, how long it took, and whether it met its RTO (json, csv or html)')
    .option('--since <duration>', 'only drills this recent (default 90d)', '90d')
    .option('--format <format>', 'json, csv or html', 'json')
    .option('--output <file>', 'write the report here instead of standard output')
    .addHelpText(
      'after',
      `
Per source: the last drill, the last one that passed, its RTO against the objective, and every
drill since --since. The HTML page is self-contained (no script, nothing fetched). Exit status 1
when a drill record was tampered with.

Examples:
  amber drill report --repo /srv/amber --format html --output drills.html
  amber drill report --repo /srv/amber --since 365d --format csv > drills.csv`,
    )
    .action(async (flags: { since: string; format: string; output?: string }) => {
      if (!['json', 'csv', 'html'].includes(flags.format))
        throw new AmberError('USAGE', `--format ${flags.format}: write json, csv or html`);
      const view = await openRepoView(context);
      const nowMs = context.clock.nowMs();
      const sinceMs = nowMs - durationFlag('--since', flags.since);
      const report = buildReport(await listDrills(view, { sinceMs }), {
        repository: view.store.location,
        nowMs,
        sinceMs,
      });
      const text =
        flags.format === 'csv'
          ? renderCsv(report)
          : flags.format === 'html'
            ? renderHtml(report)
            : `${JSON.stringify(report, null, 2)}\n`;
      if (flags.output) writeFileSync(flags.output, text);
      else context.output.out.write(text);
      if (report.tampered.length > 0) setExit(1);
    });
}

function summaryOf(drill: ListedDrill) {
  const { id, time, source, snapshot, passed, rtoSeconds, rtoObjectiveSeconds, rpoSeconds, reasons, signer } = drill;
  return { id, time, source, snapshot, passed, rtoSeconds, rtoObjectiveSeconds, rpoSeconds, reasons, signer };
}

function renderResult(result: DrillResult | ListedDrill): string {
  const lines = [
    `drill ${result.id.slice(0, 12)}: ${result.passed ? 'passed' : 'FAILED'}`,
    `  snapshot ${result.snapshot.slice(0, 8)} of ${result.snapshotTime} (${result.selection.mode}${result.selection.mode === 'given' ? '' : `, one of ${result.selection.candidates}`}${result.selection.seed === null ? '' : `, seed ${result.selection.seed}`})`,
    result.database
      ? `  restored ${result.restoredFiles} database(s) from ${formatBytes(result.restoredBytes)} of dump into a throwaway ${result.database.kind === 'postgresql' ? 'PostgreSQL' : 'MariaDB'} ${result.database.server}: ${result.database.databases.map((d) => `${d.name} (${d.tables} tables, ${d.rows} rows read)`).join(', ')}`
      : `  restored ${result.restoredFiles} files; ${result.restoredEntries} entries and ${formatBytes(result.restoredBytes)} read back equal to the snapshot${result.problemCount > 0 ? `, ${result.problemCount} differ` : ''}`,
    `  RTO ${formatDurationMs(result.rtoSeconds * 1000)}${result.rtoObjectiveSeconds === null ? '' : ` (objective ${formatDurationMs(result.rtoObjectiveSeconds * 1000)})`}, RPO at the time ${formatDurationMs(result.rpoSeconds * 1000)}`,
    ...result.stages.map(
      (s) =>
        `  ${s.name.padEnd(8)} ${s.result.padEnd(7)} ${formatDurationMs(s.seconds * 1000).padStart(7)}${s.detail ? `  ${s.detail}` : ''}`,
    ),
    ...result.checks.map(
      (c) =>
        `  check \`${c.command}\`: ${c.timedOut ? 'timed out' : c.exit === null ? (c.signal ? `ended by ${c.signal}` : 'failed') : `exit ${c.exit}`}${c.output.length ? `; ${c.output.at(-1)}` : ''}`,
    ),
    ...result.notChecked.map((n) => `  not checked: ${n}`),
    ...result.reasons.map((r) => `  reason: ${r}`),
  ];
  return lines.map(visible).join('\n');
}
