// Anonymous public-key encryption (ECIES over X25519): anyone with the repository's public key can
// seal a data key; only a holder of the private key can open it. Write-only keys rely on this.
// Layout: ephemeral public key(32) ‖ AES-256-GCM sealed payload.
import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync } from 'node:crypto';
import { AmberError } from '../core/errors.ts';
import { open, seal, SEAL_OVERHEAD_BYTES } from './aead.ts';
import { exportPair, okpJwk, type SigningKeyPair } from './signing.ts';

export type BoxKeyPair = SigningKeyPair;

const INFO = Buffer.from('amber sealed-box v1');
export const SEALED_BOX_OVERHEAD_BYTES = 32 + SEAL_OVERHEAD_BYTES;

export function generateBoxKeyPair(): BoxKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  return exportPair(publicKey, privateKey);
}

function boxKey(shared: Buffer, ephemeralPublic: Uint8Array, recipientPublic: Uint8Array): Buffer {
  const salt = Buffer.concat([ephemeralPublic, recipientPublic]);
  return Buffer.from(hkdfSync('sha256', shared, salt, INFO, 32));
}

export function sealToPublicKey(recipientPublic: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Buffer {
  const ephemeral = generateKeyPairSync('x25519');
  const ephemeralPublic = exportPair(ephemeral.publicKey, ephemeral.privateKey).publicKey;
  const shared = diffieHellman({
    privateKey: ephemeral.privateKey,
    publicKey: createPublicKey({ key: okpJwk('X25519', recipientPublic), format: 'jwk' }),
  });
  return Buffer.concat([ephemeralPublic, seal(boxKey(shared, ephemeralPublic, recipientPublic), plaintext, aad)]);
}

export function openWithPrivateKey(pair: BoxKeyPair, box: Uint8Array, aad?: Uint8Array): Buffer {
  if (box.length < SEALED_BOX_OVERHEAD_BYTES) {
    throw new AmberError('OBJECT_CORRUPT', `sealed box of ${box.length} bytes is too short`);
  }
  const ephemeralPublic = box.subarray(0, 32);
  const shared = diffieHellman({
    privateKey: createPrivateKey({ key: okpJwk('X25519', pair.publicKey, pair.privateKey), format: 'jwk' }),
    publicKey: createPublicKey({ key: okpJwk('X25519', ephemeralPublic), format: 'jwk' }),
  });
  return open(boxKey(shared, ephemeralPublic, pair.publicKey), box.subarray(32), aad);
}
