// Worker thread: compresses and encrypts batches of blobs for the codec pool (see codec-pool.ts).
// A batch arrives as one buffer of plaintexts and leaves as one buffer of sealed blobs, so small
// blobs cost neither a message nor an allocation each; the plaintext memory goes back for reuse.
// A copy's batches arrive sealed under another repository's pack key and are checked and sealed
// again under this one (resealBlob), never recompressed.
import { parentPort, workerData } from 'node:worker_threads';
import { isAmberError } from '../core/errors.ts';
import { encodeBlob, resealBlob, type BlobType, type EncodedBlob } from '../repo/blob-codec.ts';
import { serveTasks } from './worker-pool.ts';

export interface EncodeBatch {
  kind?: undefined;
  types: BlobType[];
  /** 32 bytes per blob. */
  ids: Uint8Array;
  /** Plaintexts back to back; `lengths[i]` bytes each. */
  plaintext: Uint8Array;
  lengths: number[];
}

export interface EncodedBatch {
  /** Sealed blobs back to back; `sealedLengths[i]` bytes each. */
  sealed: Uint8Array;
  sealedLengths: number[];
  compressions: number[];
  /** The batch's plaintext memory, given back. */
  plaintext: Uint8Array;
}

/** Blobs sealed under another repository's pack key (`sourceKey`), to be checked and sealed again. */
export interface ResealBatch {
  kind: 'reseal';
  types: BlobType[];
  ids: Uint8Array;
  compressions: number[];
  rawLengths: number[];
  /** Sealed blobs back to back; `lengths[i]` bytes each. */
  plaintext: Uint8Array;
  lengths: number[];
  sourceKey: Uint8Array;
  idKey: Uint8Array;
  where: string;
}

/** A blob of a reseal batch that failed its check: the whole batch fails with it. */
export interface ResealFailure {
  failed: { index: number; code: string; message: string };
}

const { dataKey, zstdLevel } = workerData as { dataKey: Uint8Array; zstdLevel?: number };
const key = Buffer.from(dataKey);

serveTasks<EncodeBatch | ResealBatch, EncodedBatch | ResealFailure>(parentPort!, (batch) => {
  const sealedParts: Buffer[] = [];
  const compressions: number[] = [];
  const source = Buffer.from(batch.plaintext.buffer, batch.plaintext.byteOffset, batch.plaintext.byteLength);
  const ids = Buffer.from(batch.ids.buffer, batch.ids.byteOffset, batch.ids.byteLength);
  const resealKeys =
    batch.kind === 'reseal'
      ? { from: Buffer.from(batch.sourceKey), to: key, idKey: Buffer.from(batch.idKey) }
      : undefined;
  let at = 0;
  for (const [n, length] of batch.lengths.entries()) {
    const input = source.subarray(at, at + length);
    const id = ids.subarray(n * 32, n * 32 + 32);
    let blob: EncodedBlob;
    if (batch.kind === 'reseal') {
      const ref = { id, type: batch.types[n], compression: batch.compressions[n], rawLength: batch.rawLengths[n] };
      try {
        blob = resealBlob(ref, input, resealKeys!, batch.where);
      } catch (error) {
        if (!isAmberError(error)) throw error;
        return { reply: { failed: { index: n, code: error.code, message: error.message } } };
      }
    } else {
      blob = encodeBlob({ plaintext: input, id, type: batch.types[n], dataKey: key, zstdLevel });
    }
    sealedParts.push(blob.sealed);
    compressions.push(blob.compression);
    at += length;
  }
  // One buffer of its own (never a slice of Node's pool, which cannot be transferred). A lone blob
  // is sealed into such a buffer already.
  const sealed =
    sealedParts.length === 1
      ? sealedParts[0]
      : Buffer.allocUnsafeSlow(sealedParts.reduce((total, part) => total + part.length, 0));
  let offset = 0;
  if (sealedParts.length > 1) for (const part of sealedParts) offset += part.copy(sealed, offset);
  return {
    reply: { sealed, sealedLengths: sealedParts.map((part) => part.length), compressions, plaintext: batch.plaintext },
    transfer: [sealed.buffer as ArrayBuffer, batch.plaintext.buffer as ArrayBuffer],
  };
});
