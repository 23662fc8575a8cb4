// A pool of worker threads that compress and encrypt blobs, so the main thread only reads, chunks,
// hashes and writes. Plaintext and sealed bytes move between threads by transfer, not copy.
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import type { BlobType, EncodedBlob } from '../repo/blob-codec.ts';
import type { EncodeResult } from './codec-worker.ts';

export interface CodecPool {
  /** Encodes `plaintext`, which must own its whole ArrayBuffer: it is transferred away. */
  encode(type: BlobType, id: Buffer, plaintext: Buffer): Promise<EncodedBlob>;
  close(): Promise<void>;
}

interface Pending {
  resolve: (blob: EncodedBlob) => void;
  reject: (error: Error) => void;
  type: BlobType;
  id: Buffer;
  rawLength: number;
}

/** One worker per core (the main thread reads, chunks and hashes meanwhile); AMBER_WORKERS overrides, 0 encodes inline. */
export function defaultPoolSize(): number {
  const configured = process.env.AMBER_WORKERS;
  if (configured !== undefined && /^\d+$/.test(configured)) return Math.min(Number(configured), 64);
  return Math.max(1, Math.min(availableParallelism(), 8));
}

export function createCodecPool(options: { dataKey: Buffer; size?: number; zstdLevel?: number }): CodecPool {
  const size = options.size ?? defaultPoolSize();
  const pending = new Map<number, Pending>();
  const load: number[] = [];
  let seq = 0;
  const workers = Array.from({ length: size }, (_, slot) => {
    const worker = new Worker(new URL('./codec-worker.ts', import.meta.url), {
      workerData: { dataKey: new Uint8Array(options.dataKey), zstdLevel: options.zstdLevel },
      // A small heap makes the worker collect often, and with it the chunk buffers it is done with.
      resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 48 },
    });
    load.push(0);
    worker.unref();
    worker.on('message', (result: EncodeResult) => {
      const task = pending.get(result.seq)!;
      pending.delete(result.seq);
      load[slot] -= 1;
      if (result.error !== undefined || !result.sealed) {
        task.reject(new Error(`blob encoding failed in a worker: ${result.error}`));
        return;
      }
      task.resolve({
        id: task.id,
        type: task.type,
        compression: result.compression!,
        rawLength: task.rawLength,
        sealed: Buffer.from(result.sealed.buffer, result.sealed.byteOffset, result.sealed.byteLength),
      });
    });
    worker.on('error', (error) => {
      for (const task of pending.values()) task.reject(error);
      pending.clear();
    });
    return worker;
  });

  return {
    encode(type, id, plaintext) {
      const slot = load.indexOf(Math.min(...load));
      load[slot] += 1;
      const current = seq++;
      return new Promise((resolve, reject) => {
        pending.set(current, { resolve, reject, type, id, rawLength: plaintext.length });
        const owned = plaintext.byteOffset === 0 && plaintext.byteLength === plaintext.buffer.byteLength;
        // A copy of its own: a view into a shared buffer (or Node's pool) must never be transferred.
        const bytes = owned ? plaintext : Buffer.allocUnsafeSlow(plaintext.length).fill(plaintext);
        workers[slot].postMessage({ seq: current, type, id: new Uint8Array(id), plaintext: bytes }, [bytes.buffer as ArrayBuffer]);
      });
    },
    async close() {
      await Promise.all(workers.map((worker) => worker.terminate()));
    },
  };
}
