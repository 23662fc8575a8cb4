import type { Command } from 'commander';
import { formatTime } from '../../core/units.ts';
import { shortId } from '../../core/ids.ts';
import { addKey, listKeys, revokeKey, rotateKey, type KeyListing } from '../../protection/key-admin.ts';
import { type CliContext, kdfLogN, openOp, print } from '../context.ts';
import { readPassphrase } from '../passphrase.ts';

export function registerKey(program: Command, context: CliContext): void {
  const key = program
    .command('key')
    .description('manage the keys that open the repository')
    .addHelpText(
      'after',
      `
Examples:
  AMBER_NEW_PASSWORD=... amber key add --write-only --label laptop-backup
  amber key list
  amber key revoke 3f2a9c1e --reason "laptop stolen"
  amber key rotate`,
    );

  key
    .command('add')
    .description('add a passphrase-protected key (full access, or write-only for backup clients)')
    .option('--write-only', 'the key can add backups but cannot read, restore or list anything')
    .option('--label <text>', 'a note to recognise the key by', '')
    .option(
      '--new-password-file <file>',
      "read the new key's passphrase from a file (else AMBER_NEW_PASSWORD or a prompt)",
    )
    .addHelpText(
      'after',
      `
Examples:
  AMBER_NEW_PASSWORD=... amber key add --label alice
  amber key add --write-only --label db1 --new-password-file /root/db1.pass`,
    )
    .action(async (flags: { writeOnly?: boolean; label: string; newPasswordFile?: string }) => {
      const repo = await openOp(context);
      const passphrase = await readPassphrase({
        envVar: 'AMBER_NEW_PASSWORD',
        file: flags.newPasswordFile,
        prompt: 'passphrase for the new key: ',
        confirm: true,
      });
      const added = await addKey(repo, {
        passphrase,
        role: flags.writeOnly ? 'write-only' : 'full',
        label: flags.label,
        kdfLogN: kdfLogN(),
      });
      print(context, added, (result) => `added ${result.role} key ${shortId(result.keyId)}`);
    });

  key
    .command('list')
    .description('list keys, their roles and whether they are revoked')
    .addHelpText(
      'after',
      `
Examples:
  amber key list
  amber key list --json`,
    )
    .action(async () => {
      const repo = await openOp(context);
      const keys = await listKeys(repo);
      print(context, keys, renderKeys);
    });

  key
    .command('revoke')
    .description('stop accepting anything a key signs from now on; its existing backups stay valid')
    .argument('<key>', 'key id or a prefix of at least 4 hex digits')
    .requiredOption('--reason <text>', 'why the key is revoked (recorded)')
    .addHelpText(
      'after',
      `
A write-once store cannot delete the key file: a revoked passphrase still decrypts what it could
decrypt before. Run \`amber key rotate\` so that new data is sealed to keys it never had.

Examples:
  amber key revoke 3f2a9c1e --reason "laptop stolen"`,
    )
    .action(async (ref: string, flags: { reason: string }) => {
      const repo = await openOp(context);
      const revoked = await revokeKey(repo, ref, { reason: flags.reason });
      print(
        context,
        revoked,
        (result) =>
          `revoked ${result.role} key ${shortId(result.keyId)}; ${result.acceptedObjects} objects it signed before stay valid`,
      );
    });

  key
    .command('rotate')
    .description('start a new key epoch: new data is sealed to a fresh key that revoked keys never held')
    .option('--reason <text>', 'why (recorded)')
    .addHelpText(
      'after',
      `
Examples:
  amber key rotate --reason "after revoking a full key"`,
    )
    .action(async (flags: { reason?: string }) => {
      const repo = await openOp(context);
      const rotated = await rotateKey(repo, { reason: flags.reason });
      print(
        context,
        rotated,
        (result) => `started key epoch ${result.epoch}, granted to ${result.grantedTo.length} full key(s)`,
      );
    });
}

function renderKeys(keys: KeyListing[]): string {
  return keys
    .map(
      (key) =>
        `${key.current ? '*' : ' '} ${shortId(key.keyId)}  ${key.role.padEnd(10)}  ${formatTime(key.createdAt)}  ${key.username}@${key.hostname}  ${key.label}${key.revoked ? `  REVOKED ${key.revokedAt?.slice(0, 10)}: ${key.revokeReason ?? ''}` : ''}`,
    )
    .join('\n');
}
