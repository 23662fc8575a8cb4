// Ed25519 signatures over raw 32-byte keys. Messages are always domain-separated by the caller.
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';

export interface SigningKeyPair {
  publicKey: Buffer;
  privateKey: Buffer;
}

export const SIGNATURE_BYTES = 64;

export function generateSigningKeyPair(): SigningKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return exportPair(publicKey, privateKey);
}

export function signMessage(privateKey: Uint8Array, publicKey: Uint8Array, message: Uint8Array): Buffer {
  const key = createPrivateKey({ key: okpJwk('Ed25519', publicKey, privateKey), format: 'jwk' });
  return sign(null, message, key);
}

export function verifySignature(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== SIGNATURE_BYTES || publicKey.length !== 32) return false;
  const key = createPublicKey({ key: okpJwk('Ed25519', publicKey), format: 'jwk' });
  return verify(null, message, key, signature);
}

export function okpJwk(crv: 'Ed25519' | 'X25519', publicKey: Uint8Array, privateKey?: Uint8Array) {
  const jwk: { kty: 'OKP'; crv: string; x: string; d?: string } = {
    kty: 'OKP',
    crv,
    x: Buffer.from(publicKey).toString('base64url'),
  };
  if (privateKey) jwk.d = Buffer.from(privateKey).toString('base64url');
  return jwk;
}

export function exportPair(publicKey: KeyObject, privateKey: KeyObject): SigningKeyPair {
  const jwk = privateKey.export({ format: 'jwk' });
  return {
    publicKey: Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url'),
    privateKey: Buffer.from(jwk.d!, 'base64url'),
  };
}
