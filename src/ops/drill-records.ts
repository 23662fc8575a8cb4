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
  const tampered: TamperedDrill[] = [];
  for (const { name, hash, entry, signerKeyId } of log.entries) {
    if (entry.action !== 'drill') continue;
    // Only a full key can read a repository and so run a drill; every full key signs with the owner
    // key. A drill entry signed by anything else (a write-only key on a backup client, a vault's
    // witness, an approver) is a claim nobody could have proven: shown as such, never as a drill.
    if (!view.authority.ownerKeyFor(signerKeyId)) {
      tampered.push({
        name,
        problem: `claims a drill but is signed by ${log.describe(signerKeyId)}, not by the owner key of a full key: a write-only key cannot read the repository, so it cannot have run a drill`,
        code: 'DRILL_UNTRUSTED',
      });
      continue;
    }
    const malformed = malformedRecord(entry.details, entry.target);
    if (malformed) {
      tampered.push({ name, problem: `is not a drill record: ${malformed}`, code: 'DRILL_MALFORMED' });
      continue;
    }
    const record = entry.details as unknown as DrillRecord;
    if (options.sinceMs !== undefined && Date.parse(record.time) < options.sinceMs) continue;
    drills.push({ ...record, id: hash, entry: name, signer: log.describe(signerKeyId) });
  }
  for (const problem of log.problems)
    if (await claimsDrill(view, problem.name))
      tampered.push({ name: problem.name, problem: problem.problem, code: problem.code ?? 'OBJECT_CORRUPT' });
  const drillNames = new Set(drills.map((drill) => drill.entry));
  for (const problem of verification.problems)
    if (problem.name && drillNames.has(problem.name) && !tampered.some((t) => t.name === problem.name))
      tampered.push({ name: problem.name, problem: problem.problem, code: 'AUDIT_TAMPERED' });
  return { drills, tampered, auditProblems: verification.problems.length };
}

const isString = (v: unknown): v is string => typeof v === 'string';
const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const arrayOf = (v: unknown, item: (x: unknown) => boolean) => Array.isArray(v) && v.every(item);
const orNull = (test: (x: unknown) => boolean) => (v: unknown) => v === null || test(v);

/**
 * Why a drill entry's details are not a drill record of the shape `amber drill run` writes (a field
 * missing or of another type, a verdict that contradicts its reasons), or undefined: reports and
 * listings trust nothing they have not checked.
 */
export function malformedRecord(details: unknown, target: string): string | undefined {
  if (!isObject(details)) return 'its details are not an object';
  const d = details;
  const fields: [string, (v: unknown) => boolean][] = [
    ['version', (v) => v === 1],
    ['time', (v) => isString(v) && !Number.isNaN(Date.parse(v))],
    ['source', isString],
    ['snapshot', (v) => isString(v) && /^[0-9a-f]{64}$/.test(v)],
    ['snapshotTime', isString],
    ['host', isString],
    ['paths', (v) => arrayOf(v, isString)],
    [
      'selection',
      (v) =>
        isObject(v) &&
        ['given', 'latest', 'random'].includes(v.mode as string) &&
        isNumber(v.candidates) &&
        orNull(isNumber)(v.withinSeconds) &&
        orNull(isNumber)(v.seed) &&
        orNull(isString)(v.host) &&
        orNull(isString)(v.path),
    ],
    ['passed', (v) => typeof v === 'boolean'],
    ['reasons', (v) => arrayOf(v, isString)],
    ['rtoSeconds', isNumber],
    ['rtoObjectiveSeconds', orNull(isNumber)],
    ['rpoSeconds', isNumber],
    ['restoredBytes', isNumber],
    ['restoredFiles', isNumber],
    ['restoredEntries', isNumber],
    [
      'stages',
      (v) =>
        arrayOf(
          v,
          (s) =>
            isObject(s) &&
            isString(s.name) &&
            isString(s.start) &&
            isNumber(s.seconds) &&
            ['ok', 'failed', 'skipped'].includes(s.result as string) &&
            (s.detail === undefined || isString(s.detail)),
        ),
    ],
    [
      'checks',
      (v) =>
        arrayOf(
          v,
          (c) =>
            isObject(c) &&
            isString(c.command) &&
            orNull(isNumber)(c.exit) &&
            orNull(isString)(c.signal) &&
            typeof c.timedOut === 'boolean' &&
            isNumber(c.seconds) &&
            arrayOf(c.output, isString),
        ),
    ],
    [
      'database',
      (v) =>
        v === undefined ||
        (isObject(v) &&
          ['postgresql', 'mysql'].includes(v.kind as string) &&
          isString(v.server) &&
          arrayOf(v.databases, (d) => isObject(d) && isString(d.name) && isNumber(d.tables) && isNumber(d.rows))),
    ],
    ['problems', (v) => arrayOf(v, (p) => isObject(p) && isString(p.path) && isString(p.problem))],
    ['problemCount', isNumber],
    ['notChecked', (v) => arrayOf(v, isString)],
    ['target', isString],
    ['kept', (v) => typeof v === 'boolean'],
    ['actor', isString],
    ['repository', isString],
  ];
  const wrong = fields.filter(([field, test]) => !test(d[field])).map(([field]) => field);
  if (wrong.length > 0) return `${wrong.join(', ')} missing or of the wrong type`;
  if (d.passed !== ((d.reasons as string[]).length === 0))
    return d.passed ? 'it says passed but gives reasons it failed' : 'it says failed but gives no reason';
  if (d.snapshot !== target) return `its snapshot ${d.snapshot} is not the entry's target ${target}`;
  return undefined;
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
