import type { Command } from 'commander';
import { initRepository } from '../../repo/repository.ts';
import { type CliContext, kdfLogN, print, repoLocation, storeFor } from '../context.ts';
import { readPassphrase } from '../passphrase.ts';

export function registerInit(program: Command, context: CliContext): void {
  program
    .command('init')
    .description('create a new repository')
    .addHelpText('after', `
Examples:
  AMBER_PASSWORD=... amber init --repo /srv/backups/main
  amber init --repo /mnt/vault --password-file ~/.amber-pass`)
    .action(async () => {
      const globals = context.globals();
      const store = storeFor(repoLocation(globals));
      const passphrase = await readPassphrase({
        envVar: 'AMBER_PASSWORD',
        file: globals.passwordFile ?? process.env.AMBER_PASSWORD_FILE,
        prompt: `new passphrase for ${store.location}: `,
        confirm: true,
      });
      const repo = await initRepository({ store, passphrase, clock: context.clock, kdfLogN: kdfLogN() });
      print(context, { repositoryId: repo.config.repositoryId, location: store.location, keyId: repo.key.keyId }, (result) =>
        `created repository ${result.repositoryId.slice(0, 8)} at ${result.location}\n` +
        'Keep the passphrase safe: without it, no one (you included) can restore anything.');
    });
}
