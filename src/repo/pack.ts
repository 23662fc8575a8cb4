// Packs group many encrypted blobs into one object of tens of MiB.
//   header(8) ‖ sealed blobs ‖ sealed pack header ‖ trailer
//   trailer = epoch u32 ‖ data key sealed to the epoch public key (92) ‖ sealed header length u32
//             ‖ signer key id (32) ‖ Ed25519 signature (64) over domain ‖ SHA-256(all bytes before it)
// The pack header (blob types, ids, offsets and lengths) is encrypted, so the storage sees neither
// ids nor blob boundaries. The pack's name is the SHA-256 of all its bytes.
import { AmberError } from '../core/errors.ts';
import { asPackId, type KeyId, type PackId } from '../core/ids.ts';
import {
  createSha256,
  open,
  openWithPrivateKey,
  seal,
  SEALED_BOX_OVERHEAD_BYTES,
  sealToPublicKey,
  signMessage,
  SIGNATURE_BYTES,
  verifySignature,
  type BoxKeyPair,
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

export interface AssembledPack {
  /** A view of the builder's buffer: valid until the builder is reset. */
  bytes: Buffer;
  id: PackId;
  entries: PackEntry[];
}

/**
 * Builds packs in one reusable buffer: blobs are copied in once, the header and trailer appended,
 * and the whole pack hashed once (the signature's digest and the pack id share one pass).
 */
export interface PackBuilder {
  readonly sizeBytes: number;
  readonly count: number;
  add(blob: EncodedBlob): void;
  finish(key: PackKey, signer: Signer): AssembledPack;
  reset(): void;
}

/** Room kept for the sealed pack header and trailer beyond the blobs. */
const TAIL_RESERVE_BYTES = 64 * 1024;
const INITIAL_BUFFER_BYTES = 1024 * 1024;

/** The buffer starts small and doubles towards `targetBytes`, so a builder that only ever holds a few
 *  trees stays small. */
export function createPackBuilder(targetBytes: number): PackBuilder {
  let buffer = Buffer.allocUnsafeSlow(Math.min(targetBytes, INITIAL_BUFFER_BYTES) + TAIL_RESERVE_BYTES);
  let size = HEADER_BYTES;
  let entries: PackEntry[] = [];
  const ensure = (extra: number) => {
    if (size + extra <= buffer.length) return;
    const grown = Buffer.allocUnsafeSlow(
      Math.max(Math.min(buffer.length * 2, targetBytes + TAIL_RESERVE_BYTES), size + extra + TAIL_RESERVE_BYTES),
    );
    buffer.copy(grown, 0, 0, size);
    buffer = grown;
  };
  const append = (bytes: Uint8Array) => {
    ensure(bytes.length);
    buffer.set(bytes, size);
    size += bytes.length;
  };
  encodeHeader('pack').copy(buffer, 0);
  return {
    get sizeBytes() {
      return size;
    },
    get count() {
      return entries.length;
    },
    add(blob) {
      entries.push({
        id: blob.id,
        type: blob.type,
        compression: blob.compression,
        offset: size,
        sealedLength: blob.sealed.length,
        rawLength: blob.rawLength,
      });
      append(blob.sealed);
    },
    finish(key, signer) {
      const sealedHeader = seal(key.dataKey, encodeEntries(entries), HEADER_AAD);
      const fixed = Buffer.alloc(8);
      fixed.writeUInt32BE(key.epoch, 0);
      fixed.writeUInt32BE(sealedHeader.length, 4);
      append(sealedHeader);
      append(fixed.subarray(0, 4));
      append(key.wrappedKey);
      append(fixed.subarray(4));
      append(Buffer.from(signer.keyId, 'hex'));
      const hash = createSha256().update(buffer.subarray(0, size));
      const withSignature = hash.copy();
      const signature = signMessage(
        signer.privateKey,
        signer.publicKey,
        Buffer.concat([domain('pack'), hash.digest()]),
      );
      append(signature);
      const id = asPackId(withSignature.update(signature).digest('hex'));
      return { bytes: buffer.subarray(0, size), id, entries };
    },
    reset() {
      size = HEADER_BYTES;
      entries = [];
    },
  };
}

/** A single pack from a list of blobs (tests and one-off writers). */
export function assemblePack(blobs: EncodedBlob[], key: PackKey, signer: Signer): AssembledPack {
  const builder = createPackBuilder(blobs.reduce((total, blob) => total + blob.sealed.length, 0));
  for (const blob of blobs) builder.add(blob);
  return builder.finish(key, signer);
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
export function decodePackHeader(
  sealedHeader: Uint8Array,
  dataKey: Buffer,
  packSizeBytes: number,
  where: string,
): PackEntry[] {
  let plain: Buffer;
  try {
    plain = open(dataKey, sealedHeader, HEADER_AAD);
  } catch (cause) {
    throw new AmberError('OBJECT_CORRUPT', `the header of ${where} failed authentication`, { cause });
  }
  const count = plain.length >= 4 ? plain.readUInt32BE(0) : -1;
  if (count < 0 || plain.length !== 4 + count * ENTRY_BYTES)
    throw new AmberError('OBJECT_CORRUPT', `the header of ${where} is malformed`);
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
export function checkPackBytes(
  bytes: Buffer,
  id: PackId,
  signerPublicKey: (keyId: KeyId) => Buffer | undefined,
  where: string,
): PackTrailer {
  checkHeader(bytes, 'pack', where);
  if (bytes.length < HEADER_BYTES + TRAILER_BYTES) throw new AmberError('OBJECT_CORRUPT', `${where} is truncated`);
  // One pass: the digest of everything before the signature is what was signed, and the same state
  // fed the signature gives the pack's name.
  const signedHash = createSha256().update(bytes.subarray(0, bytes.length - SIGNATURE_BYTES));
  const wholeHash = signedHash.copy().update(bytes.subarray(bytes.length - SIGNATURE_BYTES));
  if (wholeHash.digest('hex') !== id) {
    throw new AmberError('OBJECT_CORRUPT', `${where} does not hash to its name (truncated, altered or renamed)`);
  }
  const trailer = decodeTrailer(bytes.subarray(bytes.length - TRAILER_BYTES), where);
  const publicKey = signerPublicKey(trailer.signerKeyId);
  const digest = signedHash.digest();
  if (
    !publicKey ||
    !verifySignature(publicKey, Buffer.concat([domain('pack'), digest]), bytes.subarray(bytes.length - SIGNATURE_BYTES))
  ) {
    throw new AmberError('SIGNATURE_INVALID', `${where} is not signed by a key with authority to write it`);
  }
  return trailer;
}
