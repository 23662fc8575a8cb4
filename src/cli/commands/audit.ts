import type { Command } from 'commander';
import { AmberError } from '../../core/errors.ts';
import { readAuditLog, verifyAudit, writeCheckpoint, type AuditVerification } from '../../governance/audit-log.ts';
import type { LoadedEntry } from '../../repo/audit-records.ts';
import type { RepositoryView } from '../../repo/repository.ts';
import { type CliContext, openOp, openRepoView, print, readTokenFile, storeFor } from '../context.ts';
import { checkAnchors, type AnchorCheck } from '../../governance/audit-anchors.ts';
import { openRepositoryView } from '../../repo/repository.ts';
import { dateFlag, durationFlag } from '../options.ts';

export function registerAudit(program: Command, context: CliContext): void {
  const audit = program
    .command('audit')
    .description('the tamper-evident audit log: read it, verify it, export it (no passphrase needed)')
    .addHelpText(
      'after',
      `
Every state-changing operation appends one signed entry that names the entry before it. Reading and
verifying the log needs only access to the repository, not its passphrase.

Examples:
  amber audit log --since 7d
  amber audit verify
  amber audit export --format csv > audit.csv
  amber audit checkpoint`,
    );

  audit
    .command('log')
    .description("list the log's entries, oldest first")
    .option('--since <when>', 'only entries from this date (2026-11-01) or this long ago (7d)')
    .addHelpText(
      'after',
      `
Examples:
  amber audit log
  amber audit log --since 24h --json`,
    )
    .action(async (flags: { since?: string }) => {
      const view = await openRepoView(context);
      const { entries, describe } = await entriesSince(view, flags.since, context.clock.nowMs());
      print(
        context,
        entries.map((loaded) => exportRow(describe, loaded)),
        (rows) =>
          rows.length === 0
            ? 'no audit entries'
            : rows
                .map(
                  (row) =>
                    `#${row.seq}  ${row.time}  ${row.actor} (${row.signer})  ${row.action} ${row.target.slice(0, 16)}  ${summarise(row.details)}`,
                )
                .join('\n'),
      );
    });

  audit
    .command('verify')
    .description('check the log: edited, removed, reordered or inserted entries, truncation behind the last checkpoint')
    .option(
      '--anchors-from <location>',
      "also check the log against what an isolated copy saw of it (the anchors each `amber copy` run records in the copy's own log)",
    )
    .option(
      '--anchors-token-file <file>',
      "the copy vault's token, needed when --anchors-from is a vault (an auditor token is enough; the token of --repo is never sent there)",
    )
    .addHelpText(
      'after',
      `
Exits with status 1 and names the first bad entry when anything is wrong. With --anchors-from, a
log whose history was rewritten after the copy saw it (entries removed or replaced, the log forked
from an earlier point, a checkpoint gone) fails too, even when it is consistent in itself.

Examples:
  amber audit verify
  amber audit verify --json
  amber audit verify --repo https://vault1.example:8420/finance --anchors-from /mnt/amber-copy`,
    )
    .action(async (flags: { anchorsFrom?: string; anchorsTokenFile?: string }) => {
      const view = await openRepoView(context);
      const log = await readAuditLog({ ...view, recordCache: undefined });
      const verified = await verifyAudit(view, log);
      const anchorsFile = flags.anchorsTokenFile;
      const anchors =
        flags.anchorsFrom === undefined
          ? undefined
          : await checkAnchors(
              view,
              await openRepositoryView(
                // Never AMBER_VAULT_TOKEN, the token of --repo (the primary): the copy's vault gets its own.
                await storeFor(flags.anchorsFrom, { token: () => anchorsToken(anchorsFile) }),
              ),
              log,
            );
      const result = anchors ? { ...verified, anchors } : verified;
      print(context, result, (shown) => renderVerification(shown, anchors));
      if (anchors && anchors.anchors === 0)
        throw new AmberError(
          'USAGE',
          `${anchors.copy.location} holds no anchor of repository ${view.config.repositoryId.slice(0, 8)}: it is not a copy of it, or no copy ran yet`,
          { hint: 'check --anchors-from; the copy site records an anchor with every `amber copy`' },
        );
      if (anchors && anchors.problems.length > 0 && !result.firstBad) {
        const first = anchors.problems[0];
        throw new AmberError(
          'AUDIT_TAMPERED',
          `the audit log was rewritten after the copy at ${anchors.copy.location} saw it on ${first.time}: ${first.problem}`,
          {
            hint: 'treat this as an incident: the copy keeps the history as it was; keep the altered objects as evidence',
          },
        );
      }
      if (result.firstBad) {
        throw new AmberError(
          'AUDIT_TAMPERED',
          `the audit log has ${result.problems.length} problem(s); the first bad entry is #${result.firstBad.seq} (${result.firstBad.name}): ${result.firstBad.problem}`,
          {
            hint: 'treat this as an incident: compare with an isolated copy and keep the altered objects as evidence',
          },
        );
      }
    });

  audit
    .command('export')
    .description('write every entry for auditors, as JSON lines or CSV')
    .option('--format <format>', 'jsonl or csv', 'jsonl')
    .option('--since <when>', 'only entries from this date or this long ago')
    .addHelpText(
      'after',
      `
Each row carries the entry's object name and hash, so an auditor can check it against the repository.

Examples:
  amber audit export --format jsonl > audit.jsonl
  amber audit export --format csv --since 2026-01-01 > audit-2026.csv`,
    )
    .action(async (flags: { format: string; since?: string }) => {
      if (flags.format !== 'jsonl' && flags.format !== 'csv')
        throw new AmberError('USAGE', `--format ${flags.format}: choose jsonl or csv`);
      const view = await openRepoView(context);
      const { entries, describe } = await entriesSince(view, flags.since, context.clock.nowMs());
      const rows = entries.map((loaded) => exportRow(describe, loaded));
      const out = context.output.out;
      if (flags.format === 'jsonl') {
        for (const row of rows) out.write(`${JSON.stringify(row)}\n`);
        return;
      }
      const columns = [
        'seq',
        'time',
        'actor',
        'signer',
        'signerKeyId',
        'action',
        'target',
        'details',
        'previous',
        'name',
      ] as const;
      out.write(`${columns.join(',')}\n`);
      for (const row of rows) {
        const cells = columns.map((column) => {
          const value = row[column];
          return csvCell(
            typeof value === 'string' || typeof value === 'number' ? String(value) : JSON.stringify(value),
          );
        });
        out.write(`${cells.join(',')}\n`);
      }
    });

  audit
    .command('checkpoint')
    .description('sign the log as it stands with the owner key (run it on a schedule, e.g. after backups)')
    .addHelpText(
      'after',
      `
A checkpoint records the log's heads and how many entries lie behind them; \`audit verify\` then
detects any entry removed behind it. Needs a full-access key.

Examples:
  amber audit checkpoint`,
    )
    .action(async () => {
      const checkpoint = await writeCheckpoint(await openOp(context));
      print(
        context,
        checkpoint,
        (result) =>
          `checkpoint at entry #${result.seq}: ${result.entries} entries, ${result.heads.length} head(s) (${result.name})`,
      );
    });
}

async function entriesSince(
  view: RepositoryView,
  since: string | undefined,
  nowMs: number,
): Promise<{ entries: LoadedEntry[]; describe: (keyId: LoadedEntry['signerKeyId']) => string }> {
  const { entries, describe } = await readAuditLog(view);
  if (since === undefined) return { entries, describe };
  const fromMs = /^(?:\d+[smhdwy])+$/.test(since)
    ? nowMs - durationFlag('--since', since)
    : dateFlag('--since', since, nowMs);
  return { entries: entries.filter(({ entry }) => Date.parse(entry.time) >= fromMs), describe };
}

function exportRow(
  describe: (keyId: LoadedEntry['signerKeyId']) => string,
  { name, hash, entry, signerKeyId }: LoadedEntry,
) {
  return {
    seq: entry.seq,
    time: entry.time,
    actor: entry.actor,
    signer: describe(signerKeyId),
    signerKeyId,
    action: entry.action,
    target: entry.target,
    details: entry.details,
    previous: entry.previous,
    name,
    hash,
  };
}

function summarise(details: Record<string, unknown>): string {
  return Object.entries(details)
    .filter(([, value]) => value !== null && typeof value !== 'object')
    .map(([key, value]) => `${key}=${String(value)}`)
    .join(' ');
}

function csvCell(text: string): string {
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function renderVerification(result: AuditVerification, anchors?: AnchorCheck): string {
  const lines = result.problems.map((problem) => `error: #${problem.seq} ${problem.name}: ${problem.problem}`);
  for (const problem of anchors?.problems ?? [])
    lines.push(`error: seen by the copy on ${problem.time} (${problem.anchor}): ${problem.problem}`);
  lines.push(...result.ignored.map((object) => `warning: ignored ${object.name}: ${object.problem}`));
  if (result.ignored.length)
    lines.push(
      `${result.ignored.length} unauthorised objects ignored (no key with the authority wrote them; not part of the log)`,
    );
  lines.push(
    `checked ${result.entries} entries; ${result.heads.length} head(s)${result.heads.length > 1 ? ' (a fork the next entry merges)' : ''}`,
  );
  lines.push(
    result.checkpoint
      ? `last checkpoint: entry #${result.checkpoint.seq}, ${result.checkpoint.entries} entries behind it`
      : 'no checkpoint yet: run `amber audit checkpoint` so that removed entries are detected',
  );
  if (anchors)
    lines.push(
      `checked against ${anchors.anchors} anchor${anchors.anchors === 1 ? '' : 's'} in the copy at ${anchors.copy.location}` +
        (anchors.newest ? `, the newest of ${anchors.newest.time}` : '') +
        (anchors.problems.length ? `: ${anchors.problems.length} problems` : ': the history the copy saw is intact'),
    );
  const found = result.problems.length + (anchors?.problems.length ?? 0);
  lines.push(found ? `${found} problems found` : 'the audit log is intact');
  return lines.join('\n');
}

/** The token for an --anchors-from vault: from --anchors-token-file only. */
function anchorsToken(file: string | undefined): string {
  if (file === undefined)
    throw new AmberError('TOKEN_INVALID', '--anchors-from names a vault and needs a token of its own', {
      hint: "pass --anchors-token-file (an auditor token of the copy's vault); the token of --repo is never sent to it",
    });
  return readTokenFile(file);
}
