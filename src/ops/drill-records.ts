// The drills a repository's audit log records, read back for `amber drill list|show|report`: each
// one a signed audit entry (action "drill"), checked like every entry of the log (its bytes against
// its name, its signature against a key with the authority). An entry that claims to be a drill but
// fails those checks, or a gap in the log around one, is reported as tampered, never shown as a
// drill that passed.
import { AmberError } from '../core/errors.ts';
import { readAuditLog, verifyAudit } from '../governance/audit-log.ts';
import type { RepositoryView } from '../repo/repository.ts';
import { decodeSignedRecord } from '../repo/signed-record.ts';
import type { DrillRecord } from './drill.ts';

export interface ListedDrill extends DrillRecord {
  id: string;
  entry: string;
  /** Who signed it: owner, writer KEYID, … */
  signer: string;
}

export interface TamperedDrill {
  name: string;
  problem: string;
  code: string;
}

export interface DrillListing {
  drills: ListedDrill[];
  /** Audit entries that claim to be drills but do not check out, and chain problems of drill entries. */
  tampered: TamperedDrill[];
  /** Problems anywhere in the audit log (`amber audit verify` names them). */
  auditProblems: number;
}

export async function listDrills(view: RepositoryView, options: { sinceMs?: number } = {}): Promise<DrillListing> {
  const log = await readAuditLog(view);
  const verification = await verifyAudit(view, log);
  const drills: ListedDrill[] = [];
  for (const { name, hash, entry, signerKeyId } of log.entries) {
    if (entry.action !== 'drill') continue;
    const record = entry.details as unknown as DrillRecord;
    if (options.sinceMs !== undefined && Date.parse(record.time) < options.sinceMs) continue;
    drills.push({ ...record, id: hash, entry: name, signer: log.describe(signerKeyId) });
  }
  const tampered: TamperedDrill[] = [];
  for (const problem of log.problems)
    if (await claimsDrill(view, problem.name))
      tampered.push({ name: problem.name, problem: problem.problem, code: problem.code ?? 'OBJECT_CORRUPT' });
  const drillNames = new Set(drills.map((drill) => drill.entry));
  for (const problem of verification.problems)
    if (problem.name && drillNames.has(problem.name) && !tampered.some((t) => t.name === problem.name))
      tampered.push({ name: problem.name, problem: problem.problem, code: 'AUDIT_TAMPERED' });
  return { drills, tampered, auditProblems: verification.problems.length };
}

/** Whether an object that failed its checks says (unverified) it is a drill entry. */
async function claimsDrill(view: RepositoryView, name: string): Promise<boolean> {
  try {
    const record = decodeSignedRecord('audit', Buffer.from(await view.store.get(name)), name);
    const payload = JSON.parse(Buffer.from(record.payload).toString('utf8')) as { action?: unknown };
    return payload.action === 'drill';
  } catch {
    // Not even readable as an audit entry: `audit verify` reports it; it shows nothing about drills.
    return false;
  }
}

/** One drill by its id (the entry's hash) or a unique prefix of at least 4 hex digits. */
export function findDrill(listing: DrillListing, ref: string): ListedDrill {
  if (!/^[0-9a-f]{4,64}$/.test(ref))
    throw new AmberError('USAGE', `"${ref}" is not a drill id (4 to 64 hex digits, as amber drill list shows)`);
  const matches = listing.drills.filter((drill) => drill.id.startsWith(ref));
  if (matches.length === 1) return matches[0];
  if (matches.length === 0)
    throw new AmberError('DRILL_NOT_FOUND', `no drill ${ref} in the audit log`, {
      hint: 'list them with `amber drill list`',
    });
  throw new AmberError(
    'USAGE',
    `the drill id ${ref} is ambiguous: ${matches.map((d) => d.id.slice(0, 12)).join(', ')}`,
  );
}
