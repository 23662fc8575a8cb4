// Creating a repository as one operation: the format's objects (repo/repository.ts), this host's
// guarded clock anchored (a repository being created has nothing to expire yet), the first audit
// entries, a vault's witness key accepted, and the starting policy.
import type { Clock } from '../core/clock.ts';
import type { ChunkerParams } from '../chunker/fastcdc.ts';
import type { PutOptions, Store } from '../storage/store.ts';
import { initRepository, type Repository } from '../repo/repository.ts';
import type { PolicySettings } from '../repo/retention-records.ts';
import type { GuardedClock } from '../governance/guarded-clock.ts';
import { openRetentionClock, operationOn, type Operation } from '../governance/operation.ts';
import { appendAudit } from '../governance/audit-log.ts';
import { addWitness } from './key-admin.ts';
import { setPolicy } from './policy-admin.ts';

export interface CreateRepositoryOptions {
  store: Store;
  passphrase: string;
  clock: Clock;
  actor: string;
  cacheDir: string;
  kdfLogN?: number;
  chunker?: ChunkerParams;
  packTargetBytes?: number;
  /** The config, first key and epoch are locked as they are written, for the retention a backup would get (S3). */
  retention: Required<Pick<PutOptions, 'retainUntilMs' | 'mode'>>;
  /** A vault's key to accept as a signer of audit entries (what its clients do), with its label. */
  witness?: { publicKey: string; label: string };
  /** Settings that differ from the default policy. */
  policy?: Partial<PolicySettings>;
  /** The repository this one will hold copies of: its chunker and dedup secrets are taken (docs/isolation.md). */
  copyOf?: Repository;
}

export async function createRepository(
  options: CreateRepositoryOptions,
): Promise<{ op: Operation & { retentionClock: GuardedClock }; policy?: PolicySettings }> {
  const repo = await initRepository({
    store: options.store,
    passphrase: options.passphrase,
    clock: options.clock,
    kdfLogN: options.kdfLogN,
    retention: options.retention,
    chunker: options.copyOf?.config.chunker ?? options.chunker,
    dedupSecrets: options.copyOf
      ? { idKey: options.copyOf.key.secrets.idKey, gearSeed: options.copyOf.key.secrets.gearSeed }
      : undefined,
    packTargetBytes: options.packTargetBytes,
    actor: options.actor,
    cacheDir: options.cacheDir,
  });
  // The creating host anchors its guarded clock now; every other host (or an emptied cache) must
  // have its time confirmed, or vouched for by the storage server's clock, before deletions.
  const op = operationOn(
    repo,
    await openRetentionClock(repo, { cacheDir: options.cacheDir, firstUse: 'anchor' }),
  ) as Operation & { retentionClock: GuardedClock };
  // The first entries are kept like the config, before the policy that sets the mode is written.
  const firstLock = { lock: { untilMs: options.retention.retainUntilMs!, mode: options.retention.mode! } };
  await appendAudit(
    op,
    {
      action: 'init',
      target: repo.config.repositoryId,
      details: {
        keyId: repo.key.keyId,
        ...(options.copyOf ? { copyOf: options.copyOf.config.repositoryId } : {}),
      },
    },
    firstLock,
  );
  if (options.witness) await addWitness(op, options.witness.publicKey, options.witness.label, firstLock);
  if (!options.policy || Object.keys(options.policy).length === 0) return { op };
  return { op, policy: (await setPolicy(op, options.policy)).settings };
}
