import type { Command } from 'commander';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { AmberError } from '../../core/errors.ts';
import {
  createApproverKey,
  parseApproverPublicKey,
  unlockApproverKey,
  type ApproverSigner,
} from '../../governance/approver-key.ts';
import { approverSet } from '../../governance/policy.ts';
import { setPolicy, showPolicy } from '../../protection/policy-admin.ts';
import { type CliContext, kdfLogN, openOp, print } from '../context.ts';
import { readPassphrase } from '../passphrase.ts';

export function registerApprover(program: Command, context: CliContext): void {
  const approver = program
    .command('approver')
    .description('approvers: people whose M-of-N signatures let a request weaken protection')
    .addHelpText(
      'after',
      `
Examples:
  amber approver keygen --out ~/alice.key        # on Alice's own machine
  amber approver add alice --public-key alice.key.pub
  amber approver list`,
    );

  approver
    .command('keygen')
    .description('create an approver key pair: FILE (private, passphrase-protected) and FILE.pub')
    .requiredOption('--out <file>', 'where to write the private key file; the public key goes to FILE.pub')
    .addHelpText(
      'after',
      `
The passphrase comes from AMBER_APPROVER_PASSWORD or a prompt. Needs no repository.

Examples:
  AMBER_APPROVER_PASSWORD=... amber approver keygen --out ~/alice.key`,
    )
    .action(async (flags: { out: string }) => {
      if (existsSync(flags.out) || existsSync(`${flags.out}.pub`))
        throw new AmberError('USAGE', `${flags.out} or ${flags.out}.pub already exists; Amber does not overwrite keys`);
      const passphrase = await readPassphrase({
        envVar: 'AMBER_APPROVER_PASSWORD',
        prompt: 'passphrase for the approver key: ',
        confirm: true,
      });
      const { keyFile, publicFile } = await createApproverKey(passphrase, kdfLogN());
      writeFileSync(flags.out, `${JSON.stringify(keyFile, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
      writeFileSync(`${flags.out}.pub`, `${JSON.stringify(publicFile, null, 2)}\n`, { mode: 0o644, flag: 'wx' });
      print(
        context,
        { keyFile: flags.out, publicKeyFile: `${flags.out}.pub`, publicKey: publicFile.publicKey },
        (result) =>
          `wrote ${result.keyFile} (private, keep it safe) and ${result.publicKeyFile}\npublic key ${result.publicKey}`,
      );
    });

  approver
    .command('add')
    .description('register an approver (until the policy is locked; then the approver set is frozen)')
    .argument('<name>', 'a name to recognise the approver by, e.g. alice')
    .requiredOption('--public-key <file>', "the approver's FILE.pub")
    .addHelpText(
      'after',
      `
The approvers are part of the policy. Once its lock is in force (after the cooling-off period) a
different approver set loosens it and is refused (POLICY_LOCKED) without an approved policy-change
request, and \`amber request policy-change\` has no option for the approver set yet: register every
approver and set the quorum before \`amber policy lock\`. There is no command to remove an approver.

Examples:
  amber approver add alice --public-key alice.key.pub
  amber policy set --quorum 2`,
    )
    .action(async (name: string, flags: { publicKey: string }) => {
      const publicKey = parseApproverPublicKey(readText(flags.publicKey), flags.publicKey).toString('hex');
      const repo = await openOp(context);
      const { approvers } = approverSet((await showPolicy(repo)).settings);
      const policy = await setPolicy(repo, { approvers: [...approvers, { name, publicKey }] });
      print(
        context,
        approverSet(policy.settings),
        (result) =>
          `registered approver ${name}; ${result.approvers.length} approver(s), quorum ${result.quorum || 'not set'}`,
      );
    });

  approver
    .command('list')
    .description('list registered approvers and the quorum')
    .addHelpText(
      'after',
      `
Examples:
  amber approver list --json`,
    )
    .action(async () => {
      const repo = await openOp(context);
      const set = approverSet((await showPolicy(repo)).settings);
      print(context, set, (result) =>
        [
          ...result.approvers.map(({ name, publicKey }) => `${name.padEnd(16)} ${publicKey}`),
          result.approvers.length === 0
            ? 'no approvers'
            : `quorum: ${result.quorum || 'not set'} of ${result.approvers.length}`,
        ].join('\n'),
      );
    });
}

export function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (cause) {
    throw new AmberError('USAGE', `cannot read ${path}: ${(cause as Error).message}`, { cause });
  }
}

export async function approverFromFile(path: string): Promise<ApproverSigner> {
  const passphrase = await readPassphrase({
    envVar: 'AMBER_APPROVER_PASSWORD',
    prompt: `passphrase for approver key ${path}: `,
  });
  return unlockApproverKey(readText(path), passphrase, path);
}
