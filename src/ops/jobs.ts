// One run of one job, the same for the agent's schedule and `amber run`: a source's backup (with
// its GFS tier lock) or a copy (with its lag check). Each run takes the job's lock, records its
// outcome in the agent's state, logs it and sends its events; errors become outcomes, not throws.
import type { Clock } from '../core/clock.ts';
import { AmberError } from '../core/errors.ts';
import { isoDate } from '../core/units.ts';
import { backup, startWalk } from '../engine/backup.ts';
import { copySnapshots } from '../engine/copy.ts';
import { copyLag } from '../engine/copy-status.ts';
import type { Log } from './agent-log.ts';
import { type JobState, lockJob, readJobState, writeJobState } from './agent-state.ts';
import { chooseTier, type Tier } from './gfs-tiers.ts';
import { openReadable, openWritable } from './open-repository.ts';
import type { AmberEvent } from './notify/event.ts';
import type { CopyConfig, DrillPolicy, PolicyConfig, RepositoryConfig, SourceConfig } from './policy-types.ts';
import { runDrill } from './drill.ts';
import { displayOfSourceUrl, openSource, readSourceAccess } from '../source/source-url.ts';
import { hostname } from 'node:os';
import type { Schedule } from './schedule.ts';
import { verify } from '../engine/verify.ts';
import { listRequests } from '../protection/approvals.ts';

export type Job =
  | { kind: 'backup'; id: string; name: string; source: SourceConfig }
  | {
      kind: 'copy';
      id: string;
      name: string;
      copy: CopyConfig;
      /** The source whose copy-to this is: the copy runs after each of its backups. */
      after?: string;
    }
  | { kind: 'check'; id: string; name: string; repository: string; schedule: Schedule }
  | {
      kind: 'drill';
      id: string;
      name: string;
      /** What is drilled: a source (its repository, at the site that backs it up) or a copy (its copy repository, at the copy site). */
      of: { kind: 'source' | 'copy'; name: string; repository: string; host?: string; path?: string; rtoMs?: number };
      drill: DrillPolicy;
    };

export const scheduleOf = (job: Job): Schedule =>
  job.kind === 'backup'
    ? job.source.schedule
    : job.kind === 'copy'
      ? job.copy.schedule
      : job.kind === 'drill'
        ? job.drill.schedule
        : job.schedule;

/** The repository a job writes to: a source's, a copy's target, a drill's or a check's. */
export const repositoryOfJob = (job: Job): string =>
  job.kind === 'backup'
    ? job.source.repository
    : job.kind === 'copy'
      ? job.copy.to
      : job.kind === 'drill'
        ? job.of.repository
        : job.repository;

export interface JobContext {
  config: PolicyConfig;
  stateDir: string;
  clock: Clock;
  log: Log;
  notify: (event: AmberEvent) => void;
}

export interface JobOutcome {
  job: Job;
  status: 'succeeded' | 'partial' | 'failed' | 'busy';
  startMs: number;
  endMs: number;
  snapshot?: string;
  tier?: Tier;
  retainMs?: number;
  bytesAdded?: number;
  copied?: number;
  warnings?: number;
  error?: { code: string; message: string; hint?: string };
  /** More for the failure's event (a check's problems). */
  details?: Record<string, unknown>;
  /** What a failed run threw, for `amber run` to report as any command would. */
  thrown?: unknown;
  /** The run lock was left by a run that was killed: this run catches it up. */
  caughtUp?: boolean;
}

/** Every job the file declares: a backup per source, each copy, and a copy per `copy-to` entry. */
export function jobsOf(config: PolicyConfig): Job[] {
  const jobs: Job[] = config.sources.map((source) => ({
    kind: 'backup',
    id: `source-${source.name}`,
    name: source.name,
    source,
  }));
  for (const copy of config.copies) jobs.push({ kind: 'copy', id: `copy-${copy.name}`, name: copy.name, copy });
  for (const source of config.sources)
    for (const to of source.copyTo) {
      const name = `${source.name}-to-${to}`;
      if (config.copies.some((copy) => copy.name === name)) continue;
      jobs.push({
        kind: 'copy',
        id: `copy-${name}`,
        name,
        after: source.name,
        copy: {
          name,
          from: source.repository,
          to,
          schedule: source.schedule,
          // The copy runs after each backup of the source: twice its RPO is the lag that says it did not.
          maxLagMs: source.rpoMs === undefined ? undefined : 2 * source.rpoMs,
          hosts: source.host ? [source.host] : [],
          tags: source.tags,
          paths: source.url ? [displayOfSourceUrl(source.url)] : source.paths,
        },
      });
    }
  for (const source of config.sources)
    if (source.drill)
      jobs.push({
        kind: 'drill',
        id: `drill-${source.name}`,
        name: `drill:${source.name}`,
        of: {
          kind: 'source',
          name: source.name,
          repository: source.repository,
          host: source.host ?? hostname(),
          path: source.url ? displayOfSourceUrl(source.url) : source.paths[0],
          rtoMs: source.rtoMs,
        },
        drill: source.drill,
      });
  for (const copy of config.copies)
    if (copy.drill)
      jobs.push({
        kind: 'drill',
        id: `drill-${copy.name}`,
        name: `drill:${copy.name}`,
        of: { kind: 'copy', name: copy.name, repository: copy.to, host: copy.hosts[0], rtoMs: copy.rtoMs },
        drill: copy.drill,
      });
  for (const repository of config.repositories.values())
    if (repository.check)
      jobs.push({
        kind: 'check',
        id: `check-${repository.name}`,
        name: `check:${repository.name}`,
        repository: repository.name,
        schedule: repository.check,
      });
  return jobs;
}

const repositoryOf = (config: PolicyConfig, name: string): RepositoryConfig => {
  const repository = config.repositories.get(name);
  if (!repository) throw new AmberError('USAGE', `repository "${name}" is not defined in ${config.file}`);
  return repository;
};

const errorOf = (error: unknown): { code: string; message: string; hint?: string } =>
  error instanceof AmberError
    ? { code: error.code, message: error.message, hint: error.hint }
    : { code: 'INTERNAL', message: error instanceof Error ? error.message : String(error) };

export async function runJob(context: JobContext, job: Job): Promise<JobOutcome> {
  const { clock, log, stateDir } = context;
  const startMs = clock.nowMs();
  const lock = lockJob(stateDir, job.id);
  if ('heldBy' in lock) {
    log('warn', 'run skipped: the job is running already', { job: job.id, pid: lock.heldBy });
    return { job, status: 'busy', startMs, endMs: startMs };
  }
  const state = readJobState(stateDir, job.id);
  state.sinceMs ??= startMs;
  state.lastStartMs = startMs;
  writeJobState(stateDir, job.id, state);
  if (lock.interrupted) log('warn', 'the last run was interrupted; this run catches it up', { job: job.id });
  log('info', `${job.kind} started`, { job: job.id, [job.kind === 'backup' ? 'source' : job.kind]: job.name });
  if (job.kind === 'backup') context.notify(event(context, 'backup.started', job, `backup of ${job.name} started`));
  let outcome: JobOutcome;
  try {
    outcome =
      job.kind === 'backup'
        ? await runBackup(context, job, state, startMs)
        : job.kind === 'copy'
          ? await runCopy(context, job, state, startMs)
          : job.kind === 'drill'
            ? await runDrillJob(context, job, state, startMs)
            : await runCheck(context, job, state, startMs);
  } catch (error) {
    outcome = { job, status: 'failed', startMs, endMs: clock.nowMs(), error: errorOf(error), thrown: error };
  } finally {
    lock.release();
  }
  outcome.caughtUp = lock.interrupted || undefined;
  record(context, job, state, outcome);
  return outcome;
}

async function runBackup(
  context: JobContext,
  job: Extract<Job, { kind: 'backup' }>,
  state: JobState,
  startMs: number,
): Promise<JobOutcome> {
  const { source } = job;
  if (source.url) return runSourceBackup(context, job, state, startMs);
  const walk = startWalk(source.paths, source.exclude);
  let repo: Awaited<ReturnType<typeof openWritable>>;
  try {
    repo = await openWritable(repositoryOf(context.config, source.repository), context.clock);
  } catch (error) {
    await walk.close();
    throw error;
  }
  // The tier is judged by the snapshot's own time. A wrong clock can only make a snapshot a keeper
  // it need not be (a longer lock), never skip one: a period that differs from the last keeper's counts.
  const choice = source.retain ? chooseTier(source.retain, context.clock.nowMs(), state.kept) : undefined;
  let warnings = 0;
  const result = await backup({
    repo,
    paths: source.paths,
    exclude: source.exclude,
    tags: source.tags,
    host: source.host,
    retainMs: choice?.retainMs,
    lockMode: source.retain?.mode,
    walk,
    onWarning: (warning) => {
      warnings++;
      context.log('warn', warning.message, { job: job.id, path: warning.path, code: warning.code });
    },
  });
  if (choice) Object.assign(state.kept, choice.periods);
  return {
    job,
    status: result.partial ? 'partial' : 'succeeded',
    startMs,
    endMs: context.clock.nowMs(),
    snapshot: result.snapshotId,
    tier: choice?.tier,
    retainMs: choice?.retainMs,
    bytesAdded: result.snapshot.summary.bytesAdded,
    warnings,
  };
}

/** A source by URL (a database, a mailbox, calendars, a bucket): its files streamed into a snapshot (src/source/source-url.ts), with the same tier lock. */
async function runSourceBackup(
  context: JobContext,
  job: Extract<Job, { kind: 'backup' }>,
  state: JobState,
  startMs: number,
): Promise<JobOutcome> {
  const { source } = job;
  const repo = await openWritable(repositoryOf(context.config, source.repository), context.clock);
  let warnings = 0;
  const access = readSourceAccess(
    source,
    (which, file, cause) =>
      new AmberError(
        'CONFIG_INVALID',
        `cannot read the ${which}-file ${file} of source ${source.name}: ${cause.message}`,
        {
          hint: `create the file (its first line is the ${which}) or correct ${which}-file`,
          cause,
        },
      ),
  );
  const opened = await openSource(source.url!, access, {
    folders: source.folders,
    maxMessageBytes: source.maxMessageBytes,
    versions: source.versions,
  });
  const choice = source.retain ? chooseTier(source.retain, context.clock.nowMs(), state.kept) : undefined;
  const result = await backup({
    repo,
    source: opened,
    tags: source.tags,
    host: source.host,
    retainMs: choice?.retainMs,
    lockMode: source.retain?.mode,
    onWarning: (warning) => {
      warnings++;
      context.log('warn', warning.message, { job: job.id, path: warning.path, code: warning.code });
    },
  });
  if (choice) Object.assign(state.kept, choice.periods);
  return {
    job,
    status: result.partial ? 'partial' : 'succeeded',
    startMs,
    endMs: context.clock.nowMs(),
    snapshot: result.snapshotId,
    tier: choice?.tier,
    retainMs: choice?.retainMs,
    bytesAdded: result.snapshot.summary.bytesAdded,
    warnings,
  };
}

async function runCopy(
  context: JobContext,
  job: Extract<Job, { kind: 'copy' }>,
  state: JobState,
  startMs: number,
): Promise<JobOutcome> {
  const { copy } = job;
  const primary = await openReadable(repositoryOf(context.config, copy.from), context.clock);
  const target = await openWritable(repositoryOf(context.config, copy.to), context.clock);
  const filter = { hosts: copy.hosts, tags: copy.tags, paths: copy.paths };
  const result = await copySnapshots({
    copy: target,
    primary,
    filter,
    retainMs: copy.retain?.ms,
    lockMode: copy.retain?.mode,
  });
  const rows = await copyLag({ copy: target, primary, nowMs: context.clock.nowMs(), filter });
  state.lagSeconds = Math.max(0, ...rows.map((row) => row.lagSeconds ?? 0));
  checkLag(context, job, state);
  const left = result.failed.length + result.ignored.length;
  const bytesAdded = result.copied.reduce((sum, copied) => sum + copied.bytesStored, 0);
  const outcome: JobOutcome = {
    job,
    status: left > 0 ? 'partial' : 'succeeded',
    startMs,
    endMs: context.clock.nowMs(),
    copied: result.copied.length,
    bytesAdded,
    snapshot: result.copied.at(-1)?.copy,
  };
  if (left > 0)
    outcome.error = {
      code: 'COPY_INCOMPLETE',
      message: `${left} snapshot${left === 1 ? '' : 's'} of the primary not copied (${result.failed.length} damaged or incomplete there, ${result.ignored.length} signed by no key it authorised)`,
      hint: 'run `amber verify --read-data` at the primary',
    };
  return outcome;
}

/**
 * A drill of the source (src/ops/drill.ts): one of its snapshots restored in full, read back, its
 * checks run, the result signed into the repository's audit log. A drill that does not pass is a
 * failed run (DRILL_FAILED, drill.failed) with every reason; one that passes is a success (drill.passed).
 */
async function runDrillJob(
  context: JobContext,
  job: Extract<Job, { kind: 'drill' }>,
  state: JobState,
  startMs: number,
): Promise<JobOutcome> {
  const { of, drill } = job;
  const repo = await openWritable(repositoryOf(context.config, of.repository), context.clock);
  const result = await runDrill({
    repo,
    recordIn: repo,
    select: drill.select,
    withinMs: drill.withinMs,
    host: of.host,
    path: of.path,
    source: of.name,
    scratch: drill.scratch,
    rtoMs: of.rtoMs,
    checks: drill.checks,
    checkSql: drill.checkSql,
    database: drill.database,
    checkTimeoutMs: drill.checkTimeoutMs,
  });
  state.lastDrill = { id: result.id, rtoSeconds: result.rtoSeconds, passed: result.passed };
  const details = {
    drill: result.id,
    snapshot: result.snapshot,
    rtoSeconds: result.rtoSeconds,
    rtoObjectiveSeconds: result.rtoObjectiveSeconds,
    rpoSeconds: result.rpoSeconds,
    restoredBytes: result.restoredBytes,
    reasons: result.reasons,
  };
  const outcome: JobOutcome = {
    job,
    status: result.passed ? 'succeeded' : 'failed',
    startMs,
    endMs: context.clock.nowMs(),
    snapshot: result.snapshot,
    details,
  };
  if (!result.passed)
    outcome.error = {
      code: 'DRILL_FAILED',
      message: `the drill of snapshot ${result.snapshot.slice(0, 8)} failed: ${result.reasons.join('; ')}`,
      hint: `amber drill show ${result.id.slice(0, 12)} --repo … (the record in the audit log)`,
    };
  return outcome;
}

/**
 * A repository's check: verify (structure, the lock coverage proof) and the approval requests
 * pending there. A lock gap or damage fails the check; each newly pending request is announced
 * once (approvers hear of it without watching the repository).
 */
async function runCheck(
  context: JobContext,
  job: Extract<Job, { kind: 'check' }>,
  state: JobState,
  startMs: number,
): Promise<JobOutcome> {
  const repo = await openWritable(repositoryOf(context.config, job.repository), context.clock);
  const pending = (await listRequests(repo)).filter((request) => request.status === 'pending');
  const seen = new Set(state.seenRequests ?? []);
  for (const request of pending) {
    if (seen.has(request.id)) continue;
    context.notify({
      ...event(
        context,
        'approval.requested',
        job,
        `${request.requester.name} asks the approvers of ${job.repository} to approve a ${request.kind} of ${request.target}; ${request.approvedBy.length} of ${request.quorum} approved so far, open until ${request.expires}`,
      ),
      details: {
        request: request.id,
        kind: request.kind,
        target: request.target,
        requester: request.requester.name,
        created: request.created,
        expires: request.expires,
        quorum: request.quorum,
        approvedBy: request.approvedBy,
      },
    });
    context.log('info', 'approval requested', { job: job.id, request: request.id, kind: request.kind });
  }
  state.seenRequests = pending.map((request) => request.id);
  const result = await verify({ repo, readDataFraction: 0 });
  const gaps = result.problems.filter((problem) => problem.code === 'LOCK_GAP');
  const endMs = context.clock.nowMs();
  if (result.problems.length === 0) return { job, status: 'succeeded', startMs, endMs };
  const first = (gaps[0] ?? result.problems[0]) as { object: string; message: string };
  return {
    job,
    status: 'failed',
    startMs,
    endMs,
    error: {
      code: gaps.length > 0 ? 'LOCK_GAP' : 'VERIFY_FAILED',
      message:
        gaps.length > 0
          ? `verify found ${gaps.length} lock gap${gaps.length === 1 ? '' : 's'} in ${job.repository}, first ${first.object}: ${first.message}`
          : `verify found ${result.problems.length} problem${result.problems.length === 1 ? '' : 's'} in ${job.repository}, first ${first.object}: ${first.message}`,
      hint: `run \`amber verify --repo ${repositoryOf(context.config, job.repository).repo}\` for the whole list`,
    },
    details: { problems: result.problems.slice(0, 20), lockGaps: gaps.length },
  };
}

/** copy.lag once when the bound is first exceeded, copy.lag.recovered once when it holds again. */
function checkLag(context: JobContext, job: Extract<Job, { kind: 'copy' }>, state: JobState): void {
  const maxLagMs = job.copy.maxLagMs;
  if (maxLagMs === undefined || state.lagSeconds === undefined) return;
  const over = state.lagSeconds * 1000 > maxLagMs;
  if (over === Boolean(state.lagExceeded)) return;
  state.lagExceeded = over;
  const details = { lagSeconds: state.lagSeconds, maxLagSeconds: maxLagMs / 1000 };
  context.log(over ? 'warn' : 'info', over ? 'copy lag exceeded' : 'copy lag within its bound again', {
    job: job.id,
    ...details,
  });
  context.notify({
    ...event(
      context,
      over ? 'copy.lag' : 'copy.lag.recovered',
      job,
      over
        ? `copy ${job.name} lags ${state.lagSeconds} s behind ${job.copy.from}, more than its bound of ${maxLagMs / 1000} s`
        : `copy ${job.name} is within its lag bound again (${state.lagSeconds} s)`,
    ),
    code: over ? 'COPY_LAG' : undefined,
    details,
  });
}

function record(context: JobContext, job: Job, state: JobState, outcome: JobOutcome): void {
  const { log } = context;
  const durationSeconds = (outcome.endMs - outcome.startMs) / 1000;
  state.totals.runs++;
  if (outcome.status === 'failed') {
    const { code, message } = outcome.error!;
    state.lastFailure = { startMs: outcome.startMs, endMs: outcome.endMs, code, message };
    state.consecutiveFailures++;
    state.totals.failures[code] = (state.totals.failures[code] ?? 0) + 1;
    log('error', `${job.kind} failed`, {
      job: job.id,
      code,
      error: message,
      hint: outcome.error?.hint,
      durationSeconds,
    });
    context.notify({
      ...event(
        context,
        job.kind === 'backup'
          ? 'backup.failed'
          : job.kind === 'copy'
            ? 'copy.failed'
            : job.kind === 'drill'
              ? 'drill.failed'
              : outcome.error?.code === 'LOCK_GAP'
                ? 'verify.lock-gap'
                : 'verify.failed',
        job,
        `${job.kind} of ${job.name} failed: ${message}`,
      ),
      code,
      details: { ...outcome.details, hint: outcome.error?.hint, failuresInARow: state.consecutiveFailures },
    });
  } else if (outcome.status !== 'busy') {
    state.lastSuccess = {
      startMs: outcome.startMs,
      endMs: outcome.endMs,
      snapshot: outcome.snapshot,
      partial: outcome.status === 'partial' || undefined,
      bytesAdded: outcome.bytesAdded,
      tier: outcome.tier,
      copied: outcome.copied,
    };
    state.consecutiveFailures = 0;
    state.totals.bytesAdded += outcome.bytesAdded ?? 0;
    if (outcome.status === 'partial') {
      const code = outcome.error?.code ?? 'BACKUP_PARTIAL';
      state.totals.failures[code] = (state.totals.failures[code] ?? 0) + 1;
    }
    const fields = {
      job: job.id,
      snapshot: outcome.snapshot,
      tier: outcome.tier,
      lockDays: outcome.retainMs === undefined ? undefined : outcome.retainMs / 86_400_000,
      bytesAdded: outcome.bytesAdded,
      copied: outcome.copied,
      durationSeconds,
    };
    log(outcome.status === 'partial' ? 'warn' : 'info', `${job.kind} ${outcome.status}`, fields);
    if (job.kind === 'check') return void writeJobState(context.stateDir, job.id, keepRpoMark(context, job, state));
    if (job.kind === 'drill') {
      state.drillOverdue = false;
      context.notify({
        ...event(context, 'drill.passed', job, `the drill of ${job.of.name} passed`),
        details: { ...outcome.details, durationSeconds },
      });
      return void writeJobState(context.stateDir, job.id, keepRpoMark(context, job, state));
    }
    const type =
      job.kind === 'backup'
        ? outcome.status === 'partial'
          ? 'backup.partial'
          : 'backup.succeeded'
        : outcome.status === 'partial'
          ? 'copy.failed'
          : 'copy.succeeded';
    context.notify({
      ...event(
        context,
        type,
        job,
        outcome.status === 'partial'
          ? job.kind === 'backup'
            ? `backup of ${job.name} finished incomplete: ${outcome.warnings} warning(s), see the agent's log`
            : `copy ${job.name}: ${outcome.error?.message}`
          : `${job.kind} of ${job.name} succeeded`,
      ),
      code: outcome.error?.code ?? (type === 'backup.partial' ? 'BACKUP_PARTIAL' : undefined),
      details: {
        ...event(context, type, job, '').details,
        snapshot: outcome.snapshot,
        tier: outcome.tier,
        bytesAdded: outcome.bytesAdded,
        copied: outcome.copied,
        durationSeconds,
      },
    });
  }
  writeJobState(context.stateDir, job.id, keepRpoMark(context, job, state));
}

/** The RPO watch may have marked the objective missed while this run went on: keep its mark. */
function keepRpoMark(context: JobContext, job: Job, state: JobState): JobState {
  state.rpoMissed = readJobState(context.stateDir, job.id).rpoMissed;
  return state;
}

export function event(context: JobContext, type: AmberEvent['type'], job: Job, message: string): AmberEvent {
  return {
    type,
    time: isoDate(context.clock.nowMs()),
    ...(job.kind === 'backup'
      ? { source: job.source.name, repository: job.source.repository }
      : job.kind === 'drill'
        ? { source: job.of.name, repository: job.of.repository }
        : job.kind === 'copy'
          ? { source: job.after, repository: job.copy.to, details: { copy: job.name, from: job.copy.from } }
          : { repository: job.repository }),
    message,
  };
}
