// Where each job stands against its objectives, from the agent's state: the RPO age of a source
// (time since its newest recovery point), a copy's lag, a drill that is overdue, the next run. `amber status`, the agent's
// RPO watch and its metrics all read it from here.
import { type JobState, readJobState } from './agent-state.ts';
import { type Job, jobsOf, scheduleOf } from './jobs.ts';
import type { PolicyConfig } from './policy-types.ts';
import { nextDue } from './schedule.ts';

export interface JobStanding {
  job: Job;
  state: JobState;
  /** Time since the newest recovery point (the last successful run's start); since the agent first knew the job when none. */
  ageMs?: number;
  rpoMs?: number;
  rpoMissed: boolean;
  maxLagMs?: number;
  lagMissed: boolean;
  /** Drills: no drill passed within the interval plus its grace (or none is recorded at all). */
  drillOverdue: boolean;
  /** When the next run is due by the schedule, the last success and the retry backoff. */
  dueMs: number;
  /** When the next run is due: the agent's plan (with its jitter) when it wrote one, else dueMs. */
  nextRunMs: number;
  /** Retry backoff after failures, capped at the schedule's interval. */
  retryAtMs?: number;
}

/** The wait before retry n (n ≥ 1) of a failing job: 30 s doubling, never longer than the interval. */
export const retryDelayMs = (failures: number, intervalMs: number) =>
  Math.min(intervalMs, 30_000 * 2 ** Math.min(failures - 1, 20));

export function standingOf(job: Job, state: JobState, nowMs: number): JobStanding {
  const schedule = scheduleOf(job);
  const pointMs = state.lastSuccess?.startMs ?? state.sinceMs;
  const ageMs = pointMs === undefined ? undefined : Math.max(0, nowMs - pointMs);
  const rpoMs = job.kind === 'backup' ? job.source.rpoMs : undefined;
  const maxLagMs = job.kind === 'copy' ? job.copy.maxLagMs : undefined;
  const retryAtMs =
    state.consecutiveFailures > 0 && state.lastFailure
      ? state.lastFailure.endMs + retryDelayMs(state.consecutiveFailures, schedule.intervalMs())
      : undefined;
  const dueMs = Math.max(nextDue(schedule, state.lastSuccess?.startMs, nowMs), retryAtMs ?? 0);
  return {
    job,
    state,
    ageMs,
    rpoMs,
    // No success and no record of when the agent first knew the source (it never ran, or its
    // state is gone): nothing shows a recovery point, so the objective is not met.
    rpoMissed: rpoMs !== undefined && (ageMs === undefined || ageMs > rpoMs),
    maxLagMs,
    lagMissed: maxLagMs !== undefined && state.lagSeconds !== undefined && state.lagSeconds * 1000 > maxLagMs,
    drillOverdue: job.kind === 'drill' && (ageMs === undefined || ageMs > job.drill.everyMs + job.drill.graceMs),
    dueMs,
    nextRunMs: state.nextRunMs !== undefined && state.nextRunMs >= nowMs ? state.nextRunMs : dueMs,
    retryAtMs,
  };
}

export function standings(config: PolicyConfig, stateDir: string, nowMs: number): JobStanding[] {
  return jobsOf(config).map((job) => standingOf(job, readJobState(stateDir, job.id), nowMs));
}
