// A store by its location: a directory, a vault (https://VAULT/REPO) or S3 (s3:…). Every front end
// (the CLI, the agent) opens stores here, each with the credentials it names for that location.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { systemClock } from '../core/clock.ts';
import { AmberError } from '../core/errors.ts';
import { fileInTheWay } from '../core/local-paths.ts';
import { createFsStore } from './fs/fs-store.ts';
import { createHttpStore } from './http/http-store.ts';
import { parseS3Location } from './s3/s3-location.ts';
import type { Store } from './store.ts';

/** How to reach a store other than with this process's own environment (a copy's primary, an agent's repository). */
export interface StoreAccess {
  /** The vault token; default AMBER_VAULT_TOKEN(_FILE). */
  token?: () => string;
  /** S3 credentials or a profile, asked for only when the location is S3; default the AWS SDK's chain. */
  s3?: () => { credentials?: { accessKeyId: string; secretAccessKey: string }; profile?: string };
}

export async function storeFor(location: string, access: StoreAccess = {}): Promise<Store> {
  if (/^https?:/.test(location)) return createHttpStore(location, { token: (access.token ?? vaultToken)() });
  // The AWS SDK takes a tenth of a second to load: only S3 repositories pay for it.
  if (/^s3:/.test(location))
    return (await import('./s3/s3-store.ts')).createS3Store(parseS3Location(location), {
      clock: systemClock,
      ...access.s3?.(),
    });
  const file = fileInTheWay(location);
  if (file !== undefined) {
    throw new AmberError(
      'USAGE',
      file === resolve(location)
        ? `the repository location ${file} is a file, not a directory`
        : `the repository location ${resolve(location)} is below ${file}, which is a file, not a directory`,
      {
        hint: 'a local repository is a directory: choose one with --repo or AMBER_REPO (a new or empty one for `amber init`)',
      },
    );
  }
  return createFsStore(resolve(location));
}

/**
 * A vault token from a file (its first line) or a variable; `missing` is the error when neither
 * is set, naming the options of whoever asked.
 */
export function tokenFrom(source: { file?: string; value?: string; missing: () => AmberError }): string {
  if (source.file) return readTokenFile(source.file);
  if (!source.value) throw source.missing();
  return source.value;
}

/** The vault token: AMBER_VAULT_TOKEN, or the first line of AMBER_VAULT_TOKEN_FILE. */
function vaultToken(): string {
  return tokenFrom({
    file: process.env.AMBER_VAULT_TOKEN_FILE,
    value: process.env.AMBER_VAULT_TOKEN,
    missing: () =>
      new AmberError('TOKEN_INVALID', 'a vault repository needs a token', {
        hint: 'set AMBER_VAULT_TOKEN or AMBER_VAULT_TOKEN_FILE',
      }),
  });
}

/** The first line of a token file. */
export function readTokenFile(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n')[0].trim();
  } catch (cause) {
    throw new AmberError('USAGE', `cannot read the vault token file "${file}"`, { cause });
  }
}
