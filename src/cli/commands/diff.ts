import type { Command } from 'commander';
import { formatBytes } from '../../core/units.ts';
import { shortId } from '../../core/ids.ts';
import { displayName } from '../../core/byte-names.ts';
import { findSnapshot } from '../../engine/snapshots.ts';
import { type DiffEntry, diffSnapshots } from '../../engine/snapshot-diff.ts';
import { loadIndex } from '../../repo/index-loader.ts';
import { createBlobReader } from '../../repo/blob-reader.ts';
import { type CliContext, jsonPath, openOp } from '../context.ts';

const MARK = { added: '+', removed: '-', changed: 'M' } as const;

export function registerDiff(program: Command, context: CliContext): void {
  program
    .command('diff')
    .description('what changed between two snapshots: paths added, removed and changed, with sizes')
    .argument('<snapshot1>', 'the earlier snapshot (id, prefix or "latest")')
    .argument('<snapshot2>', 'the later snapshot')
    .addHelpText(
      'after',
      `
Each line is "+" (added), "-" (removed) or "M" (changed: content, type, mode, owner, mtime,
symlink target or xattrs, as named) and the path; a summary ends the list. With --json, one JSON
object per line (kind, path, type, sizeBefore, sizeAfter, what), then {"totals": …}.

Examples:
  amber diff 3f2a9c1e latest
  amber diff 3f2a9c1e 7b0d44aa --json | jq -r 'select(.kind == "removed") | .path'`,
    )
    .action(async (first: string, second: string) => {
      const repo = await openOp(context);
      const [a, b] = [await findSnapshot(repo, first), await findSnapshot(repo, second)];
      const { index } = await loadIndex(repo);
      const reader = createBlobReader(repo, index);
      const json = context.globals().json === true;
      const out = context.output.out;
      const line = (entry: DiffEntry) => {
        if (json) out.write(`${JSON.stringify({ ...entry, ...jsonPath(entry.path) })}\n`);
        else if (!context.globals().quiet)
          out.write(
            `${MARK[entry.kind]}  ${displayName(entry.path)}${entry.type === 'dir' ? '/' : ''}${entry.what ? `  (${entry.what.join(', ')})` : ''}\n`,
          );
      };
      const totals = await diffSnapshots(reader, a.snapshot.tree, b.snapshot.tree, line);
      if (json) out.write(`${JSON.stringify({ totals, from: a.id, to: b.id })}\n`);
      else
        out.write(
          `${shortId(a.id)} → ${shortId(b.id)}: ${totals.added} added, ${totals.removed} removed, ${totals.changed} changed; ${formatBytes(totals.bytesAdded)} added, ${formatBytes(totals.bytesRemoved)} removed\n`,
        );
    });
}
