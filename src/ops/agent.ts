// `amber agent`: runs the policy file's jobs on their schedules, one run at a time, and watches
// their objectives. A job is due by its schedule from its last successful start (a missed run is
// caught up at once after downtime), later by a random jitter of up to a tenth of its interval
// (at most 5 minutes, so many hosts do not start together), or after a failure by its retry
// backoff. One run at a time keeps memory bounded and never runs one source twice at once; the
// job's lock file keeps `amber run` from overlapping it too.
import type { Server } from 'node:http';
import type { Clock } from '../core/clock.ts';
import { formatDurationMs, isoDate } from '../core/units.ts';
import type { Log } from './agent-log.ts';
import { readJobState, writeJobState } from './agent-state.ts';
import { renderAgentMetrics, serveMetrics, writeTextfile } from './agent-metrics.ts';
import { type Job, type JobContext, type JobOutcome, event, jobsOf, runJob, scheduleOf } from './jobs.ts';
import type { AmberEvent } from './notify/event.ts';
import { type JobStanding, retryDelayMs, standingOf, standings } from './objectives.ts';
import type { PolicyConfig } from './policy-types.ts';

export interface AgentOptions {
  config: PolicyConfig;
  /** Reads the policy file again (SIGHUP). */
  reload: () => Promise<PolicyConfig>;
  stateDir: (config: PolicyConfig) => string;
  clock: Clock;
  log: Log;
  notify: (event: AmberEvent) => void;
  /** Only this kind of job: a site that runs the same file as another runs its own part. */
  only?: 'backups' | 'copies';
  /** How often the schedule is looked at; default 1 s. */
  tickMs?: number;
  random?: () => number;
}

export interface Agent {
  /** Stops starting runs; waits up to graceMs for the one in flight. True when it finished in time. */
  stop(graceMs: number): Promise<boolean>;
  reload(): Promise<void>;
  /** Runs that ended, for tests and the log. */
  readonly runs: number;
  metricsUrl?: string;
  /** The run in flight. */
  readonly running: Job | undefined;
}

const MAX_JITTER_MS = 5 * 60_000;
const TEXTFILE_EVERY_MS = 60_000;

export async function startAgent(options: AgentOptions): Promise<Agent> {
  const { clock, log } = options;
  const random = options.random ?? Math.random;
  let config = options.config;
  let jobs = selected(config);
  let server: (Server & { url: string }) | undefined;
  let running: { job: Job; done: Promise<JobOutcome> } | undefined;
  let stopping = false;
  let runs = 0;
  let textfileAtMs = 0;
  /** Per job: the due time it was planned for and the jitter added to it. */
  const plans = new Map<string, { dueMs: number; atMs: number }>();

  function selected(from: PolicyConfig): Job[] {
    return jobsOf(from).filter(
      // A repository's check belongs to both sites: each checks the repositories it names.
      (job) =>
        !options.only ||
        job.kind === 'check' ||
        (options.only === 'backups'
          ? job.kind === 'backup' || (job.kind === 'drill' && job.of.kind === 'source')
          : job.kind === 'copy' || (job.kind === 'drill' && job.of.kind === 'copy')),
    );
  }
  const stateDir = () => options.stateDir(config);
  const context = (): JobContext => ({ config, stateDir: stateDir(), clock, log, notify: options.notify });
  const metrics = () =>
    renderAgentMetrics(jobs.map((job) => standingOf(job, readJobState(stateDir(), job.id), clock.nowMs())));

  /** When the job runs next: its due time, plus a jitter drawn once per due time. */
  function planned(job: Job, nowMs: number): number {
    const standing = standingOf(job, readJobState(stateDir(), job.id), nowMs);
    const { dueMs } = standing;
    const known = plans.get(job.id);
    if (known && known.dueMs === dueMs) return known.atMs;
    const interval = scheduleOf(job).intervalMs();
    // A catch-up or first run (due now) waits for no jitter; a regular run gets one.
    const jitter = dueMs <= nowMs ? 0 : Math.floor(random() * Math.min(interval / 10, MAX_JITTER_MS));
    const atMs = dueMs + jitter;
    plans.set(job.id, { dueMs, atMs });
    const state = readJobState(stateDir(), job.id);
    if (state.nextRunMs !== atMs) {
      state.nextRunMs = atMs;
      state.sinceMs ??= nowMs;
      writeJobState(stateDir(), job.id, state);
    }
    return atMs;
  }

  /** rpo.missed when a source's age first passes its objective, rpo.recovered when it is met again. */
  function watchObjectives(nowMs: number): void {
    for (const row of standings(config, stateDir(), nowMs)) {
      if (row.job.kind === 'drill') {
        watchDrill(row);
        continue;
      }
      // A job the agent has not planned yet has no age to judge (status calls that missed).
      if (row.job.kind !== 'backup' || row.rpoMs === undefined || row.ageMs === undefined) continue;
      if (jobs.every((job) => job.id !== row.job.id)) continue;
      if (row.rpoMissed === Boolean(row.state.rpoMissed)) continue;
      const state = readJobState(stateDir(), row.job.id);
      state.rpoMissed = row.rpoMissed;
      writeJobState(stateDir(), row.job.id, state);
      const details = {
        ageSeconds: Math.round((row.ageMs ?? 0) / 1000),
        objectiveSeconds: row.rpoMs / 1000,
        lastSuccess: row.state.lastSuccess ? isoDate(row.state.lastSuccess.startMs) : null,
        lastFailure: row.state.lastFailure
          ? { time: isoDate(row.state.lastFailure.endMs), code: row.state.lastFailure.code }
          : null,
      };
      const text = row.rpoMissed
        ? `source ${row.job.name} has no recovery point for ${details.ageSeconds} s, more than its RPO of ${details.objectiveSeconds} s`
        : `source ${row.job.name} meets its RPO again`;
      log(row.rpoMissed ? 'warn' : 'info', row.rpoMissed ? 'rpo missed' : 'rpo recovered', {
        source: row.job.name,
        ...details,
      });
      options.notify({
        ...event(context(), row.rpoMissed ? 'rpo.missed' : 'rpo.recovered', row.job, text),
        code: row.rpoMissed ? 'RPO_MISSED' : undefined,
        details,
      });
    }
  }

  /** drill.overdue once when no drill of the source passed for its interval and grace; a passing drill clears it. */
  function watchDrill(row: JobStanding): void {
    if (row.job.kind !== 'drill' || row.ageMs === undefined || !row.drillOverdue || row.state.drillOverdue) return;
    if (jobs.every((job) => job.id !== row.job.id)) return;
    const state = readJobState(stateDir(), row.job.id);
    state.drillOverdue = true;
    writeJobState(stateDir(), row.job.id, state);
    const last = row.state.lastSuccess ? isoDate(row.state.lastSuccess.startMs) : null;
    const details = {
      everySeconds: row.job.drill.everyMs / 1000,
      graceSeconds: row.job.drill.graceMs / 1000,
      lastPassed: last,
      lastDrill: row.state.lastDrill ?? null,
      lastFailure: row.state.lastFailure
        ? { time: isoDate(row.state.lastFailure.endMs), code: row.state.lastFailure.code }
        : null,
    };
    log('warn', 'drill overdue', { job: row.job.id, ...details });
    options.notify({
      ...event(
        context(),
        'drill.overdue',
        row.job,
        `no drill of ${row.job.of.name} has passed ${last ? `since ${last}` : 'yet'}; drills are due every ${formatDurationMs(row.job.drill.everyMs)}`,
      ),
      code: 'DRILL_FAILED',
      details,
    });
  }

  function writeMetricsFile(nowMs: number, force: boolean): void {
    const path = config.metrics.textfile;
    if (!path || (!force && nowMs - textfileAtMs < TEXTFILE_EVERY_MS)) return;
    textfileAtMs = nowMs;
    try {
      writeTextfile(path, metrics());
    } catch (error) {
      log('error', 'cannot write the metrics textfile', { path, error: (error as Error).message });
    }
  }

  function start(job: Job): void {
    plans.delete(job.id);
    // runJob turns a failed run into an outcome, but not what fails around it (its lock or state
    // file unusable: a directory there, a full disk): that must fail this run, not end the agent
    // by an unhandled rejection with `running` never cleared.
    const settled = runJob(context(), job).catch((error: unknown): JobOutcome => {
      const nowMs = clock.nowMs();
      log('error', `${job.kind} failed: the agent's state could not be kept`, {
        job: job.id,
        error: (error as Error)?.message ?? String(error),
      });
      return { job, status: 'failed', startMs: nowMs, endMs: nowMs };
    });
    settled.then((outcome) => {
      // A run that could not even record its failure, or found its lock held, is not tried again
      // each tick: it would be first in line every time and starve every other job.
      if (outcome.status === 'busy' || (outcome.status === 'failed' && outcome.error === undefined)) {
        const failures = (heldOff.get(job.id)?.failures ?? 0) + 1;
        heldOff.set(job.id, {
          failures,
          untilMs: clock.nowMs() + retryDelayMs(failures, scheduleOf(job).intervalMs()),
        });
      } else heldOff.delete(job.id);
    });
    const done = settled.then((outcome) => {
      runs++;
      running = undefined;
      writeMetricsFile(clock.nowMs(), true);
      // A copy-to of this source runs right after each backup of it, not only on its own schedule.
      if (job.kind === 'backup' && outcome.status !== 'failed' && outcome.status !== 'busy')
        for (const follower of jobs)
          if (follower.kind === 'copy' && follower.after === job.name) queued.add(follower.id);
      return outcome;
    });
    running = { job, done };
  }

  const queued = new Set<string>();
  const heldOff = new Map<string, { failures: number; untilMs: number }>();

  /**
   * A time in a job's state later than now means the clock moved back since it was written (a bad
   * RTC at boot, a wrong NTP server): left so, a cron job would not run again and an RPO would
   * read as met until the clock caught up, perhaps a year. Such times become now, so the schedule
   * and the RPO count from the clock as it is.
   */
  function clockMovedBack(nowMs: number): void {
    for (const job of jobs) {
      const state = readJobState(stateDir(), job.id);
      const times = [state.sinceMs, state.lastStartMs, state.lastSuccess?.startMs, state.lastFailure?.endMs];
      if (!times.some((ms) => ms !== undefined && ms > nowMs)) continue;
      log('warn', "the clock is earlier than the job's last run: its times are taken as now", {
        job: job.id,
        lastStart: state.lastStartMs === undefined ? undefined : isoDate(state.lastStartMs),
      });
      const clamp = (ms: number) => Math.min(ms, nowMs);
      if (state.sinceMs !== undefined) state.sinceMs = clamp(state.sinceMs);
      if (state.lastStartMs !== undefined) state.lastStartMs = clamp(state.lastStartMs);
      if (state.lastSuccess)
        state.lastSuccess = {
          ...state.lastSuccess,
          startMs: clamp(state.lastSuccess.startMs),
          endMs: clamp(state.lastSuccess.endMs),
        };
      if (state.lastFailure)
        state.lastFailure = {
          ...state.lastFailure,
          startMs: clamp(state.lastFailure.startMs),
          endMs: clamp(state.lastFailure.endMs),
        };
      writeJobState(stateDir(), job.id, state);
    }
  }
  function tick(): void {
    if (stopping) return;
    const nowMs = clock.nowMs();
    try {
      if (!running) clockMovedBack(nowMs);
      watchObjectives(nowMs);
      writeMetricsFile(nowMs, false);
      if (running) return;
      const due = jobs
        .map((job) => ({ job, atMs: queued.has(job.id) ? nowMs : planned(job, nowMs) }))
        .filter(({ job, atMs }) => atMs <= nowMs && (heldOff.get(job.id)?.untilMs ?? 0) <= nowMs)
        .sort((a, b) => a.atMs - b.atMs);
      if (due.length === 0) return;
      queued.delete(due[0].job.id);
      start(due[0].job);
    } catch (error) {
      log('error', 'the scheduler failed a step', { error: (error as Error).message });
    }
  }

  async function listen(): Promise<void> {
    const address = config.metrics.listen;
    if (server?.listening && address === listenedOn) return;
    if (server) await new Promise<void>((resolve) => server!.close(() => resolve()));
    server = undefined;
    listenedOn = undefined;
    if (!address) return;
    server = await serveMetrics(address, metrics);
    listenedOn = address;
    log('info', 'metrics served', { url: server.url });
  }
  let listenedOn: string | undefined;

  await listen();
  log('info', 'agent started', {
    file: config.file,
    stateDir: stateDir(),
    jobs: jobs.map((job) => job.id),
    only: options.only,
  });
  for (const warning of config.warnings ?? []) log('warn', warning, { file: config.file });
  const timer = setInterval(tick, options.tickMs ?? 1000);
  tick();

  let reloading = Promise.resolve();
  async function reloadNow(): Promise<void> {
    try {
      const next = await options.reload();
      config = next;
      jobs = selected(config);
      plans.clear();
      await listen();
      log('info', 'policy file reloaded', { file: config.file, jobs: jobs.map((job) => job.id) });
      for (const warning of config.warnings ?? []) log('warn', warning, { file: config.file });
    } catch (error) {
      log('error', 'policy file not reloaded: the running policy stays in force', {
        file: config.file,
        error: (error as Error).message,
      });
    }
  }

  return {
    get runs() {
      return runs;
    },
    get running() {
      return running?.job;
    },
    get metricsUrl() {
      return server?.url;
    },
    reload() {
      // One reload at a time, in the order the signals came: a burst of SIGHUPs never interleaves.
      reloading = reloading.then(reloadNow);
      return reloading;
    },
    async stop(graceMs) {
      stopping = true;
      clearInterval(timer);
      let finished = true;
      if (running) {
        log('info', 'stopping: waiting for the run in flight', { job: running.job.id, graceSeconds: graceMs / 1000 });
        let timeout: NodeJS.Timeout | undefined;
        finished = await Promise.race([
          running.done.then(() => true),
          new Promise<boolean>((resolve) => {
            timeout = setTimeout(() => resolve(false), graceMs);
          }),
        ]);
        clearTimeout(timeout);
        if (!finished)
          log(
            'warn',
            'stopping: the run in flight is abandoned; the repository stays valid and the next start catches it up',
            {
              job: running.job.id,
            },
          );
      }
      if (server) await new Promise<void>((resolve) => server!.close(() => resolve()));
      log('info', 'agent stopped', { runs });
      return finished;
    },
  };
}
