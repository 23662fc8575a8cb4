// A pool of worker threads that compress and encrypt blobs, so the main thread only reads, chunks,
// hashes and writes. Small blobs travel in batches (one message and one buffer per batch); large
// ones alone. Plaintext is copied once, into recycled memory that is transferred to the worker and
// back with its reply.
import type { BlobType, EncodedBlob } from '../repo/blob-codec.ts';
import { createBufferPool } from '../core/buffer-pool.ts';
import type { EncodeBatch, EncodedBatch } from './codec-worker.ts';
import { createWorkerPool, defaultPoolSize } from './worker-pool.ts';

export interface CodecPool {
  /** Encodes a copy of `plaintext`: the caller may reuse its buffer as soon as this returns. */
  encode(type: BlobType, id: Buffer, plaintext: Buffer): Promise<EncodedBlob>;
  close(): Promise<void>;
}

interface Waiting {
  type: BlobType;
  id: Buffer;
  rawLength: number;
  resolve: (blob: EncodedBlob) => void;
  reject: (error: Error) => void;
}

/** Blobs below this size are batched. */
const SMALL_BLOB_BYTES = 64 * 1024;
const BATCH_BYTES = 1024 * 1024;
const BATCH_BLOBS = 256;
/** Recycled plaintext memory kept between uses: about the blob sink's encoding window. */
const RETAINED_BYTES = 32 * 1024 * 1024;

export function createCodecPool(options: { dataKey: Buffer; size?: number; zstdLevel?: number }): CodecPool {
  const workers = createWorkerPool<EncodeBatch, EncodedBatch>(
    new URL('./codec-worker.ts', import.meta.url),
    options.size ?? defaultPoolSize(),
    {
      dataKey: new Uint8Array(options.dataKey),
      zstdLevel: options.zstdLevel,
    },
  );
  const memory = createBufferPool(RETAINED_BYTES);
  let batch: { waiting: Waiting[]; buffer: Buffer | undefined; bytes: number } = {
    waiting: [],
    buffer: undefined,
    bytes: 0,
  };
  let flushScheduled = false;

  function settle(waiting: Waiting[], result: EncodedBatch): void {
    memory.give(result.plaintext.buffer as ArrayBuffer);
    const sealed = Buffer.from(result.sealed.buffer, result.sealed.byteOffset, result.sealed.byteLength);
    let at = 0;
    waiting.forEach((task, n) => {
      const length = result.sealedLengths[n];
      task.resolve({
        id: task.id,
        type: task.type,
        compression: result.compressions[n],
        rawLength: task.rawLength,
        sealed: sealed.subarray(at, at + length),
      });
      at += length;
    });
  }

  function send(waiting: Waiting[], plaintext: Buffer): void {
    const ids = new Uint8Array(waiting.length * 32);
    for (const [n, task] of waiting.entries()) ids.set(task.id, n * 32);
    const batch: EncodeBatch = {
      types: waiting.map((task) => task.type),
      ids,
      plaintext,
      lengths: waiting.map((task) => task.rawLength),
    };
    workers.run(batch, [plaintext.buffer as ArrayBuffer, ids.buffer]).then(
      (result) => settle(waiting, result),
      (error: Error) => {
        for (const task of waiting) task.reject(new Error(`blob encoding failed: ${error.message}`, { cause: error }));
      },
    );
  }

  function flushBatch(): void {
    flushScheduled = false;
    if (!batch.buffer) return;
    const { waiting, buffer, bytes } = batch;
    batch = { waiting: [], buffer: undefined, bytes: 0 };
    send(waiting, buffer.subarray(0, bytes));
  }

  return {
    encode(type, id, plaintext) {
      return new Promise((resolve, reject) => {
        const task: Waiting = { type, id, rawLength: plaintext.length, resolve, reject };
        if (plaintext.length >= SMALL_BLOB_BYTES) {
          const copy = memory.take(plaintext.length);
          plaintext.copy(copy);
          send([task], copy);
          return;
        }
        if (batch.bytes + plaintext.length > BATCH_BYTES) flushBatch();
        batch.buffer ??= memory.take(BATCH_BYTES);
        plaintext.copy(batch.buffer, batch.bytes);
        batch.waiting.push(task);
        batch.bytes += plaintext.length;
        if (batch.bytes === BATCH_BYTES || batch.waiting.length >= BATCH_BLOBS) flushBatch();
        else if (!flushScheduled) {
          flushScheduled = true;
          setImmediate(flushBatch);
        }
      });
    },
    close: () => workers.close(),
  };
}
