// Branded id types: a BlobId cannot be passed where a PackId is expected. All ids are lowercase hex.
// A string becomes one only through its as… constructor, which checks it: once, where it comes from
// the storage or the user (a listing, a record, a snapshot lookup).
import { AmberError } from './errors.ts';

declare const brand: unique symbol;
declare const treeBrand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/** Keyed hash (HMAC-SHA-256 under the repository id key) of a blob's plaintext. */
export type BlobId = Brand<string, 'BlobId'>;
/** SHA-256 of a pack object's bytes; also its storage name. */
export type PackId = Brand<string, 'PackId'>;
/** SHA-256 of a snapshot object's bytes. */
export type SnapshotId = Brand<string, 'SnapshotId'>;
/** SHA-256 of a key's Ed25519 signing public key or holder public key. */
export type KeyId = Brand<string, 'KeyId'>;

/** The blob id of a directory's tree: a BlobId (it is stored as a blob), but not every BlobId is one. */
export type TreeId = BlobId & { readonly [treeBrand]: true };

const HEX_ID = /^[0-9a-f]{64}$/;

/** Whether text is an id: 64 lowercase hex digits (SHA-256 or HMAC-SHA-256). */
export const isHexId = (text: unknown): text is string => typeof text === 'string' && HEX_ID.test(text);

function checked<T extends string>(what: string): (hex: string) => T {
  return (hex) => {
    if (!isHexId(hex))
      throw new AmberError(
        'OBJECT_CORRUPT',
        `${JSON.stringify(String(hex).slice(0, 80))} is not a ${what} (64 lowercase hex digits)`,
      );
    return hex as T;
  };
}

export const asBlobId: (hex: string) => BlobId = checked('blob id');
export const asPackId: (hex: string) => PackId = checked('pack id');
export const asSnapshotId: (hex: string) => SnapshotId = checked('snapshot id');
export const asKeyId: (hex: string) => KeyId = checked('key id');
export const asTreeId: (hex: string) => TreeId = checked('tree id');

export function shortId(id: string): string {
  return id.slice(0, 8);
}
