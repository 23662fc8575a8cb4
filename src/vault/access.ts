// What each vault role may read and write, by object name. The server enforces this on every
// request; the repository format decides which objects a command touches (see docs/http-api.md).
import type { Role } from './tokens.ts';

// The repository's records, which every reading role needs: config, keys and who signs what,
// retention records and the requests with their decisions.
const RECORDS = [
  'config',
  'keys/',
  'epochs/',
  'revocations/',
  'witnesses/',
  'policies/',
  'grants/',
  'holds/',
  'forgets/',
  'condemns/',
  'requests/',
  'decisions/',
  'executions/',
];

const METADATA_READ = [...RECORDS, 'audit/', 'checkpoints/'];

const DATA_READ = [...RECORDS, 'data/', 'index/', 'snapshots/'];

const READ: Record<Role, readonly string[] | 'all'> = {
  reader: 'all',
  // A backup client reads what backing up needs, not the audit log: it lists entries to append after them.
  writer: DATA_READ,
  maintainer: 'all',
  admin: 'all',
  // Auditors and approvers see the records, never the (encrypted) data, trees or snapshots.
  auditor: METADATA_READ,
  approver: METADATA_READ,
};

const WRITE: Record<Role, readonly string[]> = {
  reader: [],
  auditor: [],
  writer: ['data/', 'index/', 'snapshots/', 'grants/', 'audit/', 'requests/'],
  // prune (condemn notices, then deletions), forget marks, verify's re-indexing, checkpoints
  maintainer: ['condemns/', 'forgets/', 'index/', 'audit/', 'checkpoints/'],
  approver: ['decisions/', 'executions/', 'audit/'],
  // init, keys, policy, holds, lock extensions and requests on the owner's behalf
  admin: [
    'config',
    'keys/',
    'epochs/',
    'revocations/',
    'witnesses/',
    'policies/',
    'holds/',
    'grants/',
    'requests/',
    'audit/',
    'checkpoints/',
  ],
};

const matches = (name: string, prefixes: readonly string[]) =>
  prefixes.some((prefix) => (prefix.endsWith('/') ? name.startsWith(prefix) : name === prefix));

/** Listing names (not contents): writers see the audit log's names to append after its newest entries. */
export function mayList(role: Role, name: string): boolean {
  return mayRead(role, name) || (role === 'writer' && name.startsWith('audit/'));
}

export function mayRead(role: Role, name: string): boolean {
  const allowed = READ[role];
  return allowed === 'all' || matches(name, allowed);
}

export function mayWrite(role: Role, name: string): boolean {
  return matches(name, WRITE[role]);
}

/**
 * Extending retention: what writers do for reused data, and admins for lock extensions; approvers
 * only for what they write themselves (their audit entries, decisions and executions). How far is
 * bounded by the grants and the policy (vault-retention.ts).
 */
export const mayProtect = (role: Role, name: string): boolean =>
  role === 'writer' || role === 'admin' || role === 'maintainer' || (role === 'approver' && mayWrite(role, name));

/** Deleting expired, condemned objects: only a maintainer (a full-key prune). */
export const mayDelete = (role: Role): boolean => role === 'maintainer';

export const mayCreateRepository = (role: Role): boolean => role === 'admin';
