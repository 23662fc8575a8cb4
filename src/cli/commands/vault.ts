import type { Command } from 'commander';
import { AmberError } from '../../core/errors.ts';
import { formatDurationMs } from '../../core/units.ts';
import { openVaultClock } from '../../vault/vault-clock.ts';
import { startVault } from '../../vault/server.ts';
import type { VaultObjective } from '../../vault/rpo-watch.ts';
import { parseRpoFlag, readVaultConfig, type VaultConfig } from '../../vault/vault-config.ts';
import { createNotifier } from '../../ops/notify/notifier.ts';
import type { NotifyTarget } from '../../ops/notify/targets.ts';
import { createToken, listTokens, revokeToken, ROLES, type Role, type TokenInfo } from '../../vault/tokens.ts';
import { type CliContext, operatorName, print } from '../context.ts';
import { renderClockStatus } from './clock.ts';
import type { Clock } from '../../core/clock.ts';
import type { Store } from '../../storage/store.ts';
import { parseS3Location } from '../../storage/s3/s3-location.ts';
import { prepareBucket } from '../bucket.ts';

export function registerVault(program: Command, context: CliContext): void {
  const vault = program
    .command('vault')
    .description('the vault server: write-once storage over HTTP with tokens and roles')
    .addHelpText(
      'after',
      `
Examples:
  amber vault token create --data /srv/vault --role admin --repo finance   # before the first start
  amber vault serve --data /srv/vault --listen 127.0.0.1:8420
  AMBER_VAULT_TOKEN=amber_… amber init --repo http://127.0.0.1:8420/finance`,
    );

  vault
    .command('serve')
    .description('serve the repositories under --data until stopped (SIGINT or SIGTERM)')
    .option('--data <dir>', 'where repositories, tokens and logs live')
    .option('--listen <host:port>', 'address to listen on (default 127.0.0.1:8420)')
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM)')
    .option('--tls-key <file>', 'and this private key (PEM)')
    .option(
      '--store <s3:…>',
      "keep the repositories' objects in an S3 bucket with Object Lock (s3:https://HOST/BUCKET[/PREFIX]), each under PREFIX/NAME",
    )
    .option('--memory-mib <n>', 'object bytes held in memory at once, in MiB (default 1024, at least 512)')
    .option(
      '--rpo <repo[/writer]=duration>',
      'raise rpo.missed when no snapshot of the repository (or of that writer token, by id or label) came for this long; repeatable',
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .option(
      '--config <file>',
      'a YAML file with data, listen, tls: {cert, key}, memoryMiB, store, objectives and notify; options given here win',
    )
    .addHelpText(
      'after',
      `
Clients trust a private CA through NODE_EXTRA_CA_CERTS. The server logs each mutating request to
DATA/vault/logs/REPO.jsonl with the token's id; /v1/health and /metrics (Prometheus) need no token.

vault.yaml:
  data: /srv/vault
  listen: 0.0.0.0:8443
  tls:
    cert: /etc/amber/vault.crt
    key: /etc/amber/vault.key
  memoryMiB: 2048    # uploads and reads wait while this much is in flight
  store: s3:https://s3.example.net/amber-vault   # optional: objects in S3 Object Lock
  objectives:        # the vault raises rpo.missed itself, even when the client is gone
    - { repo: finance, rpo: 26h }
    - { repo: finance, writer: db1, rpo: 2h }     # one writer token, by label or id
  notify:
    - webhook: https://hooks.example/amber
      secret-file: /etc/amber/hook.secret

Examples:
  amber vault serve --data /srv/vault
  amber vault serve --config /etc/amber/vault.yaml
  amber vault serve --data /srv/vault --rpo finance=26h --rpo payroll/db2=2h
  amber vault serve --data /srv/vault --listen 0.0.0.0:8443 --tls-cert cert.pem --tls-key key.pem`,
    )
    .action(async (options: ServeFlags) => {
      const flags = withConfigFile(options);
      const match = /^(.+):(\d{1,5})$/.exec(flags.listen);
      if (!match) throw new AmberError('USAGE', `--listen ${flags.listen}: expected HOST:PORT, e.g. 127.0.0.1:8420`);
      if (Boolean(flags.tlsCert) !== Boolean(flags.tlsKey))
        throw new AmberError('USAGE', 'TLS needs both --tls-cert and --tls-key');
      const retentionClock = await openVaultClock(flags.data);
      const warn = (message: string) => context.output.err.write(`warning: ${message}\n`);
      const notifier = createNotifier(flags.notify, { log: (line) => warn(`${line.msg}: ${JSON.stringify(line)}`) });
      const server = await startVault({
        objectives: flags.objectives,
        notify: (event) => {
          context.output.err.write(`${event.time} ${event.type}: ${event.message}\n`);
          notifier.send(event);
        },
        warn,
        dataDir: flags.data,
        host: match[1].replace(/^\[|\]$/g, ''),
        port: Number(match[2]),
        clock: context.clock,
        retentionClock,
        tls: flags.tlsCert && flags.tlsKey ? { cert: flags.tlsCert, key: flags.tlsKey } : undefined,
        memoryBudgetBytes: flags.memoryMiB === undefined ? undefined : flags.memoryMiB * 1024 * 1024,
        storeFor: await vaultBacking(flags.store, context.clock),
      });
      context.output.err.write(`amber vault serving ${flags.data} at ${server.url}\n`);
      if (flags.objectives.length > 0)
        context.output.err.write(
          `watching ${flags.objectives.length} RPO objective(s): ${flags.objectives.map((o) => `${o.repo}${o.writer ? `/${o.writer}` : ''} ${formatDurationMs(o.rpoMs)}`).join(', ')}\n`,
        );
      const clock = retentionClock.status();
      if (!clock.trusted)
        context.output.err.write(
          `warning: the vault's clock is not trusted for deletions: ${clock.reason.replace('amber clock confirm', 'amber vault clock confirm')}\n`,
        );
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await server.close();
      await notifier.flush(5000);
      notifier.close();
    });

  const token = vault
    .command('token')
    .description('create, list and revoke tokens (works on the data directory, also while the server runs)')
    .addHelpText(
      'after',
      `
Roles: writer (add backups), reader (restore), maintainer (prune), auditor (audit log, no data),
approver (file decisions), admin (create repositories, keys, policy, holds; no deleting).

Examples:
  amber vault token create --data /srv/vault --role writer --repo finance --label db1
  amber vault token list --data /srv/vault
  amber vault token revoke 3f2a9c1e5d6b7a80 --data /srv/vault`,
    );

  token
    .command('create')
    .description('create a token; its secret is printed once and stored only hashed')
    .requiredOption('--data <dir>', "the vault's data directory")
    .requiredOption('--role <role>', `one of ${ROLES.join(', ')}`)
    .option('--label <text>', 'who or what holds it', '')
    .addHelpText(
      'after',
      `
--repo NAME (the global option) names the repository the token may use; an admin token may have * for
every repository.

Examples:
  amber vault token create --data /srv/vault --role writer --repo finance --label db1
  amber vault token create --data /srv/vault --role admin --repo '*'`,
    )
    .action((flags: { data: string; role: string; label: string }) => {
      // --repo is the program's global option, so it is read from there.
      const repo = context.globals().repo;
      if (!repo) throw new AmberError('USAGE', 'a token needs --repo NAME (the repository it may use)');
      const { token: secret, info } = createToken(flags.data, {
        role: flags.role as Role,
        repo,
        label: flags.label,
        nowMs: context.clock.nowMs(),
      });
      print(
        context,
        { token: secret, ...info },
        (result) => `${result.token}\n(${result.role} of ${result.repo}, id ${result.id}; shown once: store it now)`,
      );
    });

  const clock = vault
    .command('clock')
    .description("the vault's guarded clock, which decides when retention has ended on this server")
    .addHelpText(
      'after',
      `
The vault judges deletions (condemn notices, forget marks, deletes) by its own guarded clock. After a
reboot or a clock jump, or when its state is missing while it holds repositories, nothing expires
until an operator checks the time and confirms it here; restart the server afterwards.

Examples:
  amber vault clock status --data /srv/vault
  date -u && amber vault clock confirm --data /srv/vault`,
    );
  clock
    .command('status')
    .description("show whether the vault's clock is trusted for deletions, and why")
    .requiredOption('--data <dir>', "the vault's data directory")
    .addHelpText('after', `\nExamples:\n  amber vault clock status --data /srv/vault --json`)
    .action(async (flags: { data: string }) =>
      print(context, (await openVaultClock(flags.data)).status(), renderClockStatus),
    );
  clock
    .command('confirm')
    .description("confirm that this server's wall clock is right (after checking it); restart the server afterwards")
    .requiredOption('--data <dir>', "the vault's data directory")
    .addHelpText('after', `\nExamples:\n  date -u && amber vault clock confirm --data /srv/vault`)
    .action(async (flags: { data: string }) =>
      print(context, await (await openVaultClock(flags.data)).confirm(operatorName()), renderClockStatus),
    );

  token
    .command('list')
    .description('list tokens (ids, roles, scopes; never secrets)')
    .requiredOption('--data <dir>', "the vault's data directory")
    .addHelpText('after', `\nExamples:\n  amber vault token list --data /srv/vault --json`)
    .action((flags: { data: string }) => {
      print(context, listTokens(flags.data), (tokens: TokenInfo[]) =>
        tokens.length === 0
          ? 'no tokens'
          : tokens
              .map(
                (t) =>
                  `${t.id}  ${t.role.padEnd(10)} ${t.repo.padEnd(16)} ${t.revoked ? `revoked ${t.revoked}` : `created ${t.created}`}  ${t.label}`,
              )
              .join('\n'),
      );
    });

  token
    .command('revoke')
    .description('revoke a token: the running server refuses it from its next request on')
    .argument('<id>', 'the token id (from token list)')
    .requiredOption('--data <dir>', "the vault's data directory")
    .addHelpText('after', `\nExamples:\n  amber vault token revoke 3f2a9c1e5d6b7a80 --data /srv/vault`)
    .action((id: string, flags: { data: string }) => {
      print(
        context,
        revokeToken(flags.data, id, context.clock.nowMs()),
        (result) => `revoked token ${result.id} (${result.role} of ${result.repo})`,
      );
    });
}

/** An S3 bucket behind the vault: checked for Object Lock once at start, each repository under its own prefix. */
async function vaultBacking(
  location: string | undefined,
  clock: Clock,
): Promise<((repo: string) => Store) | undefined> {
  if (location === undefined) return undefined;
  const where = parseS3Location(location);
  const { createS3Store } = await import('../../storage/s3/s3-store.ts');
  await prepareBucket(createS3Store(where, { clock }), false);
  return (repo) => createS3Store({ ...where, prefix: where.prefix ? `${where.prefix}/${repo}` : repo }, { clock });
}

interface ServeFlags {
  data?: string;
  listen?: string;
  tlsCert?: string;
  tlsKey?: string;
  memoryMib?: string;
  store?: string;
  config?: string;
  rpo?: string[];
}

/** Options from --config (YAML), overridden by those on the command line. */
function withConfigFile(flags: ServeFlags): {
  data: string;
  listen: string;
  tlsCert?: string;
  tlsKey?: string;
  memoryMiB?: number;
  store?: string;
  objectives: VaultObjective[];
  notify: NotifyTarget[];
} {
  const file: Partial<VaultConfig> = flags.config ? readVaultConfig(flags.config) : {};
  const memoryMiB = flags.memoryMib === undefined ? file.memoryMiB : Number(flags.memoryMib);
  if (memoryMiB !== undefined && !(Number.isSafeInteger(memoryMiB) && memoryMiB > 0))
    throw new AmberError('USAGE', `memory ${String(flags.memoryMib)}: expected a whole number of MiB`);
  const data = flags.data ?? file.data;
  if (!data)
    throw new AmberError('USAGE', 'the vault needs a data directory', {
      hint: 'pass --data DIR or set data: in --config',
    });
  // Objectives on the command line replace the file's for the same repository and writer.
  const given = (flags.rpo ?? []).map(parseRpoFlag);
  const key = (objective: VaultObjective) => `${objective.repo}/${objective.writer ?? ''}`;
  const objectives = [...(file.objectives ?? []).filter((o) => !given.some((g) => key(g) === key(o))), ...given];
  return {
    data,
    listen: flags.listen ?? file.listen ?? '127.0.0.1:8420',
    tlsCert: flags.tlsCert ?? file.tls?.cert,
    tlsKey: flags.tlsKey ?? file.tls?.key,
    memoryMiB,
    store: flags.store ?? file.store,
    objectives,
    notify: file.notify ?? [],
  };
}
