// Unkeyed SHA-256 names storage objects (anyone can check them); keyed HMAC-SHA-256 names blobs
// (the storage operator cannot confirm that a known file is stored).
import { createHash, createHmac } from 'node:crypto';
import { keyObjectOf } from './aead.ts';

export function sha256(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest();
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** HMAC-SHA-256; the key is imported once per key buffer (importing dominated small messages). */
export function hmacSha256(key: Uint8Array, bytes: Uint8Array): Buffer {
  return createHmac('sha256', keyObjectOf(key)).update(bytes).digest();
}

/** Incremental SHA-256 for objects written in pieces. */
export function createSha256() {
  return createHash('sha256');
}
