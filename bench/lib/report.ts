// Samples, medians and the printed table. Ratios of time are restic / Amber (Amber's speed-up: >1
// means Amber is faster); ratios of size are Amber / restic (<1 means Amber's repository is smaller).
import type { BackupCounts, CopyCounts, ToolName } from './tools.ts';

export const PHASES = [
  'init',
  'open',
  'initial',
  'no-change',
  'incremental',
  'restore',
  'verify',
  'copy-init',
  'copy',
  'copy-no-change',
] as const;
export type Phase = (typeof PHASES)[number];

export const PHASE_LABELS: Record<Phase, string> = {
  init: 'init',
  open: 'open (snapshots; KDF)',
  initial: 'initial backup',
  'no-change': 'no-change backup',
  incremental: 'backup after 5 % change',
  restore: 'full restore',
  verify: 'verify --read-data',
  'copy-init': 'init --from-repo (copy)',
  copy: 'copy of 3 snapshots',
  'copy-no-change': 'copy, nothing new',
};

/** The targets for Amber's speed-up over restic. */
export const TARGETS: Partial<Record<Phase, number>> = {
  initial: 3,
  'no-change': 5,
  incremental: 3,
  restore: 2,
  verify: 2,
  copy: 2,
};

export const SIZE_POINTS = ['afterInitial', 'afterIncremental', 'copy'] as const;
export type SizePoint = (typeof SIZE_POINTS)[number];

export interface Sample {
  rep: number;
  /** 1 if this tool ran first in its phase in this repetition, 2 if second. */
  order: number;
  seconds: number;
  peakRssBytes: number | null;
  counts?: BackupCounts;
  copyCounts?: CopyCounts;
}

export interface PhaseMedians {
  amberSeconds: number | null;
  resticSeconds: number | null;
  /** restic seconds / Amber seconds. */
  speedup: number | null;
  target: number | null;
  amberPeakRssBytes: number | null;
  resticPeakRssBytes: number | null;
}

export interface SizeMedians {
  amberBytes: number | null;
  resticBytes: number | null;
  /** Amber bytes / restic bytes. */
  ratio: number | null;
}

export type Samples = Record<Phase, Record<ToolName, Sample[]>>;
export type SizeSamples = Record<SizePoint, Record<ToolName, number[]>>;

export function emptySamples(): Samples {
  return Object.fromEntries(PHASES.map((phase) => [phase, { amber: [], restic: [] }])) as unknown as Samples;
}

export function emptySizes(): SizeSamples {
  return Object.fromEntries(SIZE_POINTS.map((point) => [point, { amber: [], restic: [] }])) as unknown as SizeSamples;
}

export function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

const maxOf = (values: (number | null)[]): number | null => {
  const known = values.filter((v): v is number => v !== null);
  return known.length ? Math.max(...known) : null;
};
const ratio = (a: number | null, b: number | null) => (a !== null && b !== null && b > 0 ? a / b : null);

export function phaseMedians(samples: Samples): Record<Phase, PhaseMedians> {
  const result = {} as Record<Phase, PhaseMedians>;
  for (const phase of PHASES) {
    const amberSeconds = median(samples[phase].amber.map((s) => s.seconds));
    const resticSeconds = median(samples[phase].restic.map((s) => s.seconds));
    result[phase] = {
      amberSeconds,
      resticSeconds,
      speedup: ratio(resticSeconds, amberSeconds),
      target: TARGETS[phase] ?? null,
      amberPeakRssBytes: maxOf(samples[phase].amber.map((s) => s.peakRssBytes)),
      resticPeakRssBytes: maxOf(samples[phase].restic.map((s) => s.peakRssBytes)),
    };
  }
  return result;
}

export function sizeMedians(sizes: SizeSamples): Record<SizePoint, SizeMedians> {
  const result = {} as Record<SizePoint, SizeMedians>;
  for (const point of SIZE_POINTS) {
    const amberBytes = median(sizes[point].amber);
    const resticBytes = median(sizes[point].restic);
    result[point] = { amberBytes, resticBytes, ratio: ratio(amberBytes, resticBytes) };
  }
  return result;
}

export function formatBytes(bytes: number | null): string {
  if (bytes === null) return 'n/a';
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024).toFixed(0)} KiB`;
}

const seconds = (value: number | null) => (value === null ? 'n/a' : value.toFixed(2));
const times = (value: number | null) => (value === null ? 'n/a' : `${value.toFixed(2)}×`);

function table(rows: string[][], rightAligned: boolean[]): string {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  return rows
    .map((row) =>
      row
        .map((cell, column) => (rightAligned[column] ? cell.padStart(widths[column]) : cell.padEnd(widths[column])))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function renderTables(phases: Record<Phase, PhaseMedians>, sizes: Record<SizePoint, SizeMedians>): string {
  const phaseRows = [['phase', 'Amber s', 'restic s', 'speed-up', 'target', 'Amber peak RSS', 'restic peak RSS']];
  for (const phase of PHASES) {
    const m = phases[phase];
    const met = m.target && m.speedup !== null ? (m.speedup >= m.target ? ' ok' : ' short') : '';
    phaseRows.push([
      PHASE_LABELS[phase],
      seconds(m.amberSeconds),
      seconds(m.resticSeconds),
      times(m.speedup),
      m.target ? `≥${m.target}×${met}` : '',
      formatBytes(m.amberPeakRssBytes),
      formatBytes(m.resticPeakRssBytes),
    ]);
  }
  const sizeRows = [['repository size (du -sb)', 'Amber', 'restic', 'Amber/restic']];
  const labels: Record<SizePoint, string> = {
    afterInitial: 'after initial backup',
    afterIncremental: 'after 5 % backup (3 snapshots)',
    copy: 'copy of those 3 snapshots',
  };
  for (const point of SIZE_POINTS) {
    const m = sizes[point];
    sizeRows.push([
      labels[point],
      formatBytes(m.amberBytes),
      formatBytes(m.resticBytes),
      m.ratio === null ? 'n/a' : m.ratio.toFixed(3),
    ]);
  }
  return `${table(phaseRows, [false, true, true, true, false, true, true])}\n\n${table(sizeRows, [false, true, true, true])}`;
}
