// A pool of worker threads that compress and encrypt blobs, so the main thread only reads, chunks,
// hashes and writes. Small blobs travel in batches (one message and one buffer per batch); large
// ones alone. Plaintext is copied once, into recycled memory that is transferred to the worker and
// back with its reply.
import { AmberError, type ErrorCode } from '../core/errors.ts';
import type { BlobRef, BlobType, EncodedBlob } from '../repo/blob-codec.ts';
import { createBufferPool } from '../core/buffer-pool.ts';
import type { EncodeBatch, EncodedBatch, ResealBatch, ResealFailure } from './codec-worker.ts';
import { createWorkerPool, defaultPoolSize } from './worker-pool.ts';

export interface CodecPool {
  /** Encodes a copy of `plaintext`: the caller may reuse its buffer as soon as this returns. */
  encode(type: BlobType, id: Buffer, plaintext: Buffer): Promise<EncodedBlob>;
  /** Checks and re-seals blobs sealed under another repository's pack key (see ResealInput). */
  reseal(input: ResealInput): Promise<EncodedBlob[]>;
  close(): Promise<void>;
}

/** Blobs read sealed from one pack of another repository that shares this one's id key. */
export interface ResealInput {
  refs: BlobRef[];
  /** The sealed blobs back to back, in a buffer of their own (it moves to the worker). */
  sealed: Buffer;
  lengths: number[];
  sourceKey: Buffer;
  idKey: Buffer;
  /** The pack they came from, for errors. */
  where: string;
}

/** The error a failed reseal raises, on a worker or inline: the blob and the pack it came from. */
export function resealError(input: ResealInput, failed: ResealFailure['failed']): AmberError {
  return new AmberError(failed.code as ErrorCode, failed.message, {
    details: { blob: input.refs[failed.index].id.toString('hex'), object: input.where },
  });
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
  const workers = createWorkerPool<EncodeBatch | ResealBatch, EncodedBatch | ResealFailure>(
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
      (result) => settle(waiting, result as EncodedBatch),
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
    async reseal(input) {
      const ids = new Uint8Array(input.refs.length * 32);
      for (const [n, ref] of input.refs.entries()) ids.set(ref.id, n * 32);
      const task: ResealBatch = {
        kind: 'reseal',
        types: input.refs.map((ref) => ref.type),
        ids,
        compressions: input.refs.map((ref) => ref.compression),
        rawLengths: input.refs.map((ref) => ref.rawLength),
        plaintext: input.sealed,
        lengths: input.lengths,
        sourceKey: new Uint8Array(input.sourceKey),
        idKey: new Uint8Array(input.idKey),
        where: input.where,
      };
      const owned = input.sealed.byteOffset === 0 && input.sealed.byteLength === input.sealed.buffer.byteLength;
      const reply = await workers.run(task, [...(owned ? [input.sealed.buffer as ArrayBuffer] : []), ids.buffer]);
      if ('failed' in reply) throw resealError(input, reply.failed);
      const sealed = Buffer.from(reply.sealed.buffer, reply.sealed.byteOffset, reply.sealed.byteLength);
      let at = 0;
      return input.refs.map((ref, n) => {
        const length = reply.sealedLengths[n];
        const blob = { ...ref, sealed: sealed.subarray(at, at + length) };
        at += length;
        return blob;
      });
    },
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
