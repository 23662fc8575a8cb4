// The primary a copy reads from, named by --from-* options: its location, its passphrase and the
// read-only credential that reaches it (a vault reader token, an S3 profile or keys). Kept apart
// from the copy's own AMBER_* settings, so that one command never mixes the two sites' credentials.
import type { Command } from 'commander';
import { AmberError, isAmberError } from '../core/errors.ts';
import { cacheRoot } from '../core/local-paths.ts';
import { openRepository, type Repository } from '../repo/repository.ts';
import { type StoreAccess, storeFor, tokenFrom } from '../storage/open-store.ts';
import type { CliContext } from './context.ts';
import { readPassphrase } from './passphrase.ts';

export interface FromFlags {
  fromRepo?: string;
  fromPasswordFile?: string;
  fromTokenFile?: string;
  fromAwsProfile?: string;
}

/** Adds the --from-* options. */
export function addFromOptions(command: Command): Command {
  return command
    .option(
      '--from-repo <location>',
      'the primary repository to read from (a directory, https://VAULT/REPO or s3:…); AMBER_FROM_REPO',
    )
    .option('--from-password-file <file>', "file holding the primary's passphrase (or AMBER_FROM_PASSWORD)")
    .option(
      '--from-token-file <file>',
      "the primary vault's token, a reader token is enough (or AMBER_FROM_VAULT_TOKEN / AMBER_FROM_VAULT_TOKEN_FILE)",
    )
    .option(
      '--from-aws-profile <name>',
      "S3: the AWS profile with read-only access to the primary's bucket (or AMBER_FROM_AWS_ACCESS_KEY_ID and AMBER_FROM_AWS_SECRET_ACCESS_KEY)",
    );
}

export function fromLocation(flags: FromFlags): string | undefined {
  return flags.fromRepo ?? process.env.AMBER_FROM_REPO;
}

/** The credentials that reach the primary: never the copy's own AMBER_VAULT_TOKEN or AWS settings. */
function fromAccess(flags: FromFlags): StoreAccess {
  const keyId = process.env.AMBER_FROM_AWS_ACCESS_KEY_ID;
  const secret = process.env.AMBER_FROM_AWS_SECRET_ACCESS_KEY;
  return {
    token: () =>
      tokenFrom({
        file: flags.fromTokenFile ?? process.env.AMBER_FROM_VAULT_TOKEN_FILE,
        value: process.env.AMBER_FROM_VAULT_TOKEN,
        missing: () =>
          new AmberError('TOKEN_INVALID', 'the primary is a vault repository and needs a token of its own', {
            hint: 'pass --from-token-file (a reader token is enough) or set AMBER_FROM_VAULT_TOKEN',
          }),
      }),
    // Never the SDK's default chain: it would read the copy site's own AWS_* settings.
    s3: () => {
      if (flags.fromAwsProfile) return { profile: flags.fromAwsProfile };
      if (keyId && secret) return { credentials: { accessKeyId: keyId, secretAccessKey: secret } };
      throw new AmberError(
        'USAGE',
        keyId || secret
          ? `${keyId ? 'AMBER_FROM_AWS_SECRET_ACCESS_KEY' : 'AMBER_FROM_AWS_ACCESS_KEY_ID'} is not set: the primary's keys go together`
          : 'the primary is an S3 repository and needs credentials of its own',
        {
          hint: "pass --from-aws-profile NAME (read-only access to the primary's bucket is enough) or set AMBER_FROM_AWS_ACCESS_KEY_ID and AMBER_FROM_AWS_SECRET_ACCESS_KEY; the copy's own AWS settings are never used for it",
        },
      );
    },
  };
}

/** Opens the primary with its passphrase, to read only: nothing is ever written to it. */
export async function openFromRepo(context: CliContext, flags: FromFlags): Promise<Repository> {
  const location = fromLocation(flags);
  if (!location)
    throw new AmberError('USAGE', 'no primary repository given', {
      hint: 'pass --from-repo LOCATION or set AMBER_FROM_REPO',
    });
  const store = await storeFor(location, fromAccess(flags));
  if (!(await store.exists()))
    throw new AmberError('REPO_NOT_FOUND', `there is no repository at ${store.location} (the primary)`, {
      hint: 'check --from-repo and the credentials that reach it',
    });
  // The errors say which of the two repositories they are about, and name the primary's options.
  const passphrase = await readPassphrase({
    envVar: 'AMBER_FROM_PASSWORD',
    file: flags.fromPasswordFile ?? process.env.AMBER_FROM_PASSWORD_FILE,
    prompt: `passphrase for the primary ${store.location}: `,
    fileOption: '--from-password-file',
  }).catch((error: unknown) => {
    if (!isAmberError(error, 'PASSWORD_REQUIRED')) throw error;
    throw new AmberError(
      'PASSWORD_REQUIRED',
      `no passphrase given for the primary ${store.location} and no terminal to ask on`,
      {
        hint: 'set AMBER_FROM_PASSWORD or pass --from-password-file',
      },
    );
  });
  return openRepository({
    store,
    passphrase,
    clock: context.clock,
    cacheDir: cacheRoot(),
    actor: 'copy site (read only)',
  }).catch((error: unknown) => {
    if (isAmberError(error, 'WRONG_PASSWORD'))
      throw new AmberError('WRONG_PASSWORD', `${error.message} (the primary)`, {
        hint: 'check AMBER_FROM_PASSWORD or --from-password-file: the primary’s passphrase, not the copy’s',
        cause: error,
      });
    if (isAmberError(error, 'KEY_REVOKED'))
      throw new AmberError('KEY_REVOKED', `${error.message} at the primary ${store.location}`, {
        hint: 'ask the primary’s owner for a key of its own (`amber key add` there)',
        cause: error,
      });
    throw error;
  });
}
