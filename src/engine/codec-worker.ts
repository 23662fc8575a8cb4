// Worker thread: compresses and encrypts blobs for the codec pool (see codec-pool.ts).
import { parentPort, workerData } from 'node:worker_threads';
import { encodeBlob, type BlobType } from '../repo/blob-codec.ts';

export interface EncodeTask {
  seq: number;
  type: BlobType;
  id: Uint8Array;
  plaintext: Uint8Array;
}

export interface EncodeResult {
  seq: number;
  sealed?: Uint8Array;
  compression?: number;
  error?: string;
}

const { dataKey, zstdLevel } = workerData as { dataKey: Uint8Array; zstdLevel?: number };
const key = Buffer.from(dataKey);

parentPort!.on('message', (task: EncodeTask) => {
  try {
    const plaintext = Buffer.from(task.plaintext.buffer, task.plaintext.byteOffset, task.plaintext.byteLength);
    const blob = encodeBlob({ plaintext, id: Buffer.from(task.id), type: task.type, dataKey: key, zstdLevel });
    const result: EncodeResult = { seq: task.seq, sealed: blob.sealed, compression: blob.compression };
    parentPort!.postMessage(result, [blob.sealed.buffer as ArrayBuffer]);
  } catch (error) {
    parentPort!.postMessage({ seq: task.seq, error: (error as Error).message } satisfies EncodeResult);
  }
});
