// Packs group many encrypted blobs into one object of tens of MiB.
//   header(8) ‖ sealed blobs ‖ sealed pack header ‖ trailer
//   trailer = epoch u32 ‖ data key sealed to the epoch public key (92) ‖ sealed header length u32
//             ‖ signer key id (32) ‖ Ed25519 signature (64) over domain ‖ SHA-256(all bytes before it)
// The pack header (blob types, ids, offsets and lengths) is encrypted, so the storage sees neither
// ids nor blob boundaries. The pack's name is the SHA-256 of all its bytes.
import { AmberError } from '../core/errors.ts';
import { asPackId, type KeyId, type PackId } from '../core/ids.ts';
import {
  createSha256, open, openWithPrivateKey, seal, SEALED_BOX_OVERHEAD_BYTES, sealToPublicKey, signMessage,
  SIGNATURE_BYTES, verifySignature, type BoxKeyPair,
} from '../crypto/index.ts';
import { BLOB_TYPE, type BlobType, type EncodedBlob } from './blob-codec.ts';
import { checkHeader, encodeHeader, HEADER_BYTES } from './object-header.ts';
import { domain, type Signer } from './signed-record.ts';

export interface PackEntry {
  id: Buffer;
  type: BlobType;
  compression: number;
  offset: number;
  sealedLength: number;
  rawLength: number;
}

export interface PackTrailer {
  epoch: number;
  wrappedKey: Buffer;
  headerLength: number;
  signerKeyId: KeyId;
}

const WRAPPED_KEY_BYTES = SEALED_BOX_OVERHEAD_BYTES + 32;
export const TRAILER_BYTES = 4 + WRAPPED_KEY_BYTES + 4 + 32 + SIGNATURE_BYTES;
const ENTRY_BYTES = 1 + 1 + 32 + 4 + 4 + 4;
const TYPE_BY_CODE: readonly BlobType[] = ['data', 'tree'];
const HEADER_AAD = Buffer.from('amber/v1/pack-header', 'ascii');
const KEY_AAD = Buffer.from('amber/v1/pack-key', 'ascii');

export interface PackKey {
  epoch: number;
  dataKey: Buffer;
  /** The data key sealed to the epoch's public key, computed once per backup session. */
  wrappedKey: Buffer;
}

export function newPackKey(epoch: number, epochPublicKey: Buffer, dataKey: Buffer): PackKey {
  return { epoch, dataKey, wrappedKey: sealToPublicKey(epochPublicKey, dataKey, KEY_AAD) };
}

export function unwrapPackKey(trailer: PackTrailer, epochPair: BoxKeyPair, where: string): Buffer {
  try {
    return openWithPrivateKey(epochPair, trailer.wrappedKey, KEY_AAD);
  } catch (cause) {
    throw new AmberError('OBJECT_CORRUPT', `the data key of ${where} does not open`, { cause });
  }
}

/** Assembles a pack from encoded blobs; returns its bytes, id and entries. */
export function assemblePack(blobs: EncodedBlob[], key: PackKey, signer: Signer): { bytes: Buffer; id: PackId; entries: PackEntry[] } {
  const parts: Buffer[] = [encodeHeader('pack')];
  const entries: PackEntry[] = [];
  let offset = HEADER_BYTES;
  for (const blob of blobs) {
    entries.push({ id: blob.id, type: blob.type, compression: blob.compression, offset, sealedLength: blob.sealed.length, rawLength: blob.rawLength });
    parts.push(blob.sealed);
    offset += blob.sealed.length;
  }
  const sealedHeader = seal(key.dataKey, encodeEntries(entries), HEADER_AAD);
  const fixed = Buffer.alloc(4);
  fixed.writeUInt32BE(key.epoch);
  const headerLength = Buffer.alloc(4);
  headerLength.writeUInt32BE(sealedHeader.length);
  parts.push(sealedHeader, fixed, key.wrappedKey, headerLength, Buffer.from(signer.keyId, 'hex'));
  const hash = createSha256();
  for (const part of parts) hash.update(part);
  const signature = signMessage(signer.privateKey, signer.publicKey, Buffer.concat([domain('pack'), hash.digest()]));
  parts.push(signature);
  const bytes = Buffer.concat(parts);
  return { bytes, id: asPackId(createSha256().update(bytes).digest('hex')), entries };
}

function encodeEntries(entries: PackEntry[]): Buffer {
  const out = Buffer.alloc(4 + entries.length * ENTRY_BYTES);
  out.writeUInt32BE(entries.length, 0);
  let at = 4;
  for (const entry of entries) {
    out[at] = BLOB_TYPE[entry.type];
    out[at + 1] = entry.compression;
    entry.id.copy(out, at + 2);
    out.writeUInt32BE(entry.offset, at + 34);
    out.writeUInt32BE(entry.sealedLength, at + 38);
    out.writeUInt32BE(entry.rawLength, at + 42);
    at += ENTRY_BYTES;
  }
  return out;
}

export function decodeTrailer(tail: Uint8Array, where: string): PackTrailer {
  if (tail.length !== TRAILER_BYTES) throw new AmberError('OBJECT_CORRUPT', `${where} is too short to be a pack`);
  const view = Buffer.from(tail.buffer, tail.byteOffset, tail.length);
  return {
    epoch: view.readUInt32BE(0),
    wrappedKey: view.subarray(4, 4 + WRAPPED_KEY_BYTES),
    headerLength: view.readUInt32BE(4 + WRAPPED_KEY_BYTES),
    signerKeyId: view.subarray(8 + WRAPPED_KEY_BYTES, 40 + WRAPPED_KEY_BYTES).toString('hex') as KeyId,
  };
}

/** Decrypts a pack header given the bytes that precede the trailer's end. */
export function decodePackHeader(sealedHeader: Uint8Array, dataKey: Buffer, packSizeBytes: number, where: string): PackEntry[] {
  let plain: Buffer;
  try {
    plain = open(dataKey, sealedHeader, HEADER_AAD);
  } catch (cause) {
    throw new AmberError('OBJECT_CORRUPT', `the header of ${where} failed authentication`, { cause });
  }
  const count = plain.length >= 4 ? plain.readUInt32BE(0) : -1;
  if (count < 0 || plain.length !== 4 + count * ENTRY_BYTES) throw new AmberError('OBJECT_CORRUPT', `the header of ${where} is malformed`);
  const entries: PackEntry[] = [];
  const blobsEnd = packSizeBytes - TRAILER_BYTES - sealedHeader.length;
  for (let at = 4; at < plain.length; at += ENTRY_BYTES) {
    const type = TYPE_BY_CODE[plain[at]];
    const entry: PackEntry = {
      id: Buffer.from(plain.subarray(at + 2, at + 34)),
      type,
      compression: plain[at + 1],
      offset: plain.readUInt32BE(at + 34),
      sealedLength: plain.readUInt32BE(at + 38),
      rawLength: plain.readUInt32BE(at + 42),
    };
    if (!type || entry.offset < HEADER_BYTES || entry.offset + entry.sealedLength > blobsEnd) {
      throw new AmberError('OBJECT_CORRUPT', `the header of ${where} names a blob outside the pack`);
    }
    entries.push(entry);
  }
  return entries;
}

/** Checks a whole pack's bytes: magic, hash against its id, and the signature by `signerPublicKey`. */
export function checkPackBytes(bytes: Buffer, id: PackId, signerPublicKey: (keyId: KeyId) => Buffer | undefined, where: string): PackTrailer {
  checkHeader(bytes, 'pack', where);
  if (bytes.length < HEADER_BYTES + TRAILER_BYTES) throw new AmberError('OBJECT_CORRUPT', `${where} is truncated`);
  if (createSha256().update(bytes).digest('hex') !== id) {
    throw new AmberError('OBJECT_CORRUPT', `${where} does not hash to its name (truncated, altered or renamed)`);
  }
  const trailer = decodeTrailer(bytes.subarray(bytes.length - TRAILER_BYTES), where);
  const publicKey = signerPublicKey(trailer.signerKeyId);
  const signed = bytes.subarray(0, bytes.length - SIGNATURE_BYTES);
  const digest = createSha256().update(signed).digest();
  if (!publicKey || !verifySignature(publicKey, Buffer.concat([domain('pack'), digest]), bytes.subarray(bytes.length - SIGNATURE_BYTES))) {
    throw new AmberError('SIGNATURE_INVALID', `${where} is not signed by a key with authority to write it`);
  }
  return trailer;
}
