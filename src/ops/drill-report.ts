// The drill report: per source, when it was last restored in full, how long that took and whether
// it met its RTO, as JSON, CSV or one self-contained HTML page (inline styles and an SVG chart of
// the RTO over time against the objective; no script, no network: it opens offline, in a mail
// client or an auditor's archive).
import { AMBER_VERSION } from '../core/version.ts';
import type { DrillListing, ListedDrill } from './drill-records.ts';

export interface SourceSummary {
  source: string;
  drills: number;
  passed: number;
  failed: number;
  lastDrill: string;
  lastPassed: string | null;
  lastRtoSeconds: number;
  rtoObjectiveSeconds: number | null;
  /** Whether the newest drill of the source passed (a failed check, a byte that differed, the RTO missed fail it). */
  lastResult: 'passed' | 'failed';
}

export interface DrillReport {
  generated: string;
  repository: string;
  since: string | null;
  sources: SourceSummary[];
  drills: ListedDrill[];
  tampered: DrillListing['tampered'];
  auditProblems: number;
}

export function buildReport(
  listing: DrillListing,
  options: { repository: string; nowMs: number; sinceMs?: number },
): DrillReport {
  const bySource = new Map<string, ListedDrill[]>();
  for (const drill of listing.drills) bySource.set(drill.source, [...(bySource.get(drill.source) ?? []), drill]);
  const sources = [...bySource].map(([source, drills]): SourceSummary => {
    const sorted = [...drills].sort((a, b) => (a.time < b.time ? -1 : 1));
    const last = sorted.at(-1)!;
    const lastPassed = sorted.filter((d) => d.passed).at(-1);
    return {
      source,
      drills: sorted.length,
      passed: sorted.filter((d) => d.passed).length,
      failed: sorted.filter((d) => !d.passed).length,
      lastDrill: last.time,
      lastPassed: lastPassed?.time ?? null,
      lastRtoSeconds: last.rtoSeconds,
      rtoObjectiveSeconds: last.rtoObjectiveSeconds,
      lastResult: last.passed ? 'passed' : 'failed',
    };
  });
  return {
    generated: new Date(options.nowMs).toISOString(),
    repository: options.repository,
    since: options.sinceMs === undefined ? null : new Date(options.sinceMs).toISOString(),
    sources: sources.sort((a, b) => (a.source < b.source ? -1 : 1)),
    drills: [...listing.drills].sort((a, b) => (a.time < b.time ? 1 : -1)),
    tampered: listing.tampered,
    auditProblems: listing.auditProblems,
  };
}

const CSV_COLUMNS = [
  'id',
  'time',
  'source',
  'snapshot',
  'snapshot_time',
  'passed',
  'rto_seconds',
  'rto_objective_seconds',
  'rpo_seconds',
  'restored_bytes',
  'restored_files',
  'checks',
  'reasons',
  'signer',
] as const;

/** RFC 4180: fields with a comma, quote or line break quoted, quotes doubled; a leading =+-@, tab or CR defused for spreadsheets. */
function csvField(value: unknown): string {
  let text = value === null || value === undefined ? '' : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function renderCsv(report: DrillReport): string {
  const rows = report.drills.map((d) =>
    [
      d.id,
      d.time,
      d.source,
      d.snapshot,
      d.snapshotTime,
      d.passed,
      d.rtoSeconds,
      d.rtoObjectiveSeconds,
      d.rpoSeconds,
      d.restoredBytes,
      d.restoredFiles,
      d.checks.length,
      d.reasons.join('; '),
      d.signer,
    ]
      .map(csvField)
      .join(','),
  );
  return `${[CSV_COLUMNS.join(','), ...rows].join('\r\n')}\r\n`;
}

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const seconds = (value: number) =>
  value < 60
    ? `${value.toFixed(value < 10 ? 2 : 1)} s`
    : value < 3600
      ? `${(value / 60).toFixed(1)} min`
      : `${(value / 3600).toFixed(2)} h`;

/** RTO over time for one source: a dot per drill (green passed, red failed), the objective as a dashed line. */
function chart(source: string, drills: ListedDrill[]): string {
  const width = 560;
  const height = 160;
  const pad = { left: 56, right: 12, top: 12, bottom: 28 };
  const sorted = [...drills].sort((a, b) => (a.time < b.time ? -1 : 1));
  const times = sorted.map((d) => Date.parse(d.time));
  const objective = sorted.at(-1)?.rtoObjectiveSeconds ?? null;
  const top = Math.max(...sorted.map((d) => d.rtoSeconds), objective ?? 0) * 1.15 || 1;
  const [t0, t1] = [Math.min(...times), Math.max(...times)];
  const x = (t: number) =>
    pad.left +
    (t1 === t0 ? (width - pad.left - pad.right) / 2 : ((t - t0) / (t1 - t0)) * (width - pad.left - pad.right));
  const y = (v: number) => pad.top + (1 - v / top) * (height - pad.top - pad.bottom);
  const dots = sorted
    .map(
      (d, i) =>
        `<circle cx="${x(times[i]).toFixed(1)}" cy="${y(d.rtoSeconds).toFixed(1)}" r="4" fill="${d.passed ? '#1a7f37' : '#cf222e'}"><title>${escapeHtml(`${d.time}: ${seconds(d.rtoSeconds)}${d.passed ? '' : ' (failed)'}`)}</title></circle>`,
    )
    .join('');
  const line =
    objective === null
      ? ''
      : `<line x1="${pad.left}" x2="${width - pad.right}" y1="${y(objective).toFixed(1)}" y2="${y(objective).toFixed(1)}" stroke="#9a6700" stroke-dasharray="6 4"/><text x="${width - pad.right}" y="${(y(objective) - 4).toFixed(1)}" text-anchor="end" font-size="11" fill="#9a6700">RTO objective ${seconds(objective)}</text>`;
  const axis = `<line x1="${pad.left}" x2="${pad.left}" y1="${pad.top}" y2="${height - pad.bottom}" stroke="#888"/><line x1="${pad.left}" x2="${width - pad.right}" y1="${height - pad.bottom}" y2="${height - pad.bottom}" stroke="#888"/><text x="${pad.left - 6}" y="${pad.top + 8}" text-anchor="end" font-size="11">${seconds(top)}</text><text x="${pad.left - 6}" y="${height - pad.bottom}" text-anchor="end" font-size="11">0</text><text x="${pad.left}" y="${height - 8}" font-size="11">${escapeHtml(sorted[0]?.time.slice(0, 10) ?? '')}</text><text x="${width - pad.right}" y="${height - 8}" text-anchor="end" font-size="11">${escapeHtml(sorted.at(-1)?.time.slice(0, 10) ?? '')}</text>`;
  return `<svg class="chart" role="img" aria-label="${escapeHtml(`RTO of ${source} over time`)}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}">${axis}${line}${dots}</svg>`;
}

export function renderHtml(report: DrillReport): string {
  const rows = report.drills
    .map(
      (d) => `<tr class="${d.passed ? 'passed' : 'failed'}" data-drill="${escapeHtml(d.id)}">
<td>${escapeHtml(d.time.replace('T', ' ').slice(0, 19))}</td><td>${escapeHtml(d.source)}</td><td><code>${escapeHtml(d.snapshot.slice(0, 12))}</code></td>
<td>${d.passed ? 'passed' : 'failed'}</td><td>${seconds(d.rtoSeconds)}</td><td>${d.rtoObjectiveSeconds === null ? '—' : seconds(d.rtoObjectiveSeconds)}</td>
<td>${seconds(d.rpoSeconds)}</td><td>${d.restoredFiles}</td><td>${d.restoredBytes}</td><td>${escapeHtml(d.reasons.join('; ') || '')}</td><td><code>${escapeHtml(d.id.slice(0, 12))}</code></td></tr>`,
    )
    .join('\n');
  const summaries = report.sources
    .map(
      (s) => `<section class="source"><h2>${escapeHtml(s.source)}</h2>
<p>Last drill ${escapeHtml(s.lastDrill)}: <strong class="${s.lastResult}">${s.lastResult}</strong>, RTO ${seconds(s.lastRtoSeconds)}${s.rtoObjectiveSeconds === null ? '' : ` against ${seconds(s.rtoObjectiveSeconds)}`}. Last passed: ${escapeHtml(s.lastPassed ?? 'never')}. ${s.passed} of ${s.drills} drill(s) passed.</p>
${chart(
  s.source,
  report.drills.filter((d) => d.source === s.source),
)}</section>`,
    )
    .join('\n');
  const tampered =
    report.tampered.length === 0
      ? ''
      : `<section class="tampered"><h2>Tampered drill records</h2><ul>${report.tampered.map((t) => `<li><code>${escapeHtml(t.name)}</code>: ${escapeHtml(t.problem)} [${escapeHtml(t.code)}]</li>`).join('')}</ul></section>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Amber restore drills</title>
<meta name="generator" content="amber ${AMBER_VERSION}">
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#1f2328;max-width:1200px}
h1{font-size:1.5em;margin:0 0 .2em}h2{font-size:1.15em;margin:1.4em 0 .3em}
table{border-collapse:collapse;width:100%;margin-top:1em}th,td{border-bottom:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}tr.failed td{background:#ffebe9}.passed{color:#1a7f37}.failed{color:#cf222e}
.tampered{border:2px solid #cf222e;padding:0 1em;margin-top:1em}.meta{color:#59636e}
</style></head><body>
<h1>Restore drills</h1>
<p class="meta">Repository ${escapeHtml(report.repository)} · generated ${escapeHtml(report.generated)}${report.since ? ` · since ${escapeHtml(report.since)}` : ''} · ${report.drills.length} drill(s) · each row is a signed entry of the repository's audit log (check with <code>amber audit verify</code>)${report.auditProblems > 0 ? ` · <strong class="failed">the audit log has ${report.auditProblems} problem(s)</strong>` : ''}</p>
${tampered}
${summaries || '<p>No drills recorded in this period.</p>'}
<h2>All drills</h2>
<table><thead><tr><th>Time (UTC)</th><th>Source</th><th>Snapshot</th><th>Result</th><th>RTO</th><th>Objective</th><th>RPO</th><th>Files</th><th>Bytes</th><th>Reasons</th><th>Drill</th></tr></thead>
<tbody>
${rows}
</tbody></table>
</body></html>
`;
}
