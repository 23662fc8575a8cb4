// Branded id types: a BlobId cannot be passed where a PackId is expected. All ids are lowercase hex.

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/** Keyed hash (HMAC-SHA-256 under the repository id key) of a blob's plaintext. */
export type BlobId = Brand<string, 'BlobId'>;
/** SHA-256 of a pack object's bytes; also its storage name. */
export type PackId = Brand<string, 'PackId'>;
/** SHA-256 of a snapshot object's bytes. */
export type SnapshotId = Brand<string, 'SnapshotId'>;
/** SHA-256 of a key's Ed25519 signing public key or holder public key. */
export type KeyId = Brand<string, 'KeyId'>;

export const asBlobId = (hex: string): BlobId => hex as BlobId;
export const asPackId = (hex: string): PackId => hex as PackId;
export const asSnapshotId = (hex: string): SnapshotId => hex as SnapshotId;
export const asKeyId = (hex: string): KeyId => hex as KeyId;

export function shortId(id: string): string {
  return id.slice(0, 8);
}
