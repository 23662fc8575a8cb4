// Opening a repository the policy file names, with the credentials the file gives for it and for
// nothing else: its password file, its vault token file, its AWS profile. The process environment
// (AMBER_PASSWORD, AMBER_VAULT_TOKEN, the AWS chain) is used only where the file names none.
import { readFileSync } from 'node:fs';
import type { Clock } from '../core/clock.ts';
import { AmberError, isAmberError } from '../core/errors.ts';
import { cacheRoot } from '../core/local-paths.ts';
import { operatorName } from '../core/operator.ts';
import type { GuardedClock } from '../governance/guarded-clock.ts';
import { openOperation, type Operation } from '../governance/operation.ts';
import { openRepository, type Repository } from '../repo/repository.ts';
import type { HttpStore } from '../storage/http/http-store.ts';
import { storeFor, tokenFrom } from '../storage/open-store.ts';
import type { Store } from '../storage/store.ts';
import type { RepositoryConfig } from './policy-types.ts';

async function storeOf(config: RepositoryConfig): Promise<Store> {
  const store = await storeFor(config.repo, {
    token: () =>
      tokenFrom({
        file: config.tokenFile ?? process.env.AMBER_VAULT_TOKEN_FILE,
        value: process.env.AMBER_VAULT_TOKEN,
        missing: () =>
          new AmberError('TOKEN_INVALID', `repository "${config.name}" (${config.repo}) is a vault and needs a token`, {
            hint: `add token-file: to repositories.${config.name} in the policy file`,
          }),
      }),
    s3: () => (config.awsProfile ? { profile: config.awsProfile } : {}),
  });
  if (!(await store.exists()))
    throw new AmberError(
      'REPO_NOT_FOUND',
      `there is no repository at ${store.location} (repository "${config.name}")`,
      {
        hint: `create it with \`amber init --repo ${config.repo}\`, or correct repositories.${config.name}.repo`,
      },
    );
  return store;
}

function passphraseOf(config: RepositoryConfig): string {
  const file = config.passwordFile ?? process.env.AMBER_PASSWORD_FILE;
  if (file) {
    try {
      return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (cause) {
      throw new AmberError('USAGE', `cannot read the password file "${file}" of repository "${config.name}"`, {
        cause,
        hint: 'check the path and that the agent’s user may read it',
      });
    }
  }
  const value = process.env.AMBER_PASSWORD;
  if (value) return value;
  throw new AmberError('PASSWORD_REQUIRED', `repository "${config.name}" has no password-file`, {
    hint: `add password-file: to repositories.${config.name} in the policy file`,
  });
}

const actorOf = (store: Store) => {
  const tokenId = (store as Partial<HttpStore>).tokenId;
  return tokenId ? `${operatorName()} agent (vault token ${tokenId})` : `${operatorName()} agent`;
};

const named = (config: RepositoryConfig) => (error: unknown) => {
  if (isAmberError(error, 'WRONG_PASSWORD'))
    throw new AmberError('WRONG_PASSWORD', `${error.message} (repository "${config.name}")`, {
      hint: `check the password-file of repositories.${config.name}`,
      cause: error,
    });
  throw error;
};

/** The repository to write to (backups, the copy side of a copy), with this host's guarded clock. */
export async function openWritable(
  config: RepositoryConfig,
  clock: Clock,
): Promise<Operation & { retentionClock: GuardedClock }> {
  const store = await storeOf(config);
  return openOperation({
    store,
    passphrase: passphraseOf(config),
    clock,
    actor: actorOf(store),
    cacheDir: cacheRoot(),
  }).catch(named(config));
}

/** A copy's primary, opened to read only. */
export async function openReadable(config: RepositoryConfig, clock: Clock): Promise<Repository> {
  const store = await storeOf(config);
  return openRepository({
    store,
    passphrase: passphraseOf(config),
    clock,
    cacheDir: cacheRoot(),
    actor: 'copy site agent (read only)',
  }).catch(named(config));
}
