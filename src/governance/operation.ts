// The operation context: what every operation on a repository runs with, whoever starts it (the CLI,
// the vault, the agent to come). It is the opened repository (store, key and role, actor, record
// cache), the retention clock every retention decision of the operation uses — required: there is no
// fallback to wall time, so no decision depends on a caller remembering a parameter — and the
// retention state, loaded once on first use and reloaded only when the operation says its own writes
// changed it.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { cacheRoot } from '../core/local-paths.ts';
import type { Clock } from '../core/clock.ts';
import type { Store } from '../storage/store.ts';
import { localStateKey, openRepository, type Repository, type RepositoryView } from '../repo/repository.ts';
import { openGuardedClock, type GuardedClock } from './guarded-clock.ts';
import { loadRetentionState, type RetentionClock, type RetentionState } from './retention-state.ts';

export interface Operation extends Repository {
  /** Base for new retain-until dates and "now" for expiry: the guarded clock in production. */
  readonly retentionClock: RetentionClock;
  /** The retention state as this operation first read it (loaded once, on first use). */
  retentionState(): Promise<RetentionState>;
  /** Says this operation's own writes changed the retention state: the next read loads it again. */
  retentionStateChanged(): void;
}

/** An operation on a repository already opened, judged by `retentionClock`. */
export function operationOn(repo: Repository, retentionClock: RetentionClock): Operation {
  let loaded: Promise<RetentionState> | undefined;
  const load = () => {
    const loading = loadRetentionState(operation);
    loading.catch(() => {
      if (loaded === loading) loaded = undefined;
    }); // a failed read is tried again
    return (loaded = loading);
  };
  const operation: Operation = {
    ...repo,
    retentionClock,
    retentionState: () => loaded ?? load(),
    retentionStateChanged: () => {
      loaded = undefined;
    },
  };
  return operation;
}

export interface OpenOperationOptions {
  store: Store;
  passphrase: string;
  clock: Clock;
  /** Who acts, as the audit log names them (user@host, and the vault token). */
  actor: string;
  /** This host's local state (guarded clock, record cache); default $AMBER_CACHE_DIR. */
  cacheDir?: string;
  /** 'anchor' for a repository being created: it has nothing to expire yet (see guarded-clock.ts). */
  firstUse?: 'anchor';
}

/** Opens the repository with its passphrase and this host's guarded clock for it. */
export async function openOperation(
  options: OpenOperationOptions,
): Promise<Operation & { retentionClock: GuardedClock }> {
  const cacheDir = options.cacheDir ?? cacheRoot();
  const repo = await openRepository({
    store: options.store,
    passphrase: options.passphrase,
    clock: options.clock,
    actor: options.actor,
    cacheDir,
  });
  const clock = await openRetentionClock(repo, { cacheDir, firstUse: options.firstUse });
  return operationOn(repo, clock) as Operation & { retentionClock: GuardedClock };
}

/**
 * The guarded clock of this host for a repository: its state lives in the local cache, one file per
 * repository, MAC'd with a key derived from the repository's id key, so only key holders can forge it.
 */
export async function openRetentionClock(
  repo: Repository,
  options: { cacheDir?: string; firstUse?: 'anchor' } = {},
): Promise<GuardedClock> {
  const { store } = repo;
  return openGuardedClock({
    statePath: join(options.cacheDir ?? cacheRoot(), repo.config.repositoryId, 'clock.json'),
    macKey: localStateKey(repo, 'clock-state'),
    firstUse: options.firstUse,
    // Without trusted local state, a vault's or S3 server's clock may vouch for this host's wall time.
    reference: async () => {
      const wallMs = await store.serverTimeMs?.();
      return wallMs === undefined ? undefined : { source: `the clock of ${store.location}`, wallMs };
    },
  });
}

/**
 * The guarded clock of an approver acting with their own key alone (no repository key, so no
 * repository secret to MAC the state with): its state is MAC'd with a key only the approver's
 * private key can derive (Ed25519 signatures are deterministic), and the storage server may vouch.
 */
export async function openApproverClock(
  view: RepositoryView,
  approver: { publicKey: Buffer; sign(message: Uint8Array): Buffer },
  cacheDir = cacheRoot(),
): Promise<GuardedClock> {
  const { store } = view;
  return openGuardedClock({
    statePath: join(
      cacheDir,
      view.config.repositoryId,
      `approver-${approver.publicKey.toString('hex').slice(0, 16)}-clock.json`,
    ),
    macKey: createHash('sha256')
      .update(approver.sign(Buffer.from('amber/v1/approver-clock-state')))
      .digest(),
    reference: async () => {
      const wallMs = await store.serverTimeMs?.();
      return wallMs === undefined ? undefined : { source: `the clock of ${store.location}`, wallMs };
    },
  });
}
