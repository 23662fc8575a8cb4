// The only place that builds object names. Every name but `config` carries the SHA-256 of the
// object's bytes, so any reader can check an object against its name.
import { asSnapshotId, type PackId, type SnapshotId } from '../core/ids.ts';

export const CONFIG_NAME = 'config';

export const PREFIX = {
  keys: 'keys/',
  epochs: 'epochs/',
  revocations: 'revocations/',
  data: 'data/',
  index: 'index/',
  snapshots: 'snapshots/',
  grants: 'grants/',
  policies: 'policies/',
  holds: 'holds/',
  forgets: 'forgets/',
  condemns: 'condemns/',
  audit: 'audit/',
  checkpoints: 'checkpoints/',
  requests: 'requests/',
  decisions: 'decisions/',
  executions: 'executions/',
  witnesses: 'witnesses/',
} as const;

/** Objects every snapshot needs besides its packs and itself: retained as long as anything is. */
export const METADATA_PREFIXES: readonly PrefixKind[] = [
  'keys',
  'epochs',
  'revocations',
  'index',
  'grants',
  'policies',
  'holds',
  'forgets',
  'condemns',
  'audit',
  'checkpoints',
  'requests',
  'decisions',
  'executions',
  'witnesses',
];

export type PrefixKind = keyof typeof PREFIX;

export const packName = (id: PackId): string => `data/${id.slice(0, 2)}/${id}`;
export const snapshotName = (id: SnapshotId): string => `snapshots/${id}`;
export const objectName = (kind: Exclude<PrefixKind, 'data'>, hash: string): string => `${PREFIX[kind]}${hash}`;

type Sequenced = 'audit' | 'checkpoints';

/** Audit entries and checkpoints sort by sequence in a plain listing: `audit/<seq, 12 digits>-<hash>`. */
export const sequencedName = (kind: Sequenced, seq: number, hash: string): string =>
  `${PREFIX[kind]}${String(seq).padStart(12, '0')}-${hash}`;

/** Sequence number and hash of such a name, or undefined when the name is not one. */
export function parseSequencedName(kind: Sequenced, name: string): { seq: number; hash: string } | undefined {
  const match = /^(\d{12})-([0-9a-f]{64})$/.exec(name.startsWith(PREFIX[kind]) ? name.slice(PREFIX[kind].length) : '');
  return match ? { seq: Number(match[1]), hash: match[2] } : undefined;
}

/** The hash part of a content-addressed name, or undefined when the name is not one. */
export function hashOfName(name: string): string | undefined {
  const match = /[/-]([0-9a-f]{64})$/.exec(name);
  return match ? match[1] : undefined;
}

export interface ParsedName {
  kind: 'config' | PrefixKind;
  /** The SHA-256 the name carries (of the bytes; of the request for requests/ and executions/). */
  hash?: string;
  /** Audit entries and checkpoints: the sequence number. */
  seq?: number;
}

const KINDS = Object.entries(PREFIX) as [PrefixKind, string][];

/**
 * Which object a name is, when it has exactly the layout writers create (`config`, `data/<H[0..2)>/<H>`,
 * `audit/` and `checkpoints/` as `<seq>-<H>`, every other prefix `<prefix><H>`); undefined for any
 * other name, so an enforcer can refuse what no reader would ever look for.
 */
export function parseObjectName(name: string): ParsedName | undefined {
  if (name === CONFIG_NAME) return { kind: 'config' };
  const found = KINDS.find(([, prefix]) => name.startsWith(prefix));
  if (!found) return undefined;
  const [kind, prefix] = found;
  if (kind === 'audit' || kind === 'checkpoints')
    return parseSequencedName(kind, name) && { kind, ...parseSequencedName(kind, name)! };
  const rest = name.slice(prefix.length);
  if (kind === 'data') {
    const match = /^([0-9a-f]{2})\/([0-9a-f]{64})$/.exec(rest);
    return match?.[2].startsWith(match[1]) ? { kind, hash: match[2] } : undefined;
  }
  return /^[0-9a-f]{64}$/.test(rest) ? { kind, hash: rest } : undefined;
}

/** The snapshot a name is the object of (`snapshots/<id>`), or undefined when it is no snapshot's. */
export function snapshotIdOf(name: string): SnapshotId | undefined {
  const parsed = parseObjectName(name);
  return parsed?.kind === 'snapshots' ? asSnapshotId(parsed.hash!) : undefined;
}
