import type { Command } from 'commander';
import { AmberError } from '../../core/errors.ts';
import { verify } from '../../engine/verify.ts';
import { type CliContext, openOp, print } from '../context.ts';
import { createProgressLine } from '../progress.ts';
import { render } from './verify.ts';

/** Repairs that write: what `amber verify`, a check, finds and leaves alone. */
export function registerRepair(program: Command, context: CliContext): void {
  const repair = program
    .command('repair')
    .description('repairs that write, for what verify finds (verify itself writes nothing)')
    .addHelpText('after', '\nExamples:\n  amber repair index --repo /srv/backups/main');
  repair
    .command('index')
    .description(
      'read every pack and re-index, under the owner key, those that read clean and no owner index names (so every key dedups against them)',
    )
    .addHelpText(
      'after',
      `
A write-only key's packs, and those of a backup that was interrupted before its index landed,
are named by no index the owner signed: no key dedups against them. amber verify counts them;
this command reads each such pack whole, checks every blob, and writes owner-signed index
objects for it. It needs the owner's key.

Examples:
  amber verify --read-data          # "12 packs read clean that no owner index names"
  amber repair index                # re-index them`,
    )
    .action(async () => {
      const repo = await openOp(context);
      if (repo.key.signer.keyId !== repo.authority.ownerKeyId)
        throw new AmberError('WRITE_ONLY_KEY', 'only the owner key signs index objects every key trusts', {
          hint: 'run amber repair index with the owner key (the key amber init made)',
        });
      const progress = createProgressLine(context.output.err, context.clock, context.output.showProgress);
      const result = await verify({
        repo,
        readDataFraction: 1,
        certify: true,
        onProgress: (state) =>
          progress.update({ bytes: state.bytesRead, label: `${state.packsRead}/${state.packsTotal} packs` }),
      });
      progress.done();
      print(context, result, render);
      if (result.problems.length > 0)
        throw new AmberError('VERIFY_FAILED', `the repository has ${result.problems.length} problem(s) besides`, {
          hint: 'each problem above names the object it hit and its repair',
        });
    });
}
