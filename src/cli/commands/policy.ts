import { Option, type Command } from 'commander';
import { AmberError } from '../../core/errors.ts';
import type { RetentionMode } from '../../storage/store.ts';
import type { PolicySettings } from '../../repo/retention-records.ts';
import type { RetentionClock } from '../../governance/retention-state.ts';
import { describePolicy, isLocked, type Policy } from '../../governance/policy.ts';
import {
  applyApprovedPolicyChange,
  lockPolicy,
  setPolicy,
  showPolicy,
  unlockPolicy,
} from '../../protection/policy-admin.ts';
import { showRequest } from '../../protection/approvals.ts';
import { type CliContext, openOp, print } from '../context.ts';
import { bucketNote, describeBucketNote, isS3Store } from '../bucket.ts';
import { boundFlag, durationFlag, LOCK_MODES } from '../options.ts';

export interface SetFlags {
  minRetention?: string;
  maxRetention?: string;
  defaultRetain?: string;
  defaultMode?: RetentionMode;
  requireCompliance?: boolean;
  extendStep?: string;
  quorum?: string;
}

export function registerPolicy(program: Command, context: CliContext): void {
  const policy = program
    .command('policy')
    .description('the repository retention policy: bounds, defaults, and a lock that freezes it')
    .addHelpText(
      'after',
      `
Examples:
  amber policy show
  amber policy set --min-retention 30d --default-retain 90d
  amber policy lock --cooling-off 72h`,
    );

  const printPolicy = (policyNow: Policy, clock: RetentionClock) => {
    const nowMs = clock.retentionBaseMs();
    print(context, { ...policyNow, locked: isLocked(policyNow, nowMs) }, (result) => describePolicy(result, nowMs));
  };

  policy
    .command('show')
    .description('print the policy and whether it is locked')
    .addHelpText(
      'after',
      `
Examples:
  amber policy show
  amber policy show --json`,
    )
    .action(async () => {
      const repo = await openOp(context);
      const clock = repo.retentionClock;
      const policyNow = await showPolicy(repo);
      if (!isS3Store(repo.store)) return printPolicy(policyNow, clock);
      // On S3, what the bucket itself holds to: its Object Lock and default retention.
      const nowMs = clock.retentionBaseMs();
      const minMs = policyNow.settings.minRetentionMs;
      const bucket = await bucketNote(repo.store, minMs);
      print(
        context,
        { ...policyNow, locked: isLocked(policyNow, nowMs), bucket },
        (result) => `${describePolicy(result, nowMs)}\n${describeBucketNote(bucket, minMs)}`,
      );
    });

  withSettingOptions(policy.command('set').description('change the policy (once locked: only tighten it)'))
    .addHelpText(
      'after',
      `
Options left out keep their value. Once the policy is locked (after its cooling-off period), only
a longer minimum or default, requiring compliance, or a quorum raised up to N-1 is accepted.

Examples:
  amber policy set --min-retention 30d --max-retention 10y --default-retain 90d
  amber policy set --default-mode compliance --require-compliance
  amber policy set --max-retention none
  amber policy set --quorum 2`,
    )
    .action(async (flags: SetFlags) => {
      const change = settingsFrom(flags);
      if (Object.keys(change).length === 0) {
        throw new AmberError('USAGE', 'policy set needs at least one setting to change', {
          hint: 'amber policy set --help lists them',
        });
      }
      const repo = await openOp(context);
      const clock = repo.retentionClock;
      printPolicy(await setPolicy(repo, change), clock);
    });

  policy
    .command('apply')
    .description('write a policy change that the approver quorum approved (needs a full-access key)')
    .argument('<request>', 'the id of an executed policy-change request')
    .addHelpText(
      'after',
      `
Approving the last decision with a full-access key applies the change at once; this command is for
when the quorum was completed by someone else.

Examples:
  amber policy apply 9c41d2`,
    )
    .action(async (ref: string) => {
      const repo = await openOp(context);
      const request = await showRequest(repo, ref);
      printPolicy(await applyApprovedPolicyChange(repo, request.id), repo.retentionClock);
    });

  policy
    .command('lock')
    .description('lock the policy: after a cooling-off period it can only be tightened, never loosened')
    .requiredOption('--cooling-off <duration>', 'time during which the lock may still be cancelled, e.g. 72h')
    .addHelpText(
      'after',
      `
During the cooling-off period the policy may still be changed, and \`amber policy unlock\` cancels
the lock. After it, the lock is permanent: no one can lower the minimum or drop compliance.

Examples:
  amber policy lock --cooling-off 72h`,
    )
    .action(async (flags: { coolingOff: string }) => {
      const coolingOffMs = durationFlag('--cooling-off', flags.coolingOff);
      const repo = await openOp(context);
      const clock = repo.retentionClock;
      printPolicy(await lockPolicy(repo, coolingOffMs), clock);
    });

  policy
    .command('unlock')
    .description('cancel a policy lock that is still in its cooling-off period')
    .addHelpText(
      'after',
      `
Examples:
  amber policy unlock`,
    )
    .action(async () => {
      const repo = await openOp(context);
      const clock = repo.retentionClock;
      printPolicy(await unlockPolicy(repo), clock);
    });
}

/** The options that change policy settings, shared by `policy set` and `request policy-change`. */
export function withSettingOptions(command: Command): Command {
  return command
    .option('--min-retention <duration>', 'shortest retention a backup or extension may ask for, or "none"')
    .option('--max-retention <duration>', 'longest retention, or "none"')
    .option('--default-retain <duration>', 'retention of a backup that names none')
    .addOption(new Option('--default-mode <mode>', 'lock mode of a backup that names none').choices(LOCK_MODES))
    .option('--require-compliance', 'refuse governance locks: every lock is compliance')
    .option('--no-require-compliance', 'allow governance locks again (refused once the policy is locked)')
    .option('--extend-step <duration>', 'reused data is extended to dates rounded up to this step')
    .option('--quorum <M>', 'how many registered approvers must approve a request (at most the number of approvers)');
}

export function settingsFrom(flags: SetFlags): Partial<PolicySettings> {
  const change: Partial<PolicySettings> = {};
  if (flags.minRetention !== undefined) change.minRetentionMs = boundFlag('--min-retention', flags.minRetention);
  if (flags.maxRetention !== undefined) change.maxRetentionMs = boundFlag('--max-retention', flags.maxRetention);
  if (flags.defaultRetain !== undefined)
    change.defaultRetentionMs = durationFlag('--default-retain', flags.defaultRetain);
  if (flags.defaultMode !== undefined) change.defaultMode = flags.defaultMode;
  if (flags.requireCompliance !== undefined) change.requireCompliance = flags.requireCompliance;
  if (flags.extendStep !== undefined) {
    change.extendStepMs = durationFlag('--extend-step', flags.extendStep);
    if (change.extendStepMs === 0) throw new AmberError('USAGE', '--extend-step must be longer than zero, e.g. 30d');
  }
  if (flags.quorum !== undefined) {
    if (!/^\d+$/.test(flags.quorum))
      throw new AmberError('USAGE', `--quorum ${flags.quorum} must be a whole number, e.g. 2`);
    change.quorum = Number(flags.quorum);
  }
  return change;
}
