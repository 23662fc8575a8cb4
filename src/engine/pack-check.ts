// Checking one pack's bytes completely, in two parts so the blobs of one pack can be spread over
// several threads: the frame (hash against its name, signature, data key, header) and then the
// blobs, each decrypted, decompressed and re-hashed. Pure (no I/O, no repository object); problems
// name the pack and the blob they hit.
import { AmberError, isAmberError } from '../core/errors.ts';
import type { PackId } from '../core/ids.ts';
import type { BoxKeyPair } from '../crypto/index.ts';
import { decodeBlob } from '../repo/blob-codec.ts';
import {
  checkPackBytes,
  decodePackHeader,
  decodeTrailer,
  TRAILER_BYTES,
  unwrapPackKey,
  type PackEntry,
  type PackTrailer,
} from '../repo/pack.ts';

/** A problem verify reports (here: with one pack's bytes), naming the object and blob it hit. */
export interface VerifyProblem {
  object: string;
  blob?: string;
  code: string;
  message: string;
  /** For an object no key with the authority signed: the signer its envelope names. */
  signer?: string;
}

export interface PackCheckInput {
  bytes: Buffer;
  packId: PackId;
  name: string;
  /** The public key allowed to have signed this pack (from its trailer's signer id), if any. */
  signerPublicKey: Buffer | undefined;
  /** Every key pair of the epoch the trailer names; empty when this key cannot open it. */
  epochPairs: BoxKeyPair[];
  idKey: Buffer;
}

export interface PackFrame {
  problems: VerifyProblem[];
  entries: PackEntry[];
  /** Present when the blobs can be read. */
  dataKey?: Buffer;
}

export function checkPackFrame(input: PackCheckInput): PackFrame {
  const { bytes, name } = input;
  const problems: VerifyProblem[] = [];
  try {
    let trailer: PackTrailer;
    try {
      trailer = checkPackBytes(bytes, input.packId, () => input.signerPublicKey, name);
    } catch (error) {
      if (!isAmberError(error) || bytes.length < TRAILER_BYTES) throw error;
      // The data key, the header and every blob are authenticated on their own, so reading on can
      // name the damaged blobs; the pack is reported and never certified.
      problems.push({ object: name, code: error.code, message: error.message });
      trailer = decodeTrailer(bytes.subarray(bytes.length - TRAILER_BYTES), name);
    }
    if (input.epochPairs.length === 0) {
      throw new AmberError(
        'OBJECT_CORRUPT',
        `${name} names key epoch ${trailer.epoch}, which this key cannot open (damaged, or not granted to this key)`,
      );
    }
    const dataKey = unwrapWithAny(input.epochPairs, trailer, name);
    const headerEnd = bytes.length - TRAILER_BYTES;
    const entries = decodePackHeader(
      bytes.subarray(headerEnd - trailer.headerLength, headerEnd),
      dataKey,
      bytes.length,
      name,
    );
    return { problems, entries, dataKey };
  } catch (error) {
    if (!isAmberError(error)) throw error;
    problems.push({ object: name, code: error.code, message: error.message });
    return { problems, entries: [] };
  }
}

/** Decodes and re-hashes each of `entries` from the pack's bytes. */
export function checkPackBlobs(
  bytes: Buffer,
  entries: PackEntry[],
  keys: { dataKey: Buffer; idKey: Buffer },
  name: string,
): VerifyProblem[] {
  const problems: VerifyProblem[] = [];
  for (const entry of entries) {
    try {
      decodeBlob(entry, bytes.subarray(entry.offset, entry.offset + entry.sealedLength), keys, name, {
        transient: true,
      });
    } catch (error) {
      if (!isAmberError(error)) throw error;
      problems.push({ object: name, blob: entry.id.toString('hex'), code: error.code, message: error.message });
    }
  }
  return problems;
}

function unwrapWithAny(pairs: BoxKeyPair[], trailer: PackTrailer, name: string): Buffer {
  let firstError: unknown;
  for (const pair of pairs) {
    try {
      return unwrapPackKey(trailer, pair, name);
    } catch (error) {
      firstError ??= error;
    }
  }
  throw firstError;
}
