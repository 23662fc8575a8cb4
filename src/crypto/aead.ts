// AES-256-GCM with a random 96-bit nonce per message. Sealed layout: nonce(12) ‖ ciphertext ‖ tag(16).
import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  randomBytes,
  randomFillSync,
  type KeyObject,
} from 'node:crypto';
import { AmberError } from '../core/errors.ts';

export const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
export const SEAL_OVERHEAD_BYTES = NONCE_BYTES + TAG_BYTES;

const keyObjects = new WeakMap<Uint8Array, KeyObject>();

/** Keys are imported once per key buffer: importing a raw key cost more than sealing a small blob. */
export function keyObjectOf(key: Uint8Array): KeyObject {
  let keyObject = keyObjects.get(key);
  if (!keyObject) {
    keyObject = createSecretKey(key);
    keyObjects.set(key, keyObject);
  }
  return keyObject;
}

// Nonces come from the CSPRNG a pool at a time: one call per small blob cost more than sealing it.
const noncePool = Buffer.alloc(NONCE_BYTES * 512);
let noncePoolAt = noncePool.length;

function nextNonce(): Buffer {
  if (noncePoolAt === noncePool.length) {
    randomFillSync(noncePool);
    noncePoolAt = 0;
  }
  noncePoolAt += NONCE_BYTES;
  return noncePool.subarray(noncePoolAt - NONCE_BYTES, noncePoolAt);
}

export function seal(key: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Buffer {
  const nonce = nextNonce();
  const cipher = createCipheriv('aes-256-gcm', keyObjectOf(key), nonce);
  if (aad) cipher.setAAD(aad);
  // One exact allocation per message, outside Node's shared pool: a small sealed blob kept in a pack
  // must not pin an 8 KiB pool slab.
  const sealed = Buffer.allocUnsafeSlow(NONCE_BYTES + plaintext.length + TAG_BYTES);
  nonce.copy(sealed, 0);
  const body = cipher.update(plaintext);
  body.copy(sealed, NONCE_BYTES);
  cipher.final();
  cipher.getAuthTag().copy(sealed, NONCE_BYTES + body.length);
  return sealed;
}

/** Decrypts and authenticates; throws OBJECT_CORRUPT (without naming the object: callers add that). */
export function open(key: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): Buffer {
  if (sealed.length < SEAL_OVERHEAD_BYTES) {
    throw new AmberError('OBJECT_CORRUPT', `sealed data of ${sealed.length} bytes is too short`);
  }
  const nonce = sealed.subarray(0, NONCE_BYTES);
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', keyObjectOf(key), nonce);
  decipher.setAuthTag(tag);
  if (aad) decipher.setAAD(aad);
  const body = decipher.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES));
  try {
    decipher.final();
  } catch (cause) {
    throw new AmberError('OBJECT_CORRUPT', 'authentication failed', { cause });
  }
  return body;
}

export function randomKey(): Buffer {
  return randomBytes(KEY_BYTES);
}
