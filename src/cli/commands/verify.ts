import type { Command } from 'commander';
import { AmberError } from '../../core/errors.ts';
import { formatBytes } from '../../core/units.ts';
import { verify, type VerifyResult } from '../../engine/verify.ts';
import { type CliContext, openOp, print } from '../context.ts';
import { createProgressLine } from '../progress.ts';

export function registerVerify(program: Command, context: CliContext): void {
  program
    .command('verify')
    .alias('check')
    .description('check the repository: structure, and with --read-data every byte (alias: check)')
    .option('--read-data', 'read and authenticate every pack and blob')
    .option('--read-data-subset <percent>', 'read a random N% of the packs, e.g. 10%')
    .addHelpText(
      'after',
      `
Examples:
  amber verify                       # every snapshot's trees and chunks are present
  amber verify --read-data           # and every byte decrypts and matches its id
  amber verify --read-data-subset 5% # a random 5 % of the packs`,
    )
    .action(async (flags: { readData?: boolean; readDataSubset?: string }) => {
      const fraction = flags.readData ? 1 : flags.readDataSubset ? parsePercent(flags.readDataSubset) : 0;
      const repo = await openOp(context);
      const progress = createProgressLine(context.output.err, context.clock, context.output.showProgress);
      const result = await verify({
        repo,
        readDataFraction: fraction,
        onProgress: (state) =>
          progress.update({ bytes: state.bytesRead, label: `${state.packsRead}/${state.packsTotal} packs` }),
      });
      progress.done();
      print(context, result, render);
      if (result.problems.length > 0) {
        throw new AmberError(
          'VERIFY_FAILED',
          `verification found ${result.problems.length} problem${result.problems.length === 1 ? '' : 's'}`,
          {
            hint: 'each problem above names the object (and blob) it hit and its repair; restore damaged or missing objects from an intact copy',
          },
        );
      }
    });
}

function parsePercent(text: string): number {
  const match = /^(\d+(?:\.\d+)?)%?$/.exec(text);
  const value = match ? Number(match[1]) : NaN;
  if (!(value > 0 && value <= 100))
    throw new AmberError('USAGE', `--read-data-subset "${text}" must be a percentage from 0 to 100, e.g. 10%`);
  return value / 100;
}

export function render(result: VerifyResult): string {
  const lines = result.problems.map(
    (problem) => `error: ${problem.message}${problem.blob ? ` [blob ${problem.blob.slice(0, 16)}]` : ''}`,
  );
  lines.push(...result.ignored.map((problem) => `warning: ${problem.message}`), ...result.notices);
  lines.push(
    `checked ${result.snapshots} snapshots, ${result.trees} trees, ${result.blobsReferenced} chunk references, ${result.packs} packs`,
    `read ${result.packsRead} packs (${formatBytes(result.bytesRead)})${result.certifiedPacks ? `, re-indexed ${result.certifiedPacks} packs under the owner key (now trusted for dedup)` : ''}`,
  );
  if (result.uncertifiedPacks)
    lines.push(
      `${result.uncertifiedPacks} packs read clean that no owner index names (a write-only key's, or an interrupted backup's): \`amber repair index\` re-indexes them so every key dedups against them`,
    );
  if (result.duplicateVersions)
    lines.push(
      `${result.duplicateVersions} objects have a second version with the same bytes (concurrent writers; harmless)`,
    );
  if (result.unreferencedPacks)
    lines.push(
      `${result.unreferencedPacks} packs are not referenced by any index (left by an interrupted backup; harmless)`,
    );
  if (result.ignored.length) {
    lines.push(
      `${result.ignored.length} unauthorised objects ignored (no key with the authority wrote them; they are not part of the repository and no damage to its backups)`,
    );
  }
  lines.push(result.problems.length ? `${result.problems.length} problems found` : 'no problems found');
  return lines.join('\n');
}
