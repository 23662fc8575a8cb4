// The agent's Prometheus metrics, made from the job states at each scrape (or textfile write), so
// `amber run` and the agent report the same numbers. Names follow Prometheus conventions: base
// units (seconds, bytes), `_total` for counters, `_timestamp_seconds` for Unix times.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createServer, type Server } from 'node:http';
import { AmberError } from '../core/errors.ts';
import { AMBER_VERSION } from '../core/version.ts';
import type { JobStanding } from './objectives.ts';
import { type Family, renderFamilies } from './prometheus-text.ts';

const seconds = (ms: number) => ms / 1000;

export function agentFamilies(rows: JobStanding[]): Family[] {
  const backups = rows.filter((row) => row.job.kind === 'backup');
  const copies = rows.filter((row) => row.job.kind === 'copy');
  const checks = rows.filter((row) => row.job.kind === 'check');
  const drills = rows.filter((row) => row.job.kind === 'drill');
  const drillSource = (row: JobStanding) => ({ source: row.job.kind === 'drill' ? row.job.of.name : row.job.name });
  const check = (row: JobStanding) => ({ repository: row.job.kind === 'check' ? row.job.repository : '' });
  const source = (row: JobStanding) => ({ source: row.job.name });
  const copy = (row: JobStanding) => ({ copy: row.job.name });
  const gauge = (name: string, help: string, samples: Family['samples']): Family => ({
    name,
    help,
    type: 'gauge',
    samples,
  });
  const counter = (name: string, help: string, samples: Family['samples']): Family => ({
    name,
    help,
    type: 'counter',
    samples,
  });
  const failures = (row: JobStanding, labels: Record<string, string>) =>
    Object.entries(row.state.totals.failures).map(([code, value]) => ({ labels: { ...labels, code }, value }));
  return [
    gauge('amber_agent_info', 'The running Amber version.', [{ labels: { version: AMBER_VERSION }, value: 1 }]),
    gauge(
      'amber_backup_last_success_timestamp_seconds',
      'When the newest successful backup of the source started (its recovery point).',
      backups.flatMap((row) =>
        row.state.lastSuccess ? [{ labels: source(row), value: seconds(row.state.lastSuccess.startMs) }] : [],
      ),
    ),
    gauge(
      'amber_backup_last_failure_timestamp_seconds',
      'When the last failed backup of the source ended.',
      backups.flatMap((row) =>
        row.state.lastFailure ? [{ labels: source(row), value: seconds(row.state.lastFailure.endMs) }] : [],
      ),
    ),
    gauge(
      'amber_backup_duration_seconds',
      'How long the last successful backup of the source took.',
      backups.flatMap((row) =>
        row.state.lastSuccess
          ? [{ labels: source(row), value: seconds(row.state.lastSuccess.endMs - row.state.lastSuccess.startMs) }]
          : [],
      ),
    ),
    counter(
      'amber_backup_bytes_added_total',
      'New data the source’s backups added to the repository, before compression.',
      backups.map((row) => ({ labels: source(row), value: row.state.totals.bytesAdded })),
    ),
    counter(
      'amber_backup_runs_total',
      'Backup runs of the source that ended (succeeded, partial or failed).',
      backups.map((row) => ({ labels: source(row), value: row.state.totals.runs })),
    ),
    counter(
      'amber_backup_failures_total',
      'Backup runs of the source that failed or were incomplete, by error code.',
      backups.flatMap((row) => failures(row, source(row))),
    ),
    gauge(
      'amber_rpo_objective_seconds',
      'The source’s recovery point objective.',
      backups.flatMap((row) => (row.rpoMs === undefined ? [] : [{ labels: source(row), value: seconds(row.rpoMs) }])),
    ),
    gauge(
      'amber_rpo_age_seconds',
      'Time since the source’s newest recovery point (since the agent first knew it, when it has none).',
      backups.flatMap((row) => (row.ageMs === undefined ? [] : [{ labels: source(row), value: seconds(row.ageMs) }])),
    ),
    gauge(
      'amber_rpo_missed',
      '1 when the source’s RPO age is above its objective.',
      backups.flatMap((row) =>
        row.rpoMs === undefined ? [] : [{ labels: source(row), value: row.rpoMissed ? 1 : 0 }],
      ),
    ),
    gauge(
      'amber_next_run_timestamp_seconds',
      'When the agent runs the job next.',
      rows.map((row) => ({
        labels:
          row.job.kind === 'backup'
            ? source(row)
            : row.job.kind === 'copy'
              ? copy(row)
              : row.job.kind === 'drill'
                ? { drill: drillSource(row).source }
                : check(row),
        value: seconds(row.nextRunMs),
      })),
    ),
    gauge(
      'amber_copy_last_success_timestamp_seconds',
      'When the last successful copy run started.',
      copies.flatMap((row) =>
        row.state.lastSuccess ? [{ labels: copy(row), value: seconds(row.state.lastSuccess.startMs) }] : [],
      ),
    ),
    gauge(
      'amber_copy_lag_seconds',
      'How long the primary has held a snapshot the copy lacks, at the last copy run (0: none).',
      copies.flatMap((row) =>
        row.state.lagSeconds === undefined ? [] : [{ labels: copy(row), value: row.state.lagSeconds }],
      ),
    ),
    gauge(
      'amber_copy_max_lag_seconds',
      'The copy’s lag bound.',
      copies.flatMap((row) =>
        row.maxLagMs === undefined ? [] : [{ labels: copy(row), value: seconds(row.maxLagMs) }],
      ),
    ),
    gauge(
      'amber_check_last_success_timestamp_seconds',
      'When the last check of the repository (verify and pending approvals) that found nothing wrong started.',
      checks.flatMap((row) =>
        row.state.lastSuccess ? [{ labels: check(row), value: seconds(row.state.lastSuccess.startMs) }] : [],
      ),
    ),
    counter(
      'amber_check_failures_total',
      'Checks of the repository that found a lock gap (LOCK_GAP), damage (VERIFY_FAILED) or could not run, by code.',
      checks.flatMap((row) => failures(row, check(row))),
    ),
    gauge(
      'amber_drill_last_success_timestamp_seconds',
      'When the last restore drill of the source that passed started.',
      drills.flatMap((row) =>
        row.state.lastSuccess ? [{ labels: drillSource(row), value: seconds(row.state.lastSuccess.startMs) }] : [],
      ),
    ),
    gauge(
      'amber_drill_rto_seconds',
      'The RTO the last drill of the source achieved: from its start to the end of the verify.',
      drills.flatMap((row) =>
        row.state.lastDrill ? [{ labels: drillSource(row), value: row.state.lastDrill.rtoSeconds }] : [],
      ),
    ),
    gauge(
      'amber_rto_objective_seconds',
      'The source’s recovery time objective.',
      drills.flatMap((row) =>
        row.job.kind === 'drill' && row.job.of.rtoMs !== undefined
          ? [{ labels: drillSource(row), value: seconds(row.job.of.rtoMs) }]
          : [],
      ),
    ),
    gauge(
      'amber_drill_overdue',
      '1 while no drill of the source passed within its interval and grace.',
      drills.map((row) => ({ labels: drillSource(row), value: row.drillOverdue ? 1 : 0 })),
    ),
    counter(
      'amber_drill_failures_total',
      'Drills of the source that failed (a restore error, a difference, a check, the RTO), by code.',
      drills.flatMap((row) => failures(row, drillSource(row))),
    ),
    counter(
      'amber_copy_failures_total',
      'Copy runs that failed or left snapshots out, by error code.',
      copies.flatMap((row) => failures(row, copy(row))),
    ),
  ];
}

export const renderAgentMetrics = (rows: JobStanding[]) => renderFamilies(agentFamilies(rows));

/** A node-exporter textfile: written whole to a temporary name and renamed, so a scrape never reads half. */
export function writeTextfile(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, text, { mode: 0o644 });
  renameSync(temporary, path);
}

/** Serves GET /metrics on `listen` (host:port). */
export async function serveMetrics(listen: string, render: () => string): Promise<Server & { url: string }> {
  const match = /^(.*):(\d+)$/.exec(listen);
  if (!match) throw new AmberError('USAGE', `metrics.listen ${listen} is not host:port, e.g. 127.0.0.1:9464`);
  const host = match[1].replace(/^\[(.*)\]$/, '$1');
  const server = createServer((req, res) => {
    if (req.method === 'GET' && (req.url === '/metrics' || req.url?.startsWith('/metrics?'))) {
      res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(render());
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found: the metrics are at /metrics\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new AmberError('USAGE', `cannot listen on ${listen} for metrics: ${error.code ?? error.message}`, {
          hint: 'choose another metrics.listen address, or stop what holds that port',
        }),
      ),
    );
    server.listen(Number(match[2]), host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : Number(match[2]);
  return Object.assign(server, { url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/metrics` });
}
