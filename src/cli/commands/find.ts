import type { Command } from 'commander';
import { resolve } from 'node:path';
import { displayName } from '../../core/byte-names.ts';
import { shortId } from '../../core/ids.ts';
import { formatBytes, formatTime } from '../../core/units.ts';
import { createFinder } from '../../engine/find.ts';
import { matchesFilter } from '../../engine/snapshot-filter.ts';
import { findSnapshot, listSnapshots } from '../../engine/snapshots.ts';
import { createBlobReader } from '../../repo/blob-reader.ts';
import { loadIndex } from '../../repo/index-loader.ts';
import { displayOfSourceUrl, isSourceUrl } from '../../source/source-url.ts';
import { type CliContext, jsonPath, openOp } from '../context.ts';

const collect = (value: string, previous: string[]) => [...previous, value];

export function registerFind(program: Command, context: CliContext): void {
  program
    .command('find')
    .description('find files and directories by pattern in every snapshot (or those named)')
    .argument('<pattern...>', "restic's patterns: a name at any depth (*.pdf), /anchored/paths, ** across levels")
    .option('--snapshot <id>', 'only this snapshot (repeatable)', collect, [])
    .option('--host <name>', 'only snapshots of this host (repeatable)', collect, [])
    .option('--tag <tags>', 'only snapshots with these tags, comma-separated for all (repeatable: any)', collect, [])
    .option('--path <path>', 'only snapshots of this path or source URL (repeatable)', collect, [])
    .addHelpText(
      'after',
      `
Each match is printed with the snapshot it is in: id, time, type, size, modification time and
path, newest snapshot first. With --json, one JSON object per line (snapshot, time, path, type,
size, mtime). A subtree with no match is read once, whatever the number of snapshots sharing it.

Examples:
  amber find '*.pdf'
  amber find /home/alice/thesis.tex --host laptop
  amber find 'docs/**/report*' --snapshot 3f2a9c1e --json`,
    )
    .action(
      async (patterns: string[], flags: { snapshot: string[]; host: string[]; tag: string[]; path: string[] }) => {
        const repo = await openOp(context);
        const filter = {
          hosts: flags.host,
          tags: flags.tag,
          paths: flags.path.map((p) => (isSourceUrl(p) ? displayOfSourceUrl(p) : resolve(p))),
        };
        const chosen = flags.snapshot.length
          ? await Promise.all(flags.snapshot.map((ref) => findSnapshot(repo, ref)))
          : (await listSnapshots(repo)).filter(({ snapshot }) => matchesFilter(snapshot, filter));
        const { index } = await loadIndex(repo);
        const finder = createFinder(createBlobReader(repo, index), patterns);
        const json = context.globals().json === true;
        const out = context.output.out;
        let hits = 0;
        for (const entry of [...chosen].reverse()) {
          await finder.find(entry.snapshot.tree, ({ path, node }) => {
            hits += 1;
            const mtime = new Date(Number(BigInt(node.mtimeNs) / 1_000_000n));
            if (json)
              out.write(
                `${JSON.stringify({ snapshot: entry.id, time: entry.snapshot.time, ...jsonPath(path), type: node.type, size: node.type === 'file' ? node.sizeBytes : null, mtime: mtime.toISOString() })}\n`,
              );
            else
              out.write(
                `${shortId(entry.id)}  ${formatTime(entry.snapshot.time)}  ${node.type.padEnd(7)} ${(node.type === 'file' ? formatBytes(node.sizeBytes) : '').padStart(10)}  ${formatTime(mtime.getTime())}  ${displayName(path)}\n`,
              );
          });
        }
        if (!json && !context.globals().quiet)
          context.output.err.write(
            `${hits} match${hits === 1 ? '' : 'es'} in ${chosen.length} snapshot${chosen.length === 1 ? '' : 's'}\n`,
          );
      },
    );
}
