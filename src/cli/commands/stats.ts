import type { Command } from 'commander';
import { resolve } from 'node:path';
import { shortId } from '../../core/ids.ts';
import { formatBytes, formatTime } from '../../core/units.ts';
import { matchesFilter } from '../../engine/snapshot-filter.ts';
import { findSnapshot, listSnapshots } from '../../engine/snapshots.ts';
import { collectStats, type Stats } from '../../engine/stats.ts';
import { createBlobReader } from '../../repo/blob-reader.ts';
import { loadIndex } from '../../repo/index-loader.ts';
import { displayOfSourceUrl, isSourceUrl } from '../../source/source-url.ts';
import { type CliContext, openOp, print } from '../context.ts';

const collect = (value: string, previous: string[]) => [...previous, value];

export function registerStats(program: Command, context: CliContext): void {
  program
    .command('stats')
    .description('restore size, raw data after dedup and stored size, per snapshot, host and repository; and the locks')
    .argument('[snapshot...]', 'only these snapshots (default: every one the filters leave)')
    .option('--host <name>', 'only snapshots of this host (repeatable)', collect, [])
    .option('--tag <tags>', 'only snapshots with these tags, comma-separated for all (repeatable: any)', collect, [])
    .option('--path <path>', 'only snapshots of this path or source URL (repeatable)', collect, [])
    .addHelpText(
      'after',
      `
Restore size is what a restore writes; raw data is what the snapshots need with each chunk counted
once (what deduplication leaves); stored is that as it sits in the repository, compressed and
encrypted. Locks lists how many snapshots are locked until each day.

Examples:
  amber stats
  amber stats --host db1 --json
  amber stats latest`,
    )
    .action(async (refs: string[], flags: { host: string[]; tag: string[]; path: string[] }) => {
      const repo = await openOp(context);
      const filter = {
        hosts: flags.host,
        tags: flags.tag,
        paths: flags.path.map((p) => (isSourceUrl(p) ? displayOfSourceUrl(p) : resolve(p))),
      };
      const entries = refs.length
        ? await Promise.all(refs.map((ref) => findSnapshot(repo, ref)))
        : (await listSnapshots(repo)).filter(({ snapshot }) => matchesFilter(snapshot, filter));
      const { index } = await loadIndex(repo);
      const stats = await collectStats(createBlobReader(repo, index), index, entries);
      print(context, stats, render);
    });
}

function render(stats: Stats): string {
  const r = stats.repository;
  const lines = stats.snapshots.map(
    (s) =>
      `${shortId(s.id)}  ${formatTime(s.time)}  ${s.host}  ${String(s.files).padStart(8)} files  ${formatBytes(s.restoreBytes).padStart(10)}${s.lockedUntil ? `  locked until ${s.lockedUntil.slice(0, 10)} (${s.lockMode})` : ''}`,
  );
  lines.push('');
  for (const [host, h] of Object.entries(stats.hosts))
    lines.push(
      `host ${host}: ${h.snapshots} snapshot(s), restore size ${formatBytes(h.restoreBytes)}, raw data ${formatBytes(h.rawBytes)} (and ${formatBytes(h.treeBytes)} of trees), stored ${formatBytes(h.storedBytes)}`,
    );
  lines.push(
    `repository: ${r.snapshots} snapshot(s), restore size ${formatBytes(r.restoreBytes)}, raw data ${formatBytes(r.rawBytes)} in ${r.blobs} chunks (and ${formatBytes(r.treeBytes)} of trees), stored ${formatBytes(r.storedBytes)}${r.dedupRatio ? `, dedup ${r.dedupRatio.toFixed(1)}×` : ''}`,
  );
  for (const lock of stats.locks)
    lines.push(`locked until ${lock.until} (${lock.mode}): ${lock.snapshots} snapshot(s)`);
  return lines.join('\n');
}
