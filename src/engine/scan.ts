// A metadata-only walk that totals what a backup will read, so progress can show an ETA.
// It runs beside the backup on a terminal only; pipes never pay for it.
import { promises as fs } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ExcludeMatcher } from '../source/excludes.ts';

export interface ScanTotals {
  files: number;
  bytes: number;
  done: boolean;
}

export function scanSources(paths: string[], exclude: ExcludeMatcher): ScanTotals {
  const totals: ScanTotals = { files: 0, bytes: 0, done: false };
  const visit = async (path: string): Promise<void> => {
    const stats = await fs.lstat(path).catch(() => undefined);
    if (!stats) return;
    if (stats.isFile()) {
      totals.files += 1;
      totals.bytes += stats.size;
    } else if (stats.isDirectory()) {
      const names = await fs.readdir(path).catch(() => [] as string[]);
      for (const name of names) {
        const child = join(path, name);
        const isDir = (await fs.lstat(child).catch(() => undefined))?.isDirectory() ?? false;
        if (!exclude(child, name, isDir)) await visit(child);
      }
    }
  };
  void (async () => {
    for (const path of paths) await visit(resolve(path));
    totals.done = true;
  })();
  return totals;
}
