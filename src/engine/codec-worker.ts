// Worker thread: compresses and encrypts batches of blobs for the codec pool (see codec-pool.ts).
// A batch arrives as one buffer of plaintexts and leaves as one buffer of sealed blobs, so small
// blobs cost neither a message nor an allocation each; the plaintext memory goes back for reuse.
import { parentPort, workerData } from 'node:worker_threads';
import { encodeBlob, type BlobType } from '../repo/blob-codec.ts';
import { serveTasks } from './worker-pool.ts';

export interface EncodeBatch {
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

const { dataKey, zstdLevel } = workerData as { dataKey: Uint8Array; zstdLevel?: number };
const key = Buffer.from(dataKey);

serveTasks<EncodeBatch, EncodedBatch>(parentPort!, (batch) => {
  const sealedParts: Buffer[] = [];
  const compressions: number[] = [];
  const source = Buffer.from(batch.plaintext.buffer, batch.plaintext.byteOffset, batch.plaintext.byteLength);
  const ids = Buffer.from(batch.ids.buffer, batch.ids.byteOffset, batch.ids.byteLength);
  let at = 0;
  batch.lengths.forEach((length, n) => {
    const blob = encodeBlob({
      plaintext: source.subarray(at, at + length),
      id: ids.subarray(n * 32, n * 32 + 32),
      type: batch.types[n],
      dataKey: key,
      zstdLevel,
    });
    sealedParts.push(blob.sealed);
    compressions.push(blob.compression);
    at += length;
  });
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
