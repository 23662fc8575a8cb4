// What every command shares: global options, opening the repository, and printing results.
import { jsonName } from '../core/byte-names.ts';
import { operatorName } from '../core/operator.ts';
import { AmberError } from '../core/errors.ts';
import { cacheRoot } from '../core/local-paths.ts';
import { systemClock, type Clock } from '../core/clock.ts';
import type { Store } from '../storage/store.ts';
import type { HttpStore } from '../storage/http/http-store.ts';
import { storeFor } from '../storage/open-store.ts';
import { openRepositoryView, type RepositoryView } from '../repo/repository.ts';
import type { GuardedClock } from '../governance/guarded-clock.ts';
import { openOperation, type Operation } from '../governance/operation.ts';
import { readPassphrase } from './passphrase.ts';

export interface GlobalOptions {
  repo?: string;
  passwordFile?: string;
  json?: boolean;
  quiet?: boolean;
  utc?: boolean;
}

export interface Output {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
  /** Progress goes to stderr only on a terminal, never with --json or --quiet. */
  showProgress: boolean;
}

export interface CliContext {
  clock: Clock;
  output: Output;
  globals(): GlobalOptions;
}

export function repoLocation(globals: GlobalOptions): string {
  const location = globals.repo ?? process.env.AMBER_REPO;
  if (!location) {
    throw new AmberError('USAGE', 'no repository given', { hint: 'pass --repo PATH or set AMBER_REPO' });
  }
  return location;
}

export { readTokenFile, type StoreAccess, storeFor } from '../storage/open-store.ts';

async function existingStore(context: CliContext): Promise<Store> {
  const store = await storeFor(repoLocation(context.globals()));
  if (!(await store.exists())) {
    throw new AmberError('REPO_NOT_FOUND', `there is no repository at ${store.location}`, {
      hint: 'check --repo (or AMBER_REPO), or create one with `amber init`',
    });
  }
  return store;
}

/** The repository as anyone may read it without a passphrase: for auditors. */
export async function openRepoView(context: CliContext): Promise<RepositoryView> {
  return openRepositoryView(await existingStore(context));
}

/**
 * Opens the operation every command that changes or judges retention runs with: the repository with
 * its passphrase, the actor, this host's record cache and guarded clock for it.
 */
export async function openOp(context: CliContext): Promise<Operation & { retentionClock: GuardedClock }> {
  const globals = context.globals();
  const store = await existingStore(context);
  const passphrase = await readPassphrase({
    envVar: 'AMBER_PASSWORD',
    file: globals.passwordFile ?? process.env.AMBER_PASSWORD_FILE,
    prompt: `passphrase for ${store.location}: `,
  });
  return openOperation({ store, passphrase, clock: context.clock, actor: actorFor(store), cacheDir: cacheRoot() });
}

/** Says on stderr, once per command, that deletions wait because the clock is not trusted. */
export function warnIfClockUntrusted(context: CliContext, clock: GuardedClock): void {
  const status = clock.status();
  if (!status.trusted) context.output.err.write(`warning: the clock is not trusted for deletions: ${status.reason}\n`);
}

/** The audit log's actor: user@host, and the vault token's id when there is one. */
export function actorFor(store: Store): string {
  const tokenId = (store as Partial<HttpStore>).tokenId;
  return tokenId ? `${operatorName()} (vault token ${tokenId})` : operatorName();
}

/** Who is at the keyboard, as recorded in holds and clock confirmations: user@host. */
export { operatorName };

/** Prints a result as JSON (with --json) or as the text `render` makes of it. */
export function print<T>(context: CliContext, result: T, render: (result: T) => string): void {
  if (context.globals().json) {
    context.output.out.write(`${JSON.stringify(result, null, 2)}\n`);
  } else if (!context.globals().quiet) {
    const text = render(result);
    if (text) context.output.out.write(text.endsWith('\n') ? text : `${text}\n`);
  }
}

export function createContext(globals: () => GlobalOptions): CliContext {
  const isTty = process.stderr.isTTY === true;
  return {
    clock: systemClock,
    globals,
    output: {
      out: process.stdout,
      err: process.stderr,
      get showProgress() {
        const options = globals();
        return isTty && !options.json && !options.quiet;
      },
    },
  };
}

/** scrypt cost for new keys; lowering it is for tests and tiny devices only (see docs/format.md). */
export function kdfLogN(): number | undefined {
  const value = process.env.AMBER_KDF_LOG_N;
  if (value === undefined) return undefined;
  const logN = Number(value);
  if (!Number.isInteger(logN) || logN < 10 || logN > 22) {
    throw new AmberError('USAGE', `AMBER_KDF_LOG_N=${value} must be an integer from 10 to 22`);
  }
  return logN;
}

/** A path for --json: escaped text, with the exact bytes in `pathBase64` where they differ. */
export function jsonPath(path: string): { path: string; pathBase64?: string } {
  const shown = jsonName(path);
  return shown.base64 === undefined ? { path: shown.text } : { path: shown.text, pathBase64: shown.base64 };
}
