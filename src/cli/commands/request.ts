import type { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import { AmberError } from '../../core/errors.ts';
import { parseApproverPublicKey } from '../../governance/approver-key.ts';
import { parseSignedDecision, type RequestKind } from '../../governance/requests.ts';
import type { RequestView } from '../../governance/requests.ts';
import { openApproverClock } from '../../governance/operation.ts';
import { cacheRoot } from '../../core/local-paths.ts';
import { applyToStorage } from '../../protection/storage-effects.ts';
import {
  approverAuthor,
  createRequest,
  decide,
  listRequests,
  showRequest,
  signDecision,
  submitDecision,
  type SubmitResult,
} from '../../protection/approvals.ts';
import { type CliContext, openOp, openRepoView, print } from '../context.ts';
import { approverFromFile, readText } from './approver.ts';
import { settingsFrom, withSettingOptions, type SetFlags } from './policy.ts';
import { dateFlag, durationFlag } from '../options.ts';

interface RequestFlags {
  reason: string;
  until?: string;
  expires?: string;
  as?: string;
}

export function registerRequest(program: Command, context: CliContext): void {
  const request = program
    .command('request')
    .description('ask the approver quorum for a change that weakens protection')
    .addHelpText(
      'after',
      `
A request executes once M registered approvers (not the requester) approve it before it expires
(default 72h); it is rejected once so many reject that M approvals can no longer come. Compliance
locks cannot be requested away.

Examples:
  amber request unlock 3f2a9c1e --reason "test data, locked by mistake"
  amber request shorten 3f2a9c1e --until 2026-12-01 --reason "retention policy changed"
  amber request release-hold 3f2a9c1e --reason "case 2026-17 closed"
  amber request list
  amber approve 9c41d2 --key ~/alice.key`,
    );

  const kinds: { kind: RequestKind; description: string; example: string }[] = [
    {
      kind: 'unlock',
      description: "end a snapshot's governance lock now",
      example: 'amber request unlock 3f2a9c1e --reason "locked by mistake"',
    },
    {
      kind: 'shorten',
      description: "end a snapshot's governance lock earlier (--until)",
      example: 'amber request shorten 3f2a9c1e --until 2026-12-01 --reason "policy changed"',
    },
    {
      kind: 'release-hold',
      description: 'release the legal hold on a snapshot',
      example: 'amber request release-hold 3f2a9c1e --reason "case closed"',
    },
  ];
  for (const { kind, description, example } of kinds) {
    request
      .command(kind)
      .description(description)
      .argument('<snapshot>', 'snapshot id, id prefix or "latest"')
      .requiredOption('--reason <text>', 'why (recorded, shown to approvers)')
      .option(
        '--until <date>',
        kind === 'shorten'
          ? 'the new end of the lock, before its current end (ISO date or +DURATION); required'
          : 'only for `amber request shorten`; ignored here',
      )
      .option('--expires <duration>', 'how long approvers have, e.g. 24h', '72h')
      .option('--as <file>', 'you are an approver: your FILE.pub (you then cannot approve this request)')
      .addHelpText('after', `\nExamples:\n  ${example}`)
      .action(async (snapshot: string, flags: RequestFlags) => {
        // Checked before the repository opens: a bad value changes nothing (the date is read again below from the trusted clock).
        const expiresInMs = durationFlag('--expires', flags.expires ?? '72h');
        if (flags.until !== undefined) dateFlag('--until', flags.until, context.clock.nowMs());
        const repo = await openOp(context);
        const clock = repo.retentionClock;
        const created = await createRequest({
          repo,
          kind,
          target: snapshot,
          reason: flags.reason,
          untilMs: flags.until === undefined ? undefined : dateFlag('--until', flags.until, clock.retentionBaseMs()),
          expiresInMs,
          asApproverKey: asKey(flags.as),
        });
        print(
          context,
          created,
          (result) =>
            `request ${result.id}\n${kind} ${result.target.slice(0, 16)}: needs ${result.quorum} approval(s) before ${result.expires}`,
        );
      });
  }

  withSettingOptions(
    request
      .command('policy-change')
      .description('change a locked policy in a way it refuses without a quorum (e.g. a shorter minimum)'),
  )
    .requiredOption('--reason <text>', 'why (recorded, shown to approvers)')
    .option('--expires <duration>', 'how long approvers have, e.g. 24h', '72h')
    .option('--as <file>', 'you are an approver: your FILE.pub (you then cannot approve this request)')
    .addHelpText(
      'after',
      `
The request holds the whole new policy and the policy it replaces; once approved it is written by
the full-access key that completes the quorum, or later with \`amber policy apply ID\`.

Examples:
  amber request policy-change --min-retention 7d --reason "shorter retention agreed by the board"
  amber request policy-change --quorum 2 --reason "an approver left"`,
    )
    .action(async (flags: RequestFlags & SetFlags) => {
      const expiresInMs = durationFlag('--expires', flags.expires ?? '72h');
      const policyChange = settingsFrom(flags);
      const repo = await openOp(context);
      const created = await createRequest({
        repo,
        kind: 'policy-change',
        target: 'policy',
        reason: flags.reason,
        policyChange,
        expiresInMs,
        asApproverKey: asKey(flags.as),
      });
      print(
        context,
        created,
        (result) =>
          `request ${result.id}\npolicy-change (${(result.parameters.changes as string[]).join(', ')}): needs ${result.quorum} approval(s) before ${result.expires}`,
      );
    });

  request
    .command('confirm-clock')
    .description("ask the quorum to confirm this host's wall clock after a jump or reboot")
    .requiredOption('--reason <text>', 'what was checked, e.g. "compared with ntp.example.org"')
    .option('--expires <duration>', 'how long approvers have, e.g. 24h', '72h')
    .addHelpText(
      'after',
      `
Once approved, \`amber clock confirm --request ID\` on this host trusts the clock again.

Examples:
  amber request confirm-clock --reason "rebooted; time checked against the NTP servers"`,
    )
    .action(async (flags: RequestFlags) => {
      const expiresInMs = durationFlag('--expires', flags.expires ?? '72h');
      const repo = await openOp(context);
      const created = await createRequest({
        repo,
        kind: 'confirm-clock',
        target: 'clock',
        reason: flags.reason,
        expiresInMs,
      });
      print(
        context,
        created,
        (result) =>
          `request ${result.id}\nconfirm-clock (wall time ${String(result.parameters.wall)}): needs ${result.quorum} approval(s) before ${result.expires}`,
      );
    });

  request
    .command('list')
    .description('list requests and their status (pending, executed, rejected, expired)')
    .addHelpText('after', `\nExamples:\n  amber request list --json`)
    .action(async () => {
      const requests = await listRequests(await openOp(context));
      print(context, requests, (rows) =>
        rows.length === 0
          ? 'no requests'
          : rows
              .map(
                (row) =>
                  `${row.id.slice(0, 12)}  ${row.status.padEnd(8)}  ${row.kind} ${row.target.slice(0, 16)}  ${row.approvedBy.length}/${row.quorum} approvals  by ${row.requester.name}, expires ${row.expires}`,
              )
              .join('\n'),
      );
    });

  request
    .command('show')
    .description('show one request: what it does, who asked, who decided, and refused decisions')
    .argument('<id>', 'request id or prefix')
    .addHelpText('after', `\nExamples:\n  amber request show 9c41 --json`)
    .action(async (id: string) => {
      print(context, await showRequest(await openOp(context), id), renderRequest);
    });

  request
    .command('apply')
    .description('bring the storage in line with an approved request (S3: lower governance dates, lift legal holds)')
    .argument('<id>', 'request id or prefix')
    .addHelpText(
      'after',
      `
On S3 the bucket keeps its own governance dates and legal holds. Once a quorum has approved an
unlock, shorten or release-hold request, run this with the unlock executor's credentials (allowed
s3:BypassGovernanceRetention and s3:PutObjectLegalHold; see docs/s3.md). Compliance dates are never
touched, and no object goes below what another snapshot's lock still needs. On every store, the
objects an unlocked snapshot shares with snapshots still locked are granted again for those locks,
so \`amber lock status\` keeps finding them covered; until then (an approval by approvers alone)
only the snapshot object's lock ends, and its packs stay retained.

Examples:
  AWS_PROFILE=amber-unlock amber request apply 9c41`,
    )
    .action(async (id: string) => {
      const repo = await openOp(context);
      const effect = await applyToStorage(repo, id);
      print(
        context,
        effect,
        (result) =>
          `request ${result.request.slice(0, 12)} (${result.kind}): lowered the governance retention of ${result.lowered} object(s), granted ${result.regranted} shared object(s) again for the locks that still need them, lifted ${result.released} legal hold(s)`,
      );
    });

  for (const decision of ['approve', 'reject'] as const) {
    program
      .command(decision)
      .description(`${decision} a request with your approver key (or sign offline with --out)`)
      .argument('<id>', 'request id (the full id with --out)')
      .requiredOption('--key <file>', 'your approver key file (passphrase from AMBER_APPROVER_PASSWORD or a prompt)')
      .option('--out <file>', 'only sign, into FILE, for `amber approval submit` elsewhere (needs no repository)')
      .addHelpText(
        'after',
        `
You sign the request id and your decision; the signature counts for this request only. No
repository passphrase is needed: your audit entry is signed with your approver key.

Examples:
  amber ${decision} 9c41d2 --key ~/alice.key
  # offline, with the full id (\`amber request show ID --json\` prints it):
  amber ${decision} 9c41d2ccfcd8035fa9da4272a7b3aa4b710655fc1081e84c1e2b8b58ecb5dc99 --key ~/alice.key --out alice.sig`,
      )
      .action(async (id: string, flags: { key: string; out?: string }) => {
        if (flags.out) {
          const signed = signDecision(id, decision, await approverFromFile(flags.key));
          writeFileSync(flags.out, `${JSON.stringify(signed, null, 2)}\n`, { flag: 'wx' });
          print(
            context,
            signed,
            () =>
              `signed "${decision}" for request ${id.slice(0, 12)} into ${flags.out}; file it with \`amber approval submit ${flags.out}\``,
          );
          return;
        }
        // An approver needs their own key, never the repository's passphrase: they act as themselves.
        const approver = await approverFromFile(flags.key);
        const view = await openRepoView(context);
        const author = await approverAuthor(
          view,
          context.clock,
          approver,
          await openApproverClock(view, approver, cacheRoot()),
        );
        print(context, await decide(author, id, decision, approver), renderSubmit);
      });
  }

  program
    .command('approval')
    .description('file decisions signed elsewhere')
    .addHelpText(
      'after',
      `
A decision signed offline (\`amber approve|reject ID --key FILE --out SIG\`, on the approver's own
machine) is filed by anyone who can open the repository (its passphrase); it counts if the store
receives it before the request expires.

Examples:
  amber approval submit alice.sig`,
    )
    .command('submit')
    .description('file a decision signed offline with `amber approve|reject ID --key FILE --out SIG`')
    .argument('<sig>', 'the signature file')
    .addHelpText('after', `\nExamples:\n  amber approval submit alice.sig`)
    .action(async (file: string) => {
      const signed = parseSignedDecision(readText(file));
      if (signed === undefined)
        throw new AmberError('USAGE', `${file} is not a decision signed by \`amber approve --out\``);
      const repo = await openOp(context);
      print(context, await submitDecision(repo, signed), renderSubmit);
    });
}

const asKey = (file: string | undefined) =>
  file ? parseApproverPublicKey(readText(file), file).toString('hex') : undefined;

function renderRequest(request: RequestView): string {
  return [
    `request   ${request.id}`,
    `status    ${request.status}`,
    `kind      ${request.kind} ${request.target}`,
    `details   ${JSON.stringify(request.parameters)}`,
    `requester ${request.requester.name}${request.requester.approverKey ? ' (an approver: cannot approve it)' : ''}`,
    `created   ${request.created}, expires ${request.expires}`,
    `approved  ${request.approvedBy.join(', ') || 'nobody'} (${request.approvedBy.length} of ${request.quorum} needed)`,
    `rejected  ${request.rejectedBy.join(', ') || 'nobody'}`,
    ...request.refused.map(({ approver, decision, reason }) => `refused   ${decision} by ${approver}: ${reason}`),
  ].join('\n');
}

function renderSubmit(result: SubmitResult): string {
  const { request } = result;
  if (request.status === 'executed')
    return `request ${request.id.slice(0, 12)} is approved by ${request.approvedBy.join(', ')} and in force${result.executedNow ? ' (executed now)' : ''}`;
  if (request.status === 'rejected') return `request ${request.id.slice(0, 12)} is rejected`;
  return `decision filed: ${request.approvedBy.length} of ${request.quorum} approvals`;
}
