// The only place that builds object names. Every name but `config` carries the SHA-256 of the
// object's bytes, so any reader can check an object against its name.
import type { PackId, SnapshotId } from '../core/ids.ts';

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
} as const;

/** Objects every snapshot needs besides its packs and itself: retained as long as anything is. */
export const METADATA_PREFIXES: readonly PrefixKind[] = [
  'keys', 'epochs', 'revocations', 'index', 'grants', 'policies', 'holds', 'forgets', 'condemns',
];

export type PrefixKind = keyof typeof PREFIX;

export const packName = (id: PackId): string => `data/${id.slice(0, 2)}/${id}`;
export const snapshotName = (id: SnapshotId): string => `snapshots/${id}`;
export const objectName = (kind: Exclude<PrefixKind, 'data'>, hash: string): string => `${PREFIX[kind]}${hash}`;

/** The hash part of a content-addressed name, or undefined when the name is not one. */
export function hashOfName(name: string): string | undefined {
  const match = /\/([0-9a-f]{64})$/.exec(name);
  return match ? match[1] : undefined;
}
