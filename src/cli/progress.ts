// A one-line progress display on a terminal: counts, bytes, rate and, when a total is known, ETA.
import { displayName } from '../core/byte-names.ts';
import { formatBytes, formatDurationMs } from '../core/units.ts';
import type { Clock } from '../core/clock.ts';

export interface ProgressLine {
  update(state: { files?: number; bytes: number; totalBytes?: number; label?: string }): void;
  done(): void;
}

const REDRAW_MS = 200;

export function createProgressLine(stream: NodeJS.WritableStream, clock: Clock, enabled: boolean): ProgressLine {
  const started = clock.monotonicMs();
  let lastDraw = 0;
  let drawn = false;
  if (!enabled) return { update() {}, done() {} };
  return {
    update({ files, bytes, totalBytes, label }) {
      const now = clock.monotonicMs();
      if (now - lastDraw < REDRAW_MS) return;
      lastDraw = now;
      const elapsedMs = now - started;
      const rate = elapsedMs > 0 ? (bytes / elapsedMs) * 1000 : 0;
      const parts = [`[${formatDurationMs(elapsedMs)}]`];
      if (files !== undefined) parts.push(`${files} files`);
      parts.push(totalBytes ? `${formatBytes(bytes)} / ${formatBytes(totalBytes)}` : formatBytes(bytes));
      parts.push(`${formatBytes(rate)}/s`);
      if (totalBytes && rate > 0 && totalBytes > bytes)
        parts.push(`ETA ${formatDurationMs(((totalBytes - bytes) / rate) * 1000)}`);
      let line = parts.join('  ');
      const width = (stream as NodeJS.WriteStream).columns ?? 100;
      if (label) line = `${line}  ${displayName(label)}`;
      stream.write(`\r\x1b[K${line.slice(0, width - 1)}`);
      drawn = true;
    },
    done() {
      if (drawn) stream.write('\r\x1b[K');
    },
  };
}
