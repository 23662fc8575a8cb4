import type { Command } from 'commander';
import { AmberError, type ErrorCode } from '../../core/errors.ts';
import { formatBytes, formatDurationMs, isoDate } from '../../core/units.ts';
import { shortId } from '../../core/ids.ts';
import { createJsonLog } from '../../ops/agent-log.ts';
import { defaultStateDir } from '../../ops/agent-state.ts';
import { startAgent } from '../../ops/agent.ts';
import { jobsOf, repositoryOfJob, runJob, type JobOutcome } from '../../ops/jobs.ts';
import { createNotifier } from '../../ops/notify/notifier.ts';
import { type JobStanding, standings } from '../../ops/objectives.ts';
import { readPolicyFile } from '../../ops/policy-file.ts';
import type { PolicyConfig } from '../../ops/policy-types.ts';
import { type CliContext, print } from '../context.ts';
import { EXIT } from '../exit-status.ts';
import { durationFlag } from '../options.ts';

interface ConfigFlags {
  config?: string;
}

const stateDirOf = (config: PolicyConfig) => config.stateDir ?? defaultStateDir();

function configFile(flags: ConfigFlags): string {
  const file = flags.config ?? process.env.AMBER_CONFIG;
  if (!file)
    throw new AmberError('USAGE', 'no policy file given', {
      hint: 'pass --config FILE (or set AMBER_CONFIG); docs/agent.md describes the file',
    });
  return file;
}

export function registerAgent(program: Command, context: CliContext, setExit: (status: number) => void): void {
  program
    .command('agent')
    .description("run the policy file's backups and copies on their schedules, and watch their objectives")
    .option('--config <file>', 'the policy file (YAML; or AMBER_CONFIG)')
    .option('--only <kind>', 'run only this part of the file: backups or copies (a copy site runs copies)')
    .option('--stop-grace <duration>', 'on SIGTERM, how long to let the run in flight finish', '60s')
    .addHelpText(
      'after',
      `
Runs until SIGTERM or SIGINT: the run in flight may finish within --stop-grace, else it is abandoned
(the repository stays valid, and the next start catches the run up). SIGHUP reads the file again;
a file with errors is reported and the running policy stays. Logs are JSON lines on stderr.
State (last runs, for \`amber status\`) lives in state-dir: (default /var/lib/amber/agent as root,
~/.local/state/amber/agent otherwise).

Examples:
  amber agent --config /etc/amber/policy.yaml
  amber agent --config /etc/amber/policy.yaml --only copies       # at the copy site
  systemctl kill -s HUP amber-agent                               # reload the file`,
    )
    .action(async (flags: ConfigFlags & { only?: string; stopGrace: string }) => {
      if (flags.only !== undefined && flags.only !== 'backups' && flags.only !== 'copies')
        throw new AmberError('USAGE', `--only ${flags.only}: write --only backups or --only copies`);
      const graceMs = durationFlag('--stop-grace', flags.stopGrace);
      const file = configFile(flags);
      const config = await readPolicyFile(file);
      const log = createJsonLog(context.output.err, context.clock);
      let notifier = createNotifier(config.notify, {
        log: (line) => log('warn', String(line.msg ?? 'notification'), line),
      });
      const agent = await startAgent({
        config,
        reload: async () => {
          const next = await readPolicyFile(file);
          // The new targets first: if one cannot be made (an unreadable secret-file), the old ones stay.
          const replacement = createNotifier(next.notify, {
            log: (line) => log('warn', String(line.msg ?? 'notification'), line),
          });
          const previous = notifier;
          notifier = replacement;
          void previous.flush(30_000).then(() => previous.close());
          return next;
        },
        stateDir: stateDirOf,
        clock: context.clock,
        log,
        notify: (event) => notifier.send(event),
        only: flags.only as 'backups' | 'copies' | undefined,
      });
      const finished = await new Promise<boolean>((resolve) => {
        const onHangUp = () => void agent.reload();
        let stopping = false;
        // A signal can arrive twice (systemd signals the whole control group, the launcher forwards
        // it again): the second one must not end the process before the run in flight is dealt with.
        const onStop = (signal: NodeJS.Signals) => {
          if (stopping) return log('info', 'stop requested again: already stopping', { signal });
          stopping = true;
          process.removeListener('SIGHUP', onHangUp);
          log('info', 'stop requested', { signal });
          resolve(agent.stop(graceMs));
        };
        process.on('SIGHUP', onHangUp);
        process.on('SIGTERM', onStop);
        process.on('SIGINT', onStop);
      });
      // Events of the last run (a failure, say) still go out, for a few seconds at most.
      await notifier.flush(5000);
      notifier.close();
      if (!finished) setExit(EXIT.interrupted);
    });

  program
    .command('run')
    .description('run one job of the policy file now (a backup, a copy, a drill or a check), as the agent would')
    .argument('<job>', 'a source or copy name from the file, SOURCE-to-REPO, drill:NAME or check:REPO')
    .option('--config <file>', 'the policy file (YAML; or AMBER_CONFIG)')
    .addHelpText(
      'after',
      `
The same code path as the agent's scheduled runs: the source's GFS tier lock, its state for
\`amber status\`, its metrics textfile and its notifications. A job the agent is running now is
not run twice (exit 1). Exit status 3: the snapshot was written but something was skipped.

Examples:
  amber run finance --config /etc/amber/policy.yaml
  amber run finance-to-offsite --config /etc/amber/policy.yaml --json`,
    )
    .action(async (name: string, flags: ConfigFlags) => {
      const config = await readPolicyFile(configFile(flags));
      const jobs = jobsOf(config);
      const job = jobs.find((candidate) => candidate.name === name);
      if (!job)
        throw new AmberError('USAGE', `the policy file has no source or copy named "${name}"`, {
          hint: `its jobs: ${jobs.map((candidate) => candidate.name).join(', ') || 'none'}`,
        });
      const log = context.globals().json ? () => {} : createJsonLog(context.output.err, context.clock);
      const notifier = createNotifier(config.notify, {
        log: (line) => log('warn', String(line.msg ?? 'notification'), line),
      });
      const stateDir = stateDirOf(config);
      const outcome = await runJob(
        { config, stateDir, clock: context.clock, log, notify: (event) => notifier.send(event) },
        job,
      );
      await notifier.flush(10_000);
      notifier.close();
      if (config.metrics.textfile) {
        const { renderAgentMetrics, writeTextfile } = await import('../../ops/agent-metrics.ts');
        writeTextfile(config.metrics.textfile, renderAgentMetrics(standings(config, stateDir, context.clock.nowMs())));
      }
      if (outcome.status === 'busy')
        throw new AmberError(
          'JOB_RUNNING',
          `${job.kind === 'backup' ? 'source' : job.kind} ${name} is running now (the agent or another \`amber run\`)`,
          {
            hint: 'wait for that run to end; `amber status --config FILE` shows it',
          },
        );
      if (outcome.status === 'failed') {
        // A run that failed without throwing (a drill that did not pass) is reported by its outcome.
        if (outcome.thrown !== undefined) throw outcome.thrown;
        const { code, message, hint } = outcome.error!;
        throw new AmberError(code as ErrorCode, message, { hint });
      }
      print(context, outcomeJson(outcome), renderOutcome);
      if (outcome.status === 'partial') setExit(EXIT.partial);
    });

  program
    .command('status')
    .description(
      "each source's last success against its RPO, the next run and the last failure; exit 1 when an objective is missed",
    )
    .option('--config <file>', 'the policy file (YAML; or AMBER_CONFIG)')
    .addHelpText(
      'after',
      `
Reads the agent's state only (no repository is opened), so it answers at once and works as a
Nagios or cron check: exit 0 when every objective is met, 1 (RPO_MISSED) when a source's newest
recovery point is older than its rpo, a copy lags more than its max-lag, or no drill passed
within its interval and grace.

Examples:
  amber status --config /etc/amber/policy.yaml
  amber status --config /etc/amber/policy.yaml --json | jq '.[] | select(.rpoMissed)'`,
    )
    .action(async (flags: ConfigFlags) => {
      const config = await readPolicyFile(configFile(flags));
      const nowMs = context.clock.nowMs();
      const rows = standings(config, stateDirOf(config), nowMs);
      print(
        context,
        rows.map((row) => standingJson(row, nowMs)),
        () => renderStandings(rows, nowMs),
      );
      const missed = rows.filter((row) => row.rpoMissed || row.lagMissed || row.drillOverdue);
      if (missed.length > 0)
        throw new AmberError(
          'RPO_MISSED',
          `${missed.length} objective${missed.length === 1 ? '' : 's'} missed: ${missed.map((row) => row.job.name).join(', ')}`,
          { hint: 'see each one’s last failure above, and the agent’s log' },
        );
    });
}

const iso = (ms: number | undefined) => (ms === undefined ? null : isoDate(ms));

function standingJson(row: JobStanding, nowMs: number) {
  const { state, job } = row;
  return {
    kind: job.kind === 'backup' ? 'source' : job.kind,
    name: job.name,
    repository: repositoryOfJob(job),
    ...(job.kind === 'copy' ? { from: job.copy.from } : {}),
    ...(job.kind === 'drill'
      ? {
          lastDrill: state.lastDrill ?? null,
          everySeconds: job.drill.everyMs / 1000,
          overdue: row.drillOverdue,
        }
      : {}),
    lastSuccess: state.lastSuccess
      ? {
          time: isoDate(state.lastSuccess.startMs),
          snapshot: state.lastSuccess.snapshot ?? null,
          partial: state.lastSuccess.partial === true,
          durationSeconds: (state.lastSuccess.endMs - state.lastSuccess.startMs) / 1000,
          tier: state.lastSuccess.tier ?? null,
        }
      : null,
    ageSeconds: row.ageMs === undefined ? null : Math.round(row.ageMs / 1000),
    rpoSeconds: row.rpoMs === undefined ? null : row.rpoMs / 1000,
    rpoMissed: row.rpoMissed,
    ...(job.kind === 'copy'
      ? {
          lagSeconds: state.lagSeconds ?? null,
          maxLagSeconds: row.maxLagMs === undefined ? null : row.maxLagMs / 1000,
          lagMissed: row.lagMissed,
        }
      : {}),
    nextRun: iso(row.nextRunMs),
    nextRunInSeconds: Math.max(0, Math.round((row.nextRunMs - nowMs) / 1000)),
    lastFailure: state.lastFailure
      ? { time: isoDate(state.lastFailure.endMs), code: state.lastFailure.code, message: state.lastFailure.message }
      : null,
    failuresInARow: state.consecutiveFailures,
  };
}

function renderStandings(rows: JobStanding[], nowMs: number): string {
  if (rows.length === 0) return 'the policy file declares no sources or copies';
  return rows
    .map((row) => {
      const { state, job } = row;
      const ago = (ms: number) => `${formatDurationMs(Math.max(0, nowMs - ms))} ago`;
      const lines = [
        `${job.kind === 'backup' ? 'source' : job.kind} ${job.name}${row.rpoMissed || row.lagMissed ? '  MISSED' : row.drillOverdue ? '  OVERDUE' : ''}`,
        `  last success: ${state.lastSuccess ? `${isoDate(state.lastSuccess.startMs)} (${ago(state.lastSuccess.startMs)})${state.lastSuccess.snapshot ? `, snapshot ${shortId(state.lastSuccess.snapshot)}` : ''}${state.lastSuccess.partial ? ', incomplete' : ''}` : 'never'}`,
      ];
      if (row.rpoMs !== undefined)
        lines.push(
          `  rpo: ${formatDurationMs(row.rpoMs)}, age ${row.ageMs === undefined ? 'unknown: no run recorded (is the agent running?)' : formatDurationMs(row.ageMs)}${row.rpoMissed ? ' — missed' : ' — met'}`,
        );
      if (job.kind === 'drill')
        lines.push(
          `  drills: every ${formatDurationMs(job.drill.everyMs)}${state.lastDrill ? `; the last ${state.lastDrill.passed ? 'passed' : 'FAILED'} (drill ${state.lastDrill.id.slice(0, 12)}, RTO ${formatDurationMs(state.lastDrill.rtoSeconds * 1000)})` : '; none recorded'}${row.drillOverdue ? ' — overdue' : ''}`,
        );
      if (job.kind === 'copy' && state.lagSeconds !== undefined)
        lines.push(
          `  lag: ${formatDurationMs(state.lagSeconds * 1000)}${row.maxLagMs === undefined ? '' : ` (bound ${formatDurationMs(row.maxLagMs)}${row.lagMissed ? ', exceeded' : ''})`}`,
        );
      lines.push(
        `  next run: ${row.nextRunMs <= nowMs ? 'due now' : `${isoDate(row.nextRunMs)} (in ${formatDurationMs(row.nextRunMs - nowMs)})`}`,
      );
      if (state.lastFailure)
        lines.push(
          `  last failure: ${isoDate(state.lastFailure.endMs)} [${state.lastFailure.code}] ${state.lastFailure.message}${state.consecutiveFailures > 0 ? ` (${state.consecutiveFailures} in a row)` : ''}`,
        );
      return lines.join('\n');
    })
    .join('\n');
}

function outcomeJson(outcome: JobOutcome) {
  return {
    job: outcome.job.name,
    kind: outcome.job.kind,
    status: outcome.status,
    start: isoDate(outcome.startMs),
    durationSeconds: (outcome.endMs - outcome.startMs) / 1000,
    snapshot: outcome.snapshot ?? null,
    tier: outcome.tier ?? null,
    lockDays: outcome.retainMs === undefined ? null : outcome.retainMs / 86_400_000,
    bytesAdded: outcome.bytesAdded ?? 0,
    ...(outcome.job.kind === 'copy' ? { copied: outcome.copied ?? 0 } : {}),
    ...(outcome.job.kind === 'drill' ? { drill: outcome.details ?? null } : {}),
    error: outcome.error ?? null,
  };
}

function renderOutcome(json: ReturnType<typeof outcomeJson>): string {
  const head = `${json.kind} ${json.job}: ${json.status} in ${formatDurationMs(json.durationSeconds * 1000)}`;
  const parts = [head];
  if (json.snapshot)
    parts.push(
      `  snapshot ${shortId(json.snapshot)}${json.tier ? `, kept as ${json.tier} (locked ${json.lockDays} days)` : ''}`,
    );
  if (json.kind === 'copy') parts.push(`  copied ${json.copied} snapshot(s)`);
  if (json.kind === 'drill' && json.drill) {
    const drill = json.drill as { drill: string; rtoSeconds: number; restoredBytes: number };
    parts.push(
      `  drill ${drill.drill.slice(0, 12)}: ${formatBytes(drill.restoredBytes)} restored and read back, RTO ${formatDurationMs(drill.rtoSeconds * 1000)}`,
    );
  } else parts.push(`  added ${formatBytes(json.bytesAdded)}`);
  if (json.error) parts.push(`  ${json.error.code}: ${json.error.message}`);
  return parts.join('\n');
}
