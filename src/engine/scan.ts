// A metadata-only walk that totals what a backup will read, so progress can show an ETA. It runs on
// its own thread beside the backup, and only on a terminal: pipes never pay for it.
import { startWorker } from './worker-pool.ts';

export interface ScanTotals {
  files: number;
  bytes: number;
  done: boolean;
}

export function scanSources(paths: string[], excludes: string[]): ScanTotals {
  const totals: ScanTotals = { files: 0, bytes: 0, done: false };
  const worker = startWorker(new URL('./scan-worker.ts', import.meta.url), { paths, excludes });
  worker.on('message', (update: ScanTotals) => Object.assign(totals, update));
  worker.on('error', () => {
    // no totals, no ETA: the backup itself is unaffected
  });
  return totals;
}
