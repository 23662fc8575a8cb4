import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  deriveWrappingKey,
  generateBoxKeyPair,
  generateSigningKeyPair,
  hmacSha256,
  newScryptParams,
  open,
  openWithPrivateKey,
  randomKey,
  seal,
  sealToPublicKey,
  signMessage,
  verifySignature,
} from './index.ts';
import { isAmberError } from '../core/errors.ts';

test('seal and open round-trip, and any flipped bit is detected', () => {
  const key = randomKey();
  const message = randomBytes(1000);
  const sealed = seal(key, message, Buffer.from('aad'));
  assert.deepEqual(open(key, sealed, Buffer.from('aad')), message);
  for (const position of [0, 12, 500, sealed.length - 1]) {
    const damaged = Buffer.from(sealed);
    damaged[position] ^= 1;
    assert.throws(
      () => open(key, damaged, Buffer.from('aad')),
      (error) => isAmberError(error, 'OBJECT_CORRUPT'),
    );
  }
  assert.throws(
    () => open(key, sealed, Buffer.from('other')),
    (error) => isAmberError(error, 'OBJECT_CORRUPT'),
  );
  assert.throws(
    () => open(randomKey(), sealed, Buffer.from('aad')),
    (error) => isAmberError(error, 'OBJECT_CORRUPT'),
  );
});

test('two seals of the same plaintext differ (random nonces)', () => {
  const key = randomKey();
  assert.notDeepEqual(seal(key, Buffer.from('x')), seal(key, Buffer.from('x')));
});

test('keyed ids depend on the key', () => {
  const data = Buffer.from('known file');
  assert.notDeepEqual(hmacSha256(randomKey(), data), hmacSha256(randomKey(), data));
});

test('signatures verify only for the signed message and key', () => {
  const pair = generateSigningKeyPair();
  const other = generateSigningKeyPair();
  const message = Buffer.from('amber test message');
  const signature = signMessage(pair.privateKey, pair.publicKey, message);
  assert.equal(verifySignature(pair.publicKey, message, signature), true);
  assert.equal(verifySignature(other.publicKey, message, signature), false);
  assert.equal(verifySignature(pair.publicKey, Buffer.from('amber test messagE'), signature), false);
  assert.equal(verifySignature(pair.publicKey, message, signature.subarray(1)), false);
});

test('a sealed box opens only with the recipient private key', () => {
  const recipient = generateBoxKeyPair();
  const stranger = generateBoxKeyPair();
  const secret = randomKey();
  const box = sealToPublicKey(recipient.publicKey, secret);
  assert.deepEqual(openWithPrivateKey(recipient, box), secret);
  assert.throws(
    () => openWithPrivateKey(stranger, box),
    (error) => isAmberError(error, 'OBJECT_CORRUPT'),
  );
});

test('passphrase keys depend on passphrase and salt', async () => {
  const params = newScryptParams(10);
  const a = await deriveWrappingKey('correct horse', params);
  assert.deepEqual(await deriveWrappingKey('correct horse', params), a);
  assert.notDeepEqual(await deriveWrappingKey('correct horsf', params), a);
  assert.notDeepEqual(await deriveWrappingKey('correct horse', newScryptParams(10)), a);
});
