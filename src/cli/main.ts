// The amber command line: parse, call a service, render; map errors to exit statuses.
import { AMBER_VERSION } from '../core/version.ts';
import { Command, CommanderError, Option } from 'commander';
import { AmberError, isAmberError } from '../core/errors.ts';
import { completionScript, manPage } from './completion.ts';
import { createContext, type GlobalOptions } from './context.ts';
import { EXIT, exitStatusFor } from './exit-status.ts';
import { refuseArgumentsNotUtf8 } from './raw-arguments.ts';
import { visible } from '../core/visible-text.ts';
import { isoDate } from '../core/units.ts';
import { registerInit } from './commands/init.ts';
import { registerBackup } from './commands/backup.ts';
import { registerSnapshotCommands } from './commands/snapshots.ts';
import { registerRestore } from './commands/restore.ts';
import { registerVerify } from './commands/verify.ts';
import { registerRepair } from './commands/repair.ts';
import { registerDiff } from './commands/diff.ts';
import { registerFind } from './commands/find.ts';
import { registerStats } from './commands/stats.ts';
import { registerKey } from './commands/key.ts';
import { registerLock } from './commands/lock.ts';
import { registerHold } from './commands/hold.ts';
import { registerPolicy } from './commands/policy.ts';
import { registerForget } from './commands/forget.ts';
import { registerPrune } from './commands/prune.ts';
import { registerClock } from './commands/clock.ts';
import { registerAudit } from './commands/audit.ts';
import { registerApprover } from './commands/approver.ts';
import { registerRequest } from './commands/request.ts';
import { registerVault } from './commands/vault.ts';
import { registerCopy } from './commands/copy.ts';
import { registerAgent } from './commands/agent.ts';
import { registerDrill } from './commands/drill.ts';

export const VERSION = AMBER_VERSION;

export function buildProgram(setExit: (status: number) => void): { program: Command; globals: () => GlobalOptions } {
  const program = new Command('amber');
  const globals = () => program.opts<GlobalOptions>();
  const context = createContext(globals);
  program
    .description('Immutable, encrypted, deduplicating backups')
    .version(VERSION)
    .addOption(
      new Option(
        '-r, --repo <location>',
        'repository location: a directory path, a vault http(s)://HOST:PORT/NAME, or s3:https://ENDPOINT/BUCKET[/PREFIX]',
      ).env('AMBER_REPO'),
    )
    .addOption(new Option('--password-file <file>', 'read the passphrase from a file').env('AMBER_PASSWORD_FILE'))
    .option('--json', 'print results as JSON for scripts')
    .option('-q, --quiet', 'print only errors')
    .option('--utc', 'show times in UTC (default: local time with its offset)')
    .showHelpAfterError('(run with --help for usage)')
    // Each command's --help also lists --repo, --json, -q and the rest: they work after any command.
    .configureHelp({ showGlobalOptions: true })
    .exitOverride()
    .addHelpText(
      'after',
      `
The passphrase comes from AMBER_PASSWORD, --password-file, or a prompt on the terminal. A vault
repository also needs a token: AMBER_VAULT_TOKEN, or AMBER_VAULT_TOKEN_FILE (its first line). An S3
repository takes its credentials from the AWS SDK's usual sources (AWS_ACCESS_KEY_ID, AWS_PROFILE…).

Examples:
  amber init --repo /srv/backups/main
  amber backup --repo /srv/backups/main /home --tag nightly
  amber snapshots --repo /srv/backups/main
  amber restore latest --repo /srv/backups/main --target /tmp/restore
  amber verify --repo /srv/backups/main --read-data
  amber backup --repo /srv/backups/main /srv/finance --retain 7y --lock-mode compliance
  amber lock status --repo /srv/backups/main
  amber forget --repo /srv/backups/main --keep-daily 7 --keep-weekly 5 && amber prune --repo /srv/backups/main
  amber audit verify --repo /srv/backups/main`,
    );
  registerInit(program, context);
  registerBackup(program, context, setExit);
  registerCopy(program, context);
  registerSnapshotCommands(program, context);
  registerRestore(program, context);
  registerVerify(program, context);
  registerRepair(program, context);
  registerDiff(program, context);
  registerFind(program, context);
  registerStats(program, context);
  registerKey(program, context);
  registerLock(program, context);
  registerHold(program, context);
  registerPolicy(program, context);
  registerForget(program, context);
  registerPrune(program, context);
  registerClock(program, context);
  registerAudit(program, context);
  registerApprover(program, context);
  registerRequest(program, context);
  registerVault(program, context);
  registerAgent(program, context, setExit);
  registerDrill(program, context, setExit);
  program
    .command('version')
    .description('print the version of amber and of the Node.js it runs on')
    .addHelpText('after', '\nExamples:\n  amber version\n  amber version --json')
    .action(() => {
      const json = { version: VERSION, node: process.versions.node, platform: `${process.platform}/${process.arch}` };
      if (globals().json) process.stdout.write(`${JSON.stringify(json)}\n`);
      else process.stdout.write(`amber ${VERSION} (Node.js ${json.node}, ${json.platform})\n`);
    });
  program
    .command('completion')
    .description('print a shell completion script: bash, zsh or fish')
    .argument('<shell>', 'bash, zsh or fish')
    .addHelpText(
      'after',
      '\nExamples:\n  eval "$(amber completion bash)"            # in ~/.bashrc\n  amber completion fish > ~/.config/fish/completions/amber.fish',
    )
    .action((shell: string) => {
      if (shell !== 'bash' && shell !== 'zsh' && shell !== 'fish')
        throw new AmberError('USAGE', `amber completion takes bash, zsh or fish, not "${shell}"`);
      process.stdout.write(completionScript(program, shell));
    });
  program
    .command('man')
    .description('print the manual page amber(1), generated from the help')
    .addHelpText('after', '\nExamples:\n  amber man > /usr/local/share/man/man1/amber.1\n  amber man | man -l -')
    .action(() => {
      process.stdout.write(manPage(program, VERSION, isoDate(context.clock.nowMs()).slice(0, 10)));
    });
  for (const command of program.commands) command.exitOverride();
  return { program, globals };
}

export async function main(argv: string[]): Promise<number> {
  let status: number = EXIT.ok;
  const { program, globals } = buildProgram((next) => {
    status = Math.max(status, next);
  });
  // A reader that went away (`amber ls … | head`) ends the command quietly, as it does for git and
  // restic: the write that fails is asynchronous, so it surfaces here, not at the write.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(EXIT.ok);
  });
  // Times print in local time with their offset; --utc anywhere on the line makes local time UTC.
  if (argv.includes('--utc')) process.env.TZ = 'UTC';
  try {
    refuseArgumentsNotUtf8(argv);
    await program.parseAsync(argv, { from: 'user' });
    return status;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (isAmberError(error)) {
      reportError(error, globals().json === true);
      return exitStatusFor(error.code);
    }
    if ((error as NodeJS.ErrnoException)?.code === 'EPIPE') return EXIT.ok;
    process.stderr.write(
      `amber: unexpected error (this is a bug; please report it):\n${(error as Error)?.stack ?? String(error)}\n`,
    );
    return EXIT.error;
  }
}

function reportError(error: AmberError, json: boolean): void {
  if (json) {
    process.stderr.write(
      `${JSON.stringify({ error: { code: error.code, message: error.message, hint: error.hint, details: error.details } })}\n`,
    );
    return;
  }
  // A message may quote a server, a file name or a mail subject: its control characters are shown, not obeyed.
  process.stderr.write(`error: ${visible(error.message)} [${error.code}]\n`);
  if (error.hint) process.stderr.write(`hint: ${visible(error.hint)}\n`);
}
