import type { Command } from 'commander';
import { formatDurationMs } from '../../core/units.ts';
import { createRepository } from '../../protection/create-repository.ts';
import { cacheRoot } from '../../core/local-paths.ts';
import type { PolicySettings } from '../../repo/retention-records.ts';
import type { RetentionMode } from '../../storage/store.ts';
import { actorFor, type CliContext, kdfLogN, print, repoLocation, storeFor } from '../context.ts';
import type { HttpStore } from '../../storage/http/http-store.ts';
import { AmberError, isAmberError } from '../../core/errors.ts';
import { DEFAULT_POLICY } from '../../governance/policy.ts';
import { bucketNote, describeBucketNote, isS3Store, prepareBucket, type BucketNote } from '../bucket.ts';
import { durationFlag, lockModeOption } from '../options.ts';
import { readPassphrase } from '../passphrase.ts';
import { addFromOptions, fromLocation, openFromRepo, type FromFlags } from '../from-repo.ts';

interface InitFlags extends FromFlags {
  createBucket?: boolean;
  minRetention?: string;
  defaultRetain?: string;
  lockMode?: RetentionMode;
}

export function registerInit(program: Command, context: CliContext): void {
  addFromOptions(program.command('init'))
    .description('create a new repository')
    .option('--min-retention <duration>', 'shortest retention any backup or extension may ask for, e.g. 7d')
    .option('--default-retain <duration>', 'retention of a backup that names none (default 30d, raised to the minimum)')
    .addOption(lockModeOption('default lock mode: governance or compliance (default governance)'))
    .option('--create-bucket', 'S3: create the bucket, with Object Lock enabled')
    .addHelpText(
      'after',
      `
Without retention options the repository starts with the default policy: 30 days, governance
mode, no bounds. \`amber policy set\` changes it later; \`amber policy lock\` freezes it.

Examples:
  AMBER_PASSWORD=... amber init --repo /srv/backups/main
  amber init --repo /mnt/vault --password-file ~/.amber-pass
  amber init --repo /srv/backups/finance --min-retention 30d --default-retain 1y --lock-mode compliance
  amber init --repo s3:https://s3.example.net:7480/backups/finance --create-bucket --lock-mode compliance
  amber init --repo /srv/amber-copy --from-repo https://vault1.example:8420/finance --from-token-file primary-reader.token --from-password-file primary.pass --lock-mode compliance

--from-repo makes a repository to hold copies of another (\`amber copy\`): it takes the primary's
chunking parameters and blob-id secrets, so blobs keep their ids and only what is missing travels.
Its keys, passphrase, policy, approvers and audit log are its own (docs/isolation.md).

On S3 the bucket must have versioning and Object Lock (init refuses one without); a bucket default
retention longer than the policy minimum raises the minimum to it.`,
    )
    .action(async (flags: InitFlags) => {
      let minRetentionMs =
        flags.minRetention === undefined ? undefined : durationFlag('--min-retention', flags.minRetention);
      const defaultRetainMs =
        flags.defaultRetain === undefined ? undefined : durationFlag('--default-retain', flags.defaultRetain);
      const globals = context.globals();
      // The primary is opened first: a wrong passphrase for it must not leave an empty copy behind.
      const copyOf = fromLocation(flags) !== undefined ? await openFromRepo(context, flags) : undefined;
      const store = await storeFor(repoLocation(globals));
      const passphrase = await readPassphrase({
        envVar: 'AMBER_PASSWORD',
        file: globals.passwordFile ?? process.env.AMBER_PASSWORD_FILE,
        prompt: `new passphrase for ${store.location}: `,
        confirm: true,
      });
      // On a vault, an admin token creates the repository first (a repository made by another admin is used as it is).
      if ('createRepository' in store)
        await (store as HttpStore).createRepository().catch((error) => {
          if (!isAmberError(error, 'ROLE_FORBIDDEN')) throw error;
        });
      if (flags.createBucket && !isS3Store(store))
        throw new AmberError('USAGE', '--create-bucket is for S3 repositories (--repo s3:…)');
      let bucket: BucketNote | undefined;
      if (isS3Store(store)) {
        bucket = await bucketNote(
          store,
          minRetentionMs ?? null,
          await prepareBucket(store, flags.createBucket === true),
        );
        // Amber always sends explicit dates, which override the bucket's default: keep to the longer one.
        if (bucket.effectiveMinRetentionMs !== null && bucket.effectiveMinRetentionMs > (minRetentionMs ?? 0))
          minRetentionMs = bucket.effectiveMinRetentionMs;
      }
      // The config and first keys are locked as they are written, for the retention a backup would get.
      const initialMs = Math.max(defaultRetainMs ?? DEFAULT_POLICY.defaultRetentionMs, minRetentionMs ?? 0);
      const retention = {
        retainUntilMs: context.clock.nowMs() + initialMs,
        mode: flags.lockMode ?? DEFAULT_POLICY.defaultMode,
      };
      let policy: Partial<PolicySettings> | undefined;
      if (minRetentionMs !== undefined || defaultRetainMs !== undefined || flags.lockMode !== undefined) {
        policy = {
          defaultRetentionMs: Math.max(defaultRetainMs ?? DEFAULT_POLICY.defaultRetentionMs, minRetentionMs ?? 0),
        };
        if (minRetentionMs !== undefined) policy.minRetentionMs = minRetentionMs;
        if (flags.lockMode !== undefined) policy.defaultMode = flags.lockMode;
      }
      // A vault records what its clients do in the audit log, signed with its own key, once the owner accepts it.
      const witnessKey = 'witnessKey' in store ? await (store as HttpStore).witnessKey() : undefined;
      const created = await createRepository({
        store,
        passphrase,
        clock: context.clock,
        actor: actorFor(store),
        cacheDir: cacheRoot(),
        kdfLogN: kdfLogN(),
        retention,
        policy,
        witness: witnessKey ? { publicKey: witnessKey, label: store.location } : undefined,
        copyOf,
      });
      const repo = created.op;
      const settings = created.policy;
      print(
        context,
        {
          repositoryId: repo.config.repositoryId,
          location: store.location,
          keyId: repo.key.keyId,
          ...(settings ? { policy: settings } : {}),
          ...(bucket ? { bucket } : {}),
          ...(copyOf ? { copyOf: { repositoryId: copyOf.config.repositoryId, location: copyOf.store.location } } : {}),
        },
        (result) =>
          `created repository ${result.repositoryId.slice(0, 8)} at ${result.location}\n` +
          (result.copyOf
            ? `it holds copies of ${result.copyOf.location} (${result.copyOf.repositoryId.slice(0, 8)}): run \`amber copy\` at this site\n`
            : '') +
          (bucket ? `${describeBucketNote(bucket, null)}\n` : '') +
          (result.policy
            ? `policy: backups locked for ${formatDurationMs(result.policy.defaultRetentionMs)} (${result.policy.defaultMode}) by default` +
              `${result.policy.minRetentionMs !== null ? `, at least ${formatDurationMs(result.policy.minRetentionMs)}` : ''}\n`
            : '') +
          'Keep the passphrase safe: without it, no one (you included) can restore anything.',
      );
    });
}
