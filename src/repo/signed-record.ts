// Signed envelope shared by config, keys, epochs, revocations, index and snapshots:
//   header(8) ‖ payloadLength u32 BE ‖ payload ‖ signerKeyId(32) ‖ Ed25519 signature(64)
// The signature covers "amber/v1/<kind>\0" ‖ every byte before the signature, so a signature for
// one kind of record can never be replayed as another.
import { AmberError } from '../core/errors.ts';
import { asKeyId, type KeyId } from '../core/ids.ts';
import { sha256, sha256Hex, signMessage, SIGNATURE_BYTES, verifySignature } from '../crypto/index.ts';
import { checkHeader, encodeHeader, HEADER_BYTES, type ObjectKind } from './object-header.ts';

export interface Signer {
  keyId: KeyId;
  publicKey: Buffer;
  privateKey: Buffer;
}

export interface SignedRecord {
  payload: Buffer;
  signerKeyId: KeyId;
  /** SHA-256 of the whole object; its name for content-addressed kinds. */
  hash: string;
  signedBytes: Buffer;
  signature: Buffer;
}

const KEY_ID_BYTES = 32;
/** Records larger than this are refused before parsing (hostile storage). */
export const MAX_RECORD_BYTES = 256 * 1024 * 1024;

export const keyIdOf = (publicKey: Uint8Array): KeyId => asKeyId(sha256Hex(publicKey));

export function domain(kind: ObjectKind): Buffer {
  return Buffer.from(`amber/v1/${kind}\0`, 'ascii');
}

export function encodeSignedRecord(kind: ObjectKind, payload: Uint8Array, signer: Signer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(payload.length);
  const signed = Buffer.concat([encodeHeader(kind), length, payload, Buffer.from(signer.keyId, 'hex')]);
  const signature = signMessage(signer.privateKey, signer.publicKey, Buffer.concat([domain(kind), signed]));
  return Buffer.concat([signed, signature]);
}

/** Parses the envelope. The signature is NOT checked here: callers decide who had the authority. */
export function decodeSignedRecord(kind: ObjectKind, bytes: Buffer, name: string): SignedRecord {
  checkHeader(bytes, kind, name);
  if (bytes.length > MAX_RECORD_BYTES) {
    throw new AmberError('OBJECT_CORRUPT', `${name} is ${bytes.length} bytes, larger than any valid record`);
  }
  const payloadLength = bytes.length >= HEADER_BYTES + 4 ? bytes.readUInt32BE(HEADER_BYTES) : -1;
  const expected = HEADER_BYTES + 4 + payloadLength + KEY_ID_BYTES + SIGNATURE_BYTES;
  if (payloadLength < 0 || bytes.length !== expected) {
    throw new AmberError('OBJECT_CORRUPT', `${name} is truncated or has trailing bytes (${bytes.length} bytes)`);
  }
  const payloadEnd = HEADER_BYTES + 4 + payloadLength;
  return {
    payload: bytes.subarray(HEADER_BYTES + 4, payloadEnd),
    signerKeyId: asKeyId(bytes.subarray(payloadEnd, payloadEnd + KEY_ID_BYTES).toString('hex')),
    hash: sha256(bytes).toString('hex'),
    signedBytes: bytes.subarray(0, bytes.length - SIGNATURE_BYTES),
    signature: bytes.subarray(bytes.length - SIGNATURE_BYTES),
  };
}

export function hasValidSignature(kind: ObjectKind, record: SignedRecord, publicKey: Uint8Array): boolean {
  return (
    keyIdOf(publicKey) === record.signerKeyId &&
    verifySignature(publicKey, Buffer.concat([domain(kind), record.signedBytes]), record.signature)
  );
}

export function parseJsonPayload<T>(record: Pick<SignedRecord, 'payload'>, name: string): T {
  try {
    return JSON.parse(record.payload.toString('utf8')) as T;
  } catch (cause) {
    throw new AmberError('OBJECT_CORRUPT', `${name} holds malformed JSON`, { cause });
  }
}

export function jsonBytes(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}
